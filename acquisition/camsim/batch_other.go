//go:build !(linux && (amd64 || arm64 || riscv64 || ppc64le || loong64 || s390x || mips64 || mips64le))

package camsim

import (
	"net"
	"net/netip"
)

// batchWriter sends its packets one by one where sendmmsg is not wired up.
type batchWriter struct {
	c    *net.UDPConn
	bufs [][]byte
	n    int
}

func newBatchWriter(c *net.UDPConn, n, size int) *batchWriter {
	w := &batchWriter{c: c, bufs: make([][]byte, n)}
	for i := range w.bufs {
		w.bufs[i] = make([]byte, 0, size)
	}
	return w
}

func (w *batchWriter) slot() []byte { return w.bufs[w.n][:0] }

func (w *batchWriter) queue(p []byte) bool {
	w.bufs[w.n] = p
	w.n++
	return w.n == len(w.bufs)
}

func (w *batchWriter) flush(dest netip.AddrPort) (int, error) {
	sent := 0
	var err error
	for _, p := range w.bufs[:w.n] {
		if _, err = w.c.WriteToUDPAddrPort(p, dest); err != nil {
			break
		}
		sent++
	}
	w.n = 0
	return sent, err
}
