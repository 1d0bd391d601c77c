package opcua

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/server/attrs"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"

	"github.com/webinspect/webinspect/api"
	"github.com/webinspect/webinspect/rollmap"
)

// maxSpliceNote bounds a splice note, in bytes (as the HTTP API's).
const maxSpliceNote = 256

// argument is one input or output argument of a method.
type argument struct {
	name, desc string
	dataType   uint32
}

// method is one method of the VisionSystem. run carries it out for the
// session's user (the user name, or "" for an anonymous session).
type method struct {
	name    string
	in, out []argument
	run     func(s *Server, user string, in []*ua.Variant) ([]*ua.Variant, error)
}

// errArg is a bad input argument: the method answers BadInvalidArgument,
// in InputArgumentResults at arg.
type errArg struct {
	msg string
	arg int
}

func (e errArg) Error() string { return e.msg }

// errNotExecutable: no line (or context store) is attached.
var errNotExecutable = errors.New("not attached to a line")

// ContextStore keeps a roll's production context; *rollmap.Store
// implements it. SetRollContext needs Options.Rolls to be one.
type ContextStore interface {
	SetContext(id string, c rollmap.RollContext, by string, t time.Time) error
}

var _ ContextStore = (*rollmap.Store)(nil)

// contextArgs are SetRollContext's inputs, in order.
var contextArgs = []argument{
	{"Product", "what is made", id.String}, {"Lot", "lot or batch of the material", id.String},
	{"Supplier", "", id.String}, {"Shift", "", id.String}, {"Operator", "", id.String},
	{"Order", "production or customer order", id.String},
}

var methods = []method{
	{
		name: "StartRoll",
		in:   []argument{{"RollId", "ID of the new roll; empty for a generated one", id.String}},
		out:  []argument{{"RollId", "ID of the roll started", id.String}},
		run: func(s *Server, _ string, in []*ua.Variant) ([]*ua.Variant, error) {
			rid, _ := in[0].Value().(string)
			if rid != "" {
				if err := rollmap.ValidRollID(rid); err != nil {
					return nil, errArg{err.Error(), 0}
				}
			}
			if s.opts.Line == nil {
				return nil, errNotExecutable
			}
			got, err := s.opts.Line.StartRoll(rid)
			if err != nil {
				return nil, err
			}
			return []*ua.Variant{ua.MustVariant(got)}, nil
		},
	},
	{
		name: "EndRoll",
		out:  []argument{{"RollId", "ID of the roll ended", id.String}, {"LengthM", "its length, m", id.Double}},
		run: func(s *Server, _ string, in []*ua.Variant) ([]*ua.Variant, error) {
			if s.opts.Line == nil {
				return nil, errNotExecutable
			}
			rid, length, err := s.opts.Line.EndRoll()
			if err != nil {
				return nil, err
			}
			return []*ua.Variant{ua.MustVariant(rid), ua.MustVariant(length)}, nil
		},
	},
	{
		name: "RecordSplice",
		in:   []argument{{"Note", "what was spliced (at most 256 bytes)", id.String}},
		out: []argument{{"RollId", "the roll spliced", id.String},
			{"MdM", "where the splice is on the roll, m: the web position the cameras see now", id.Double}},
		run: func(s *Server, _ string, in []*ua.Variant) ([]*ua.Variant, error) {
			note, _ := in[0].Value().(string)
			if len(note) > maxSpliceNote {
				return nil, errArg{"Note: at most 256 bytes", 0}
			}
			if s.opts.Line == nil {
				return nil, errNotExecutable
			}
			rid, md, err := s.opts.Line.Splice(note)
			if err != nil {
				return nil, err
			}
			return []*ua.Variant{ua.MustVariant(rid), ua.MustVariant(md)}, nil
		},
	},
	{
		name: "SetRollContext",
		in:   contextArgs,
		out:  []argument{{"RollId", "the roll whose context was set", id.String}},
		run: func(s *Server, user string, in []*ua.Variant) ([]*ua.Variant, error) {
			var c rollmap.RollContext
			fields := []*string{&c.Product, &c.Lot, &c.Supplier, &c.Shift, &c.Operator, &c.Order}
			for i, dst := range fields {
				*dst, _ = in[i].Value().(string)
			}
			if err := c.Check(); err != nil {
				// Which argument: check each field alone.
				for i, f := range fields {
					var one rollmap.RollContext
					*[]*string{&one.Product, &one.Lot, &one.Supplier, &one.Shift, &one.Operator, &one.Order}[i] = *f
					if one.Check() != nil {
						return nil, errArg{err.Error(), i}
					}
				}
				return nil, errArg{err.Error(), 0}
			}
			cs, ok := s.opts.Rolls.(ContextStore)
			if !ok {
				return nil, errNotExecutable
			}
			rid := s.opts.Status().RollID
			if rid == "" {
				return nil, fmt.Errorf("%w: the engine has no roll", api.ErrNoRoll)
			}
			by := user
			switch {
			case by != "":
			case c.Operator != "":
				by = c.Operator
			default:
				by = "opcua"
			}
			if err := cs.SetContext(rid, c, by, time.Now()); err != nil {
				return nil, err
			}
			return []*ua.Variant{ua.MustVariant(rid)}, nil
		},
	},
}

