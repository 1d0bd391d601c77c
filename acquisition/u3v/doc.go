// Package u3v acquires lines from USB3 Vision (U3V) line-scan cameras
// through libusb (github.com/google/gousb).
//
// # Model
//
// A U3V camera is a composite USB device: the device descriptor says
// Miscellaneous / Common / Interface Association (0xEF/0x02/0x01) and its
// U3V interfaces carry class 0xEF, subclass 0x05, with protocol 0 for
// device control (one bulk OUT and one bulk IN endpoint), 1 for events and
// 2 for streaming (one bulk IN endpoint). List enumerates them, Open claims
// one by USB serial number and reads its bootstrap registers, Describe
// says in one line what is attached (or that the machine has no USB bus:
// ErrNoUSB, or no camera: ErrNoDevices — neither is a failure for
// `webinspect cameras`).
//
// Control is GenCP: the host sends one command on the control OUT
// endpoint and reads acknowledges from the IN endpoint until the one with
// its request ID. A device that needs longer answers PENDING_ACK with a
// new timeout; a late acknowledge of an earlier attempt (older request ID)
// is dropped; a timeout or a garbled acknowledge sends the command again
// with a new ID and the resend flag. Device implements genicam.Port, so
// the GenICam node map reads and writes features through it.
//
// # Bootstrap registers
//
// The ABRM at address 0 holds the identity strings (64 bytes each:
// manufacturer 0x0004, model 0x0044, family 0x0084, version 0x00C4,
// serial 0x0144, user name 0x0184), the capability (u64 0x01C4; bit 2 =
// SBRM present), the maximum response time in ms (u32 0x01CC), the
// manifest table address (u64 0x01D0) and the SBRM address (u64 0x01D8).
// The SBRM holds the largest command and acknowledge transfers (u32 +0x14,
// +0x18), the number of stream channels (+0x1C) and the SIRM address
// (u64 +0x20). Until the SBRM is read the host keeps transfers to 1024
// bytes.
//
// The manifest table is a u64 entry count and 64-byte entries:
//
//	off  size  field
//	  0     4  file version: subminor u16, minor u8, major u8
//	  4     4  schema: bits 10..15 file type (0 XML, 1 zip), 16..23 schema minor, 24..31 major
//	  8     8  register address of the file
//	 16     8  file size
//	 24    20  SHA1 of the file (all zero: none)
//	 44    20  reserved
//
// The newest entry becomes a "Local:device.xml;ADDR;SIZE" (or .zip) URL for
// genicam.FetchXML; a non-zero SHA1 is checked over the bytes as stored.
//
// # GenCP prefix
//
// Every command and acknowledge starts with 12 bytes, little-endian:
//
//	off  size  command                 acknowledge
//	  0     4  magic 0x43563355 "U3VC" magic
//	  4     2  flags (bit 14 request   status (0 success, 0x8xxx GenCP,
//	           ack, bit 15 resend)     0xAxxx U3V errors)
//	  6     2  command ID              acknowledge ID
//	  8     2  length of what follows  length of what follows
//	 10     2  request ID (never 0)    request ID of the command
//
// READMEM (0x0800) carries address u64, reserved u16, length u16 and is
// answered by READMEM_ACK (0x0801) with the data. WRITEMEM (0x0802)
// carries address u64 and the data; WRITEMEM_ACK (0x0803) carries reserved
// u16 and the bytes written u16. PENDING_ACK (0x0805) carries reserved u16
// and the new timeout in ms u16.
//
// # Streaming
//
// The SIRM tells the host the payload alignment (2^(info>>24) bytes) and
// the required payload, leader and trailer sizes; the host writes how it
// will read one block — a leader transfer, TransferCount transfers of
// TransferSize, a first and second final transfer, a trailer transfer, all
// multiples of the alignment (at least the endpoint's max packet size) —
// and sets the enable bit. The device ends a transfer early with a short
// packet. Leader (52 bytes for images), little-endian:
//
//	off  size  field
//	  0     4  magic 0x4C563355 "U3VL"
//	  4     2  reserved
//	  6     2  leader size
//	  8     8  block ID
//	 16     2  reserved
//	 18     2  payload type (0x0001 image, 0x4001 image + chunks)
//	 20     8  timestamp
//	 28     4  pixel format (PFNC)
//	 32     4  size X        36  4  size Y
//	 40     4  offset X      44  4  offset Y
//	 48     2  padding X     50  2  reserved
//
// Trailer (32 bytes for images, 36 with chunks):
//
//	off  size  field
//	  0     4  magic 0x54563355 "U3VT"
//	  4     2  reserved
//	  6     2  trailer size
//	  8     8  block ID
//	 16     2  status (0 success, 0xA100 data discarded, 0xA101 overrun)
//	 18     2  reserved
//	 20     8  valid payload size
//	 28     4  size Y (lines actually sent)
//	 32     4  chunk layout ID (payload type 0x4001)
//
// Chunk data follows the image in the payload; each chunk is its data then
// a tag of chunk ID u32 and length u32 (little-endian), so chunks are found
// by walking back from the end of the valid payload.
//
// # Lines and lost frames
//
// A line-scan frame of N lines becomes one or more acquisition.Blocks (as
// many as the caller's block size needs), converted to 8 bits (Mono8,
// Mono10/12/16, Mono10/12Packed, Mono10p/12p: the most significant bits).
// The encoder count of a frame's first line comes from ChunkEncoderValue
// when StreamOptions.EncoderChunkID names it; the other lines follow every
// CountsPerLine counts. Without the chunk, line n (of the stream's line
// sequence) gets count n*CountsPerLine.
//
// A block the receiver cannot complete — a short payload, a missing
// trailer, a bad status, a leader it cannot read, an endpoint stall (the
// halt is cleared and the receiver drops everything until the next
// leader) — and a block the device itself dropped both show up as a gap in
// the block IDs at the next good frame. Its lines are reported, as the
// lead decided for all cameras (CAMERAS.md), in Block.Lost of the next
// block: an acquisition.LostLines with reason "camera-frame-lost" whose
// line range the next block's FirstLine continues after, and whose counts
// come from the encoder chunk around the gap or from the divider. No
// separate channel is needed: the engine reads Block.Lost. A block ID that
// goes backwards or jumps by more than 65536 frames is the camera
// restarting its counter, not a loss. Frames lost before the first good
// one are not counted.
//
// A line-scan camera only sends while the web moves, so the receiver has
// no frame timeout: a stopped web is not a lost frame. ReadBlock waits for
// its context; Close ends a waiting ReadBlock, which returns io.EOF.
//
// # The USB seam
//
// Every USB call goes through usbDevice (bulk OUT, bulk IN, clear halt,
// close) and usbBus (list, open, close). gousbDevice is the real one;
// tests put an emulated camera behind the seam (emu_test.go) that fails
// the test on misuse: claiming twice, use after close, wrong endpoint or
// direction, one endpoint from two goroutines, stream transfers that are
// not a multiple of the max packet size, malformed commands. gousb v1.1.3
// has no libusb_clear_halt, which resets the host side of a stalled pipe
// as well as the device side; clearhalt.go calls it on gousb's handle
// (falling back to a plain CLEAR_FEATURE(ENDPOINT_HALT) request).
// gousb panics when libusb cannot start; that becomes ErrNoUSB.
package u3v
