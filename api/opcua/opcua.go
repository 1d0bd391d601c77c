// Package opcua serves one engine as an OPC UA server, for the MES, the
// PLCs and the SCADA of a mill: the line's state, the current roll and its
// production context, speed and metres, the defect counts by class and the
// last result, and methods to start and end a roll and record a splice.
// It is off unless the engine is started with --opcua URL.
//
// # Model
//
// The address space is modelled on the OPC 40100 Machine Vision companion
// specification (a VisionSystem object with a state machine and result
// management), extended with what a web inspection line has and a
// discrete-part vision system does not: the roll, its metres and its
// production context. Every node is in the namespace
// "urn:webinspect:opcua" with a string node ID that is its path:
//
//	Objects/VisionSystem                          ns=N;s=VisionSystem
//	  VisionStateMachine/CurrentState  String     Preoperational | Operational | Halted | Error (OPC 40100 states)
//	  VisionStateMachine/EngineState   String     starting | running | stopped | failed (the engine's own word)
//	  VisionStateMachine/Error         String     why the engine failed, "" otherwise
//	  Web/SpeedMPerMin                 Double     measured from the encoder over the last second
//	  Web/MdM                          Double     position on the current roll, m
//	  Web/WebWidthMM                   Double
//	  Web/UninspectedM                 Double     metres of the current roll not inspected (dropped blocks)
//	  Web/LinesDropped                 Int64      since the engine started
//	  CurrentRoll/RollId               String
//	  CurrentRoll/LengthM              Double     = Web/MdM: how much of the roll has passed
//	  CurrentRoll/Started              DateTime
//	  CurrentRoll/Splices              Int32
//	  CurrentRoll/ProductionContext/   Product, Lot, Supplier, Shift, Operator, Order (String, "" not given),
//	                                   ChangedBy (String), Changed (DateTime): the newest change
//	  ResultManagement/DefectCount     Int64      defects on the current roll (from the roll map)
//	  ResultManagement/ClassNames      String[]   every class with a defect on the roll, sorted
//	  ResultManagement/ClassCounts     Int64[]    their counts, in the same order
//	  ResultManagement/Counts/<class>  Int64      one variable per class of the recipe (Options.Classes)
//	  ResultManagement/LastResult/...  ResultId (Int64), RollId, Class, Decision (String),
//	                                   MdM, CdMM (Double: the defect's start), Time (DateTime)
//	  StartRoll(RollId String) -> (RollId String)
//	  EndRoll() -> (RollId String, LengthM Double)
//	  RecordSplice(Note String) -> (RollId String, MdM Double)
//	  SetRollContext(Product, Lot, Supplier, Shift, Operator, Order String) -> (RollId String)
//
// Values are read when a client reads them (one consistent snapshot per
// Read request, at most every 100 ms): the engine's status with the roll
// map's per-roll counts (the same figures as GET /api/status), the roll's
// roll.json, and the roll map's newest defect. The methods call the same
// Line as POST /api/line/roll/start, /roll/end and /splice;
// SetRollContext replaces the current roll's production context like PUT
// /api/rolls/{id}/context, recorded as set by the session's user name (an
// anonymous session: the operator given, else "opcua").
//
// # Security
//
// Like the HTTP API, the endpoint listens on loopback unless told
// otherwise, and then anonymous sessions may read and, without a token,
// call the methods. A non-loopback endpoint needs a token (Validate
// refuses it without one) and then refuses anonymous sessions: a client
// must activate its session with a user name identity whose password is
// the token (any user name; it is logged with each method call). With a
// token on loopback, anonymous sessions may read but not call methods
// (changes need the token, as in the HTTP API), and with ProtectReads they
// are refused too. Every service but discovery and session creation is
// refused (BadSessionNotActivated) to a session that has not been
// activated this way: gopcua's server checks no identities itself.
//
// The secure channel is SecurityPolicy None (gopcua's server implements
// no other), as the HTTP API is plain HTTP: messages are neither signed
// nor encrypted. The token itself never crosses the network in clear: the
// user token policy is Basic256Sha256, so the client encrypts the
// password and the session nonce with the server's certificate (a
// self-signed RSA 2048 certificate the server makes at start). Writes,
// node management and history are refused.
package opcua

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"
	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/api"
	"github.com/webinspect/webinspect/engine/status"
	"github.com/webinspect/webinspect/rollmap"
)

// Errors returned by the package; test for them with errors.Is.
var (
	// ErrInvalidOptions is returned by Options.Validate and New when a
	// field of Options is out of range. The message names the field.
	ErrInvalidOptions = errors.New("invalid opcua options")
)

