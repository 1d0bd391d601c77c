package wire

import (
	"encoding/binary"
	"fmt"
)

// RegWrite is one register write of a WRITEREG command.
type RegWrite struct {
	Addr, Value uint32
}

// AppendReadRegCmd appends a READREG command for addrs (1 to MaxReadRegs
// addresses), asking for an acknowledge.
func AppendReadRegCmd(dst []byte, reqID uint16, addrs ...uint32) ([]byte, error) {
	if len(addrs) == 0 || len(addrs) > MaxReadRegs {
		return dst, fmt.Errorf("%w: READREG of %d registers (1 to %d)", ErrTooLarge, len(addrs), MaxReadRegs)
	}
	dst, start := cmdWithRoom(dst, FlagAckRequired, CmdReadReg, reqID)
	for _, a := range addrs {
		dst = appendU32(dst, a)
	}
	return finishCmd(dst, start), nil
}

// ParseReadRegCmd appends the addresses of a READREG payload to dst.
func ParseReadRegCmd(payload []byte, dst []uint32) ([]uint32, error) {
	return parseU32s(payload, dst, "READREG_CMD")
}

// AppendReadRegAck appends a READREG acknowledge carrying values.
func AppendReadRegAck(dst []byte, ackID uint16, st Status, values ...uint32) []byte {
	dst, start := ackWithRoom(dst, st, AckReadReg, ackID)
	for _, v := range values {
		dst = appendU32(dst, v)
	}
	return finishCmd(dst, start)
}

// ParseReadRegAck appends the values of a READREG acknowledge to dst.
func ParseReadRegAck(payload []byte, dst []uint32) ([]uint32, error) {
	return parseU32s(payload, dst, "READREG_ACK")
}

func parseU32s(payload []byte, dst []uint32, what string) ([]uint32, error) {
	if len(payload)%4 != 0 || len(payload) == 0 {
		return dst, fmt.Errorf("%w: %s payload of %d bytes (a positive multiple of 4)", ErrMalformed, what, len(payload))
	}
	for i := 0; i+4 <= len(payload); i += 4 {
		dst = append(dst, binary.BigEndian.Uint32(payload[i:]))
	}
	return dst, nil
}

// AppendWriteRegCmd appends a WRITEREG command (1 to MaxWriteRegs writes),
// asking for an acknowledge.
func AppendWriteRegCmd(dst []byte, reqID uint16, writes ...RegWrite) ([]byte, error) {
	if len(writes) == 0 || len(writes) > MaxWriteRegs {
		return dst, fmt.Errorf("%w: WRITEREG of %d registers (1 to %d)", ErrTooLarge, len(writes), MaxWriteRegs)
	}
	dst, start := cmdWithRoom(dst, FlagAckRequired, CmdWriteReg, reqID)
	for _, w := range writes {
		dst = appendU32(appendU32(dst, w.Addr), w.Value)
	}
	return finishCmd(dst, start), nil
}

// ParseWriteRegCmd appends the writes of a WRITEREG payload to dst.
func ParseWriteRegCmd(payload []byte, dst []RegWrite) ([]RegWrite, error) {
	if len(payload)%8 != 0 || len(payload) == 0 {
		return dst, fmt.Errorf("%w: WRITEREG_CMD payload of %d bytes (a positive multiple of 8)", ErrMalformed, len(payload))
	}
	for i := 0; i+8 <= len(payload); i += 8 {
		dst = append(dst, RegWrite{binary.BigEndian.Uint32(payload[i:]), binary.BigEndian.Uint32(payload[i+4:])})
	}
	return dst, nil
}

// AppendIndexAck appends a WRITEREG or WRITEMEM acknowledge (ack is
// AckWriteReg or AckWriteMem): index counts the registers or bytes written.
func AppendIndexAck(dst []byte, ack, ackID uint16, st Status, index uint16) []byte {
	return AppendAck(dst, Ack{Status: st, Ack: ack, AckID: ackID}, []byte{0, 0, byte(index >> 8), byte(index)})
}

// ParseIndexAck decodes a WRITEREG or WRITEMEM acknowledge payload.
func ParseIndexAck(payload []byte) (uint16, error) {
	if len(payload) < 4 {
		return 0, fmt.Errorf("%w: write acknowledge payload of %d bytes, want 4", ErrShort, len(payload))
	}
	return binary.BigEndian.Uint16(payload[2:]), nil
}

// AppendReadMemCmd appends a READMEM command for count bytes at addr (count
// a multiple of 4, 4 to MaxMemBlock).
func AppendReadMemCmd(dst []byte, reqID uint16, addr uint32, count int) ([]byte, error) {
	if count <= 0 || count > MaxMemBlock || count%4 != 0 {
		return dst, fmt.Errorf("%w: READMEM of %d bytes (4 to %d, multiple of 4)", ErrTooLarge, count, MaxMemBlock)
	}
	dst, start := cmdWithRoom(dst, FlagAckRequired, CmdReadMem, reqID)
	dst = appendU16(appendU16(appendU32(dst, addr), 0), uint16(count))
	return finishCmd(dst, start), nil
}

