// Package rollmap keeps the roll map: every defect found on a roll, and every
// range of the roll that was not inspected, in Arrow form.
package rollmap

import "time"

// Defect is one defect on a roll. Positions are on the roll: MD in metres
// from the roll's start, CD in millimetres from the operator-side web edge
// (found on the defect's lines, see WebEdgeMM).
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
	Decision     Decision  `json:"decision"` // DecisionPass, DecisionReview or DecisionMark
	Detector     Detector  `json:"detector"` // DetectorThreshold, ModelDetector(model) or a combination
	Camera       int       `json:"camera"`   // camera that saw most of it
	Lane         int       `json:"lane"`     // -1 when no lanes are defined
	Time         time.Time `json:"time"`     // wall-clock time the defect was decided
	EncoderCount int64     `json:"encoder_count"`
	ImageRef     string    `json:"image_ref"`
	ReviewStatus string    `json:"review_status"` // "" (not reviewed), confirmed, false_alarm, reclassified
	ReviewLabel  string    `json:"review_label"`
	// ImageError says why the defect has no crop (ImageRef empty): see
	// the ImageError constants; "" when it has one (or, in rolls written
	// before the column existed, when nobody recorded why).
	ImageError string `json:"image_error,omitempty"`
	// RecipeVersion and ModelVersion name the recipe and the learned model
	// that decided the defect (rollmap/versions: the first 16 hex digits of
	// the SHA-256 of their canonical bytes). ModelVersion is "" when only
	// the threshold detector ran; both are "" in rolls written before
	// versions were recorded.
	RecipeVersion string `json:"recipe_version,omitempty"`
	ModelVersion  string `json:"model_version,omitempty"`
	// LearnedClass and LearnedConfidence are what the defect classifier
	// learned from reviews (model/classify) made of the defect's crop;
	// ClassifierVersion names that classifier. RuleClass is the class the
	// recipe's rules gave: Class differs from it when the learned class
	// overrode it (the recipe's classifier.override_min_confidence). All
	// empty (0) when no classifier ran on the defect.
	LearnedClass      string  `json:"learned_class,omitempty"`
	LearnedConfidence float64 `json:"learned_confidence,omitempty"`
	ClassifierVersion string  `json:"classifier_version,omitempty"`
	RuleClass         string  `json:"rule_class,omitempty"`
	// ModelScore is the model detector's peak anomaly score over the
	// defect, 0 when the model did not flag it. For a defect only the
	// model saw it equals PeakScore; for one both detectors saw, PeakScore
	// is the threshold detector's |contrast| and this keeps the model's
	// score, so each detector's threshold can be calibrated from reviews
	// (rollmap/calibrate).
	ModelScore float64 `json:"model_score,omitempty"`
	// ModelMeanScore and ModelAreaMM2 are the model detector's mean
	// anomaly score over the pixels it flagged in the defect and their
	// area (in the cameras' owned strips, as AreaMM2); 0 when the model
	// did not flag it. With ModelScore they are the taught model's
	// features of the defect classifier (model/classify).
	ModelMeanScore float64 `json:"model_mean_score,omitempty"`
	ModelAreaMM2   float64 `json:"model_area_mm2,omitempty"`
	// WebEdgeMM is where the operator-side web edge ran beside the
	// defect, in the machine's CD frame (the cameras' geometry: mm from
	// where it puts the web edge). The engine finds the edge on every line
	// (the recipe's threshold.off_web) and measures CDStartMM/CDEndMM from
	// it, so a web that wanders across the line keeps its defects' CD on
	// the roll; the machine CD (the camera pixels, the marking heads) is
	// CD + WebEdgeMM (a defect reaching beyond the found edge keeps
	// CDStartMM 0, its machine start further out). 0 when no edge was found (the web fills the view,
	// or the search is off): CD is then the geometry's, as before the
	// column existed.
	WebEdgeMM float64 `json:"web_edge_mm,omitempty"`

	// Mark is the state of the defect's mark, merged from the roll's mark
	// events (see MarkEvent, MergeMarkEvents). It is not a column of
	// defects.arrows: the defect row is written when the defect is
	// decided, before its mark fires. Readers fill it; AddDefects ignores
	// it. Zero when no mark event names the defect.
	Mark MarkState `json:"mark,omitzero"`
}

