package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Errors returned by decoders.
var (
	// ErrShort is returned (wrapped) when a packet is shorter than its
	// header or its declared length, or a payload shorter than its layout.
	ErrShort = errors.New("gige wire: packet too short")
	// ErrMalformed is returned (wrapped) when a field holds a value the
	// layout does not allow (wrong key, unaligned length, zero count…).
	ErrMalformed = errors.New("gige wire: malformed packet")
	// ErrTooLarge is returned by encoders asked for more than one packet
	// can carry.
	ErrTooLarge = errors.New("gige wire: request too large for one packet")
)

// Ports.
const (
	GVCPPort = 3956 // the device's GVCP port
)

// Sizes.
const (
	HeaderSize       = 8   // GVCP command or acknowledge header
	MaxReadRegs      = 135 // registers per READREG/WRITEREG (GVCP payload ≤ 540)
	MaxWriteRegs     = 67
	MaxMemBlock      = 536 // bytes per READMEM/WRITEMEM
	DiscoveryAckSize = 248
	cmdKey           = 0x42
)

// Command flags (byte 1 of a command).
const (
	FlagAckRequired       uint8 = 0x01
	FlagAllowBroadcastAck uint8 = 0x10 // DISCOVERY_CMD
	FlagExtendedIDs       uint8 = 0x10 // PACKETRESEND_CMD, EVENT
)

// Command and acknowledge codes.
const (
	CmdDiscovery    uint16 = 0x0002
	AckDiscovery    uint16 = 0x0003
	CmdForceIP      uint16 = 0x0004
	AckForceIP      uint16 = 0x0005
	CmdPacketResend uint16 = 0x0040
	CmdReadReg      uint16 = 0x0080
	AckReadReg      uint16 = 0x0081
	CmdWriteReg     uint16 = 0x0082
	AckWriteReg     uint16 = 0x0083
	CmdReadMem      uint16 = 0x0084
	AckReadMem      uint16 = 0x0085
	CmdWriteMem     uint16 = 0x0086
	AckWriteMem     uint16 = 0x0087
	AckPending      uint16 = 0x0089
	CmdEvent        uint16 = 0x00c0
	AckEvent        uint16 = 0x00c1
	CmdAction       uint16 = 0x0100
	AckAction       uint16 = 0x0101
)

// Status is a GVCP acknowledge status (also used in GVSP headers).
type Status uint16

// Status codes.
const (
	StatusSuccess                  Status = 0x0000
	StatusPacketResend             Status = 0x0100 // GVSP: this packet is a resend
	StatusNotImplemented           Status = 0x8001
	StatusInvalidParameter         Status = 0x8002
	StatusInvalidAddress           Status = 0x8003
	StatusWriteProtect             Status = 0x8004
	StatusBadAlignment             Status = 0x8005
	StatusAccessDenied             Status = 0x8006
	StatusBusy                     Status = 0x8007
	StatusMsgTimeout               Status = 0x800b
	StatusPacketUnavailable        Status = 0x800c
	StatusDataOverrun              Status = 0x800d
	StatusInvalidHeader            Status = 0x800e
	StatusPacketNotYetAvailable    Status = 0x8010
	StatusPacketAndPrevRemoved     Status = 0x8011
	StatusPacketRemovedFromMemory  Status = 0x8012
	StatusNoRefTime                Status = 0x8013
	StatusPacketTemporarilyUnavail Status = 0x8014
	StatusOverflow                 Status = 0x8015
	StatusActionLate               Status = 0x8016
	StatusError                    Status = 0x8fff
)

var statusNames = map[Status]string{
	StatusSuccess: "success", StatusPacketResend: "packet resend",
	StatusNotImplemented: "not implemented", StatusInvalidParameter: "invalid parameter",
	StatusInvalidAddress: "invalid address", StatusWriteProtect: "write protect",
	StatusBadAlignment: "bad alignment", StatusAccessDenied: "access denied",
	StatusBusy: "busy", StatusMsgTimeout: "message timeout",
	StatusPacketUnavailable: "packet unavailable", StatusDataOverrun: "data overrun",
	StatusInvalidHeader: "invalid header", StatusPacketNotYetAvailable: "packet not yet available",
	StatusPacketAndPrevRemoved:    "packet and previous removed from memory",
	StatusPacketRemovedFromMemory: "packet removed from memory", StatusNoRefTime: "no reference time",
	StatusPacketTemporarilyUnavail: "packet temporarily unavailable", StatusOverflow: "overflow",
	StatusActionLate: "action late", StatusError: "error",
}

// String names the status.
func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("status 0x%04x", uint16(s))
}

