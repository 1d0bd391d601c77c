package u3v

import (
	"encoding/binary"
	"fmt"
)

// U3V streaming protocol (see the package doc for the bytes).
const (
	leaderMagic  = 0x4C563355 // "U3VL"
	trailerMagic = 0x54563355 // "U3VT"

	genericHdrLen    = 16 // magic, reserved, size, block ID
	imageLeaderLen   = 52
	genericTrailer   = 28 // + status, reserved, valid payload size
	imageTrailerLen  = 32 // + size Y
	chunkTrailerLen  = 36 // + chunk layout ID
	maxLeaderTrailer = 1024

	payloadImage      = 0x0001
	payloadChunk      = 0x4000
	payloadImageChunk = 0x4001
)

// leader is a decoded stream leader.
type leader struct {
	BlockID     uint64
	PayloadType uint16
	Timestamp   uint64 // device ticks (ns on most cameras)
	PixelFormat uint32
	SizeX       uint32
	SizeY       uint32
	OffsetX     uint32
	OffsetY     uint32
	PaddingX    uint16
}

// trailer is a decoded stream trailer.
type trailer struct {
	BlockID       uint64
	Status        Status
	ValidPayload  uint64
	SizeY         uint32 // lines actually sent (image payloads), 0 when absent
	HasSizeY      bool
	ChunkLayoutID uint32
}

// packetKind says what a stream transfer starts with.
func packetKind(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	switch m := binary.LittleEndian.Uint32(b); m {
	case leaderMagic, trailerMagic:
		return m
	}
	return 0
}

// hasChunks reports whether the payload type carries chunk data.
func hasChunks(pt uint16) bool { return pt&0x4000 != 0 }

// decodeLeader checks and decodes a leader transfer.
func decodeLeader(b []byte) (leader, error) {
	if len(b) < genericHdrLen {
		return leader{}, fmt.Errorf("%w: leader of %d bytes, needs %d", ErrMalformed, len(b), genericHdrLen)
	}
	le := binary.LittleEndian
	if m := le.Uint32(b); m != leaderMagic {
		return leader{}, fmt.Errorf("%w: leader magic 0x%08x, want 0x%08x (U3VL)", ErrMalformed, m, leaderMagic)
	}
	size := int(le.Uint16(b[6:]))
	if size < genericHdrLen+4 || size > len(b) || size > maxLeaderTrailer {
		return leader{}, fmt.Errorf("%w: leader size field %d, transfer has %d bytes", ErrMalformed, size, len(b))
	}
	l := leader{BlockID: le.Uint64(b[8:]), PayloadType: le.Uint16(b[18:])}
	switch l.PayloadType {
	case payloadImage, payloadImageChunk:
	case payloadChunk:
		return l, fmt.Errorf("%w: chunk-only payload (type 0x%04x)", ErrUnsupported, l.PayloadType)
	default:
		return l, fmt.Errorf("%w: payload type 0x%04x", ErrUnsupported, l.PayloadType)
	}
	if size < imageLeaderLen {
		return l, fmt.Errorf("%w: image leader of %d bytes, needs %d", ErrMalformed, size, imageLeaderLen)
	}
	l.Timestamp = le.Uint64(b[20:])
	l.PixelFormat = le.Uint32(b[28:])
	l.SizeX = le.Uint32(b[32:])
	l.SizeY = le.Uint32(b[36:])
	l.OffsetX = le.Uint32(b[40:])
	l.OffsetY = le.Uint32(b[44:])
	l.PaddingX = le.Uint16(b[48:])
	if l.SizeX == 0 || l.SizeX > maxSizeX || l.SizeY == 0 || l.SizeY > maxSizeY {
		return l, fmt.Errorf("%w: image of %d x %d pixels (limits %d x %d)", ErrMalformed, l.SizeX, l.SizeY, maxSizeX, maxSizeY)
	}
	return l, nil
}

// Limits on what a leader may announce; a line-scan camera is at most a
// few tens of thousands of pixels wide and a frame a few thousand lines.
const (
	maxSizeX = 1 << 16
	maxSizeY = 1 << 16
)

