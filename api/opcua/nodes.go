package opcua

import (
	"maps"
	"slices"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/server/attrs"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"

	"github.com/webinspect/webinspect/engine/status"
	"github.com/webinspect/webinspect/rollmap"
)

// Limits of one request, so that one client cannot make the server build
// an unbounded answer.
const (
	maxNodesPerRequest = 1000
	// snapshotAge is how old the values may be when a Read arrives.
	snapshotAge = 100 * time.Millisecond
	// defectPage is the page size reading the roll map's newest defects.
	defectPage = 10000
)

// snapshot is what the variables show: taken at once, so that the values
// one Read returns agree with each other.
type snapshot struct {
	at      time.Time
	st      status.Status
	info    rollmap.RollInfo // ID "" when unknown
	last    rollmap.Defect   // ID 0 when the roll has none
	classes []string         // sorted
	counts  []int64          // of classes
}

// lastDefect follows the newest defect of the current roll through the
// roll map, reading only what is new.
type lastDefect struct {
	roll    string
	afterID int64
	d       rollmap.Defect
}

// OPC 40100 states of the vision state machine, by the engine's state.
var visionStates = map[string]string{
	"starting": "Preoperational",
	"running":  "Operational",
	"stopped":  "Halted",
	"failed":   "Error",
}

// visionState returns the OPC 40100 state for the engine's state.
func visionState(engineState string) string {
	if v, ok := visionStates[engineState]; ok {
		return v
	}
	return "Error"
}

// refresh takes a new snapshot unless the current one is younger than
// maxAge, and returns the current one.
func (s *Server) refresh(maxAge time.Duration) *snapshot {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	if !s.snap.at.IsZero() && time.Since(s.snap.at) < maxAge {
		sn := s.snap
		return &sn
	}
	st := s.opts.Status()
	sn := snapshot{at: time.Now(), st: st, classes: []string{}, counts: []int64{}}
	if s.opts.Rolls != nil && st.RollID != "" {
		if info, err := s.opts.Rolls.Roll(st.RollID); err == nil {
			sn.info = info
		} else {
			s.log.Debug().Err(err).Str("roll", st.RollID).Msg("roll record unavailable")
		}
		sn.last = s.newestDefect(st.RollID)
	}
	sn.classes = append(sn.classes, slices.Sorted(maps.Keys(st.DefectsByClass))...)
	for _, c := range sn.classes {
		sn.counts = append(sn.counts, st.DefectsByClass[c])
	}
	s.snap = sn
	return &sn
}

// newestDefect returns the defect with the highest ID on roll (ID 0 when
// none), reading the roll map after the last one seen.
func (s *Server) newestDefect(roll string) rollmap.Defect {
	if s.lastDef.roll != roll {
		s.lastDef = lastDefect{roll: roll}
	}
	for {
		ds, err := s.opts.Rolls.Defects(roll, rollmap.Query{AfterID: s.lastDef.afterID, Limit: defectPage})
		if err != nil {
			s.log.Debug().Err(err).Str("roll", roll).Msg("newest defect unavailable")
			break
		}
		for i := range ds {
			if ds[i].ID > s.lastDef.afterID {
				s.lastDef.afterID, s.lastDef.d = ds[i].ID, ds[i]
			}
		}
		if len(ds) < defectPage {
			break
		}
	}
	return s.lastDef.d
}

// current returns the snapshot the variables show now.
func (s *Server) current() *snapshot {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	sn := s.snap
	return &sn
}

// nodeID returns the string node ID of path in the server's namespace.
func (s *Server) nodeID(path string) *ua.NodeID { return ua.NewStringNodeID(s.ns.ID(), path) }

// object adds an object node path (named by its last element) under parent.
func (s *Server) object(parent *server.Node, path, name, desc string) *server.Node {
	n := server.NewNode(s.nodeID(path), map[ua.AttributeID]*ua.DataValue{
		ua.AttributeIDNodeClass:   server.DataValueFromValue(uint32(ua.NodeClassObject)),
		ua.AttributeIDBrowseName:  server.DataValueFromValue(attrs.BrowseName(name)),
		ua.AttributeIDDisplayName: server.DataValueFromValue(attrs.DisplayName(name, "")),
		ua.AttributeIDDescription: server.DataValueFromValue(&ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: desc}),
	}, []*ua.ReferenceDescription{{
		ReferenceTypeID: ua.NewNumericNodeID(0, id.HasTypeDefinition), IsForward: true,
		NodeID:      ua.NewNumericExpandedNodeID(0, id.BaseObjectType),
		BrowseName:  attrs.BrowseName("BaseObjectType"),
		DisplayName: attrs.DisplayName("BaseObjectType", ""), NodeClass: ua.NodeClassObjectType,
		TypeDefinition: ua.NewNumericExpandedNodeID(0, 0),
	}}, nil)
	s.ns.AddNode(n)
	parent.AddRef(n, id.HasComponent, true)
	return n
}

