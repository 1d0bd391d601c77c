package u3v

import (
	"errors"
	"fmt"
)

// Errors returned by the package. Classify with errors.Is.
var (
	// ErrNoUSB is returned when libusb cannot be initialised or the machine
	// has no USB bus to enumerate.
	ErrNoUSB = errors.New("u3v: no USB bus")
	// ErrNoDevices is returned by List and Open when the bus has no USB3
	// Vision device.
	ErrNoDevices = errors.New("u3v: no USB3 Vision device attached")
	// ErrNotFound is returned by Open when no attached device has the
	// requested serial number.
	ErrNotFound = errors.New("u3v: no device with that serial number")
	// ErrStatus is returned (wrapped in a *StatusError) when the device
	// acknowledged a command with a non-success GenCP status.
	ErrStatus = errors.New("u3v: device refused the command")
	// ErrTimeout is returned when no valid acknowledge arrived after all
	// retries, or when a stream transfer timed out.
	ErrTimeout = errors.New("u3v: timeout")
	// ErrMalformed is returned (wrapped) when a packet from the device is
	// not what the standard allows: wrong magic, truncated, sizes that do
	// not fit the transfer or that no camera could need.
	ErrMalformed = errors.New("u3v: malformed packet")
	// ErrClosed is returned when a closed device or stream is used.
	ErrClosed = errors.New("u3v: closed")
	// ErrUnsupported is returned when the device needs something the package
	// does not do (a pixel format, a payload type, no streaming interface).
	ErrUnsupported = errors.New("u3v: unsupported")
)

// Status is a GenCP status code from an acknowledge or a U3V trailer.
type Status uint16

// GenCP and U3V status codes.
const (
	StatusSuccess          Status = 0x0000
	StatusNotImplemented   Status = 0x8001
	StatusInvalidParameter Status = 0x8002
	StatusInvalidAddress   Status = 0x8003
	StatusWriteProtect     Status = 0x8004
	StatusBadAlignment     Status = 0x8005
	StatusAccessDenied     Status = 0x8006
	StatusBusy             Status = 0x8007
	StatusMsgTimeout       Status = 0x800B
	StatusInvalidHeader    Status = 0x800E
	StatusWrongConfig      Status = 0x800F
	StatusGenericError     Status = 0x8FFF
	StatusResendNotSupp    Status = 0xA001
	StatusEndpointHalted   Status = 0xA002
	StatusPayloadNotAlign  Status = 0xA003
	StatusSIInconsistent   Status = 0xA004
	StatusDataDiscarded    Status = 0xA100
	StatusDataOverrun      Status = 0xA101
)

var statusNames = map[Status]string{
	StatusSuccess:          "success",
	StatusNotImplemented:   "not implemented",
	StatusInvalidParameter: "invalid parameter",
	StatusInvalidAddress:   "invalid address",
	StatusWriteProtect:     "write protected",
	StatusBadAlignment:     "bad alignment",
	StatusAccessDenied:     "access denied",
	StatusBusy:             "busy",
	StatusMsgTimeout:       "message timeout",
	StatusInvalidHeader:    "invalid header",
	StatusWrongConfig:      "wrong configuration",
	StatusGenericError:     "generic error",
	StatusResendNotSupp:    "resend not supported",
	StatusEndpointHalted:   "stream endpoint halted",
	StatusPayloadNotAlign:  "payload size not aligned",
	StatusSIInconsistent:   "stream interface registers inconsistent",
	StatusDataDiscarded:    "data discarded",
	StatusDataOverrun:      "data overrun",
}

func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return fmt.Sprintf("%s (0x%04x)", n, uint16(s))
	}
	return fmt.Sprintf("status 0x%04x", uint16(s))
}

// StatusError is a command the device refused.
type StatusError struct {
	Op     string // "read" or "write"
	Addr   uint64 // register address of the command
	Len    int    // bytes asked for
	Status Status
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("u3v: %s of %d bytes at 0x%x: device answered %v", e.Op, e.Len, e.Addr, e.Status)
}

// Is makes errors.Is(err, ErrStatus) true.
func (e *StatusError) Is(target error) bool { return target == ErrStatus }
