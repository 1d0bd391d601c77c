// Package api serves webinspect over HTTP: a JSON API for the live line
// status, rolls, their defects and the review of them, a live event stream,
// defect crops, printable roll reports, control of the line (roll start,
// end, splice), Prometheus metrics, and the web UI (the roll map) from files
// embedded in the binary.
//
// # Model
//
// A [Server] reads everything it serves from seams given in [Options]: a
// [RollStore] (the roll map, normally *rollmap.Store; reviews, grids,
// reports and defect details use the optional [ReviewStore], [MarkStore],
// [DefectScanner], [SummaryStore] and [DensityStore] it may also be), a
// status function (the engine's live [status.Status]), an [ImageSource]
// (the crop archive), a [Line] (the engine's roll handling), a [Hub] (live
// events) and a prometheus.Gatherer. It holds no state of its own besides
// the listener, so several servers may share one store, and a server may
// run with no engine (Status, Line and Events nil) to review rolls written
// earlier. [WriteReport] makes the same report as the report endpoints for
// the command line.
//
// # Endpoints
//
// Reads (GET):
//
//	/api/status                        LiveStatus (per-roll counts from the roll map)   503 without an engine
//	/api/events                        server-sent events (see Events)   503 without a Hub
//	/api/rolls                         {"rolls": [RollInfo, ...]}        newest first
//	/api/rolls/{id}                    RollInfo + {"uninspected": [Uninspected, ...]}
//	/api/rolls/{id}/defects            {"roll_id", "defects": [Defect, ...], "next_after": ID|null}
//	/api/rolls/{id}/defects/{did}      {"defect", "reviews": [Review...], "marks": [MarkEvent...]}
//	/api/rolls/{id}/grid               aggregated roll map (Grid)
//	/api/rolls/{id}/density            defects per MD bin
//	/api/rolls/{id}/summary            rollmap.Summary with lane grades
//	/api/rolls/{id}/review-queue       defects to review, most doubtful first
//	/api/rolls/{id}/review-stats       ReviewStats
//	/api/rolls/{id}/report.html        printable one-page roll report
//	/api/rolls/{id}/report.pdf         the same as PDF (attachment)
//	/api/calibration                   threshold curves and proposals from reviews (rolls, recipe)
//	/api/images/{sha256}.png           a defect crop
//	/metrics                           Prometheus text/OpenMetrics exposition
//	/                                  the roll map page (ui/index.html), /ui/{file} its assets
//
// Changes (POST, JSON bodies):
//
//	/api/rolls/{id}/defects/{did}/review   {"action","label","reviewer"} -> {"defect", "review"}
//	/api/rolls/{id}/context                {"product","lot","supplier","shift","operator","order","by"}
//	                                       POST: the fields given; PUT: the whole context -> {"roll_id","context","context_history"}
//	/api/line/roll/start                   {"id"} (optional) and the context fields -> {"roll_id"}
//	/api/line/roll/end                     -> {"roll_id", "length_m"}
//	/api/line/splice                       {"note"} -> {"roll_id", "md_m"}
//	/api/calibration/apply                 {"recipe","detector","threshold","by","note"} -> {"version"}
//	/api/session                           (no body) -> 204 and an HttpOnly read-only session
//	                                       cookie, for EventSource and <img>, which cannot send
//	                                       the bearer token (see README.md, Security)
//
// README.md next to this file has every parameter, with curl examples.
// A decision filter other than mark, review or pass, and a density lane the
// roll does not have, are refused with 400 rather than answered empty.
// Roll lengths are rounded to the millimetre; error messages carry no
// internal prefixes (publicMessage), the log keeps the whole error.
// The defects endpoint takes after, limit (1..10000, default 1000),
// md_from, md_to, class, decision, mark_status and review_status; any
// other parameter, or one given twice, is refused. Defects come in
// defect_id order; next_after is the last defect_id returned (null when
// none were), passed back as after to page or to poll a live roll.
//
// # Review queue and statistics
//
// A defect needs review when its decision is "review" (the recipe asks a
// person to decide) or "mark" (the material will be marked or cut out, so
// a false alarm costs material). The queue holds those not reviewed yet,
// decision review before mark, then by uncertainty = threshold / peak
// score (1 at the detector's threshold, 0.5 at twice it: the closer a
// detection is to the threshold, the likelier it is noise or a borderline
// call), then by defect ID. The threshold of a detector is
// Options.DetectionThresholds[detector] or, if not configured, the lowest
// peak score that detector reported on the roll. Each item carries its
// rank in the ordering of every defect needing review, reviewed or not, so
// ranks do not shift while staff review (after_rank pages).
// Statistics: true_detection_rate = (confirmed + reclassified) / reviewed;
// false_reject_rate = false alarms / reviewed defects whose decision was
// mark or review; review_load_per_100m = defects needing review × 100 /
// roll length (m). Rates are null when their denominator is 0.
//
// # Events
//
// /api/events is a text/event-stream. Each event has "id: N" (1, 2, ...
// within one Hub), "event: KIND" (status, defect, roll, review, reset) and
// one "data:" line of JSON. A client that reconnects with the
// Last-Event-ID header (or ?last_event_id=N) gets every retained event
// after N (the Hub keeps the last 4096); if N is older than that, or not
// from this process, the first event is "reset" (id = the newest ID) and
// the client should refetch what it shows. A comment line is sent every
// HeartbeatInterval (15 s). A client that falls 512 events behind is
// disconnected (never slowing the publisher) and catches up on reconnect.
//
// # Security
//
// The server listens on 127.0.0.1:8080 by default. Options.Validate
// refuses a non-loopback Listen without a Token unless AllowOpenChanges
// is set. With a Token, every change needs "Authorization: Bearer TOKEN"
// (compared in constant time; 401 otherwise), and with ProtectReads every
// read except the page and its assets needs it too. Changes whose Origin
// header names another host are refused (403), and so are changes without
// a token addressed to a Host that is not localhost or a loopback IP (a
// page using DNS rebinding to reach 127.0.0.1). Request bodies are limited
// to MaxBodyBytes (64 KiB; 413 naming the limit), must be JSON objects
// with known fields only (400 naming the problem) and application/json
// when a Content-Type is given (415). Paths that are not canonical ("..",
// ".", "//", encoded or not) are refused with 400 before routing; image
// names must match ^[0-9a-f]{64}\.png$ before anything touches the file
// system, and DirImages checks that the resolved path stays in the archive.
//
// # Errors
//
// Every error is a JSON object {"error": "message"} with the status code:
// 400 for a bad parameter, body or roll ID (the message names the
// parameter and what is allowed), 401 without the token, 403 for a
// cross-origin change, 404 for an unknown roll, defect, image or path,
// 405 for a known path with another method (with an Allow header), 409
// when the line has no roll to end, 413 for a body over the limit, 415 for
// a body that is not JSON, 500 when the store fails, 501 when the store
// cannot do what is asked, 503 when no engine, line or event hub is
// attached. A roll listing that could read only some rolls is served with
// status 200 and a "warning" naming the failures.
//
// Every response carries a Content-Type and X-Content-Type-Options: nosniff;
// API responses are not cached (crops are: their name is their hash). Each
// request is logged at debug level, each review at info level.
package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/webinspect/webinspect/engine/status"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

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
	// free port (see Server.Addr). Default "127.0.0.1:8080". An address
	// that is not loopback (empty host, 0.0.0.0, a LAN address, a host
	// name other than localhost) needs a Token or AllowOpenChanges.
	Listen string
	// Store serves rolls and defects. Required.
	Store RollStore
	// Status returns the engine's live status; it is called once per
	// /api/status request and must be safe for concurrent use. Nil means no
	// engine is running: /api/status answers 503.
	Status func() status.Status
	// Gatherer is exposed at /metrics. Default prometheus.DefaultGatherer;
	// nil means /metrics answers 404.
	Gatherer prometheus.Gatherer
	// Logger receives one debug line per request and errors. Default
	// zerolog.Nop(); the zero Logger is also silent.
	Logger zerolog.Logger
	// MaxBodyBytes limits request bodies, 1..1 GiB; a larger body is
	// refused with 413 naming the limit. Default 64 KiB (a review is a few
	// hundred bytes).
	MaxBodyBytes int64

	// Token, when set, is the bearer token every change (POST, PUT,
	// PATCH, DELETE) must carry as "Authorization: Bearer TOKEN"; it is
	// compared in constant time and a request without it is answered 401.
	// 16..4096 printable ASCII bytes without spaces. Empty: changes are
	// open, which Validate allows only on a loopback Listen address (see
	// AllowOpenChanges).
	Token string
	// AllowOpenChanges lets Validate accept a Listen address that is not
	// loopback (an empty host, 0.0.0.0, a LAN address or a host name)
	// without a Token: anyone who can reach the port may then review
	// defects and start or end rolls. Default false.
	AllowOpenChanges bool
	// ProtectReads makes reads (the JSON API, /metrics and the event
	// stream) need the Token too; the page and its scripts and styles
	// (/, /ui/) stay open, as they hold no data. Requires Token.
	ProtectReads bool
	// AllowedHosts are the names (host names or IP addresses, without a
	// port) requests may address the server by, in their Host header,
	// besides the loopback names (localhost, 127.0.0.0/8, ::1), which are
	// always allowed, and the Listen address's own host. When Listen is on
	// every interface (empty host, 0.0.0.0, ::), the machine's host name
	// and interface addresses are allowed too. "*" allows any Host. A
	// request with another Host, read or change, is refused with 403: a
	// web page whose own name resolves to this machine (DNS rebinding)
	// cannot read the roll maps through a browser on the mill's network.
	AllowedHosts []string
	// Images serves defect crops at /api/images/{name} and in the roll
	// report; DirImages(root) reads the image archive's directory. Nil:
	// the images endpoint answers 404 and reports say the crops are
	// unavailable.
	Images ImageSource
	// Line drives the production line from the /api/line endpoints (roll
	// start, end, splice). Nil: those endpoints answer 503.
	Line Line
	// Events is the live event hub served at /api/events. The engine side
	// publishes defect and roll events to it; the server publishes review
	// events and, while Serve runs and Status is set, a status event every
	// StatusInterval. Nil: /api/events answers 503.
	Events *Hub
	// StatusInterval is how often Serve publishes the engine status to
	// Events; 100 ms..1 min. Default 1 s.
	StatusInterval time.Duration
	// HeartbeatInterval is how often an idle event stream gets a comment
	// line, so proxies and clients see the connection alive; 10 ms..10 min.
	// Default 15 s.
	HeartbeatInterval time.Duration
	// DetectionThresholds gives, per detector name (Defect.Detector), the
	// score at which the detector flags a defect (the threshold detector:
	// the recipe's threshold.min_contrast). The review queue ranks defects
	// by how close their peak score is to it. A detector not listed uses
	// the lowest peak score it reported on the roll. Values > 0.
	DetectionThresholds map[rollmap.Detector]float64
	// Calibrator gives the recipes' calibration settings and applies a
	// calibrated threshold as a new recipe version (/api/calibration).
	// Nil: those endpoints answer 503.
	Calibrator Calibrator
	// ShutdownTimeout bounds how long ListenAndServe waits for requests in
	// flight once its context is done, before closing their connections;
	// 0..10 min. Default 5 s.
	ShutdownTimeout time.Duration
}