// variable adds a read-only variable path under parent whose value get
// takes from the current snapshot.
func (s *Server) variable(parent *server.Node, path, name string, dataType uint32, get func(*snapshot) any) *server.Node {
	ro := byte(ua.AccessLevelTypeCurrentRead)
	n := server.NewNode(s.nodeID(path), map[ua.AttributeID]*ua.DataValue{
		ua.AttributeIDNodeClass:       server.DataValueFromValue(uint32(ua.NodeClassVariable)),
		ua.AttributeIDBrowseName:      server.DataValueFromValue(attrs.BrowseName(name)),
		ua.AttributeIDDisplayName:     server.DataValueFromValue(attrs.DisplayName(name, "")),
		ua.AttributeIDDataType:        server.DataValueFromValue(ua.NewNumericExpandedNodeID(0, dataType)),
		ua.AttributeIDAccessLevel:     server.DataValueFromValue(ro),
		ua.AttributeIDUserAccessLevel: server.DataValueFromValue(ro),
	}, nil, func() *ua.DataValue {
		sn := s.current()
		return &ua.DataValue{
			EncodingMask:    ua.DataValueValue | ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp,
			Value:           ua.MustVariant(get(sn)),
			SourceTimestamp: sn.at,
			ServerTimestamp: time.Now(),
		}
	})
	s.ns.AddNode(n)
	parent.AddRef(n, id.HasComponent, true)
	return n
}

// build makes the address space (package doc, Model). It runs before the
// server starts: gopcua's nodes are not safe to change while served.
func (s *Server) build() {
	s.ns = server.NewNodeNameSpace(s.ua, Namespace)
	root, _ := s.ua.Namespace(0)
	vs := s.object(root.Objects(), "VisionSystem", "VisionSystem",
		"webinspect line-scan web inspection engine, modelled on OPC 40100 VisionSystemType")

	sm := s.object(vs, "VisionSystem.VisionStateMachine", "VisionStateMachine", "state of the inspection (OPC 40100 VisionStateMachineType states)")
	s.variable(sm, "VisionSystem.VisionStateMachine.CurrentState", "CurrentState", id.String, func(sn *snapshot) any { return visionState(sn.st.State) })
	s.variable(sm, "VisionSystem.VisionStateMachine.EngineState", "EngineState", id.String, func(sn *snapshot) any { return sn.st.State })
	s.variable(sm, "VisionSystem.VisionStateMachine.Error", "Error", id.String, func(sn *snapshot) any { return sn.st.Error })

	web := s.object(vs, "VisionSystem.Web", "Web", "the web as the encoder and the cameras see it")
	s.variable(web, "VisionSystem.Web.SpeedMPerMin", "SpeedMPerMin", id.Double, func(sn *snapshot) any { return sn.st.SpeedMPerMin })
	s.variable(web, "VisionSystem.Web.MdM", "MdM", id.Double, func(sn *snapshot) any { return sn.st.MDM })
	s.variable(web, "VisionSystem.Web.WebWidthMM", "WebWidthMM", id.Double, func(sn *snapshot) any { return sn.st.WebWidthMM })
	s.variable(web, "VisionSystem.Web.UninspectedM", "UninspectedM", id.Double, func(sn *snapshot) any { return sn.st.UninspectedM })
	s.variable(web, "VisionSystem.Web.LinesDropped", "LinesDropped", id.Int64, func(sn *snapshot) any { return sn.st.LinesDropped })

	roll := s.object(vs, "VisionSystem.CurrentRoll", "CurrentRoll", "the roll being inspected")
	s.variable(roll, "VisionSystem.CurrentRoll.RollId", "RollId", id.String, func(sn *snapshot) any { return sn.st.RollID })
	s.variable(roll, "VisionSystem.CurrentRoll.LengthM", "LengthM", id.Double, func(sn *snapshot) any { return sn.st.MDM })
	s.variable(roll, "VisionSystem.CurrentRoll.Started", "Started", id.DateTime, func(sn *snapshot) any { return sn.info.Started })
	s.variable(roll, "VisionSystem.CurrentRoll.Splices", "Splices", id.Int32, func(sn *snapshot) any { return int32(len(sn.info.Splices)) })
	pc := s.object(roll, "VisionSystem.CurrentRoll.ProductionContext", "ProductionContext",
		"product, lot, supplier, shift, operator and order of the roll, as roll.json has them; SetRollContext or the HTTP API sets them")
	for _, f := range []struct {
		name string
		get  func(c rollmap.RollContext) string
	}{
		{"Product", func(c rollmap.RollContext) string { return c.Product }},
		{"Lot", func(c rollmap.RollContext) string { return c.Lot }},
		{"Supplier", func(c rollmap.RollContext) string { return c.Supplier }},
		{"Shift", func(c rollmap.RollContext) string { return c.Shift }},
		{"Operator", func(c rollmap.RollContext) string { return c.Operator }},
		{"Order", func(c rollmap.RollContext) string { return c.Order }},
	} {
		s.variable(pc, "VisionSystem.CurrentRoll.ProductionContext."+f.name, f.name, id.String, func(sn *snapshot) any { return f.get(sn.info.Context) })
	}
	lastChange := func(sn *snapshot) rollmap.ContextChange {
		if h := sn.info.ContextHistory; len(h) > 0 {
			return h[len(h)-1]
		}
		return rollmap.ContextChange{}
	}
	s.variable(pc, "VisionSystem.CurrentRoll.ProductionContext.ChangedBy", "ChangedBy", id.String, func(sn *snapshot) any { return lastChange(sn).By })
	s.variable(pc, "VisionSystem.CurrentRoll.ProductionContext.Changed", "Changed", id.DateTime, func(sn *snapshot) any { return lastChange(sn).Time })

	rm := s.object(vs, "VisionSystem.ResultManagement", "ResultManagement", "defects of the current roll, from the roll map")
	s.variable(rm, "VisionSystem.ResultManagement.DefectCount", "DefectCount", id.Int64, func(sn *snapshot) any { return sn.st.Defects })
	s.variable(rm, "VisionSystem.ResultManagement.ClassNames", "ClassNames", id.String, func(sn *snapshot) any { return append([]string{}, sn.classes...) })
	s.variable(rm, "VisionSystem.ResultManagement.ClassCounts", "ClassCounts", id.Int64, func(sn *snapshot) any { return append([]int64{}, sn.counts...) })
	counts := s.object(rm, "VisionSystem.ResultManagement.Counts", "Counts", "defects of the current roll per class of the recipe")
	for _, c := range s.opts.Classes {
		s.variable(counts, "VisionSystem.ResultManagement.Counts."+c, c, id.Int64, func(sn *snapshot) any { return sn.st.DefectsByClass[c] })
	}
	last := s.object(rm, "VisionSystem.ResultManagement.LastResult", "LastResult", "the newest defect of the current roll")
	lp := "VisionSystem.ResultManagement.LastResult."
	s.variable(last, lp+"ResultId", "ResultId", id.Int64, func(sn *snapshot) any { return sn.last.ID })
	s.variable(last, lp+"RollId", "RollId", id.String, func(sn *snapshot) any { return sn.last.RollID })
	s.variable(last, lp+"Class", "Class", id.String, func(sn *snapshot) any { return sn.last.Class })
	s.variable(last, lp+"Decision", "Decision", id.String, func(sn *snapshot) any { return string(sn.last.Decision) })
	s.variable(last, lp+"MdM", "MdM", id.Double, func(sn *snapshot) any { return sn.last.MDStartM })
	s.variable(last, lp+"CdMM", "CdMM", id.Double, func(sn *snapshot) any { return sn.last.CDStartMM })
	s.variable(last, lp+"Time", "Time", id.DateTime, func(sn *snapshot) any { return sn.last.Time })

	s.buildMethods(vs)
}

