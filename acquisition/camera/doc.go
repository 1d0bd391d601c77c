// Package camera turns real line-scan cameras into an acquisition.Source:
// N GigE Vision cameras (package gige) on one encoder, or one USB3 Vision
// camera (package u3v), configured through their GenICam node maps.
//
// # Where the geometry comes from
//
// A camera knows its sensor (Width, Height, PixelFormat) but not where it
// looks: its CD offset on the web, the size of a pixel on the web, the
// encoder's resolution and the flat-field references are properties of the
// installation, measured when the cameras are mounted. They come from a
// geometry file (Geometry, JSON), not from the camera and not from the
// recipe (a recipe describes a product and moves between lines; geometry
// belongs to one line). The file is the acquisition.Info of the source,
// in the layout `webinspect camera-sim --info` writes, so the emulated
// cameras describe themselves exactly:
//
//	{
//	  "source": {                       acquisition.Info
//	    "material": "fabric", "web_width_mm": 2000,
//	    "mm_per_count": 0.0625, "counts_per_line": 4, "lines_per_block": 256,
//	    "cameras": [ {"index": 0, "width": 4096, "offset_mm": 0, "pixel_mm": 0.25,
//	                  "dark": [...], "white": [...]}, ... ]
//	  },
//	  "chunk_ids": {"EncoderValue": "0x57490002"}   optional
//	}
//
// Camera i of the file is the i-th camera of --source. The frame height
// the cameras are set to (Height) is lines_per_block; the trigger divider
// (EncoderDivider) is counts_per_line; each camera's Width is its width.
// chunk_ids.EncoderValue is the chunk ID of ChunkEncoderValue in the
// cameras' chunk data (vendor specific; absent: counts are estimated from
// the divider and the line sequence).
//
// # Settings onto SFNC features
//
// Settings.Apply writes, in this order and only what is set: OffsetX 0,
// Width, OffsetX, PixelFormat, Height, TriggerSelector=LineStart with
// TriggerMode=On and TriggerSource (the encoder; Off with
// AcquisitionLineRate when free-running), EncoderDivider, ExposureTime,
// then ChunkModeActive, ChunkSelector=EncoderValue, ChunkEnable. Each error
// names the feature and the value (`camera 1 (192.168.1.20): set
// EncoderDivider = 4: ...`). DeviceScanType, when the camera has it, must
// read Linescan.
//
// # A camera that disappears
//
// A GigE camera is gone when its control channel's heartbeat fails (the
// stream then returns an error wrapping gige.ErrLostControl) or its stream
// fails otherwise. The run keeps its roll: the stream closes the camera,
// reconnects with backoff (Options.Backoff up to Options.MaxBackoff, for
// as long as Options.ReconnectFor allows, 0 = until the run ends), sets it
// up again and starts acquisition. Lines the camera took while it was gone
// never reach the host; the first block after reconnecting reports them in
// Block.Lost with Reason "source-error": from the count after the last
// line delivered to the count before the first new one, Lines being that
// count span over the divider (the encoder chunk tells exactly where the
// web is; a web that ran backwards while the camera was gone loses no
// new lines). The line sequence (Block.FirstLine) continues across the
// reconnection. A camera that does not come back within ReconnectFor ends
// its stream with the error, and the engine records the rest of the web as
// uninspected (source-error).
//
// # Starting together
//
// The cameras' AcquisitionStart commands reach them one after the other,
// so their first lines are a few counts apart. Each camera's first block
// waits (at most 30 s) for every camera's first count, and every camera
// drops its lines below the highest of them: all cameras start at one
// count (Source.Start), which is where the engine's roll begins, and each
// camera's line sequence starts at 0 there.
//
// # Ending a run
//
// A line-scan camera sends nothing while the web stands still, so a live
// camera stream never ends by itself. Options.LengthMM, when set, ends
// every stream (io.EOF) once it has delivered a line at or beyond that MD
// position; otherwise the run ends when its context does.
//
// # Statistics
//
// Source.Stats gives each camera's counters (for /api/status); Source.Collector exports the same to Prometheus through
// gige.Collector (frames, lost frames, resent packets, lines, line rate),
// read at scrape time, so the receive path does no metric work.
package camera
