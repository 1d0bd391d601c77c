package marking

import (
	"context"
	"fmt"
	"log"
	"math"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/simonvetter/modbus"
)

// ModbusRegisters is the number of holding registers in a mark block.
const ModbusRegisters = 14

// Register offsets of the mark block, from OutputOptions.RegisterBase. 64-
// and 32-bit values are big-endian, high word first. See PROTOCOL.md.
const (
	RegSeq         = 0  // mark sequence number, 1..65535 then wraps to 1
	RegHead        = 1  // head index (Options.Heads)
	RegTargetCount = 2  // 4 registers: int64 fire target count
	RegMarkerCount = 6  // 4 registers: int64 count at which the defect start is under the head
	RegDefectID    = 10 // 2 registers: uint32, low 32 bits of the mark's defect ID
	RegCDMM        = 12 // CD centre, mm, 0..65535
	RegLengthMM    = 13 // mark length, mm, 0..65535
)

// ModbusOutput sends marks to a PLC or marker controller over Modbus TCP:
// one "write multiple registers" of the mark block, then "write single
// coil" ON on the trigger coil. The device fires when its encoder reaches
// the target count, so the output is count-triggered. A successful coil
// write is the acknowledgement. After an error the connection is dropped
// and the next Send reconnects.
type ModbusOutput struct {
	addr    string
	unit    uint8
	base    uint16
	coil    uint16
	timeout time.Duration
	logger  *log.Logger

	mu     sync.Mutex
	client *modbus.ModbusClient
	closed bool
	seq    uint16
	regs   [ModbusRegisters]uint16
}

// NewModbusOutput makes a Modbus TCP output for o (Kind "modbus"). It does
// not connect until the first Send.
func NewModbusOutput(o OutputOptions, lg zerolog.Logger) *ModbusOutput {
	l := lg.With().Str("component", "marking-modbus").Logger()
	return &ModbusOutput{
		addr:    o.Address,
		unit:    uint8(o.UnitID),
		base:    uint16(o.RegisterBase),
		coil:    uint16(o.Coil),
		timeout: time.Duration(o.TimeoutMS) * time.Millisecond,
		logger:  log.New(l, "", 0),
	}
}

// CountTriggered reports true: the device fires at the target count.
func (o *ModbusOutput) CountTriggered() bool { return true }

// Send writes one mark block and the trigger coil.
func (o *ModbusOutput) Send(ctx context.Context, m Mark) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("modbus %s: %w", o.addr, err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return ErrClosed
	}
	if o.client == nil {
		timeout := o.timeout
		if dl, ok := ctx.Deadline(); ok {
			timeout = max(time.Millisecond, min(timeout, time.Until(dl)))
		}
		c, err := modbus.NewClient(&modbus.ClientConfiguration{URL: "tcp://" + o.addr, Timeout: timeout, Logger: o.logger})
		if err != nil {
			return fmt.Errorf("modbus %s: %w", o.addr, err)
		}
		if err := c.Open(); err != nil {
			return fmt.Errorf("%w: modbus %s: connect: %w", ErrDisconnected, o.addr, err)
		}
		if err := c.SetUnitId(o.unit); err != nil {
			c.Close()
			return fmt.Errorf("modbus %s: unit id %d: %w", o.addr, o.unit, err)
		}
		o.client = c
	}
	o.seq++
	if o.seq == 0 {
		o.seq = 1
	}
	EncodeModbusMark(o.regs[:], o.seq, m)
	if err := o.client.WriteRegisters(o.base, o.regs[:]); err != nil {
		o.drop()
		return fmt.Errorf("%w: modbus %s: write registers %d..%d: %w", ErrDisconnected, o.addr, o.base, int(o.base)+ModbusRegisters-1, err)
	}
	if err := o.client.WriteCoil(o.coil, true); err != nil {
		o.drop()
		return fmt.Errorf("%w: modbus %s: write coil %d: %w", ErrDisconnected, o.addr, o.coil, err)
	}
	return nil
}

func (o *ModbusOutput) drop() {
	if o.client != nil {
		o.client.Close()
		o.client = nil
	}
}

// Close drops the connection; later Sends return ErrClosed.
func (o *ModbusOutput) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	o.drop()
	return nil
}

// EncodeModbusMark fills regs (at least ModbusRegisters long) with the mark
// block of m under sequence number seq.
func EncodeModbusMark(regs []uint16, seq uint16, m Mark) {
	regs[RegSeq] = seq
	regs[RegHead] = uint16(m.Head)
	put64(regs[RegTargetCount:], uint64(m.TargetCount))
	put64(regs[RegMarkerCount:], uint64(m.MarkerCount))
	var id int64
	if len(m.DefectIDs) > 0 {
		id = m.DefectIDs[0]
	}
	regs[RegDefectID] = uint16(uint32(id) >> 16)
	regs[RegDefectID+1] = uint16(uint32(id))
	regs[RegCDMM] = clampU16(m.CDMM)
	regs[RegLengthMM] = clampU16(m.LengthMM)
}

// DecodeModbusCount reads an int64 stored high word first at regs[0:4].
func DecodeModbusCount(regs []uint16) int64 {
	return int64(uint64(regs[0])<<48 | uint64(regs[1])<<32 | uint64(regs[2])<<16 | uint64(regs[3]))
}

func put64(r []uint16, v uint64) {
	r[0], r[1], r[2], r[3] = uint16(v>>48), uint16(v>>32), uint16(v>>16), uint16(v)
}

func clampU16(v float64) uint16 {
	return uint16(math.Max(0, math.Min(65535, math.Round(v))))
}
