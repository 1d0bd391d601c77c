// Package api serves webinspect over HTTP: a JSON API for the live line
// status, rolls and their defects, Prometheus metrics, and the web UI (the
// roll map) from files embedded in the binary.
//
// # Model
//
// A [Server] reads everything it serves from three seams given in [Options]:
// a [RollStore] (the roll map, normally *rollmap.Store), a status function
// (the engine's live [engine.Status]) and a prometheus.Gatherer. It holds no
// state of its own besides the listener, so several servers may share one
// store, and a server may run with no engine (Status nil) to review rolls
// written earlier.
//
// # Endpoints
//
//	GET /api/status              engine.Status                      503 when Options.Status is nil
//	GET /api/rolls               {"rolls": [RollInfo, ...]}          newest first
//	GET /api/rolls/{id}          RollInfo + {"uninspected": [Uninspected, ...]}
//	GET /api/rolls/{id}/defects  {"roll_id", "defects": [Defect, ...], "next_after": ID|null}
//	GET /metrics                 Prometheus text/OpenMetrics exposition
//	GET /                        the roll map page (ui/index.html)
//	GET /ui/{file}               its scripts and styles
//
// The defects endpoint takes these query parameters, all optional; any other
// parameter, or one given twice, is refused:
//
//	after=ID      only defects with defect_id > ID (integer >= 0; default 0)
//	limit=N       at most N defects (1..10000; default 1000)
//	md_from=M     only defects that end at or after M metres (number >= 0)
//	md_to=M       only defects that start at or before M metres (number >= md_from)
//	class=C       only defects of class C
//	decision=D    only defects with decision D
//
// Defects come in defect_id order. next_after is the defect_id of the last
// defect returned, or null when none were: a client pages through a roll by
// passing it back as after until a page holds fewer than limit defects, and
// polls a live roll the same way (keeping its previous after on null).
//
// # Errors
//
// Every error is a JSON object {"error": "message"} with the status code:
// 400 for a bad parameter or roll ID (the message names the parameter and
// what is allowed), 404 for an unknown roll or path, 405 for a known path
// with another method (with an Allow header), 500 when the store fails, 503
// when no engine status is available. A roll listing that could read only
// some rolls is served with status 200 and a "warning" naming the failures.
//
// Every response carries a Content-Type and X-Content-Type-Options: nosniff;
// API responses are not cached. Each request is logged at debug level.
package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/engine"
	"github.com/webinspect/webinspect/rollmap"
)

// Errors returned by the package; test for them with errors.Is.
var (
	// ErrInvalidOptions is returned by Options.Validate and New when a field
	// of Options is out of range. The message names the field.
	ErrInvalidOptions = errors.New("invalid api options")
)

// RollStore is what the API reads rolls from; *rollmap.Store implements it.
// Implementations return errors wrapping rollmap.ErrNotFound for an unknown
// roll and rollmap.ErrBadRollID for a malformed ID; Defects returns the
// matching defects in ID order, at most q.Limit of them. The returned slices
// belong to the caller.
type RollStore interface {
	List() ([]rollmap.RollInfo, error)
	Roll(id string) (rollmap.RollInfo, error)
	Defects(id string, q rollmap.Query) ([]rollmap.Defect, error)
	Uninspected(id string) ([]rollmap.Uninspected, error)
}

// The roll map's store is the RollStore the server is built for.
var _ RollStore = (*rollmap.Store)(nil)

// Limits of the defects endpoint's limit parameter.
const (
	DefaultDefectLimit = 1000
	MaxDefectLimit     = 10000
)

// Options configures a Server.
type Options struct {
	// Listen is the TCP address to listen on, host:port; port 0 picks a
	// free port (see Server.Addr). Default "127.0.0.1:8080".
	Listen string
	// Store serves rolls and defects. Required.
	Store RollStore
	// Status returns the engine's live status; it is called once per
	// /api/status request and must be safe for concurrent use. Nil means no
	// engine is running: /api/status answers 503.
	Status func() engine.Status
	// Gatherer is exposed at /metrics. Default prometheus.DefaultGatherer;
	// nil means /metrics answers 404.
	Gatherer prometheus.Gatherer
	// Logger receives one debug line per request and errors. Default
	// zerolog.Nop(); the zero Logger is also silent.
	Logger zerolog.Logger
	// MaxBodyBytes limits request bodies, 1..1 GiB. Default 1 MiB.
	MaxBodyBytes int64
	// ShutdownTimeout bounds how long ListenAndServe waits for requests in
	// flight once its context is done, before closing their connections;
	// 0..10 min. Default 5 s.
	ShutdownTimeout time.Duration
}

