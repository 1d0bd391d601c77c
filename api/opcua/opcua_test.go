package opcua

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"

	"github.com/webinspect/webinspect/engine/status"
	"github.com/webinspect/webinspect/internal/long"
	"github.com/webinspect/webinspect/rollmap"
)

const testToken = "0123456789abcdef-opcua-token"

// fakeLine records what the methods asked for; it fails the test on a
// call it does not expect (a method that runs without permission).
type fakeLine struct {
	t       *testing.T
	mu      sync.Mutex
	allowed bool
	calls   []string
	roll    string
}

func (l *fakeLine) record(c string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.allowed {
		l.t.Errorf("line called without permission: %s", c)
		return errors.New("not allowed")
	}
	l.calls = append(l.calls, c)
	return nil
}

func (l *fakeLine) StartRoll(id string) (string, error) {
	if id == "R-exists" {
		return "", fmt.Errorf("start: %w", rollmap.ErrRollExists)
	}
	if err := l.record("start " + id); err != nil {
		return "", err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll = id
	return id, nil
}

func (l *fakeLine) EndRoll() (string, float64, error) {
	if err := l.record("end"); err != nil {
		return "", 0, err
	}
	return "R-1", 12.5, nil
}

func (l *fakeLine) Splice(note string) (string, float64, error) {
	if err := l.record("splice " + note); err != nil {
		return "", 0, err
	}
	return "R-1", 7.25, nil
}

func (l *fakeLine) Calls() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// fakeRolls is one roll with a splice, three defects and a production
// context.
type fakeRolls struct {
	mu   sync.Mutex
	ctx  rollmap.RollContext
	hist []rollmap.ContextChange
}

func (f *fakeRolls) Roll(id string) (rollmap.RollInfo, error) {
	if id != "R-1" {
		return rollmap.RollInfo{}, rollmap.ErrNotFound
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return rollmap.RollInfo{ID: id, Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Open: true,
		Splices: []rollmap.Splice{{MDM: 3}}, Context: f.ctx, ContextHistory: slices.Clone(f.hist)}, nil
}

func (f *fakeRolls) SetContext(id string, c rollmap.RollContext, by string, t time.Time) error {
	if id != "R-1" {
		return rollmap.ErrNotFound
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ctx = c
	f.hist = append(f.hist, rollmap.ContextChange{Time: t.UTC().Truncate(time.Millisecond), By: by, Context: c})
	return nil
}

func (*fakeRolls) Defects(id string, q rollmap.Query) ([]rollmap.Defect, error) {
	all := []rollmap.Defect{
		{RollID: id, ID: 1, Class: "hole", Decision: rollmap.DecisionMark, MDStartM: 1, CDStartMM: 10},
		{RollID: id, ID: 3, Class: "stain", Decision: rollmap.DecisionReview, MDStartM: 4.5, CDStartMM: 812.5},
		{RollID: id, ID: 2, Class: "hole", Decision: rollmap.DecisionMark, MDStartM: 2, CDStartMM: 20},
	}
	var out []rollmap.Defect
	for _, d := range all {
		if d.ID > q.AfterID {
			out = append(out, d)
		}
	}
	return out, nil
}

func testStatus() status.Status {
	return status.Status{State: "running", RollID: "R-1", SpeedMPerMin: 120.5, MDM: 42.25, WebWidthMM: 2000,
		Defects: 3, DefectsByClass: map[string]int64{"hole": 2, "stain": 1}}
}

// start serves o on a real socket and returns the server.
func start(t *testing.T, o Options) *Server {
	t.Helper()
	if o.Status == nil {
		o.Status = testStatus
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); s.Close() })
	return s
}

// dial connects a gopcua client to ep: anonymously when user is "",
// else with the user name identity user/password.
func dial(t *testing.T, ep, user, password string) (*opcua.Client, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	eps, err := opcua.GetEndpoints(ctx, ep)
	if err != nil {
		t.Fatalf("get endpoints of %s: %v", ep, err)
	}
	sel, err := opcua.SelectEndpoint(eps, ua.SecurityPolicyURINone, ua.MessageSecurityModeNone)
	if err != nil {
		t.Fatalf("select endpoint: %v", err)
	}
	opts := []opcua.Option{opcua.AutoReconnect(false), opcua.RequestTimeout(20 * time.Second),
		opcua.SecurityPolicy(ua.SecurityPolicyURINone), opcua.SecurityMode(ua.MessageSecurityModeNone)}
	if user == "" {
		opts = append(opts, opcua.AuthAnonymous(), opcua.SecurityFromEndpoint(sel, ua.UserTokenTypeAnonymous))
	} else {
		opts = append(opts, opcua.AuthUsername(user, password), opcua.SecurityFromEndpoint(sel, ua.UserTokenTypeUserName))
	}
	c, err := opcua.NewClient(ep, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c, nil
}

// nsIndex returns the index of the server's namespace.
func nsIndex(t *testing.T, c *opcua.Client) uint16 {
	t.Helper()
	i, err := c.FindNamespace(context.Background(), Namespace)
	if err != nil {
		t.Fatalf("namespace %s: %v", Namespace, err)
	}
	return i
}

// readValues reads the named variables (paths under VisionSystem) in one
// request and fails on any bad status.
func readValues(t *testing.T, c *opcua.Client, ns uint16, paths ...string) map[string]any {
	t.Helper()
	req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnBoth}
	for _, p := range paths {
		req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: ua.NewStringNodeID(ns, "VisionSystem."+p), AttributeID: ua.AttributeIDValue})
	}
	resp, err := c.Read(context.Background(), req)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	out := map[string]any{}
	for i, r := range resp.Results {
		if r.Status != ua.StatusOK {
			t.Fatalf("read %s: %v", paths[i], r.Status)
		}
		out[paths[i]] = r.Value.Value()
	}
	return out
}