// Namespace is the URI of the server's own namespace.
const Namespace = "urn:webinspect:opcua"

// Line is the production line as the methods drive it: the engine's roll
// handling, the same as api.Line (cmd gives both the same value). Each
// method returns once the roll map reflects the change; an error wrapping
// api.ErrNoRoll (no roll is being inspected) answers BadInvalidState.
type Line interface {
	StartRoll(id string) (string, error)
	EndRoll() (rollID string, lengthM float64, err error)
	Splice(note string) (rollID string, mdM float64, err error)
}

// Rolls is what the server reads a roll's record and its newest defect
// from; *rollmap.Store implements it.
type Rolls interface {
	Roll(id string) (rollmap.RollInfo, error)
	Defects(id string, q rollmap.Query) ([]rollmap.Defect, error)
}

var _ Rolls = (*rollmap.Store)(nil)

// Options configures a Server.
type Options struct {
	// Endpoint is the URL to listen on, opc.tcp://HOST:PORT; port 0 picks
	// a free port (see Server.Endpoint). A host that is not loopback needs
	// a Token. Default opc.tcp://127.0.0.1:4840.
	Endpoint string
	// Status returns the engine's status; called at most every 100 ms,
	// safe for concurrent use. The run command gives the HTTP API's live
	// status (per-roll counts from the roll map). Required.
	Status func() status.Status
	// Rolls gives the current roll's record and newest defect. Nil: the
	// roll's start, splices, context and the last result stay empty.
	Rolls Rolls
	// Line carries out the methods. Nil: they answer BadNotExecutable.
	Line Line
	// Token, when set, is the password of the user name identity that
	// method calls need, and every session on a non-loopback endpoint.
	// 16..4096 printable ASCII bytes without spaces (as the API's).
	Token string
	// ProtectReads refuses anonymous sessions on loopback too. Requires
	// Token.
	ProtectReads bool
	// Classes are the defect classes that get a variable of their own
	// under ResultManagement/Counts (the recipe's classes); a class not
	// listed is still in ClassNames/ClassCounts. At most 256, each a
	// non-empty name of at most 64 bytes.
	Classes []string
	// Logger receives method calls (info), refused sessions (warn) and
	// the OPC UA stack's messages (debug). Default zerolog.Nop().
	Logger zerolog.Logger
	// CallTimeout bounds how long a method waits for the Line, as the
	// HTTP API does; 1 s..5 min. Default 10 s.
	CallTimeout time.Duration
}

// DefaultOptions returns the defaults; Status must still be set.
func DefaultOptions() Options {
	return Options{Endpoint: "opc.tcp://127.0.0.1:4840", Logger: zerolog.Nop(), CallTimeout: 10 * time.Second}
}

// Validate reports the first field that is out of range.
func (o Options) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s %s", ErrInvalidOptions, field, fmt.Sprintf(format, args...))
	}
	host, _, err := splitEndpoint(o.Endpoint)
	if err != nil {
		return bad("Endpoint", "%v", err)
	}
	if o.Status == nil {
		return bad("Status", "is nil: the engine's status function is required")
	}
	if err := api.CheckToken(o.Token); err != nil {
		return bad("Token", "%v", err)
	}
	if o.Token == "" && !api.LoopbackHost(host) {
		return bad("Endpoint", "%q is not a loopback address and no Token is set: give a token (clients then sign in "+
			"with it as the password of a user name identity) or listen on 127.0.0.1", o.Endpoint)
	}
	if o.ProtectReads && o.Token == "" {
		return bad("ProtectReads", "needs a Token")
	}
	if len(o.Classes) > 256 {
		return bad("Classes", "has %d classes: at most 256", len(o.Classes))
	}
	seen := map[string]bool{}
	for i, c := range o.Classes {
		if c == "" || len(c) > 64 {
			return bad(fmt.Sprintf("Classes[%d]", i), "%q: want a name of 1..64 bytes", c)
		}
		if seen[c] {
			return bad(fmt.Sprintf("Classes[%d]", i), "%q is listed twice", c)
		}
		seen[c] = true
	}
	if o.CallTimeout < time.Second || o.CallTimeout > 5*time.Minute {
		return bad("CallTimeout", "%v: want 1s..5m", o.CallTimeout)
	}
	return nil
}

