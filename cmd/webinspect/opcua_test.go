package main

import (
	"context"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"github.com/webinspect/webinspect/internal/long"
	"github.com/webinspect/webinspect/internal/poll"
	"github.com/webinspect/webinspect/rollmap"
)

// TestRunServesOPCUA: `run --opcua URL` serves the engine over OPC UA: a
// gopcua client reads the roll the engine writes and records a splice on
// it, which is in the roll map after the engine stops.
func TestRunServesOPCUA(t *testing.T) {
	if raceEnabled {
		long.Skip(t, "run --opcua under -race: the OPC UA server alone takes about 9 s to build; api/opcua's tests cover it")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ep := fmt.Sprintf("opc.tcp://%s", l.Addr())
	l.Close()
	rolls := t.TempDir()
	child := startChild(t, "run --rolls "+rolls+" --listen 127.0.0.1:0 --opcua "+ep+" --length 300m --speed 100m/min --width 400mm --defects 50 --seed 4")
	defer func() { child.Process.Kill(); child.Wait() }()
	id, _ := waitLength(t, rolls, 0.5)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var c *opcua.Client
	poll.Until(t, time.Minute, "the OPC UA endpoint to accept a session", func() bool {
		cl, err := opcua.NewClient(ep, opcua.AutoReconnect(false), opcua.SecurityPolicy(ua.SecurityPolicyURINone),
			opcua.SecurityMode(ua.MessageSecurityModeNone), opcua.AuthAnonymous())
		if err == nil && cl.Connect(ctx) == nil {
			c = cl
			return true
		}
		return false
	})
	defer c.Close(context.Background())
	ns, err := c.FindNamespace(ctx, "urn:webinspect:opcua")
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Node(ua.NewStringNodeID(ns, "VisionSystem.CurrentRoll.RollId")).Value(ctx)
	if err != nil || v.Value() != id {
		t.Fatalf("RollId over OPC UA: %v %v, want %s", v, err, id)
	}
	res, err := c.Call(ctx, &ua.CallMethodRequest{ObjectID: ua.NewStringNodeID(ns, "VisionSystem"),
		MethodID: ua.NewStringNodeID(ns, "VisionSystem.RecordSplice"), InputArguments: []*ua.Variant{ua.MustVariant("from the PLC")}})
	if err != nil || res.StatusCode != ua.StatusOK {
		t.Fatalf("RecordSplice: %v %+v", err, res)
	}
	if err := child.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := child.Wait(); err != nil {
		t.Fatalf("engine: %v", err)
	}
	st, err := rollmap.OpenStore(rolls)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	info, err := st.Roll(id)
	if err != nil || len(info.Splices) != 1 || info.Splices[0].Note != "from the PLC" {
		t.Fatalf("splices of %s: %+v %v", id, info.Splices, err)
	}
}