// children returns the browse names of n's forward HasComponent
// references.
func children(t *testing.T, c *opcua.Client, n *ua.NodeID) []string {
	t.Helper()
	refs, err := c.Node(n).References(context.Background(), id.HasComponent, ua.BrowseDirectionForward, ua.NodeClassAll, true)
	if err != nil {
		t.Fatalf("browse %s: %v", n, err)
	}
	var names []string
	for _, r := range refs {
		names = append(names, r.BrowseName.Name)
	}
	slices.Sort(names)
	return names
}

func call(c *opcua.Client, ns uint16, name string, args ...any) (*ua.CallMethodResult, error) {
	req := &ua.CallMethodRequest{ObjectID: ua.NewStringNodeID(ns, "VisionSystem"), MethodID: ua.NewStringNodeID(ns, "VisionSystem."+name)}
	for _, a := range args {
		req.InputArguments = append(req.InputArguments, ua.MustVariant(a))
	}
	return c.Call(context.Background(), req)
}

// gopcua's server.New takes about 1.5 s (9 s under -race) importing the
// standard nodeset: the server tests run in parallel.
func TestBrowseReadCallAnonymousOnLoopback(t *testing.T) {
	t.Parallel()
	line := &fakeLine{t: t, allowed: true}
	o := DefaultOptions()
	rolls := &fakeRolls{ctx: rollmap.RollContext{Product: "denim 12oz", Lot: "L-77"}}
	o.Endpoint, o.Line, o.Rolls, o.Classes = "opc.tcp://127.0.0.1:0", line, rolls, []string{"hole", "stain", "knot"}
	s := start(t, o)
	c, err := dial(t, s.Endpoint(), "", "")
	if err != nil {
		t.Fatalf("anonymous session on loopback without a token: %v", err)
	}
	ns := nsIndex(t, c)

	// Browse from the standard Objects folder down.
	if got := children(t, c, ua.NewNumericNodeID(0, id.ObjectsFolder)); !slices.Contains(got, "VisionSystem") {
		t.Fatalf("Objects has %v, want VisionSystem among them", got)
	}
	vs := ua.NewStringNodeID(ns, "VisionSystem")
	want := []string{"CurrentRoll", "EndRoll", "RecordSplice", "ResultManagement", "SetRollContext", "StartRoll", "VisionStateMachine", "Web"}
	if got := children(t, c, vs); !slices.Equal(got, want) {
		t.Fatalf("VisionSystem has %v, want %v", got, want)
	}
	if got := children(t, c, ua.NewStringNodeID(ns, "VisionSystem.ResultManagement.Counts")); !slices.Equal(got, []string{"hole", "knot", "stain"}) {
		t.Fatalf("Counts has %v", got)
	}
	if got, want := children(t, c, ua.NewStringNodeID(ns, "VisionSystem.CurrentRoll.ProductionContext")),
		[]string{"Changed", "ChangedBy", "Lot", "Operator", "Order", "Product", "Shift", "Supplier"}; !slices.Equal(got, want) {
		t.Fatalf("ProductionContext has %v, want %v", got, want)
	}

	v := readValues(t, c, ns, "VisionStateMachine.CurrentState", "VisionStateMachine.EngineState", "Web.SpeedMPerMin", "Web.MdM",
		"CurrentRoll.RollId", "CurrentRoll.Splices", "CurrentRoll.Started", "ResultManagement.DefectCount",
		"ResultManagement.ClassNames", "ResultManagement.ClassCounts", "ResultManagement.Counts.hole", "ResultManagement.Counts.knot",
		"ResultManagement.LastResult.ResultId", "ResultManagement.LastResult.Class", "ResultManagement.LastResult.Decision",
		"ResultManagement.LastResult.MdM", "ResultManagement.LastResult.CdMM",
		"CurrentRoll.ProductionContext.Product", "CurrentRoll.ProductionContext.Lot", "CurrentRoll.ProductionContext.Shift")
	for k, w := range map[string]any{
		"VisionStateMachine.CurrentState": "Operational", "VisionStateMachine.EngineState": "running",
		"Web.SpeedMPerMin": 120.5, "Web.MdM": 42.25, "CurrentRoll.RollId": "R-1", "CurrentRoll.Splices": int32(1),
		"CurrentRoll.Started": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "ResultManagement.DefectCount": int64(3),
		"ResultManagement.Counts.hole": int64(2), "ResultManagement.Counts.knot": int64(0),
		"ResultManagement.LastResult.ResultId": int64(3), "ResultManagement.LastResult.Class": "stain",
		"ResultManagement.LastResult.Decision": "review", "ResultManagement.LastResult.MdM": 4.5, "ResultManagement.LastResult.CdMM": 812.5,
		"CurrentRoll.ProductionContext.Product": "denim 12oz", "CurrentRoll.ProductionContext.Lot": "L-77",
		"CurrentRoll.ProductionContext.Shift": "",
	} {
		got := v[k]
		if tm, ok := got.(time.Time); ok {
			got = tm.UTC()
		}
		if got != w {
			t.Errorf("%s = %#v, want %#v", k, got, w)
		}
	}
	if n, _ := v["ResultManagement.ClassNames"].([]string); !slices.Equal(n, []string{"hole", "stain"}) {
		t.Errorf("ClassNames = %#v", v["ResultManagement.ClassNames"])
	}
	if n, _ := v["ResultManagement.ClassCounts"].([]int64); !slices.Equal(n, []int64{2, 1}) {
		t.Errorf("ClassCounts = %#v", v["ResultManagement.ClassCounts"])
	}

	// Methods reach the line.
	r, err := call(c, ns, "StartRoll", "R-2")
	if err != nil || r.StatusCode != ua.StatusOK || r.OutputArguments[0].Value() != "R-2" {
		t.Fatalf("StartRoll: %v %+v", err, r)
	}
	r, err = call(c, ns, "RecordSplice", "web break")
	if err != nil || r.StatusCode != ua.StatusOK || r.OutputArguments[0].Value() != "R-1" || r.OutputArguments[1].Value() != 7.25 {
		t.Fatalf("RecordSplice: %v %+v", err, r)
	}
	r, err = call(c, ns, "EndRoll")
	if err != nil || r.StatusCode != ua.StatusOK || r.OutputArguments[1].Value() != 12.5 {
		t.Fatalf("EndRoll: %v %+v", err, r)
	}
	if got, want := line.Calls(), []string{"start R-2", "splice web break", "end"}; !slices.Equal(got, want) {
		t.Fatalf("line calls %q, want %q", got, want)
	}
	// SetRollContext replaces the roll's context, recorded as set by the
	// operator given (an anonymous session has no name).
	r, err = call(c, ns, "SetRollContext", "denim 14oz", "L-78", "Mill A", "B", "anna", "PO-5")
	if err != nil || r.StatusCode != ua.StatusOK || r.OutputArguments[0].Value() != "R-1" {
		t.Fatalf("SetRollContext: %v %+v", err, r)
	}
	v = readValues(t, c, ns, "CurrentRoll.ProductionContext.Product", "CurrentRoll.ProductionContext.Order",
		"CurrentRoll.ProductionContext.ChangedBy")
	if v["CurrentRoll.ProductionContext.Product"] != "denim 14oz" || v["CurrentRoll.ProductionContext.Order"] != "PO-5" ||
		v["CurrentRoll.ProductionContext.ChangedBy"] != "anna" {
		t.Fatalf("context after SetRollContext: %v", v)
	}
	r, err = call(c, ns, "SetRollContext", "denim", "L\x01", "", "", "", "")
	if err != nil || r.StatusCode != ua.StatusBadInvalidArgument || len(r.InputArgumentResults) != 6 ||
		r.InputArgumentResults[1] != ua.StatusBadInvalidArgument || r.InputArgumentResults[0] != ua.StatusOK {
		t.Fatalf("SetRollContext with a control character in Lot: %v %+v", err, r)
	}
	if ri, _ := rolls.Roll("R-1"); ri.Context.Product != "denim 14oz" || len(ri.ContextHistory) != 1 {
		t.Fatalf("a refused context changed the roll: %+v", ri)
	}

	// Bad input is refused with a status naming the problem, and never
	// reaches the line.
	for _, tc := range []struct {
		name string
		args []any
		want ua.StatusCode
	}{
		{"StartRoll", []any{"bad/id"}, ua.StatusBadInvalidArgument},
		{"StartRoll", []any{"R-exists"}, ua.StatusBadInvalidState},
		{"StartRoll", nil, ua.StatusBadArgumentsMissing},
		{"StartRoll", []any{"a", "b"}, ua.StatusBadTooManyArguments},
		{"StartRoll", []any{int32(5)}, ua.StatusBadInvalidArgument},
		{"RecordSplice", []any{strings.Repeat("x", 257)}, ua.StatusBadInvalidArgument},
		{"Explode", nil, ua.StatusBadMethodInvalid},
	} {
		r, err := call(c, ns, tc.name, tc.args...)
		if err != nil {
			t.Fatalf("%s%v: %v", tc.name, tc.args, err)
		}
		if r.StatusCode != tc.want {
			t.Errorf("%s%v: %v, want %v", tc.name, tc.args, r.StatusCode, tc.want)
		}
	}
	if got := len(line.Calls()); got != 3 {
		t.Fatalf("bad calls reached the line: %q", line.Calls())
	}

	// Variables are read-only.
	wr, err := c.Write(context.Background(), &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
		NodeID: ua.NewStringNodeID(ns, "VisionSystem.CurrentRoll.RollId"), AttributeID: ua.AttributeIDValue,
		Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant("hacked")}}}})
	if err != nil || wr.Results[0] != ua.StatusBadNotWritable {
		t.Fatalf("write: %v %+v", err, wr)
	}
}

