// Package rollmap keeps the roll map: every defect found on a roll, and every
// range of the roll that was not inspected, in Arrow form.
package rollmap

import "time"

// Defect is one defect on a roll. Positions are on the roll: MD in metres
// from the roll's start, CD in millimetres from the operator-side web edge.
type Defect struct {
	RollID       string    `json:"roll_id"`
	ID           int64     `json:"defect_id"`
	MDStartM     float64   `json:"md_start_m"`
	MDEndM       float64   `json:"md_end_m"`
	CDStartMM    float64   `json:"cd_start_mm"`
	CDEndMM      float64   `json:"cd_end_mm"`
	AreaMM2      float64   `json:"area_mm2"`
	PeakScore    float64   `json:"peak_score"` // detector score at the worst pixel (threshold detector: |contrast| in grey levels)
	MeanScore    float64   `json:"mean_score"`
	Contrast     float64   `json:"contrast"` // mean signed difference from background, grey levels
	Polarity     string    `json:"polarity"` // bright, dark or mixed
	Class        string    `json:"class"`
	Severity     string    `json:"severity"`
	Decision     string    `json:"decision"` // pass, mark, review
	Detector     string    `json:"detector"` // threshold, onnx:<model>
	Camera       int       `json:"camera"`   // camera that saw most of it
	Lane         int       `json:"lane"`     // -1 when no lanes are defined
	Time         time.Time `json:"time"`     // wall-clock time the defect was decided
	EncoderCount int64     `json:"encoder_count"`
	ImageRef     string    `json:"image_ref"`
	ReviewStatus string    `json:"review_status"` // "" (not reviewed), confirmed, false_alarm, reclassified
	ReviewLabel  string    `json:"review_label"`
}

// Uninspected is an MD range (over a CD band) that was not inspected, with
// the reason: a dropped block, a camera fault, an engine restart.
type Uninspected struct {
	RollID    string  `json:"roll_id"`
	MDStartM  float64 `json:"md_start_m"`
	MDEndM    float64 `json:"md_end_m"`
	CDStartMM float64 `json:"cd_start_mm"`
	CDEndMM   float64 `json:"cd_end_mm"`
	Camera    int     `json:"camera"` // -1 for all cameras
	Lines     int64   `json:"lines"`  // lines not inspected
	Reason    string  `json:"reason"` // dropped-block, engine-restart, source-error, ...
}

// Reasons for uninspected ranges.
const (
	ReasonDropped     = "dropped-block"
	ReasonSourceError = "source-error"
	ReasonRestart     = "engine-restart"
)

// RollInfo summarises one roll for listings.
type RollInfo struct {
	ID           string    `json:"id"`
	Recipe       string    `json:"recipe"`
	Material     string    `json:"material"`
	Source       string    `json:"source"`
	WebWidthMM   float64   `json:"web_width_mm"`
	Started      time.Time `json:"started"`
	Ended        time.Time `json:"ended,omitzero"`
	Open         bool      `json:"open"`     // still being written
	LengthM      float64   `json:"length_m"` // MD length inspected so far (from the encoder)
	Defects      int64     `json:"defects"`
	Uninspected  int64     `json:"uninspected_ranges"`
	UninspectedM float64   `json:"uninspected_m"` // total MD metres with any uninspected band
}

// Query selects defects of one roll. Zero values mean "no filter".
type Query struct {
	MDFromM  float64 // md_end_m >= MDFromM
	MDToM    float64 // md_start_m <= MDToM; 0 = no upper bound
	Class    string
	Decision string
	AfterID  int64 // only defects with ID > AfterID (for live polling and paging)
	Limit    int   // 0 = no limit

	// ByLane turns the lane filter on: Lane alone cannot mean "no filter",
	// as lane 0 is a lane.
	ByLane bool
	Lane   int // with ByLane: only defects of this lane (NoLane: outside every lane)
	// ReviewStatus keeps the defects with this review status; "" = no
	// filter, ReviewNone = only defects not reviewed yet.
	ReviewStatus string
}

// ReviewNone is the Query.ReviewStatus that selects defects not reviewed
// yet (an empty ReviewStatus).
const ReviewNone = "none"
