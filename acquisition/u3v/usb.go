package u3v

import (
	"context"
	"errors"
	"fmt"
)

// USB class codes that identify a USB3 Vision device. A U3V device is a
// composite device with an interface association descriptor (IAD): the
// device descriptor says Miscellaneous/Common/IAD and the U3V interfaces
// carry the Miscellaneous class with the U3V subclass, one protocol each.
const (
	classMisc       = 0xEF // device and interface class
	subclassCommon  = 0x02 // device subclass: common class
	protocolIAD     = 0x01 // device protocol: interface association descriptor
	subclassU3V     = 0x05 // interface subclass: USB3 Vision
	protoControl    = 0x00 // interface protocol: device control (GenCP)
	protoEvent      = 0x01 // interface protocol: device events
	protoStreaming  = 0x02 // interface protocol: device streaming
	endpointDirIn   = 0x80 // endpoint address bit: device to host
	stdReqClear     = 0x01 // CLEAR_FEATURE
	featureHalt     = 0x00 // ENDPOINT_HALT feature selector
	reqTypeEndpoint = 0x02 // host to device, standard, recipient endpoint
)

// endpoint is one bulk endpoint of a U3V interface.
type endpoint struct {
	Addr          uint8 // bEndpointAddress, bit 7 set for IN
	MaxPacketSize int   // wMaxPacketSize (1024 on SuperSpeed bulk)
}

// deviceInfo is what enumeration knows of a U3V device before it is
// opened: where it sits and which endpoints its U3V interfaces use.
type deviceInfo struct {
	Bus, Address    int
	Vendor, Product uint16
	Serial          string // USB iSerialNumber string ("" when the device has none)
	Manufacturer    string
	Model           string

	Config      int      // configuration number holding the U3V interfaces
	ControlIntf int      // interface number of the control interface
	ControlIn   endpoint // GenCP acknowledges
	ControlOut  endpoint // GenCP commands
	StreamIntf  int      // interface number of the streaming interface, -1 when absent
	StreamIn    endpoint // leader, payload, trailer
	EventIntf   int      // interface number of the event interface, -1 when absent
	EventIn     endpoint
}

// usbDevice is one opened U3V device: every USB call the package makes goes
// through it. The gousb implementation is gousbDevice; tests put an
// emulated camera here. Implementations need not be safe for concurrent use
// of one endpoint; different endpoints may be used from different
// goroutines (control and stream).
type usbDevice interface {
	// bulkOut writes p to the OUT endpoint ep and returns the bytes sent.
	bulkOut(ctx context.Context, ep uint8, p []byte) (int, error)
	// bulkIn reads one transfer of at most len(p) bytes from the IN
	// endpoint ep. A stalled endpoint returns errStall until clearHalt.
	bulkIn(ctx context.Context, ep uint8, p []byte) (int, error)
	// clearHalt clears a halt (stall) on endpoint ep.
	clearHalt(ep uint8) error
	// close releases the interfaces and the device. Later calls fail.
	close() error
}

// usbBus enumerates and opens U3V devices.
type usbBus interface {
	// list returns the U3V devices on the bus. An empty list with a nil
	// error means there are none.
	list() ([]deviceInfo, error)
	// open opens the device enumerated as info and claims its interfaces.
	open(info deviceInfo) (usbDevice, error)
	// close releases the bus; devices must be closed first.
	close() error
}

// Errors of the USB seam (unexported: the exported errors wrap them).
var (
	errStall   = errors.New("endpoint stalled")
	errTimeout = errors.New("transfer timed out")
)

// epString names an endpoint in errors.
func epString(ep uint8) string {
	dir := "OUT"
	if ep&endpointDirIn != 0 {
		dir = "IN"
	}
	return fmt.Sprintf("0x%02x (%s)", ep, dir)
}