func TestTokenOnLoopback(t *testing.T) {
	t.Parallel()
	if raceEnabled {
		long.Skip(t, "a fourth OPC UA server under -race, about 25 s; it runs in every run without -race")
	}
	line := &fakeLine{t: t}
	o := DefaultOptions()
	rolls := &fakeRolls{}
	o.Endpoint, o.Line, o.Token, o.Rolls = "opc.tcp://127.0.0.1:0", line, testToken, rolls
	s := start(t, o)

	// Anonymous may read but not change.
	anon, err := dial(t, s.Endpoint(), "", "")
	if err != nil {
		t.Fatalf("anonymous session on loopback: %v", err)
	}
	ns := nsIndex(t, anon)
	if v := readValues(t, anon, ns, "CurrentRoll.RollId"); v["CurrentRoll.RollId"] != "R-1" {
		t.Fatalf("anonymous read: %v", v)
	}
	if _, err := call(anon, ns, "StartRoll", "R-9"); !errors.Is(err, ua.StatusBadUserAccessDenied) {
		t.Fatalf("anonymous StartRoll with a token set: %v, want BadUserAccessDenied", err)
	}

	// A wrong token is refused; the right one may change.
	if _, err := dial(t, s.Endpoint(), "plc", "wrong-token-wrong-token"); !errors.Is(err, ua.StatusBadUserAccessDenied) {
		t.Fatalf("wrong token: %v, want BadUserAccessDenied", err)
	}
	c, err := dial(t, s.Endpoint(), "plc", testToken)
	if err != nil {
		t.Fatalf("session with the token: %v", err)
	}
	line.mu.Lock()
	line.allowed = true
	line.mu.Unlock()
	if r, err := call(c, ns, "StartRoll", "R-9"); err != nil || r.StatusCode != ua.StatusOK {
		t.Fatalf("StartRoll with the token: %v %+v", err, r)
	}
	if got := line.Calls(); !slices.Equal(got, []string{"start R-9"}) {
		t.Fatalf("line calls %q", got)
	}
	// A context change is recorded as the signed-in user's.
	if r, err := call(c, ns, "SetRollContext", "p", "l", "s", "A", "someone", "o"); err != nil || r.StatusCode != ua.StatusOK {
		t.Fatalf("SetRollContext with the token: %v %+v", err, r)
	}
	if ri, _ := rolls.Roll("R-1"); len(ri.ContextHistory) != 1 || ri.ContextHistory[0].By != "plc" || ri.Context.Shift != "A" {
		t.Fatalf("context set by the user plc: %+v", ri)
	}
}

