package u3v

/*
#cgo pkg-config: libusb-1.0
#include <libusb.h>
*/
import "C"

import (
	"fmt"
	"reflect"
	"unsafe"

	"github.com/google/gousb"
)

// gousb v1.1.3 does not wrap libusb_clear_halt. A plain
// CLEAR_FEATURE(ENDPOINT_HALT) control request resets only the device's
// side of the pipe; libusb_clear_halt also makes the kernel reset the host
// controller's side (data toggle / sequence number), without which the
// next transfers on the endpoint can be lost. So the package calls
// libusb_clear_halt itself on the handle gousb keeps in Device.handle
// (go.mod pins gousb to v1.1.3; TestGousbHandleField guards the field).

// libusbHandle returns d's libusb_device_handle, or nil when the field is
// not where v1.1.3 has it.
func libusbHandle(d *gousb.Device) unsafe.Pointer {
	v := reflect.ValueOf(d).Elem().FieldByName("handle")
	if !v.IsValid() || v.Kind() != reflect.Pointer {
		return nil
	}
	return v.UnsafePointer()
}

// libusbClearHalt calls libusb_clear_halt on handle h.
func libusbClearHalt(h unsafe.Pointer, ep uint8) error {
	if rc := C.libusb_clear_halt((*C.libusb_device_handle)(h), C.uchar(ep)); rc != 0 {
		return fmt.Errorf("libusb_clear_halt(%s): %s", epString(ep), C.GoString(C.libusb_error_name(rc)))
	}
	return nil
}
