package wire

import (
	"encoding/binary"
	"fmt"
)

// Format is a GVSP packet format (low 4 bits of header byte 4).
type Format uint8

// Packet formats.
const (
	FormatLeader  Format = 1
	FormatTrailer Format = 2
	FormatPayload Format = 3
	FormatAllIn   Format = 4
)

// PayloadType is the payload type of a GVSP leader and trailer.
type PayloadType uint16

// Payload types.
const (
	PayloadImage      PayloadType = 0x0001
	PayloadRawData    PayloadType = 0x0002
	PayloadFile       PayloadType = 0x0003
	PayloadChunkData  PayloadType = 0x0004
	PayloadJPEG       PayloadType = 0x0006
	PayloadMultipart  PayloadType = 0x000a
	PayloadChunkFlag  PayloadType = 0x4000 // payload carries chunks
	PayloadImageChunk             = PayloadImage | PayloadChunkFlag
)

// Base returns the payload type without the chunk flag.
func (t PayloadType) Base() PayloadType { return t &^ PayloadChunkFlag }

// HasChunks reports whether the payload carries chunk data: the chunk
// flag or the chunk-data payload type.
func (t PayloadType) HasChunks() bool { return t&PayloadChunkFlag != 0 || t == PayloadChunkData }

// Sizes of GVSP parts.
const (
	GVSPHeaderSize         = 8
	GVSPExtendedHeaderSize = 20
	LeaderSize             = 12 // common leader fields
	ImageLeaderSize        = 36
	TrailerSize            = 8
	TrailerChunkSize       = 12
	// IPUDPOverhead is what IP and UDP add to a GVSP packet; SCPS counts it.
	IPUDPOverhead = 20 + 8
)

// Packet is a decoded GVSP header.
type Packet struct {
	Status   Status
	BlockID  uint64 // 16-bit unless Extended
	Format   Format
	PacketID uint32 // 24-bit unless Extended
	Extended bool
	Flags    uint16 // extended header only
}

// HeaderSize returns the header size of p's ID mode.
func (p Packet) HeaderSize() int {
	if p.Extended {
		return GVSPExtendedHeaderSize
	}
	return GVSPHeaderSize
}

// AppendPacket appends a GVSP header followed by data.
func AppendPacket(dst []byte, p Packet, data []byte) []byte {
	be := binary.BigEndian
	if p.Extended {
		dst = be.AppendUint16(dst, uint16(p.Status))
		dst = be.AppendUint16(dst, p.Flags)
		dst = append(dst, 0x80|byte(p.Format&0x0f), 0, 0, 0)
		dst = be.AppendUint64(dst, p.BlockID)
		dst = be.AppendUint32(dst, p.PacketID)
	} else {
		dst = be.AppendUint16(dst, uint16(p.Status))
		dst = be.AppendUint16(dst, uint16(p.BlockID))
		dst = be.AppendUint32(dst, uint32(p.Format&0x0f)<<24|p.PacketID&0xffffff)
	}
	return append(dst, data...)
}

// ParsePacket decodes a GVSP header and returns the data after it (a view).
func ParsePacket(b []byte) (Packet, []byte, error) {
	if len(b) < GVSPHeaderSize {
		return Packet{}, nil, fmt.Errorf("%w: GVSP packet of %d bytes", ErrShort, len(b))
	}
	be := binary.BigEndian
	p := Packet{Status: Status(be.Uint16(b)), Format: Format(b[4] & 0x0f)}
	if b[4]&0x80 == 0 {
		p.BlockID = uint64(be.Uint16(b[2:]))
		p.PacketID = be.Uint32(b[4:]) & 0xffffff
		return p, b[GVSPHeaderSize:], nil
	}
	if len(b) < GVSPExtendedHeaderSize {
		return Packet{}, nil, fmt.Errorf("%w: extended GVSP packet of %d bytes", ErrShort, len(b))
	}
	p.Extended = true
	p.Flags = be.Uint16(b[2:])
	p.BlockID = be.Uint64(b[8:])
	p.PacketID = be.Uint32(b[16:])
	return p, b[GVSPExtendedHeaderSize:], nil
}

// Leader is a decoded GVSP leader. The image fields are zero unless the
// payload type's base is PayloadImage.
type Leader struct {
	FieldInfo   uint16 // bytes 0-1 (field ID/count; reserved)
	PayloadType PayloadType
	Timestamp   uint64 // device ticks
	PixelFormat PixelFormat
	Width       uint32
	Height      uint32
	OffsetX     uint32
	OffsetY     uint32
	PaddingX    uint16
	PaddingY    uint16
}

// IsImage reports whether l carries the image fields.
func (l Leader) IsImage() bool { return l.PayloadType.Base() == PayloadImage }