// DefaultOptions returns the defaults; Store (and normally Status) must
// still be set.
func DefaultOptions() Options {
	return Options{
		Listen:            "127.0.0.1:8080",
		Gatherer:          prometheus.DefaultGatherer,
		Logger:            zerolog.Nop(),
		MaxBodyBytes:      64 << 10,
		ShutdownTimeout:   5 * time.Second,
		StatusInterval:    time.Second,
		HeartbeatInterval: 15 * time.Second,
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
	if err := CheckToken(o.Token); err != nil {
		return bad("Token", "%v", err)
	}
	host, _, _ := net.SplitHostPort(o.Listen)
	if o.Token == "" && !o.AllowOpenChanges && !LoopbackHost(host) {
		return bad("Listen", "%q is not a loopback address and no Token is set: set Token (changes then need "+
			"\"Authorization: Bearer TOKEN\"), listen on 127.0.0.1, or set AllowOpenChanges to let anyone on the network change data", o.Listen)
	}
	if o.ProtectReads && o.Token == "" {
		return bad("ProtectReads", "needs a Token")
	}
	for i, h := range o.AllowedHosts {
		if h == "" || len(h) > 253 || strings.ContainsAny(h, ":/ \t[]@") && net.ParseIP(h) == nil {
			return bad(fmt.Sprintf("AllowedHosts[%d]", i), "%q is not a host name or IP address (no port, scheme or path)", h)
		}
	}
	if o.StatusInterval < 100*time.Millisecond || o.StatusInterval > time.Minute {
		return bad("StatusInterval", "%v: want 100ms..1m", o.StatusInterval)
	}
	if o.HeartbeatInterval < 10*time.Millisecond || o.HeartbeatInterval > 10*time.Minute {
		return bad("HeartbeatInterval", "%v: want 10ms..10m", o.HeartbeatInterval)
	}
	for name, v := range o.DetectionThresholds {
		if !(v > 0) || math.IsInf(v, 0) {
			return bad("DetectionThresholds", "[%q] = %v: want a finite score > 0", name, v)
		}
	}
	return nil
}

// CheckToken applies the rules of a bearer token ("" is no token): 16..4096
// printable ASCII bytes without spaces. The OPC UA server applies the same.
func CheckToken(tok string) error {
	if tok == "" {
		return nil
	}
	if len(tok) < 16 || len(tok) > 4096 {
		return fmt.Errorf("is %d bytes: want 16..4096", len(tok))
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("byte %d is not printable ASCII (spaces and control characters are not allowed)", i)
		}
	}
	return nil
}

