package wire

import (
	"encoding/binary"
	"fmt"
)

// ChunkTagSize is the size of the tag after each chunk's data.
const ChunkTagSize = 8

// Chunk is one chunk of a chunk-data payload: Data is a view into the
// payload.
type Chunk struct {
	ID   uint32
	Data []byte
}

// AppendChunk appends a chunk: its data, then its ID and length.
func AppendChunk(dst []byte, id uint32, data []byte) []byte {
	dst = append(dst, data...)
	dst = binary.BigEndian.AppendUint32(dst, id)
	return binary.BigEndian.AppendUint32(dst, uint32(len(data)))
}

// ParseChunks appends the chunks of payload to dst, walking backwards from
// the end, so dst holds them last first. It stops with ErrMalformed at a
// tag whose length runs past the start of the payload, and after at most
// max chunks (a hostile payload of empty chunks cannot make it loop long).
func ParseChunks(payload []byte, dst []Chunk, max int) ([]Chunk, error) {
	end := len(payload)
	for end > 0 {
		if len(dst) >= max {
			return dst, fmt.Errorf("%w: more than %d chunks", ErrMalformed, max)
		}
		if end < ChunkTagSize {
			return dst, fmt.Errorf("%w: %d bytes before the last chunk tag", ErrMalformed, end)
		}
		id := binary.BigEndian.Uint32(payload[end-8:])
		n := binary.BigEndian.Uint32(payload[end-4:])
		start := int64(end) - ChunkTagSize - int64(n)
		if start < 0 {
			return dst, fmt.Errorf("%w: chunk 0x%08x of %d bytes runs past the payload start", ErrMalformed, id, n)
		}
		dst = append(dst, Chunk{ID: id, Data: payload[start : end-ChunkTagSize]})
		end = int(start)
	}
	return dst, nil
}

// FindChunk returns the data of the last chunk with ID id in payload,
// without allocating; ok is false if there is none or the chunk layout is
// broken before it is found.
func FindChunk(payload []byte, id uint32) (data []byte, ok bool) {
	end := len(payload)
	for guard := 0; end >= ChunkTagSize && guard < 4096; guard++ {
		cid := binary.BigEndian.Uint32(payload[end-8:])
		n := binary.BigEndian.Uint32(payload[end-4:])
		start := int64(end) - ChunkTagSize - int64(n)
		if start < 0 {
			return nil, false
		}
		if cid == id {
			return payload[start : end-ChunkTagSize], true
		}
		end = int(start)
	}
	return nil, false
}

// FirstChunk returns the first chunk of payload (the image, in an image
// payload with chunks) without allocating.
func FirstChunk(payload []byte) (c Chunk, ok bool) {
	end := len(payload)
	for guard := 0; end >= ChunkTagSize && guard < 4096; guard++ {
		n := binary.BigEndian.Uint32(payload[end-4:])
		start := int64(end) - ChunkTagSize - int64(n)
		if start < 0 {
			return Chunk{}, false
		}
		c = Chunk{ID: binary.BigEndian.Uint32(payload[end-8:]), Data: payload[start : end-ChunkTagSize]}
		if start == 0 {
			return c, true
		}
		end = int(start)
	}
	return Chunk{}, false
}
