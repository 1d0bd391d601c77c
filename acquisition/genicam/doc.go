// Package genicam reads a camera's GenICam device description and gives
// access to its features by SFNC name, over any transport that reaches the
// device's registers (GigE Vision, USB3 Vision, chunk data).
package genicam