// MarkEvent is one step in the life of a mark: the marking unit scheduled
// it, fired it, had it acknowledged, or found it late or missed. Events are
// appended to the roll's marks.arrows as they happen; a defect's MarkState
// is the merge of its events.
type MarkEvent struct {
	RollID      string    `json:"roll_id"`
	DefectID    int64     `json:"defect_id"`
	MarkID      int64     `json:"mark_id"` // the marking unit's ID of the mark (one per head and merged group)
	Head        string    `json:"head"`
	Status      string    `json:"status"`       // MarkScheduled, MarkFired, MarkAcknowledged, MarkLate or MarkMissed
	TargetCount int64     `json:"target_count"` // encoder count at which the head is to fire
	FireCount   int64     `json:"fire_count"`   // encoder count at which it fired (fired events)
	MDM         float64   `json:"md_m"`         // MD position of the mark on the roll, m
	CDMM        float64   `json:"cd_mm"`        // CD position of the head, mm from the operator-side edge
	PassedByMM  float64   `json:"passed_by_mm"` // late/missed: how far the defect had passed the head, mm
	Time        time.Time `json:"time"`         // wall-clock time of the event
	Error       string    `json:"error"`        // missed: why (connection lost, ...)
}

// Mark statuses, in increasing precedence (see MergeMarkEvents).
const (
	MarkScheduled    = "scheduled"
	MarkFired        = "fired"
	MarkAcknowledged = "acknowledged"
	MarkLate         = "late"
	MarkMissed       = "missed"
)

// MarkNone is the Query.MarkStatus that selects defects without any mark
// event.
const MarkNone = "none"

// MarkState is the merged state of every mark event of one defect. The
// flags say which statuses were seen; Status is the one of highest
// precedence (missed > late > acknowledged > fired > scheduled).
type MarkState struct {
	Status       string    `json:"status"`
	Head         string    `json:"head"` // head of the event that set Status
	Scheduled    bool      `json:"scheduled"`
	Fired        bool      `json:"fired"`
	Acknowledged bool      `json:"acknowledged"`
	Late         bool      `json:"late"`
	Missed       bool      `json:"missed"`
	FireCount    int64     `json:"fire_count"`         // encoder count of the last fired event
	FireTime     time.Time `json:"fire_time,omitzero"` // time of the last fired event
	TargetCount  int64     `json:"target_count"`       // last non-zero target count
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
	Reason    Reason  `json:"reason"` // ReasonDropped, ReasonSourceError, ReasonRestart, ...
}

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
	Splices      []Splice  `json:"splices,omitempty"`
	// Context is the production context; ContextHistory its changes
	// (RollMeta).
	Context        RollContext     `json:"context,omitzero"`
	ContextHistory []ContextChange `json:"context_history,omitempty"`
}

// Query selects defects of one roll. Zero values mean "no filter".
type Query struct {
	MDFromM  float64 // md_end_m >= MDFromM
	MDToM    float64 // md_start_m <= MDToM; 0 = no upper bound
	Class    string
	Decision Decision
	AfterID  int64 // only defects with ID > AfterID (for live polling and paging)
	Limit    int   // 0 = no limit

	// ByLane turns the lane filter on: Lane alone cannot mean "no filter",
	// as lane 0 is a lane.
	ByLane bool
	Lane   int // with ByLane: only defects of this lane (NoLane: outside every lane)
	// ReviewStatus keeps the defects with this review status; "" = no
	// filter, ReviewNone = only defects not reviewed yet.
	ReviewStatus string
	// MarkStatus keeps the defects whose merged mark status
	// (Defect.Mark.Status) is this; "" = no filter, MarkNone = only
	// defects without any mark event.
	MarkStatus string
}

// ReviewNone is the Query.ReviewStatus that selects defects not reviewed
// yet (an empty ReviewStatus).
const ReviewNone = "none"