// LoopbackHost reports whether host (of a host:port) names only the
// loopback interface: "localhost" or a loopback IP. An empty host means
// every interface.
func LoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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

	statusOn atomic.Bool // a Serve is publishing the status to Events

	hosts hostSet // the Host names requests may use (Options.AllowedHosts)

	classes classCounter // the status's roll's defects by class, from the store
}

// New returns a Server for o after validating it.
func New(o Options) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	s := &Server{opts: o, log: o.Logger.With().Str("component", "api").Logger(), hosts: allowedHosts(o)}
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
	// Event streams never end by themselves: Shutdown closes stop so their
	// handlers return instead of holding the shutdown to its timeout.
	stop := make(chan struct{})
	var stopOnce sync.Once
	stopStreams := func() { stopOnce.Do(func() { close(stop) }) }
	defer stopStreams()
	if s.opts.Events != nil && s.opts.Status != nil {
		go s.publishStatus(ctx, stop)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// No WriteTimeout: large defect pages and, later, the live event
		// stream write for longer than any fixed bound.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		BaseContext: func(net.Listener) context.Context {
			return context.WithValue(context.WithoutCancel(ctx), streamStopKey{}, (<-chan struct{})(stop))
		},
	}
	srv.RegisterOnShutdown(stopStreams)
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
