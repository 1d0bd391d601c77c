package gige

import (
	"net"

	"golang.org/x/sys/unix"
)

// setRecvBuffer asks for a receive buffer of n bytes: SO_RCVBUFFORCE first
// (it passes net.core.rmem_max when the process has CAP_NET_ADMIN), then
// SO_RCVBUF. It returns what the kernel granted (Linux reports twice the
// usable size, bookkeeping included; we report half, the usable part).
func setRecvBuffer(c *net.UDPConn, n int) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var got int
	var serr error
	err = rc.Control(func(fd uintptr) {
		if n > 0 {
			if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n); e != nil {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, n)
			}
		}
		v, e := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		if e != nil && serr == nil {
			serr = e
		}
		got = v / 2
	})
	if err == nil {
		err = serr
	}
	return got, err
}

// bindToDevice ties c to interface name, so that a limited broadcast
// (255.255.255.255) leaves through it. It needs CAP_NET_RAW; callers treat
// failure as "send directed broadcasts only".
func bindToDevice(c *net.UDPConn, name string) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.BindToDevice(int(fd), name) }); err != nil {
		return err
	}
	return serr
}
