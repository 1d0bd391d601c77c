// Package status holds the engine's live status and roll-event types: what
// the engine tells the API, the UI and the plant bus about itself.
//
// It is a leaf package (it imports nothing of webinspect), so the API builds
// and tests without the engine, ONNX Runtime or the marking devices.
package status

import "time"

// Status is a snapshot of the running engine for the API and the UI.
type Status struct {
	State        string    `json:"state"` // starting, running, stopped, failed
	Error        string    `json:"error,omitempty"`
	Source       string    `json:"source"`
	Recipe       string    `json:"recipe"`
	Material     string    `json:"material"`
	RollID       string    `json:"roll_id"`
	Started      time.Time `json:"started"`
	SpeedMPerMin float64   `json:"speed_m_per_min"` // measured from the encoder over the last second
	MDM          float64   `json:"md_m"`            // current position on the roll
	WebWidthMM   float64   `json:"web_width_mm"`
	Cameras      int       `json:"cameras"`
	// LinesIn, BlocksDropped and LinesDropped count since the engine
	// process started, over every roll.
	LinesIn       int64 `json:"lines_in"`
	BlocksDropped int64 `json:"blocks_dropped"`
	LinesDropped  int64 `json:"lines_dropped"`
	// RollBlocksDropped and RollLinesDropped count the drops on the
	// current roll (reset at each roll change), since this process
	// started writing it.
	RollBlocksDropped int64 `json:"roll_blocks_dropped"`
	RollLinesDropped  int64 `json:"roll_lines_dropped"`
	// UninspectedM is the current roll's MD metres with any uninspected
	// band (the union over cameras, as the roll map counts it).
	UninspectedM   float64          `json:"uninspected_m"`
	Defects        int64            `json:"defects"`
	DefectsByClass map[string]int64 `json:"defects_by_class"`
	// Marks counts mark events by status (scheduled, fired, acknowledged,
	// late, missed); empty when marking is off.
	Marks map[string]int64 `json:"marks"`
	// CameraStats are the real cameras' acquisition counters, one per
	// camera; empty for the simulator and replays.
	CameraStats []CameraStats `json:"camera_stats,omitempty"`
}

// CameraStats are one real camera's acquisition counters since the run
// started, summed over reconnections.
type CameraStats struct {
	Index         int     `json:"index"`
	Name          string  `json:"name"`      // the camera as --source names it (address or serial)
	Connected     bool    `json:"connected"` // false while the camera is gone
	Frames        int64   `json:"frames"`    // frames delivered complete
	LostFrames    int64   `json:"lost_frames"`
	ResentPackets int64   `json:"resent_packets"`
	Lines         int64   `json:"lines"`      // lines delivered
	LostLines     int64   `json:"lost_lines"` // lines of lost frames (camera-frame-lost)
	GoneLines     int64   `json:"gone_lines"` // lines missed while the camera was gone (source-error)
	Reconnects    int64   `json:"reconnects"`
	LineRate      float64 `json:"line_rate"` // lines per second over the last second or so
}

// RollEventKind says what happened to a roll.
type RollEventKind string

// Roll event kinds.
const (
	RollStart  RollEventKind = "start"  // a roll change started the roll (MDM 0)
	RollEnd    RollEventKind = "end"    // the roll was closed after a roll change; MDM is its length
	RollSplice RollEventKind = "splice" // a splice was recorded; MDM is where it is on the roll
)

// RollEvent tells what happened to a roll.
type RollEvent struct {
	Kind   RollEventKind `json:"kind"`
	RollID string        `json:"roll_id"`
	MDM    float64       `json:"md_m"`
	Time   time.Time     `json:"time"`
	Note   string        `json:"note,omitempty"`
}