// AppendLeader appends a leader's data (after the GVSP header): 36 bytes
// for an image payload, 12 otherwise.
func AppendLeader(dst []byte, l Leader) []byte {
	be := binary.BigEndian
	dst = be.AppendUint16(dst, l.FieldInfo)
	dst = be.AppendUint16(dst, uint16(l.PayloadType))
	dst = be.AppendUint64(dst, l.Timestamp)
	if !l.IsImage() {
		return dst
	}
	dst = be.AppendUint32(dst, uint32(l.PixelFormat))
	dst = be.AppendUint32(dst, l.Width)
	dst = be.AppendUint32(dst, l.Height)
	dst = be.AppendUint32(dst, l.OffsetX)
	dst = be.AppendUint32(dst, l.OffsetY)
	dst = be.AppendUint16(dst, l.PaddingX)
	return be.AppendUint16(dst, l.PaddingY)
}

// ParseLeader decodes a leader's data.
func ParseLeader(b []byte) (Leader, error) {
	if len(b) < LeaderSize {
		return Leader{}, fmt.Errorf("%w: leader of %d bytes", ErrShort, len(b))
	}
	be := binary.BigEndian
	l := Leader{FieldInfo: be.Uint16(b), PayloadType: PayloadType(be.Uint16(b[2:])), Timestamp: be.Uint64(b[4:])}
	if !l.IsImage() {
		return l, nil
	}
	if len(b) < ImageLeaderSize {
		return l, fmt.Errorf("%w: image leader of %d bytes, want %d", ErrShort, len(b), ImageLeaderSize)
	}
	l.PixelFormat = PixelFormat(be.Uint32(b[12:]))
	l.Width = be.Uint32(b[16:])
	l.Height = be.Uint32(b[20:])
	l.OffsetX = be.Uint32(b[24:])
	l.OffsetY = be.Uint32(b[28:])
	l.PaddingX = be.Uint16(b[32:])
	l.PaddingY = be.Uint16(b[34:])
	return l, nil
}

// Trailer is a decoded GVSP trailer.
type Trailer struct {
	PayloadType   PayloadType
	SizeY         uint32 // image: lines actually sent; chunk data: payload length
	ChunkLayoutID uint32 // only with chunks
}

// AppendTrailer appends a trailer's data: 12 bytes when the payload type
// has chunks, 8 otherwise.
func AppendTrailer(dst []byte, t Trailer) []byte {
	be := binary.BigEndian
	dst = be.AppendUint16(dst, 0)
	dst = be.AppendUint16(dst, uint16(t.PayloadType))
	dst = be.AppendUint32(dst, t.SizeY)
	if t.PayloadType.HasChunks() {
		dst = be.AppendUint32(dst, t.ChunkLayoutID)
	}
	return dst
}

// ParseTrailer decodes a trailer's data. A short trailer (some devices send
// only the payload type) decodes with SizeY 0.
func ParseTrailer(b []byte) (Trailer, error) {
	if len(b) < 4 {
		return Trailer{}, fmt.Errorf("%w: trailer of %d bytes", ErrShort, len(b))
	}
	be := binary.BigEndian
	t := Trailer{PayloadType: PayloadType(be.Uint16(b[2:]))}
	if len(b) >= TrailerSize {
		t.SizeY = be.Uint32(b[4:])
	}
	if t.PayloadType.HasChunks() && len(b) >= TrailerChunkSize {
		t.ChunkLayoutID = be.Uint32(b[8:])
	}
	return t, nil
}

// PayloadPerPacket returns the data bytes one payload packet carries for
// stream channel packet size scps (the SCPS register value, which counts IP
// and UDP headers).
func PayloadPerPacket(scps int, extended bool) int {
	h := GVSPHeaderSize
	if extended {
		h = GVSPExtendedHeaderSize
	}
	return scps - IPUDPOverhead - h
}

// NextBlockID returns the block ID after id: 16-bit IDs wrap from 0xffff to
// 1, extended ones from 2⁶⁴-1 to 1; 0 is never used.
func NextBlockID(id uint64, extended bool) uint64 {
	if !extended {
		id = uint64(uint16(id + 1))
	} else {
		id++
	}
	if id == 0 {
		id = 1
	}
	return id
}

// BlockDistance returns how many blocks b is after a, counting the wrap
// that skips 0: 1 for the next block, 0 for the same one. A b before a (or
// more than half the 16-bit space after it) gives a negative result.
func BlockDistance(a, b uint64, extended bool) int64 {
	if extended {
		d := int64(b - a)
		if a > b && b != 0 && a-b > 1<<62 { // b wrapped past 0
			d--
		}
		return d
	}
	a16, b16 := int64(uint16(a)), int64(uint16(b))
	d := b16 - a16
	if d < -32767 {
		d += 65535 // wrapped forward, skipping 0
	} else if d > 32767 {
		d -= 65535
	}
	return d
}