// IsError reports whether s is an error status (bit 15 set).
func (s Status) IsError() bool { return s&0x8000 != 0 }

// Error makes s usable as an error value.
func (s Status) Error() string { return "gvcp: " + s.String() }

// Cmd is a GVCP command header.
type Cmd struct {
	Flags   uint8
	Command uint16
	Length  uint16 // payload bytes; filled in by the Append… encoders
	ReqID   uint16
}

// Ack is a GVCP acknowledge header.
type Ack struct {
	Status Status
	Ack    uint16
	Length uint16
	AckID  uint16
}

// NextReqID returns the request ID after id, skipping 0.
func NextReqID(id uint16) uint16 {
	if id == 0xffff {
		return 1
	}
	return id + 1
}

// AppendCmd appends a command header followed by payload.
func AppendCmd(dst []byte, h Cmd, payload []byte) []byte {
	dst = append(dst, cmdKey, h.Flags, 0, 0, 0, 0, 0, 0)
	n := len(dst)
	binary.BigEndian.PutUint16(dst[n-6:], h.Command)
	binary.BigEndian.PutUint16(dst[n-4:], uint16(len(payload)))
	binary.BigEndian.PutUint16(dst[n-2:], h.ReqID)
	return append(dst, payload...)
}

// ParseCmd decodes a command header and returns its payload (Length bytes;
// extra trailing bytes are ignored).
func ParseCmd(b []byte) (Cmd, []byte, error) {
	if len(b) < HeaderSize {
		return Cmd{}, nil, fmt.Errorf("%w: command of %d bytes", ErrShort, len(b))
	}
	if b[0] != cmdKey {
		return Cmd{}, nil, fmt.Errorf("%w: command key 0x%02x, want 0x42", ErrMalformed, b[0])
	}
	h := Cmd{
		Flags:   b[1],
		Command: binary.BigEndian.Uint16(b[2:]),
		Length:  binary.BigEndian.Uint16(b[4:]),
		ReqID:   binary.BigEndian.Uint16(b[6:]),
	}
	if int(h.Length) > len(b)-HeaderSize {
		return h, nil, fmt.Errorf("%w: command 0x%04x declares %d payload bytes, has %d",
			ErrShort, h.Command, h.Length, len(b)-HeaderSize)
	}
	return h, b[HeaderSize : HeaderSize+int(h.Length)], nil
}

// AppendAck appends an acknowledge header followed by payload.
func AppendAck(dst []byte, h Ack, payload []byte) []byte {
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	n := len(dst)
	binary.BigEndian.PutUint16(dst[n-8:], uint16(h.Status))
	binary.BigEndian.PutUint16(dst[n-6:], h.Ack)
	binary.BigEndian.PutUint16(dst[n-4:], uint16(len(payload)))
	binary.BigEndian.PutUint16(dst[n-2:], h.AckID)
	return append(dst, payload...)
}

// ParseAck decodes an acknowledge header and returns its payload.
func ParseAck(b []byte) (Ack, []byte, error) {
	if len(b) < HeaderSize {
		return Ack{}, nil, fmt.Errorf("%w: acknowledge of %d bytes", ErrShort, len(b))
	}
	h := Ack{
		Status: Status(binary.BigEndian.Uint16(b[0:])),
		Ack:    binary.BigEndian.Uint16(b[2:]),
		Length: binary.BigEndian.Uint16(b[4:]),
		AckID:  binary.BigEndian.Uint16(b[6:]),
	}
	if int(h.Length) > len(b)-HeaderSize {
		return h, nil, fmt.Errorf("%w: acknowledge 0x%04x declares %d payload bytes, has %d",
			ErrShort, h.Ack, h.Length, len(b)-HeaderSize)
	}
	return h, b[HeaderSize : HeaderSize+int(h.Length)], nil
}

// cmdWithRoom starts a command with a header whose length is patched by
// finishCmd, so payloads are written in place without a scratch buffer.
func cmdWithRoom(dst []byte, flags uint8, cmd, reqID uint16) ([]byte, int) {
	start := len(dst)
	return AppendCmd(dst, Cmd{Flags: flags, Command: cmd, ReqID: reqID}, nil), start
}

func finishCmd(dst []byte, start int) []byte {
	binary.BigEndian.PutUint16(dst[start+4:], uint16(len(dst)-start-HeaderSize))
	return dst
}

func ackWithRoom(dst []byte, st Status, ack, ackID uint16) ([]byte, int) {
	start := len(dst)
	return AppendAck(dst, Ack{Status: st, Ack: ack, AckID: ackID}, nil), start
}

func appendU16(dst []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(dst, v) }
func appendU32(dst []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(dst, v) }