// buildMethods adds the methods under the VisionSystem object vs, with
// their InputArguments and OutputArguments properties.
func (s *Server) buildMethods(vs *server.Node) {
	s.methods = map[string]method{}
	for _, m := range methods {
		path := "VisionSystem." + m.name
		n := server.NewNode(s.nodeID(path), map[ua.AttributeID]*ua.DataValue{
			ua.AttributeIDNodeClass:      server.DataValueFromValue(uint32(ua.NodeClassMethod)),
			ua.AttributeIDBrowseName:     server.DataValueFromValue(attrs.BrowseName(m.name)),
			ua.AttributeIDDisplayName:    server.DataValueFromValue(attrs.DisplayName(m.name, "")),
			ua.AttributeIDExecutable:     server.DataValueFromValue(true),
			ua.AttributeIDUserExecutable: server.DataValueFromValue(true),
		}, nil, nil)
		s.ns.AddNode(n)
		vs.AddRef(n, id.HasComponent, true)
		for _, p := range []struct {
			name string
			args []argument
		}{{"InputArguments", m.in}, {"OutputArguments", m.out}} {
			if len(p.args) == 0 {
				continue
			}
			var eos []*ua.ExtensionObject
			for _, a := range p.args {
				eos = append(eos, ua.NewExtensionObject(&ua.Argument{Name: a.name, DataType: ua.NewNumericNodeID(0, a.dataType),
					ValueRank: -1, ArrayDimensions: []uint32{},
					Description: &ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: a.desc}}))
			}
			prop := server.NewNode(s.nodeID(path+"."+p.name), map[ua.AttributeID]*ua.DataValue{
				ua.AttributeIDNodeClass:   server.DataValueFromValue(uint32(ua.NodeClassVariable)),
				ua.AttributeIDBrowseName:  server.DataValueFromValue(attrs.BrowseName(p.name)),
				ua.AttributeIDDisplayName: server.DataValueFromValue(attrs.DisplayName(p.name, "")),
				ua.AttributeIDDataType:    server.DataValueFromValue(ua.NewNumericExpandedNodeID(0, id.Argument)),
				ua.AttributeIDAccessLevel: server.DataValueFromValue(byte(ua.AccessLevelTypeCurrentRead)),
			}, nil, func() *ua.DataValue { return server.DataValueFromValue(eos) })
			s.ns.AddNode(prop)
			n.AddRef(prop, id.HasProperty, true)
		}
		s.methods[n.ID().String()] = m
	}
}

