//go:build !(linux && (amd64 || arm64 || riscv64 || ppc64le || loong64 || s390x || mips64 || mips64le))

package gige

import "net"

// batchReader reads one datagram per call where recvmmsg is not wired up.
type batchReader struct {
	c   *net.UDPConn
	buf []byte
	n   int
}

func newBatchReader(c *net.UDPConn, _, size int) (*batchReader, error) {
	return &batchReader{c: c, buf: make([]byte, size)}, nil
}

func (b *batchReader) read() (int, error) {
	n, err := b.c.Read(b.buf)
	if err != nil {
		return 0, err
	}
	b.n = n
	return 1, nil
}

func (b *batchReader) packet(int) []byte { return b.buf[:b.n] }