// read answers a Read from one fresh snapshot.
func (s *Server) read(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req, ok := r.(*ua.ReadRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	if len(req.NodesToRead) > maxNodesPerRequest {
		return nil, ua.StatusBadTooManyOperations
	}
	s.refresh(snapshotAge)
	results := make([]*ua.DataValue, len(req.NodesToRead))
	for i, n := range req.NodesToRead {
		ns, err := s.ua.Namespace(int(n.NodeID.Namespace()))
		if err != nil {
			results[i] = &ua.DataValue{EncodingMask: ua.DataValueServerTimestamp | ua.DataValueStatusCode,
				ServerTimestamp: time.Now(), Status: ua.StatusBadNodeIDUnknown}
			continue
		}
		results[i] = ns.Attribute(n.NodeID, n.AttributeID)
	}
	return &ua.ReadResponse{ResponseHeader: responseHeader(req.RequestHeader, ua.StatusOK), Results: results}, nil
}

// browse answers a Browse as gopcua's does, behind the gate.
func (s *Server) browse(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req, ok := r.(*ua.BrowseRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	if len(req.NodesToBrowse) > maxNodesPerRequest {
		return nil, ua.StatusBadTooManyOperations
	}
	results := make([]*ua.BrowseResult, len(req.NodesToBrowse))
	for i, bd := range req.NodesToBrowse {
		ns, err := s.ua.Namespace(int(bd.NodeID.Namespace()))
		if err != nil {
			results[i] = &ua.BrowseResult{StatusCode: ua.StatusBadNodeIDUnknown}
			continue
		}
		results[i] = ns.Browse(bd)
	}
	return &ua.BrowseResponse{ResponseHeader: responseHeader(req.RequestHeader, ua.StatusOK), Results: results,
		DiagnosticInfos: []*ua.DiagnosticInfo{}}, nil
}

// write refuses every write: the variables are the engine's to change.
func (s *Server) write(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req, ok := r.(*ua.WriteRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	res := make([]ua.StatusCode, len(req.NodesToWrite))
	for i := range res {
		res[i] = ua.StatusBadNotWritable
	}
	return &ua.WriteResponse{ResponseHeader: responseHeader(req.RequestHeader, ua.StatusOK), Results: res,
		DiagnosticInfos: []*ua.DiagnosticInfo{}}, nil
}
