//go:build !linux

package gige

import (
	"errors"
	"net"
)

// setRecvBuffer asks for a receive buffer of n bytes; other systems do not
// report what they granted, so it returns n.
func setRecvBuffer(c *net.UDPConn, n int) (int, error) {
	if n <= 0 {
		return 0, nil
	}
	return n, c.SetReadBuffer(n)
}

// bindToDevice is not available here.
func bindToDevice(*net.UDPConn, string) error { return errors.ErrUnsupported }
