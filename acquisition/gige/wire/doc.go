// Package wire encodes and decodes the GigE Vision packets: GVCP, the
// control protocol (UDP port 3956), and GVSP, the stream protocol.
//
// Every layout has an Append… encoder and a Parse… decoder that are exact
// inverses, so the same package serves the client (acquisition/gige) and the
// device side (acquisition/camsim, tests). Encoders append to a caller's
// buffer and never allocate when it has room; decoders return views into
// the packet (no copy) and never panic on short, long or hostile input: a
// packet that does not hold what its header claims is ErrShort or
// ErrMalformed. All multi-byte fields are big-endian (network order).
//
// # GVCP command
//
// A command is an 8-byte header and a payload of Length bytes (a multiple
// of 4). Key is always 0x42. Flag bit 0x01 asks for an acknowledge; 0x10
// allows a broadcast discovery acknowledge (DISCOVERY) or selects extended
// 64-bit block IDs (PACKETRESEND).
//
//	 0      1      2      3      4      5      6      7
//	+------+------+------+------+------+------+------+------+
//	| 0x42 |flags |   command   |   length    |   req_id    |  payload…
//	+------+------+------+------+------+------+------+------+
//
// # GVCP acknowledge
//
//	 0      1      2      3      4      5      6      7
//	+------+------+------+------+------+------+------+------+
//	|   status    | acknowledge |   length    |   ack_id    |  payload…
//	+------+------+------+------+------+------+------+------+
//
// ack_id repeats the command's req_id. Status 0x0000 is success; 0x8xxx are
// errors (Status). req_id 0 is never used: it wraps from 0xffff to 1.
//
// # GVCP payloads
//
//	DISCOVERY_CMD   0x0002  (empty)
//	DISCOVERY_ACK   0x0003  248 bytes, the bootstrap registers 0x0000-0x00f7:
//	    0 version major(2) minor(2)   4 device mode(4)
//	    8 reserved(2) MAC[0:2]       12 MAC[2:6]
//	   16 IP config options(4)       20 IP config current(4)
//	   36 current IP(4)              52 subnet mask(4)   68 gateway(4)
//	   72 manufacturer(32)          104 model(32)       136 device version(32)
//	  168 manufacturer info(48)     216 serial(16)      232 user name(16)
//	   (strings NUL-padded; all other bytes reserved, zero)
//	READREG_CMD     0x0080  address(4) × n          (n ≤ 135)
//	READREG_ACK     0x0081  value(4) × n
//	WRITEREG_CMD    0x0082  (address(4) value(4)) × n
//	WRITEREG_ACK    0x0083  reserved(2) index(2)    registers written
//	READMEM_CMD     0x0084  address(4) reserved(2) count(2)   count%4 == 0, ≤ 536
//	READMEM_ACK     0x0085  address(4) data(count)
//	WRITEMEM_CMD    0x0086  address(4) data(n)      n%4 == 0, ≤ 536
//	WRITEMEM_ACK    0x0087  reserved(2) index(2)    bytes written
//	PENDING_ACK     0x0089  reserved(2) time_to_completion_ms(2)
//	PACKETRESEND    0x0040  (never acknowledged)
//	  standard: channel(2) block_id(2) first_packet(4) last_packet(4)
//	            (packet IDs are 24-bit: the top byte is zero)
//	  extended (flag 0x10): channel(2) reserved(2) first_packet(4)
//	            last_packet(4) block_id(8)
//
// A device that needs longer than the client's timeout for a command
// answers PENDING_ACK first, with the same ack_id, and the real acknowledge
// later.
//
// # GVSP header
//
// Standard IDs (EI = 0), 8 bytes; packet_id is 24 bits:
//
//	 0      1      2      3      4      5      6      7
//	+------+------+------+------+------+------+------+------+
//	|   status    |  block_id   |EI|fmt|      packet_id     |  data…
//	+------+------+------+------+------+------+------+------+
//
// Extended IDs (EI = 1, GigE Vision 2), 20 bytes:
//
//	 0      1      2      3      4      5      6      7
//	+------+------+------+------+------+------+------+------+
//	|   status    |    flags    |EI|fmt|     reserved       |
//	+------+------+------+------+------+------+------+------+
//	|                    block_id (64)                      |
//	+------+------+------+------+------+------+------+------+
//	|       packet_id (32)      |  data…
//	+------+------+------+------+
//
// Byte 4 holds EI in bit 7 and the packet format in its low 4 bits
// (bits 4-6 reserved): 1 leader, 2 trailer, 3 payload, 4 all-in. A block
// (one frame) is a leader with packet_id 0, payload packets 1…n and a
// trailer n+1. Block ID 0 is never used: the 16-bit ID wraps from 0xffff to
// 1, the 64-bit one from 2⁶⁴-1 to 1. Status 0x0100 marks a resent packet
// on some devices; 0x8xxx statuses carry no data.
//
// # GVSP leader
//
// Every leader starts with the same 12 bytes; an image leader (payload type
// 0x0001, or 0x4001 with chunk data) adds 24 bytes of image fields:
//
//	 0 field_info/flags(2)  2 payload_type(2)  4 timestamp(8, ticks)
//	12 pixel_format(4)     16 size_x(4)       20 size_y(4)
//	24 offset_x(4)         28 offset_y(4)     32 padding_x(2) 34 padding_y(2)
//
// A chunk-data leader (payload type 0x0004) has the first 12 bytes only.
// Bit 14 (0x4000) of payload_type says the payload carries chunks
// ("extended chunk mode").
//
// # GVSP trailer
//
//	0 reserved(2)  2 payload_type(2)  4 size_y(4) (image: lines actually sent)
//	8 chunk_layout_id(4)              (only when payload_type has 0x4000)
//
// # Chunk data
//
// With chunks the payload is a sequence of chunks, each its data followed
// by an 8-byte tag, so it is parsed backwards from its end:
//
//	… | data₀ | id₀(4) length₀(4) | data₁ | id₁(4) length₁(4) |  (end)
//
// The image itself is the first chunk. ChunkEncoderValue (the chunk ID is
// the camera's; acquisition/gige takes it from its options) holds either one
// signed 64-bit count, that of the frame's first line, or one per line
// (length 8 × lines), big-endian.
//
// # Pixel formats
//
// PFNC codes: bits 16-23 hold the bits per pixel. Mono10p/Mono12p pack
// pixels LSB first across bytes; the GigE Vision Mono10Packed/Mono12Packed
// pack two pixels in three bytes. Unpacked Mono10/12/16 are 16-bit
// little-endian.
package wire
