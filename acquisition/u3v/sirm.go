package u3v

import (
	"encoding/binary"
	"fmt"
)

// SIRM (streaming interface register map) offsets from the SIRM address.
const (
	sirmInfo          = 0x00 // u32, bits 31..24: log2 of the payload alignment
	sirmControl       = 0x04 // u32, bit 0: stream enable
	sirmReqPayload    = 0x08 // u64, required payload size (read-only)
	sirmReqLeader     = 0x10 // u32, required leader size (read-only)
	sirmReqTrailer    = 0x14 // u32, required trailer size (read-only)
	sirmMaxLeader     = 0x18 // u32, host's leader transfer size
	sirmPayloadSize   = 0x1C // u32, host's payload transfer size
	sirmPayloadCount  = 0x20 // u32, number of payload transfers
	sirmTransfer1     = 0x24 // u32, first final transfer size
	sirmTransfer2     = 0x28 // u32, second final transfer size
	sirmMaxTrailer    = 0x2C // u32, host's trailer transfer size
	sirmLen           = 0x30
	sirmEnable        = 1
	maxPayloadSize    = 256 << 20 // 256 MiB: 16k px × 16 bit × 8k lines; no line-scan frame needs more
	defaultMaxXfer    = 1 << 20   // 1 MiB payload transfers
	maxAlignmentShift = 20
)

// plan is how the host splits one block into bulk transfers, as written to
// the SIRM. Every size is a multiple of Align (the device's payload size
// alignment, at least the endpoint's max packet size).
type plan struct {
	Align         int
	ReqPayload    int // bytes of payload per block the device will send (at most)
	LeaderSize    int // host leader transfer
	TrailerSize   int // host trailer transfer
	TransferSize  int // each of TransferCount payload transfers
	TransferCount int
	Final1        int // then one transfer of Final1 bytes (0: none)
	Final2        int // then one of Final2 bytes (0: none)
}

// PayloadCap is the host buffer one block's payload needs.
func (p plan) PayloadCap() int {
	return p.TransferSize*p.TransferCount + p.Final1 + p.Final2
}

func alignUp(v, a int) int   { return (v + a - 1) / a * a }
func alignDown(v, a int) int { return v / a * a }

// makePlan computes the SIRM transfer sizes. align is the device's payload
// alignment (already raised to the max packet size), maxXfer the largest
// payload transfer the host wants.
func makePlan(reqPayload uint64, reqLeader, reqTrailer uint32, align, maxXfer int) (plan, error) {
	if align <= 0 || align&(align-1) != 0 {
		return plan{}, fmt.Errorf("%w: payload alignment %d is not a power of two", ErrMalformed, align)
	}
	if reqPayload == 0 || reqPayload > maxPayloadSize {
		return plan{}, fmt.Errorf("%w: required payload size %d outside [1, %d]", ErrMalformed, reqPayload, maxPayloadSize)
	}
	if reqLeader > maxLeaderTrailer || reqTrailer > maxLeaderTrailer {
		return plan{}, fmt.Errorf("%w: required leader/trailer size %d/%d over %d", ErrMalformed, reqLeader, reqTrailer, maxLeaderTrailer)
	}
	maxXfer = alignDown(maxXfer, align)
	if maxXfer == 0 {
		maxXfer = align
	}
	p := plan{Align: align, ReqPayload: int(reqPayload)}
	p.LeaderSize = alignUp(max(int(reqLeader), imageLeaderLen), align)
	p.TrailerSize = alignUp(max(int(reqTrailer), chunkTrailerLen), align)
	p.TransferSize = min(alignDown(p.ReqPayload, align), maxXfer)
	if p.TransferSize > 0 {
		p.TransferCount = p.ReqPayload / p.TransferSize
	}
	rem := p.ReqPayload - p.TransferSize*p.TransferCount
	p.Final1 = alignDown(rem, align)
	p.Final2 = alignUp(rem-p.Final1, align)
	if p.TransferCount == 0 {
		p.TransferSize = 0
	}
	return p, nil
}

// sirmRegs is the SIRM as read from the device.
type sirmRegs struct {
	AlignShift uint
	ReqPayload uint64
	ReqLeader  uint32
	ReqTrailer uint32
}

// readSIRM reads the device's stream requirements.
func readSIRM(c *control, addr uint64) (sirmRegs, error) {
	var b [sirmReqTrailer + 4]byte
	if err := c.ReadMem(addr, b[:]); err != nil {
		return sirmRegs{}, fmt.Errorf("u3v: reading SIRM: %w", err)
	}
	le := binary.LittleEndian
	r := sirmRegs{
		AlignShift: uint(le.Uint32(b[sirmInfo:]) >> 24),
		ReqPayload: le.Uint64(b[sirmReqPayload:]),
		ReqLeader:  le.Uint32(b[sirmReqLeader:]),
		ReqTrailer: le.Uint32(b[sirmReqTrailer:]),
	}
	if r.AlignShift > maxAlignmentShift {
		return r, fmt.Errorf("%w: SIRM payload alignment 2^%d bytes", ErrMalformed, r.AlignShift)
	}
	return r, nil
}

// writePlan writes the host's transfer sizes into the SIRM. The stream
// must be disabled.
func writePlan(c *control, addr uint64, p plan) error {
	regs := []struct {
		off uint64
		v   int
	}{
		{sirmMaxLeader, p.LeaderSize},
		{sirmMaxTrailer, p.TrailerSize},
		{sirmPayloadSize, p.TransferSize},
		{sirmPayloadCount, p.TransferCount},
		{sirmTransfer1, p.Final1},
		{sirmTransfer2, p.Final2},
	}
	for _, r := range regs {
		if err := writeU32(c, addr+r.off, uint32(r.v)); err != nil {
			return fmt.Errorf("u3v: SIRM set-up: %w", err)
		}
	}
	return nil
}

// setStreamEnable turns the stream interface on or off.
func setStreamEnable(c *control, addr uint64, on bool) error {
	v := uint32(0)
	if on {
		v = sirmEnable
	}
	return writeU32(c, addr+sirmControl, v)
}

func writeU32(c *control, addr uint64, v uint32) error {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	return c.WriteMem(addr, b[:])
}

func readU32(c *control, addr uint64) (uint32, error) {
	var b [4]byte
	err := c.ReadMem(addr, b[:])
	return binary.LittleEndian.Uint32(b[:]), err
}