// ParseReadMemCmd decodes a READMEM payload.
func ParseReadMemCmd(payload []byte) (addr uint32, count int, err error) {
	if len(payload) < 8 {
		return 0, 0, fmt.Errorf("%w: READMEM_CMD payload of %d bytes, want 8", ErrShort, len(payload))
	}
	return binary.BigEndian.Uint32(payload), int(binary.BigEndian.Uint16(payload[6:])), nil
}

// AppendReadMemAck appends a READMEM acknowledge carrying data read at addr.
func AppendReadMemAck(dst []byte, ackID uint16, st Status, addr uint32, data []byte) []byte {
	dst, start := ackWithRoom(dst, st, AckReadMem, ackID)
	dst = append(appendU32(dst, addr), data...)
	return finishCmd(dst, start)
}

// ParseReadMemAck decodes a READMEM acknowledge payload; data is a view.
func ParseReadMemAck(payload []byte) (addr uint32, data []byte, err error) {
	if len(payload) < 4 {
		return 0, nil, fmt.Errorf("%w: READMEM_ACK payload of %d bytes", ErrShort, len(payload))
	}
	return binary.BigEndian.Uint32(payload), payload[4:], nil
}

// AppendWriteMemCmd appends a WRITEMEM command writing data at addr
// (len(data) a multiple of 4, 4 to MaxMemBlock).
func AppendWriteMemCmd(dst []byte, reqID uint16, addr uint32, data []byte) ([]byte, error) {
	if len(data) == 0 || len(data) > MaxMemBlock || len(data)%4 != 0 {
		return dst, fmt.Errorf("%w: WRITEMEM of %d bytes (4 to %d, multiple of 4)", ErrTooLarge, len(data), MaxMemBlock)
	}
	dst, start := cmdWithRoom(dst, FlagAckRequired, CmdWriteMem, reqID)
	dst = append(appendU32(dst, addr), data...)
	return finishCmd(dst, start), nil
}

// ParseWriteMemCmd decodes a WRITEMEM payload; data is a view.
func ParseWriteMemCmd(payload []byte) (addr uint32, data []byte, err error) {
	if len(payload) < 4 {
		return 0, nil, fmt.Errorf("%w: WRITEMEM_CMD payload of %d bytes", ErrShort, len(payload))
	}
	return binary.BigEndian.Uint32(payload), payload[4:], nil
}

// AppendPendingAck appends a PENDING_ACK: the answer to ackID will take up
// to ms milliseconds more.
func AppendPendingAck(dst []byte, ackID uint16, ms uint16) []byte {
	return AppendAck(dst, Ack{Ack: AckPending, AckID: ackID}, []byte{0, 0, byte(ms >> 8), byte(ms)})
}

// ParsePendingAck decodes a PENDING_ACK payload: the time to completion in
// milliseconds.
func ParsePendingAck(payload []byte) (uint16, error) {
	if len(payload) < 4 {
		return 0, fmt.Errorf("%w: PENDING_ACK payload of %d bytes, want 4", ErrShort, len(payload))
	}
	return binary.BigEndian.Uint16(payload[2:]), nil
}

// Resend is a PACKETRESEND request: packets First…Last (inclusive) of a
// block on one stream channel.
type Resend struct {
	Channel     uint16
	BlockID     uint64
	First, Last uint32
	Extended    bool // 64-bit block ID and 32-bit packet IDs
}

// AppendResendCmd appends a PACKETRESEND command (never acknowledged).
func AppendResendCmd(dst []byte, reqID uint16, r Resend) []byte {
	flags := uint8(0)
	if r.Extended {
		flags = FlagExtendedIDs
	}
	dst, start := cmdWithRoom(dst, flags, CmdPacketResend, reqID)
	dst = appendU16(dst, r.Channel)
	if r.Extended {
		dst = appendU16(dst, 0)
		dst = appendU32(appendU32(dst, r.First), r.Last)
		dst = binary.BigEndian.AppendUint64(dst, r.BlockID)
	} else {
		dst = appendU16(dst, uint16(r.BlockID))
		dst = appendU32(appendU32(dst, r.First&0xffffff), r.Last&0xffffff)
	}
	return finishCmd(dst, start)
}

// ParseResendCmd decodes a PACKETRESEND payload; flags are the command's.
func ParseResendCmd(flags uint8, payload []byte) (Resend, error) {
	ext := flags&FlagExtendedIDs != 0
	need := 12
	if ext {
		need = 20
	}
	if len(payload) < need {
		return Resend{}, fmt.Errorf("%w: PACKETRESEND payload of %d bytes, want %d", ErrShort, len(payload), need)
	}
	r := Resend{Channel: binary.BigEndian.Uint16(payload), Extended: ext,
		First: binary.BigEndian.Uint32(payload[4:]), Last: binary.BigEndian.Uint32(payload[8:])}
	if ext {
		r.BlockID = binary.BigEndian.Uint64(payload[12:])
	} else {
		r.BlockID = uint64(binary.BigEndian.Uint16(payload[2:]))
		r.First &= 0xffffff
		r.Last &= 0xffffff
	}
	if r.Last < r.First {
		return r, fmt.Errorf("%w: PACKETRESEND last packet %d before first %d", ErrMalformed, r.Last, r.First)
	}
	return r, nil
}