// decodeTrailer checks and decodes a trailer transfer. payloadType is the
// leader's, which decides the fields after the valid payload size.
func decodeTrailer(b []byte, payloadType uint16) (trailer, error) {
	if len(b) < genericHdrLen {
		return trailer{}, fmt.Errorf("%w: trailer of %d bytes, needs %d", ErrMalformed, len(b), genericHdrLen)
	}
	le := binary.LittleEndian
	if m := le.Uint32(b); m != trailerMagic {
		return trailer{}, fmt.Errorf("%w: trailer magic 0x%08x, want 0x%08x (U3VT)", ErrMalformed, m, trailerMagic)
	}
	size := int(le.Uint16(b[6:]))
	if size < genericTrailer || size > len(b) || size > maxLeaderTrailer {
		return trailer{}, fmt.Errorf("%w: trailer size field %d, transfer has %d bytes", ErrMalformed, size, len(b))
	}
	t := trailer{
		BlockID:      le.Uint64(b[8:]),
		Status:       Status(le.Uint16(b[16:])),
		ValidPayload: le.Uint64(b[20:]),
	}
	if payloadType == payloadImage || payloadType == payloadImageChunk {
		if size >= imageTrailerLen {
			t.SizeY, t.HasSizeY = le.Uint32(b[28:]), true
		}
		if payloadType == payloadImageChunk && size >= chunkTrailerLen {
			t.ChunkLayoutID = le.Uint32(b[32:])
		}
	}
	return t, nil
}

// appendLeader encodes an image leader (the emulated camera and fuzz seeds
// use it).
func appendLeader(dst []byte, l leader) []byte {
	le := binary.LittleEndian
	dst = le.AppendUint32(dst, leaderMagic)
	dst = le.AppendUint16(dst, 0)
	dst = le.AppendUint16(dst, imageLeaderLen)
	dst = le.AppendUint64(dst, l.BlockID)
	dst = le.AppendUint16(dst, 0)
	dst = le.AppendUint16(dst, l.PayloadType)
	dst = le.AppendUint64(dst, l.Timestamp)
	dst = le.AppendUint32(dst, l.PixelFormat)
	dst = le.AppendUint32(dst, l.SizeX)
	dst = le.AppendUint32(dst, l.SizeY)
	dst = le.AppendUint32(dst, l.OffsetX)
	dst = le.AppendUint32(dst, l.OffsetY)
	dst = le.AppendUint16(dst, l.PaddingX)
	return le.AppendUint16(dst, 0)
}

// appendTrailer encodes an image trailer (with chunk layout ID for chunk
// payloads).
func appendTrailer(dst []byte, t trailer, payloadType uint16) []byte {
	le := binary.LittleEndian
	size := uint16(imageTrailerLen)
	if payloadType == payloadImageChunk {
		size = chunkTrailerLen
	}
	dst = le.AppendUint32(dst, trailerMagic)
	dst = le.AppendUint16(dst, 0)
	dst = le.AppendUint16(dst, size)
	dst = le.AppendUint64(dst, t.BlockID)
	dst = le.AppendUint16(dst, uint16(t.Status))
	dst = le.AppendUint16(dst, 0)
	dst = le.AppendUint64(dst, t.ValidPayload)
	dst = le.AppendUint32(dst, t.SizeY)
	if payloadType == payloadImageChunk {
		dst = le.AppendUint32(dst, t.ChunkLayoutID)
	}
	return dst
}

// findChunk looks for chunk id in payload data laid out as U3V chunks:
// each chunk's data is followed by its tag (chunk ID u32, length u32, both
// little-endian), so the chunks are walked from the end. It returns nil
// when the chunk is absent and an error when the layout is broken.
func findChunk(data []byte, id uint32) ([]byte, error) {
	end := len(data)
	for end >= 8 {
		cid := binary.LittleEndian.Uint32(data[end-8:])
		n := int(binary.LittleEndian.Uint32(data[end-4:]))
		start := end - 8 - n
		if start < 0 {
			return nil, fmt.Errorf("%w: chunk 0x%x says %d bytes, only %d before it", ErrMalformed, cid, n, end-8)
		}
		if cid == id {
			return data[start : end-8], nil
		}
		end = start
	}
	return nil, nil
}
