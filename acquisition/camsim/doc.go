// Package camsim is an emulated line-scan GigE Vision camera: it serves the
// simulated web (acquisition/sim) over real UDP sockets as a standard
// device, with its own GenICam XML, so the real acquisition path (our
// acquisition/gige client, or Aravis) can be run and tested without
// hardware. `webinspect camera-sim` is Main.
//
// # Model
//
// An Emulator is N cameras side by side over one simulated web and one
// encoder, exactly as sim lays them out (camera i starts at CD
// i*(span-overlap), neighbours share OverlapMM). Each camera is a device of
// its own: a GVCP server (discovery, READREG/WRITEREG, READMEM/WRITEMEM,
// control privilege with heartbeat, PACKETRESEND) on its own address and a
// GVSP sender on its own socket. The web has one clock for all cameras: it
// starts moving at the first AcquisitionStart of any camera, so blocks of
// different cameras line up on MD.
//
// # Addresses
//
// Options.Listen is the first camera's GVCP address. On loopback camera i
// listens on IP+i with the same port (127.0.0.1:3956, 127.0.0.2:3956, …):
// Aravis only talks to port 3956. On any other address the cameras share
// the IP and take port, port+1, … (Aravis then finds camera 0 only; our
// client takes any port). Each camera also listens on 255.255.255.255 and,
// off loopback, on its subnet's directed broadcast address, at its port
// (SO_REUSEADDR, shared with other emulators such as arv-fake-gv-camera),
// and answers broadcast discovery from its own address, and by broadcast
// as well when the command allows a broadcast acknowledge. Port 0 gives
// every camera a free port (tests).
//
// # Bootstrap registers
//
// GigE Vision 1.2, big-endian registers (wire.Reg… addresses). What the
// camera sets: manufacturer "webinspect", model "WI-LS-Sim", serial
// "camsim-<i>", user name "camera<i>" (writable), MAC 02:57:49:00:00:<i>,
// one stream channel, no message channel, capabilities WRITEMEM, serial,
// user name and PACKETRESEND (not with NoResend), heartbeat timeout 3000 ms
// (writable, ≥ 100), timestamp tick 1 GHz (latch and reset through 0x0944),
// SCPS packet size 576-9000 (Options.PacketSize at power-on; the fire-test
// bit sends one packet of exactly that size; big-endian pixel bit refused),
// SCPD inter-packet delay in ns, SCDA/SCP the stream destination, SCSP the
// sender's source port. The first URL is
//
//	Local:webinspect-linescan.zip;100000;<len>   (or .xml with PlainXML)
//
// and the XML (zipped with deflate, padded to a multiple of 4 through the
// zip comment) is readable at 0x100000. READMEM/WRITEMEM need 4-byte
// aligned addresses and counts (BAD_ALIGNMENT otherwise).
//
// # Device registers
//
// Device features live at 0x10000 (device.xml names them; all 4-byte
// unsigned big-endian unless noted):
//
//	0x10000 SensorWidth (RO)         0x10004 Width (8..SensorWidth-OffsetX, step 8)
//	0x10008 Height: lines per frame  0x1000c OffsetX (step 8)
//	0x10010 PixelFormat (PFNC)       0x10014 DeviceScanType (RO, 1 = Linescan)
//	0x10018 AcquisitionMode 0/1/2    0x1001c AcquisitionStart (write 1)
//	0x10020 AcquisitionStop (1)      0x10028 TLParamsLocked (set during acquisition)
//	0x1002c TriggerSelector 0/1      0x10030 EncoderDivider (only the web's value)
//	0x10034 TriggerSoftware (1)      0x10038 ChunkModeActive
//	0x1003c ChunkSelector 0/1/2      0x10040 TestRegister (any value)
//	0x10044 EncoderDivider limit (RO) 0x10048 AcquisitionFrameCount
//	0x10050 AcquisitionLineRate (float64, 100..200000 Hz)
//	0x10058 ExposureTime (float64, 1..10000 µs; stored, no effect)
//	0x10100 + 0x10*sel  TriggerMode of selector sel (LineStart 0, FrameStart 1)
//	0x10104 + 0x10*sel  TriggerSource: LineStart only Encoder0 (0), FrameStart only Software (1)
//	0x10200 + 4*sel     ChunkEnable of EncoderValue (0), Timestamp (1), LineCounter (2)
//
// Width, Height, OffsetX, PixelFormat, AcquisitionMode, AcquisitionFrameCount,
// ChunkModeActive and ChunkEnable refuse changes during acquisition (BUSY);
// values out of range are INVALID_PARAMETER, read-only registers
// WRITE_PROTECT, unmapped addresses INVALID_ADDRESS. Without control
// privilege writes are ACCESS_DENIED once someone holds control; under
// exclusive access reads are refused too.
//
// # Control privilege
//
// Writing CCP (0x0a00) with the control or exclusive bit takes control when
// nobody holds it; the controller's address and port then own the camera.
// Every command from the controller is its heartbeat. When it falls silent
// for longer than the heartbeat timeout (unless the heartbeat is disabled
// in 0x0954) the camera drops control, stops acquisition and forgets the
// stream destination, as real cameras do. Writing 0 releases control and
// stops acquisition.
//
// # Line timing
//
// TriggerSelector=LineStart with TriggerMode=On (power-on; source Encoder0)
// takes a line at every trigger of the simulated encoder: line times follow
// the web's motion (Options.Web.Motion: stops, backward jogs), so a stopped
// web sends nothing and a jog sends the lines it triggers backwards. Lines
// the web passed before AcquisitionStart (or while the camera was stopped)
// are skipped. With LineStart TriggerMode=Off the camera free-runs at
// AcquisitionLineRate: it takes the web's next lines in order, one every
// 1/rate seconds (the encoder counts in the chunks are still the web's).
// FrameStart TriggerMode=On (source Software) starts one frame per
// TriggerSoftware; lines before it are skipped. AcquisitionMode SingleFrame
// and MultiFrame (AcquisitionFrameCount) stop after that many frames.
//
// A frame of Height lines is sent once its last line has been taken,
// packets paced over 80 % of the nominal frame period (and at least GevSCPD
// apart), in sendmmsg(2) batches of 16 on Linux. A generator goroutine
// renders up to two frames ahead. The last frame of the web may be shorter
// (leader Height and trailer SizeY say how many lines it holds); after it
// the camera sends nothing more. The web runs once per Emulator: a new roll
// needs a new camera-sim.
//
// # Stream
//
// One block per frame, 16-bit block IDs from 1 (wrapping to 1, never 0),
// standard 8-byte GVSP headers (no extended IDs). Leader (packet 0): image
// leader, payload type 0x0001, or 0x4001 with chunks; timestamp of line 0
// in 1 GHz ticks; pixel format, Width, lines, OffsetX. Payload packets
// 1…n: SCPS-36 bytes each, the last one shorter. Trailer (packet n+1):
// payload type, lines, chunk layout ID (a bit per active chunk switch).
// Pixels of Mono10/12/16 are 16-bit little-endian with the 8-bit sample in
// the high bits (v<<(d-8) | v>>(16-d)); Mono10p/Mono12p are PFNC packed,
// LSB first. Mono8 is the simulator's raw output.
//
// # Chunk data
//
// With ChunkModeActive the payload is a chain of chunks, each followed by a
// tag, read backwards from its end ("extended chunk mode"):
//
//	+-----------+----------------+---------------------+----------------+
//	| image     | 0x57490001 len | counts (8 × lines)  | 0x57490002 len |
//	+-----------+----------------+---------------------+----------------+
//	| timestamp (8) | 0x57490003 8 | line counter (8) | 0x57490004 8 |
//	+---------------+--------------+------------------+--------------+
//
// Tags are ID(4) and data length(4), big-endian; disabled chunks are left
// out, the image chunk is always first. ChunkEncoderValue (0x57490002)
// carries one signed 64-bit big-endian encoder count per line of the frame,
// line 0 first (the XML's ChunkEncoderValue node reads line 0's): the
// per-line counts are what make backward jogs exact. ChunkTimestamp
// (0x57490003) is line 0's timestamp, as in the leader. ChunkLineCounter
// (0x57490004, custom) is the sequence number of line 0 among all lines the
// camera took since AcquisitionStart; dropped frames advance it, so the
// host knows exactly how many lines it lost. PayloadSize (a SwissKnife in
// the XML) counts the image, the image tag and each enabled chunk.
//
// # Faults
//
// PacketLoss skips that many packets per thousand (leaders, payload and
// trailers alike, decided by a generator seeded from Web.Seed and the
// camera); skipped packets stay in the resend ring, and resent packets are
// never lost. ResendFrames newest frames are kept; a PACKETRESEND for them is
// answered with the packets (status 0x0100, "resent"); for an older or
// unknown block with one error packet PACKET_REMOVED_FROM_MEMORY, and with
// NoResend (capability bit off) with PACKET_UNAVAILABLE, so hosts give up
// at once. FrameDrop drops that many frames per thousand whole: their block
// IDs and line-counter values are skipped, nothing is sent or resendable.
//
// Every frame not sent whole is recorded as a Fault (camera, block ID,
// line counter and lines, first and last encoder count, kind, packets
// lost, resendable): Emulator.Faults, and Options.FaultsFile (CSV,
// FaultsHeader) when Serve returns. The frames of faults that are not
// resendable are exactly the lines a host must report lost.
//
// # Lost frames on the host
//
// The camera only makes frames go missing; the host side decides what that
// means. As CAMERAS.md fixes, acquisition/gige reports a frame that never
// arrived complete in acquisition.Block.Lost (acquisition.LostLines, reason
// "camera-frame-lost") of the next block, with FirstLine continuing the line
// sequence; the block ID gap and the LineCounter chunk give the lines, the
// encoder chunk of the neighbours their counts.
//
// # Ground truth
//
// Options.TruthFile receives sim.WriteTruthCSV of the web at start;
// Options.InfoFile a JSON object with the acquisition.Info of the web
// (encoder resolution, divider, cameras' CD offsets, pixel size and
// flat-field references), each camera's address and serial, and the chunk
// IDs. Emulator.Truth and Emulator.Info give the same in process.
//
// # Command line
//
// `webinspect camera-sim` (Main, or Command with the host's logger; flags
// registered by NewFlags):
//
//	--cameras N            cameras on one web and encoder (1)
//	--listen IP[:port]     first camera's GVCP address (127.0.0.1, port 3956)
//	--material, --length, --seed, --speed, --defects
//	                       the web (fabric, 200 m, 1, 100 m/min, 40)
//	--pixel-mm, --line-mm, --counts-per-line, --overlap-mm
//	                       resolution, encoder divider, camera overlap
//	--stop-at M --stop-seconds S --jog-back M
//	                       stop after M metres for S s, jog back, run on
//	--width PX             sensor width per camera (4096, multiple of 8)
//	--lines-per-frame N    power-on Height (256)
//	--line-rate HZ         power-on AcquisitionLineRate (10000)
//	--packet-size B        power-on GevSCPSPacketSize (1500; on loopback 7800 is
//	                       best: a datagram of 8 KiB or more costs the
//	                       receiver 16 KiB of socket buffer, one of 7800 8 KiB)
//	--packet-loss ‰        stream packets lost per thousand (0)
//	--no-resend            refuse packet resends
//	--frame-drop ‰         frames dropped whole per thousand (0)
//	--resend-frames N      frames kept for resends (16)
//	--truth FILE           write the defect truth CSV
//	--info FILE            write addresses, chunk IDs and geometry (JSON)
//	--faults FILE          write the frames not sent whole (CSV) on exit
//	--plain-xml            serve the XML unzipped
//	-v                     debug logs
//
// It prints "camera <i> <address> <serial>" per camera on stdout and serves
// until SIGINT or SIGTERM.
package camsim
