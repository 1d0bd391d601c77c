// Package status holds the engine's live status and roll-event types: what
// the engine tells the API, the UI and the plant bus about itself.
//
// It is a leaf package (it imports nothing of webinspect), so the API builds
// and tests without the engine, ONNX Runtime or the marking devices.
package status

import "time"

// Status is a snapshot of the running engine for the API and the UI.
type Status struct {
	State          string           `json:"state"` // starting, running, stopped, failed
	Error          string           `json:"error,omitempty"`
	Source         string           `json:"source"`
	Recipe         string           `json:"recipe"`
	Material       string           `json:"material"`
	RollID         string           `json:"roll_id"`
	Started        time.Time        `json:"started"`
	SpeedMPerMin   float64          `json:"speed_m_per_min"` // measured from the encoder over the last second
	MDM            float64          `json:"md_m"`            // current position on the roll
	WebWidthMM     float64          `json:"web_width_mm"`
	Cameras        int              `json:"cameras"`
	LinesIn        int64            `json:"lines_in"`
	BlocksDropped  int64            `json:"blocks_dropped"`
	LinesDropped   int64            `json:"lines_dropped"`
	UninspectedM   float64          `json:"uninspected_m"`
	Defects        int64            `json:"defects"`
	DefectsByClass map[string]int64 `json:"defects_by_class"`
	// Marks counts mark events by status (scheduled, fired, acknowledged,
	// late, missed); empty when marking is off.
	Marks map[string]int64 `json:"marks"`
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