// DefaultOptions returns the defaults; Store (and normally Status) must
// still be set.
func DefaultOptions() Options {
	return Options{
		Listen:          "127.0.0.1:8080",
		Gatherer:        prometheus.DefaultGatherer,
		Logger:          zerolog.Nop(),
		MaxBodyBytes:    1 << 20,
		ShutdownTimeout: 5 * time.Second,
	}
}

// Validate reports the first field that is out of range.
func (o Options) Validate() error {
	bad := func(field string, format string, args ...any) error {
		return fmt.Errorf("%w: %s %s", ErrInvalidOptions, field, fmt.Sprintf(format, args...))
	}
	_, port, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return bad("Listen", "%q: want host:port (empty host: all interfaces): %v", o.Listen, err)
	}
	// net.Listen would also take a service name ("http"); a mill's
	// configuration should say the number.
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return bad("Listen", "%q: port %q must be a number 0..65535", o.Listen, port)
	}
	if o.Store == nil {
		return bad("Store", "is nil: a RollStore (*rollmap.Store) is required")
	}
	if o.MaxBodyBytes < 1 || o.MaxBodyBytes > 1<<30 {
		return bad("MaxBodyBytes", "%d: want 1..%d", o.MaxBodyBytes, int64(1<<30))
	}
	if o.ShutdownTimeout < 0 || o.ShutdownTimeout > 10*time.Minute {
		return bad("ShutdownTimeout", "%v: want 0..10m", o.ShutdownTimeout)
	}
	return nil
}

// Server is the HTTP server. Its handler is safe for concurrent use; Serve
// and ListenAndServe may be called more than once, one after another or at
// the same time on different listeners.
type Server struct {
	opts    Options
	log     zerolog.Logger
	handler http.Handler

	mu   sync.Mutex
	addr string // of the most recent listener
}

// New returns a Server for o after validating it.
func New(o Options) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	s := &Server{opts: o, log: o.Logger.With().Str("component", "api").Logger()}
	s.handler = s.routes()
	return s, nil
}

// Handler returns the server's handler, to serve it some other way (tests,
// another mux). It applies every middleware: headers, body limit, logging,
// JSON 404/405.
func (s *Server) Handler() http.Handler { return s.handler }

// Addr returns the address the server listens on, with the actual port when
// Options.Listen asked for port 0. It is "" until ListenAndServe (or Serve)
// has a listener.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// ListenAndServe listens on Options.Listen and serves until ctx is done, then
// shuts down gracefully (see Options.ShutdownTimeout). A failure to listen is
// returned as "listen ADDR: REASON", e.g. "listen 127.0.0.1:8080: address
// already in use", wrapping the system error. After ctx is done it returns
// nil, or the error of a shutdown that did not complete in time.
func (s *Server) ListenAndServe(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.opts.Listen)
	if err != nil {
		return listenError(s.opts.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// listenError strips net's "listen tcp" and "bind:" layers from err so the
// message reads "listen ADDR: REASON"; the reason (a syscall.Errno such as
// EADDRINUSE) stays in the chain for errors.Is.
func listenError(addr string, err error) error {
	reason := err
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		reason = op.Err
		var sys *os.SyscallError
		if errors.As(reason, &sys) && sys.Err != nil {
			reason = sys.Err
		}
	}
	return fmt.Errorf("listen %s: %w", addr, reason)
}

// Serve serves on ln until ctx is done, then shuts down gracefully as
// ListenAndServe does. It takes ownership of ln and closes it.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// No WriteTimeout: large defect pages and, later, the live event
		// stream write for longer than any fixed bound.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		BaseContext:    func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	addr := ln.Addr().String()
	s.mu.Lock()
	s.addr = addr
	s.mu.Unlock()
	s.log.Info().Str("addr", addr).Msg("http server listening")

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		// Serve failed on its own (the listener broke).
		return fmt.Errorf("api: serve %s: %w", addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		srv.Close()
		err = fmt.Errorf("api: shutdown %s: requests still running after %v: %w", addr, s.opts.ShutdownTimeout, err)
	}
	if serr := <-served; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = fmt.Errorf("api: serve %s: %w", addr, serr)
	}
	s.log.Info().Str("addr", addr).Err(err).Msg("http server stopped")
	return err
}