// splitEndpoint parses opc.tcp://HOST:PORT.
func splitEndpoint(ep string) (host string, port int, err error) {
	u, err := url.Parse(ep)
	if err != nil {
		return "", 0, fmt.Errorf("%q: want opc.tcp://HOST:PORT: %v", ep, err)
	}
	if u.Scheme != "opc.tcp" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil || u.Fragment != "" {
		return "", 0, fmt.Errorf("%q: want opc.tcp://HOST:PORT (no user, path or query)", ep)
	}
	h, p, err := net.SplitHostPort(u.Host)
	if err != nil {
		return "", 0, fmt.Errorf("%q: want opc.tcp://HOST:PORT: %v", ep, err)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("%q: port %q must be a number 0..65535", ep, p)
	}
	if h == "" {
		return "", 0, fmt.Errorf("%q: name the host (0.0.0.0 for every interface)", ep)
	}
	return h, int(n), nil
}

// Server is the OPC UA server of one engine.
type Server struct {
	opts     Options
	log      zerolog.Logger
	loopback bool
	key      *rsa.PrivateKey
	cert     []byte // DER

	mu       sync.Mutex
	ua       *server.Server
	ns       *server.NodeNameSpace
	endpoint string
	methods  map[string]method // by method node ID

	sessMu   sync.Mutex
	sessions map[string]sessionAuth // by authentication token

	snapMu  sync.Mutex
	snap    snapshot
	lastDef lastDefect
}

// New returns a Server for o after validating it, with its address space
// built and its certificate made; Start serves it.
func New(o Options) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	host, _, _ := splitEndpoint(o.Endpoint)
	s := &Server{opts: o, log: o.Logger.With().Str("component", "opcua").Logger(), loopback: api.LoopbackHost(host),
		sessions: map[string]sessionAuth{}}
	var err error
	if s.key, s.cert, err = selfSigned(host); err != nil {
		return nil, fmt.Errorf("opcua: server certificate: %w", err)
	}
	return s, nil
}

// Start listens on Options.Endpoint and serves until ctx is done or Close
// is called. A port already in use is returned as an error naming the
// endpoint.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ua != nil {
		return errors.New("opcua: server already started")
	}
	host, port, _ := splitEndpoint(s.opts.Endpoint)
	if port == 0 {
		p, err := freePort(host)
		if err != nil {
			return fmt.Errorf("opcua: listen %s: %w", s.opts.Endpoint, err)
		}
		port = p
	}
	// Fail with the system's words before gopcua (which logs and returns
	// a bare error) tries.
	if l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port))); err != nil {
		return fmt.Errorf("opcua: listen %s: %w", s.opts.Endpoint, err)
	} else {
		l.Close()
	}
	u := server.New(
		server.EndPoint(host, port),
		server.EnableSecurity("None", ua.MessageSecurityModeNone),
		server.EnableAuthMode(ua.UserTokenTypeAnonymous),
		server.EnableAuthMode(ua.UserTokenTypeUserName),
		server.Certificate(s.cert),
		server.PrivateKey(s.key),
		server.ServerName("webinspect"),
		server.ManufacturerName("webinspect"),
		server.ProductName("webinspect line-scan web inspection"),
		server.SetLogger(stackLogger{s.log}),
	)
	s.ua = u
	s.endpoint = fmt.Sprintf("opc.tcp://%s:%d", host, port)
	s.build()
	s.registerHandlers()
	if err := u.Start(ctx); err != nil {
		s.ua = nil
		return fmt.Errorf("opcua: listen %s: %w", s.opts.Endpoint, err)
	}
	s.setTokenPolicies()
	go func() {
		// Keep the values fresh for subscriptions, which sample them
		// without a Read; stop with ctx.
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				s.Close()
				return
			case <-t.C:
				s.refresh(snapshotAge)
			}
		}
	}()
	s.log.Info().Str("endpoint", s.endpoint).Bool("anonymous", s.anonymousAllowed()).Msg("OPC UA server listening")
	return nil
}

// Endpoint returns the URL clients connect to, with the actual port when
// Options.Endpoint asked for port 0; "" before Start.
func (s *Server) Endpoint() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endpoint
}

// Close stops listening and closes every connection.
func (s *Server) Close() error {
	s.mu.Lock()
	u := s.ua
	s.mu.Unlock()
	if u == nil {
		return nil
	}
	return u.Close()
}

// freePort returns a port that was free on host a moment ago.
func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// stackLogger passes the OPC UA stack's messages to zerolog at debug
// level (it logs every connection and every lookup of a closed session).
type stackLogger struct{ l zerolog.Logger }

func (l stackLogger) Debug(msg string, args ...any) { l.l.Debug().Msgf(msg, args...) }
func (l stackLogger) Info(msg string, args ...any)  { l.l.Debug().Msgf(msg, args...) }
func (l stackLogger) Warn(msg string, args ...any)  { l.l.Debug().Msgf(msg, args...) }
func (l stackLogger) Error(msg string, args ...any) { l.l.Debug().Msgf(msg, args...) }
