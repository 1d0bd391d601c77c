package genicam

import (
	"fmt"
	"sort"
	"sync"
	"testing"
)

// memPort is an in-memory register space that fails the test on misuse:
// an access outside the registered ranges, an unaligned address, an empty
// access, a write to a read-only range or a read of a write-only one.
type memPort struct {
	t       testing.TB
	mu      sync.Mutex
	ranges  []memRange
	reads   int
	writes  int
	onWrite func(addr uint64, p []byte) // optional device behaviour
	fail    error                       // returned by every access when set
}

type memRange struct {
	addr uint64
	data []byte
	ro   bool
	wo   bool
}

func newMemPort(t testing.TB) *memPort { return &memPort{t: t} }

// add registers [addr, addr+len(data)) holding a copy of data.
func (p *memPort) add(addr uint64, data []byte, mode string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.ranges {
		if addr < r.addr+uint64(len(r.data)) && r.addr < addr+uint64(len(data)) {
			p.t.Fatalf("memPort: range 0x%x+%d overlaps 0x%x+%d", addr, len(data), r.addr, len(r.data))
		}
	}
	p.ranges = append(p.ranges, memRange{addr: addr, data: append([]byte(nil), data...), ro: mode == "RO", wo: mode == "WO"})
	sort.Slice(p.ranges, func(i, j int) bool { return p.ranges[i].addr < p.ranges[j].addr })
}

func (p *memPort) find(op string, addr uint64, n int) (*memRange, error) {
	if n == 0 {
		return nil, fmt.Errorf("memPort: %s of 0 bytes at 0x%x", op, addr)
	}
	if addr%4 != 0 {
		return nil, fmt.Errorf("memPort: unaligned %s at 0x%x", op, addr)
	}
	for i := range p.ranges {
		r := &p.ranges[i]
		if addr >= r.addr && addr+uint64(n) <= r.addr+uint64(len(r.data)) {
			return r, nil
		}
	}
	return nil, fmt.Errorf("memPort: %s of %d bytes at 0x%x outside every register", op, n, addr)
}

func (p *memPort) ReadMem(addr uint64, b []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return p.fail
	}
	p.reads++
	r, err := p.find("read", addr, len(b))
	if err == nil && r.wo {
		err = fmt.Errorf("memPort: read of write-only 0x%x", addr)
	}
	if err != nil {
		p.t.Error(err)
		return err
	}
	copy(b, r.data[addr-r.addr:])
	return nil
}

func (p *memPort) WriteMem(addr uint64, b []byte) error {
	p.mu.Lock()
	if p.fail != nil {
		p.mu.Unlock()
		return p.fail
	}
	p.writes++
	r, err := p.find("write", addr, len(b))
	if err == nil && r.ro {
		err = fmt.Errorf("memPort: write to read-only 0x%x", addr)
	}
	if err != nil {
		p.mu.Unlock()
		p.t.Error(err)
		return err
	}
	copy(r.data[addr-r.addr:], b)
	hook := p.onWrite
	p.mu.Unlock()
	if hook != nil {
		hook(addr, b)
	}
	return nil
}

// peek returns a copy of n bytes at addr without counting a read.
func (p *memPort) peek(addr uint64, n int) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, err := p.find("peek", addr, n)
	if err != nil {
		p.t.Fatal(err)
	}
	return append([]byte(nil), r.data[addr-r.addr:addr-r.addr+uint64(n)]...)
}

// poke sets bytes at addr as the device would, without counting a write.
func (p *memPort) poke(addr uint64, b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, err := p.find("poke", addr, len(b))
	if err != nil {
		p.t.Fatal(err)
	}
	copy(r.data[addr-r.addr:], b)
}
