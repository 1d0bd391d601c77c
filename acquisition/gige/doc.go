// Package gige is a GigE Vision client in pure Go: discovery, the GVCP
// control channel and the GVSP stream receiver, plus the adapter that turns
// a line-scan camera's frames into acquisition blocks. The packet layouts
// live in package wire.
//
// # Pieces
//
//	Discover ──▶ Device ──▶ Dial ──▶ Conn (GVCP: registers, memory, heartbeat; genicam.Port)
//	                                  │
//	                    Open: Conn + genicam.FetchXML + Parse + Connect = Camera
//	                                  │
//	                    OpenStream ──▶ Stream (GVSP: one goroutine, frames)
//	                                  │
//	                    NewLineStream ▶ LineStream (acquisition.Stream)
//
// # Control channel
//
// Conn sends one command at a time and waits for its acknowledge, sending
// it again (same request ID) after each Options.Timeout, up to
// Options.Retries times; a PENDING_ACK extends the wait by the time the
// device announces. Acknowledges from other addresses or with another
// request ID are dropped (late answers to earlier attempts). Dial takes
// control privilege (CCP) and starts a heartbeat goroutine that reads CCP
// every third of the heartbeat timeout; three failures in a row close
// Lost(). Four-byte aligned accesses go as READREG/WRITEREG, the rest as
// READMEM/WRITEMEM blocks of up to 536 bytes (unaligned edges are read,
// merged and written back), so any genicam register works.
//
// # Stream
//
//	             ┌──── free (cap Buffers) ◀──────── Release ◀──┐
//	             ▼                                             │
//	UDP ─▶ receive goroutine: reassemble into a Frame ─▶ full ─▶ Next ─▶ consumer
//	             │
//	             └─▶ PACKETRESEND to the device (control socket)
//
// Buffers frames of MaxPayload bytes are allocated once by OpenStream and
// cycle between the two channels, so the steady state allocates nothing.
// The receive socket gets a large buffer (SO_RCVBUFFORCE, else SO_RCVBUF;
// Stats.SocketBuffer is what the kernel granted).
//
// A payload packet with ID n is copied to offset (n-1)×P of its frame, P
// being the payload per packet that the channel's packet size (SCPS) gives.
// A frame is complete when its leader, its trailer and every packet between
// have arrived. Up to InFlight frames are reassembled at once; they are
// delivered in block order only, so a frame waits for older ones to
// complete or be given up.
//
// A jump in packet IDs within a block is a gap: the missing packets are
// requested at once (a late original then arrives as a duplicate and is
// dropped). Every few milliseconds the receiver asks again for what is
// still missing in frames that have been quiet for ResendTimeout, at most
// ResendRetries rounds, each bounded to ResendRatio of the frame's packets.
// A frame's tail (after the highest packet seen) is requested only once a
// later block has begun. A frame quiet for FrameTimeout, or pushed out by
// InFlight newer ones, or answered with PACKET_UNAVAILABLE, is lost.
//
// Block IDs are 16-bit (wrapping from 65535 to 1) or 64-bit (extended IDs,
// per packet); wire.BlockDistance handles both. A block that never showed
// up, one given up, and one that arrived while the consumer held every
// buffer all count as lost: each delivered Frame says in LostBefore how
// many blocks were lost just before it.
//
// # Lost frames become lost lines
//
// CAMERAS.md left open how a camera stream reports lost frames; the
// decision (by the lead) is a field on the block rather than a side
// channel: LineStream reports the lines of the frames lost before a block
// in that block's Lost (acquisition.LostLines, Reason "camera-frame-lost"),
// and the block's FirstLine jumps past them. The engine puts them on the
// roll map as uninspected, as it does for blocks dropped at the ring. Lost
// lines = lost frames × the frame height. Frames lost after the last
// delivered one (the stream ended) are only counted in Stats.
//
// # Encoder counts
//
// With ChunkEncoderValue (LineOptions.EncoderChunkID) a frame carries
// either one count per line (8 bytes each, big-endian) or the count of its
// first line, the others following every CountsPerLine counts. Without
// chunk data, line i of the sequence is at FirstCount + i×CountsPerLine,
// which stays right across lost frames because the line sequence jumps by
// their lines.
//
// # Pixel formats
//
// Mono8, Mono10/12/16 (16-bit containers), Mono10p/Mono12p and the GigE
// Mono10Packed/Mono12Packed are converted to 8 bits (the most significant
// bits) line by line into the caller's block.
package gige
