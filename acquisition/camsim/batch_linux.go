//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || loong64 || s390x || mips64 || mips64le)

package camsim

import (
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchWriter sends up to len(bufs) datagrams to one destination per
// system call with sendmmsg(2), through the runtime poller. Its headers,
// vectors and buffers are made once; queue copies a packet in.
type batchWriter struct {
	rc    syscall.RawConn
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	bufs  [][]byte
	sa    unix.RawSockaddrInet4
	n     int // queued packets
	from  int // first packet of the next call
	done  int // sent by the last call
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

// mmsghdr is struct mmsghdr on 64-bit Linux.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

func newBatchWriter(c *net.UDPConn, n, size int) *batchWriter {
	rc, _ := c.SyscallConn() // a *net.UDPConn always has one
	w := &batchWriter{rc: rc, hdrs: make([]mmsghdr, n), iovs: make([]unix.Iovec, n), bufs: make([][]byte, n)}
	w.sa.Family = unix.AF_INET
	for i := range w.bufs {
		w.bufs[i] = make([]byte, 0, size)
		w.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&w.sa))
		w.hdrs[i].hdr.Namelen = unix.SizeofSockaddrInet4
		w.hdrs[i].hdr.Iov = &w.iovs[i]
		w.hdrs[i].hdr.SetIovlen(1)
	}
	w.fn = w.send
	return w
}

// slot returns the buffer for the next packet (empty, with capacity).
func (w *batchWriter) slot() []byte { return w.bufs[w.n][:0] }

// queue takes p (built in slot()) as the next packet; full reports that
// the batch must be flushed.
func (w *batchWriter) queue(p []byte) (full bool) {
	w.bufs[w.n] = p
	w.iovs[w.n].Base = &p[0]
	w.iovs[w.n].SetLen(len(p))
	w.n++
	return w.n == len(w.bufs)
}

// flush sends the queued packets to dest and returns how many went out.
func (w *batchWriter) flush(dest netip.AddrPort) (int, error) {
	if w.n == 0 {
		return 0, nil
	}
	w.sa.Addr = dest.Addr().As4()
	port := (*[2]byte)(unsafe.Pointer(&w.sa.Port)) // network byte order
	port[0], port[1] = byte(dest.Port()>>8), byte(dest.Port())
	var err error
	for w.from = 0; w.from < w.n; w.from += w.done {
		w.done, w.errno = 0, 0
		if err = w.rc.Write(w.fn); err == nil && w.errno != 0 {
			err = w.errno
		}
		if err != nil || w.done == 0 {
			break
		}
	}
	sent := w.from
	w.n = 0
	return sent, err
}

func (w *batchWriter) send(fd uintptr) bool {
	r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&w.hdrs[w.from])), uintptr(w.n-w.from),
		unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false // wait for the poller
	}
	w.done, w.errno = int(r), e
	return true
}