// call answers a Call: each method runs the Line and answers with its
// outputs or a status code (BadMethodInvalid for an unknown method,
// BadArgumentsMissing / BadTooManyArguments / BadInvalidArgument /
// BadTypeMismatch for bad inputs, BadInvalidState when no roll is being
// inspected or the roll exists, BadNotExecutable without a Line or a
// running engine, BadTimeout when the engine did not answer in time).
func (s *Server) call(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req, ok := r.(*ua.CallRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	if len(req.MethodsToCall) > 16 {
		return nil, ua.StatusBadTooManyOperations
	}
	a, _ := s.auth(req.RequestHeader) // the gate let it through
	user := a.user
	if user == "" {
		user = "anonymous"
	}
	res := make([]*ua.CallMethodResult, len(req.MethodsToCall))
	for i, mr := range req.MethodsToCall {
		res[i] = s.callOne(mr, a.user, user, remoteAddr(sc))
	}
	return &ua.CallResponse{ResponseHeader: responseHeader(req.RequestHeader, ua.StatusOK), Results: res,
		DiagnosticInfos: []*ua.DiagnosticInfo{}}, nil
}

func (s *Server) callOne(mr *ua.CallMethodRequest, rawUser, user, remote string) *ua.CallMethodResult {
	fail := func(code ua.StatusCode) *ua.CallMethodResult {
		return &ua.CallMethodResult{StatusCode: code, InputArgumentResults: []ua.StatusCode{},
			InputArgumentDiagnosticInfos: []*ua.DiagnosticInfo{}, OutputArguments: []*ua.Variant{}}
	}
	if mr == nil || mr.MethodID == nil || mr.ObjectID == nil {
		return fail(ua.StatusBadMethodInvalid)
	}
	m, ok := s.methods[mr.MethodID.String()]
	if !ok {
		return fail(ua.StatusBadMethodInvalid)
	}
	if !mr.ObjectID.Equal(s.nodeID("VisionSystem")) {
		return fail(ua.StatusBadNodeIDInvalid)
	}
	switch {
	case len(mr.InputArguments) < len(m.in):
		return fail(ua.StatusBadArgumentsMissing)
	case len(mr.InputArguments) > len(m.in):
		return fail(ua.StatusBadTooManyArguments)
	}
	argRes := make([]ua.StatusCode, len(m.in))
	for j, a := range m.in {
		v := mr.InputArguments[j]
		if v == nil || v.Type() != ua.TypeIDString || a.dataType != id.String {
			argRes[j] = ua.StatusBadTypeMismatch
			r := fail(ua.StatusBadInvalidArgument)
			r.InputArgumentResults = argRes
			return r
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.CallTimeout)
	defer cancel()
	type answer struct {
		out []*ua.Variant
		err error
	}
	done := make(chan answer, 1)
	go func() {
		out, err := m.run(s, rawUser, mr.InputArguments)
		done <- answer{out, err}
	}()
	var ans answer
	select {
	case ans = <-done:
	case <-ctx.Done():
		s.log.Error().Str("method", m.name).Str("user", user).Dur("timeout", s.opts.CallTimeout).Msg("OPC UA method: the engine did not answer in time")
		return fail(ua.StatusBadTimeout)
	}
	ev := s.log.Info().Str("method", m.name).Str("user", user).Str("remote", remote)
	if ans.err != nil {
		code := ua.StatusBadInternalError
		var ea errArg
		switch {
		case errors.As(ans.err, &ea), errors.Is(ans.err, rollmap.ErrBadRollID), errors.Is(ans.err, rollmap.ErrInvalid):
			code = ua.StatusBadInvalidArgument
		case errors.Is(ans.err, errNotExecutable):
			code = ua.StatusBadNotExecutable
		case errors.Is(ans.err, api.ErrNoRoll), errors.Is(ans.err, rollmap.ErrRollExists):
			code = ua.StatusBadInvalidState
		}
		ev = s.log.Warn().Str("method", m.name).Str("user", user).Str("remote", remote)
		ev.Err(ans.err).Str("status", code.Error()).Msg("OPC UA method refused")
		r := fail(code)
		if errors.As(ans.err, &ea) && ea.arg < len(m.in) {
			r.InputArgumentResults = make([]ua.StatusCode, len(m.in))
			r.InputArgumentResults[ea.arg] = ua.StatusBadInvalidArgument
		}
		return r
	}
	ev.Msg("OPC UA method")
	// The change is in the roll map: the next Read shows it.
	s.snapMu.Lock()
	s.snap.at = time.Time{}
	s.snapMu.Unlock()
	return &ua.CallMethodResult{StatusCode: ua.StatusOK, InputArgumentResults: argRes,
		InputArgumentDiagnosticInfos: []*ua.DiagnosticInfo{}, OutputArguments: ans.out}
}
