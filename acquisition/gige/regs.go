package gige

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/webinspect/webinspect/acquisition/gige/wire"
)

// Errors returned by the gige package.
var (
	// ErrOptions is returned (wrapped) by Validate for a bad option field.
	ErrOptions = errors.New("gige: invalid options")
	// ErrAddress is returned (wrapped) for a device address or interface
	// that cannot be resolved.
	ErrAddress = errors.New("gige: bad address")
	// ErrTimeout is returned (wrapped) when a command got no acknowledge
	// after every retry.
	ErrTimeout = errors.New("gige: no acknowledge")
	// ErrDevice is matched by a StatusError: the device refused a command.
	ErrDevice = errors.New("gige: device error")
	// ErrProtocol is returned (wrapped) when a device answers with a
	// packet that breaks the protocol.
	ErrProtocol = errors.New("gige: protocol error")
	// ErrClosed is returned by a channel or stream used after Close.
	ErrClosed = errors.New("gige: closed")
	// ErrLostControl is returned (wrapped) once the heartbeat failed: the
	// device has dropped our control privilege.
	ErrLostControl = errors.New("gige: control privilege lost")
	// ErrNotFound is returned (wrapped) when discovery finds no device.
	ErrNotFound = errors.New("gige: no device found")
	// ErrRange is returned (wrapped) for a memory access beyond the 32-bit
	// GVCP address space.
	ErrRange = errors.New("gige: address out of range")
)

// ReadReg reads one 32-bit register.
func (c *Conn) ReadReg(addr uint32) (uint32, error) {
	var v uint32
	err := c.transact(wire.AckReadReg,
		func(dst []byte, id uint16) ([]byte, error) { return wire.AppendReadRegCmd(dst, id, addr) },
		func(p []byte) error {
			if len(p) < 4 {
				return fmt.Errorf("%w: READREG acknowledge of %d bytes", ErrProtocol, len(p))
			}
			v = binary.BigEndian.Uint32(p)
			return nil
		})
	if err != nil {
		return 0, fmt.Errorf("read register 0x%04x: %w", addr, err)
	}
	return v, nil
}

// WriteReg writes one 32-bit register.
func (c *Conn) WriteReg(addr, v uint32) error {
	err := c.transact(wire.AckWriteReg,
		func(dst []byte, id uint16) ([]byte, error) {
			return wire.AppendWriteRegCmd(dst, id, wire.RegWrite{Addr: addr, Value: v})
		},
		func([]byte) error { return nil })
	if err != nil {
		return fmt.Errorf("write register 0x%04x: %w", addr, err)
	}
	return nil
}

// ReadMem reads len(p) bytes at addr (genicam.Port). Any alignment and
// length are accepted: aligned 4-byte reads go as READREG, the rest as
// READMEM blocks of up to 536 bytes covering the aligned range.
func (c *Conn) ReadMem(addr uint64, p []byte) error {
	if err := checkRange(addr, len(p)); err != nil {
		return err
	}
	if len(p) == 4 && addr%4 == 0 {
		v, err := c.ReadReg(uint32(addr))
		if err == nil {
			binary.BigEndian.PutUint32(p, v)
		}
		return err
	}
	start := addr &^ 3
	end := (addr + uint64(len(p)) + 3) &^ 3
	var scratch [wire.MaxMemBlock]byte
	for a := start; a < end; a += wire.MaxMemBlock {
		n := min(end-a, wire.MaxMemBlock)
		if err := c.readMemBlock(uint32(a), scratch[:n]); err != nil {
			return err
		}
		// copy the part of [a, a+n) that overlaps [addr, addr+len(p))
		lo, hi := max(a, addr), min(a+n, addr+uint64(len(p)))
		copy(p[lo-addr:hi-addr], scratch[lo-a:hi-a])
	}
	return nil
}

func (c *Conn) readMemBlock(addr uint32, p []byte) error {
	err := c.transact(wire.AckReadMem,
		func(dst []byte, id uint16) ([]byte, error) { return wire.AppendReadMemCmd(dst, id, addr, len(p)) },
		func(ap []byte) error {
			a, data, err := wire.ParseReadMemAck(ap)
			if err != nil || a != addr || len(data) < len(p) {
				return fmt.Errorf("%w: READMEM acknowledge for 0x%x with %d bytes, asked 0x%x and %d",
					ErrProtocol, a, len(data), addr, len(p))
			}
			copy(p, data)
			return nil
		})
	if err != nil {
		return fmt.Errorf("read memory 0x%x+%d: %w", addr, len(p), err)
	}
	return nil
}

// WriteMem writes p at addr (genicam.Port). Aligned 4-byte writes go as
// WRITEREG; unaligned edges are read, merged and written back.
func (c *Conn) WriteMem(addr uint64, p []byte) error {
	if err := checkRange(addr, len(p)); err != nil {
		return err
	}
	if len(p) == 4 && addr%4 == 0 {
		return c.WriteReg(uint32(addr), binary.BigEndian.Uint32(p))
	}
	start := addr &^ 3
	end := (addr + uint64(len(p)) + 3) &^ 3
	var scratch [wire.MaxMemBlock]byte
	for a := start; a < end; a += wire.MaxMemBlock {
		n := min(end-a, wire.MaxMemBlock)
		lo, hi := max(a, addr), min(a+n, addr+uint64(len(p)))
		if lo != a || hi != a+n { // partial words at the edges: read them first
			if err := c.readMemBlock(uint32(a), scratch[:n]); err != nil {
				return err
			}
		}
		copy(scratch[lo-a:hi-a], p[lo-addr:hi-addr])
		if err := c.writeMemBlock(uint32(a), scratch[:n]); err != nil {
			return err
		}
	}
	return nil
}

func (c *Conn) writeMemBlock(addr uint32, p []byte) error {
	err := c.transact(wire.AckWriteMem,
		func(dst []byte, id uint16) ([]byte, error) { return wire.AppendWriteMemCmd(dst, id, addr, p) },
		func([]byte) error { return nil })
	if err != nil {
		return fmt.Errorf("write memory 0x%x+%d: %w", addr, len(p), err)
	}
	return nil
}

func checkRange(addr uint64, n int) error {
	if addr+uint64(n) > 1<<32 || addr+uint64(n) < addr {
		return fmt.Errorf("%w: 0x%x+%d", ErrRange, addr, n)
	}
	return nil
}

// ReadString reads a NUL-padded string register of n bytes.
func (c *Conn) ReadString(addr uint32, n int) (string, error) {
	b := make([]byte, n)
	if err := c.ReadMem(uint64(addr), b); err != nil {
		return "", err
	}
	return wire.CString(b), nil
}

// Bootstrap reads the device's identity from its bootstrap registers.
func (c *Conn) Bootstrap() (wire.DiscoveryAck, error) {
	b := make([]byte, wire.DiscoveryAckSize)
	if err := c.ReadMem(0, b); err != nil {
		return wire.DiscoveryAck{}, err
	}
	return wire.ParseDiscoveryAck(b)
}

// XMLURL reads the first GenICam URL (register 0x0200), for
// genicam.FetchXML.
func (c *Conn) XMLURL() (string, error) { return c.ReadString(wire.RegFirstURL, wire.URLSize) }