// nonLoopbackIP returns an address of one of this machine's interfaces
// that is not loopback, or "".
func nonLoopbackIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
			return ipn.IP.String()
		}
	}
	return ""
}

func TestNonLoopbackNeedsTheToken(t *testing.T) {
	t.Parallel()
	// The policy itself, whatever the machine's interfaces.
	o := DefaultOptions()
	o.Status, o.Endpoint = testStatus, "opc.tcp://192.0.2.7:4840"
	if err := o.Validate(); !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), "not a loopback address") {
		t.Fatalf("non-loopback without a token: %v", err)
	}
	o.Token = testToken
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if p.anonymousAllowed() {
		t.Fatal("anonymous sessions allowed on a non-loopback endpoint")
	}

	ip := nonLoopbackIP()
	if ip == "" {
		t.Skip("no non-loopback interface address to listen on")
	}
	line := &fakeLine{t: t}
	o = DefaultOptions()
	o.Endpoint, o.Line, o.Token = "opc.tcp://"+ip+":0", line, testToken
	s := start(t, o)
	t.Logf("listening on %s", s.Endpoint())
	if _, err := dial(t, s.Endpoint(), "", ""); !errors.Is(err, ua.StatusBadIdentityTokenRejected) {
		t.Fatalf("anonymous session on %s: %v, want BadIdentityTokenRejected", ip, err)
	}
	if _, err := dial(t, s.Endpoint(), "plc", "not-the-token-at-all"); !errors.Is(err, ua.StatusBadUserAccessDenied) {
		t.Fatalf("wrong token on %s: %v, want BadUserAccessDenied", ip, err)
	}
	if len(line.Calls()) != 0 {
		t.Fatal("refused sessions reached the line")
	}
	c, err := dial(t, s.Endpoint(), "plc", testToken)
	if err != nil {
		t.Fatalf("with the token on %s: %v", ip, err)
	}
	ns := nsIndex(t, c)
	if v := readValues(t, c, ns, "VisionStateMachine.CurrentState"); v["VisionStateMachine.CurrentState"] != "Operational" {
		t.Fatalf("read with the token: %v", v)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*Options)
		want string
	}{
		{func(o *Options) { o.Endpoint = "http://127.0.0.1:4840" }, "Endpoint"},
		{func(o *Options) { o.Endpoint = "opc.tcp://127.0.0.1" }, "Endpoint"},
		{func(o *Options) { o.Endpoint = "opc.tcp://127.0.0.1:99999" }, "port"},
		{func(o *Options) { o.Endpoint = "opc.tcp://:4840" }, "name the host"},
		{func(o *Options) { o.Endpoint = "opc.tcp://127.0.0.1:4840/x" }, "no user, path"},
		{func(o *Options) { o.Endpoint = "opc.tcp://0.0.0.0:4840" }, "not a loopback address"},
		{func(o *Options) { o.Status = nil }, "Status"},
		{func(o *Options) { o.Token = "short" }, "Token is 5 bytes"},
		{func(o *Options) { o.Token = "has a space in it!!" }, "Token byte 3"},
		{func(o *Options) { o.ProtectReads = true }, "ProtectReads needs a Token"},
		{func(o *Options) { o.Classes = []string{"hole", "hole"} }, "listed twice"},
		{func(o *Options) { o.Classes = []string{""} }, "Classes[0]"},
		{func(o *Options) { o.CallTimeout = 0 }, "CallTimeout"},
	} {
		o := DefaultOptions()
		o.Status = testStatus
		tc.mod(&o)
		err := o.Validate()
		if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want an error naming %q", err, tc.want)
		}
	}
	o := DefaultOptions()
	o.Status = testStatus
	if err := o.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}

func TestPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	o := DefaultOptions()
	o.Status, o.Endpoint = testStatus, fmt.Sprintf("opc.tcp://%s", l.Addr())
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Start on a taken port: %v", err)
	}
}

// TestSessionNotActivated speaks to the server below gopcua's client
// session handling: a session that was created but never activated, or
// whose activation was refused, can neither read, browse nor call.
func TestSessionNotActivated(t *testing.T) {
	t.Parallel()
	line := &fakeLine{t: t}
	o := DefaultOptions()
	o.Endpoint, o.Line, o.Token, o.ProtectReads = "opc.tcp://127.0.0.1:0", line, testToken, true
	s := start(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := opcua.NewClient(s.Endpoint(), opcua.AutoReconnect(false),
		opcua.SecurityPolicy(ua.SecurityPolicyURINone), opcua.SecurityMode(ua.MessageSecurityModeNone))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Dial(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	sc := c.SecureChannel()
	createSession := func() *ua.NodeID {
		var tok *ua.NodeID
		err := sc.SendRequest(ctx, &ua.CreateSessionRequest{
			ClientDescription: &ua.ApplicationDescription{ApplicationName: &ua.LocalizedText{}},
			EndpointURL:       s.Endpoint(), SessionName: "intruder", RequestedSessionTimeout: 60000, ClientNonce: make([]byte, 32),
		}, nil, func(v ua.Response) error {
			tok = v.(*ua.CreateSessionResponse).AuthenticationToken
			return nil
		})
		if err != nil {
			t.Fatalf("create session: %v", err)
		}
		return tok
	}
	requests := func() map[string]ua.Request {
		vs := ua.NewStringNodeID(1, "VisionSystem")
		return map[string]ua.Request{
			"read": &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: ua.NewStringNodeID(1, "VisionSystem.CurrentRoll.RollId"),
				AttributeID: ua.AttributeIDValue, DataEncoding: &ua.QualifiedName{}}}},
			"browse": &ua.BrowseRequest{View: &ua.ViewDescription{ViewID: ua.NewTwoByteNodeID(0)},
				NodesToBrowse: []*ua.BrowseDescription{{NodeID: vs, BrowseDirection: ua.BrowseDirectionForward,
					ReferenceTypeID: ua.NewNumericNodeID(0, 0), ResultMask: uint32(ua.BrowseResultMaskAll)}}},
			"call": &ua.CallRequest{MethodsToCall: []*ua.CallMethodRequest{{ObjectID: vs, MethodID: ua.NewStringNodeID(1, "VisionSystem.EndRoll")}}},
			"subscribe": &ua.CreateSubscriptionRequest{RequestedPublishingInterval: 1000, RequestedLifetimeCount: 60,
				RequestedMaxKeepAliveCount: 20, PublishingEnabled: true},
		}
	}
	check := func(what string, tok *ua.NodeID) {
		for name, req := range requests() {
			err := sc.SendRequest(ctx, req, tok, func(v ua.Response) error { return nil })
			if !errors.Is(err, ua.StatusBadSessionNotActivated) {
				t.Errorf("%s: %s answered %v, want BadSessionNotActivated", what, name, err)
			}
		}
	}
	check("never activated", createSession())

	tok := createSession()
	err = sc.SendRequest(ctx, &ua.ActivateSessionRequest{ClientSignature: &ua.SignatureData{}, UserTokenSignature: &ua.SignatureData{},
		UserIdentityToken: ua.NewExtensionObject(&ua.AnonymousIdentityToken{PolicyID: policyAnonymous})}, tok,
		func(v ua.Response) error { return nil })
	if !errors.Is(err, ua.StatusBadIdentityTokenRejected) {
		t.Fatalf("anonymous activation with ProtectReads: %v", err)
	}
	check("activation refused", tok)

	// A password sent in clear is refused even when right: it crossed
	// the network readable.
	tok = createSession()
	err = sc.SendRequest(ctx, &ua.ActivateSessionRequest{ClientSignature: &ua.SignatureData{}, UserTokenSignature: &ua.SignatureData{},
		UserIdentityToken: ua.NewExtensionObject(&ua.UserNameIdentityToken{PolicyID: policyUserName, UserName: "plc", Password: []byte(testToken)})}, tok,
		func(v ua.Response) error { return nil })
	if !errors.Is(err, ua.StatusBadIdentityTokenInvalid) {
		t.Fatalf("clear-text password: %v, want BadIdentityTokenInvalid", err)
	}
	check("clear-text password", tok)

	// With ProtectReads, gopcua's own client is refused anonymously on
	// loopback, and signs in with the token.
	if _, err := dial(t, s.Endpoint(), "", ""); !errors.Is(err, ua.StatusBadIdentityTokenRejected) {
		t.Fatalf("anonymous with ProtectReads: %v, want BadIdentityTokenRejected", err)
	}
	if _, err := dial(t, s.Endpoint(), "mes", testToken); err != nil {
		t.Fatalf("with the token: %v", err)
	}
	if len(line.Calls()) != 0 {
		t.Fatalf("line called: %q", line.Calls())
	}
}
