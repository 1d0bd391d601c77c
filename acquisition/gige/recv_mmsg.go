//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || loong64 || s390x || mips64 || mips64le)

package gige

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchReader receives up to len(bufs) datagrams per system call with
// recvmmsg(2), through the runtime poller (so read deadlines work). It
// allocates nothing per call: the headers, vectors and the callback are
// made once.
type batchReader struct {
	rc    syscall.RawConn
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	bufs  [][]byte
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

// mmsghdr is struct mmsghdr on 64-bit Linux.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

func newBatchReader(c *net.UDPConn, n, size int) (*batchReader, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	b := &batchReader{rc: rc, hdrs: make([]mmsghdr, n), iovs: make([]unix.Iovec, n), bufs: make([][]byte, n)}
	for i := range b.bufs {
		b.bufs[i] = make([]byte, size)
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(size)
		b.hdrs[i].hdr.Iov = &b.iovs[i]
		b.hdrs[i].hdr.SetIovlen(1)
	}
	b.fn = b.recv
	return b, nil
}

func (b *batchReader) recv(fd uintptr) bool {
	r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(len(b.hdrs)),
		unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false // wait for the poller
	}
	b.n, b.errno = int(r), e
	return true
}

// read waits for datagrams and returns how many arrived; datagram i is
// packet(i).
func (b *batchReader) read() (int, error) {
	if err := b.rc.Read(b.fn); err != nil {
		return 0, err
	}
	if b.errno != 0 {
		return 0, b.errno
	}
	return b.n, nil
}

func (b *batchReader) packet(i int) []byte { return b.bufs[i][:b.hdrs[i].len] }
