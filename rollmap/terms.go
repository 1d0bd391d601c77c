package rollmap

import (
	"fmt"
	"slices"
	"strings"
)

// # Terms
//
// A defect's decision, an uninspected range's reason and a defect's
// detector are stored as utf8 strings (FORMAT.md lists every value).
// They are typed here once; every package that writes or tests them uses
// these constants. The types are defined string types, so JSON and the
// Arrow columns hold the plain strings, and readers keep values they do
// not know (a newer writer may add some): Valid tells the known ones.

// Decision is what the recipe decided for a defect (Defect.Decision, the
// decision column).
type Decision string

// Decisions, in increasing order of what they ask of people downstream.
const (
	// DecisionPass lets the defect go: it is recorded, nothing else.
	DecisionPass Decision = "pass"
	// DecisionReview asks a person to look at the defect.
	DecisionReview Decision = "review"
	// DecisionMark marks the defect on the web (or cuts it out): the
	// marking unit fires for it and the cutting list names it.
	DecisionMark Decision = "mark"
)

// decisions is every Decision, in the order of the constants.
var decisions = []Decision{DecisionPass, DecisionReview, DecisionMark}

// Decisions returns every known decision, from pass to mark.
func Decisions() []Decision { return slices.Clone(decisions) }

// Valid reports whether d is a known decision.
func (d Decision) Valid() bool { return slices.Contains(decisions, d) }

// ParseDecision returns the decision named s, or an error wrapping
// ErrInvalid that lists the known ones.
func ParseDecision(s string) (Decision, error) {
	if d := Decision(s); d.Valid() {
		return d, nil
	}
	return "", fmt.Errorf("%w: decision %q: want one of %s", ErrInvalid, s, joinTerms(decisions))
}

// Reason says why a range of the roll was not inspected
// (Uninspected.Reason, the reason column).
type Reason string

// Reasons for uninspected ranges.
const (
	// ReasonDropped: the pipeline was overloaded and a camera's block
	// was dropped from its ring before a detector saw it.
	ReasonDropped Reason = "dropped-block"
	// ReasonSourceError: the image source failed (a camera or recording
	// error) and the camera delivered no more lines.
	ReasonSourceError Reason = "source-error"
	// ReasonRestart: the engine stopped (crash, kill, power cut) and the
	// roll was resumed; the range runs from the last flushed length to
	// the restart position (Store.ResumeRoll).
	ReasonRestart Reason = "engine-restart"
	// ReasonCameraEnded: a camera's stream ended without an error
	// before the others; the range runs from its last line to the
	// furthest line any camera reached, in its band.
	ReasonCameraEnded Reason = "camera-ended"
	// ReasonFrameLost: the camera reported a frame (a block of lines) it
	// captured but could not deliver, such as a GigE Vision frame with
	// missing packets that the driver gave up on.
	ReasonFrameLost Reason = "camera-frame-lost"
)

var reasons = []Reason{ReasonDropped, ReasonSourceError, ReasonRestart, ReasonCameraEnded, ReasonFrameLost}

// Reasons returns every known reason.
func Reasons() []Reason { return slices.Clone(reasons) }

// Valid reports whether r is a known reason.
func (r Reason) Valid() bool { return slices.Contains(reasons, r) }

// ParseReason returns the reason named s, or an error wrapping ErrInvalid
// that lists the known ones.
func ParseReason(s string) (Reason, error) {
	if r := Reason(s); r.Valid() {
		return r, nil
	}
	return "", fmt.Errorf("%w: reason %q: want one of %s", ErrInvalid, s, joinTerms(reasons))
}

// Detector names the detector, or detectors, that found a defect
// (Defect.Detector, the detector column):
//
//	threshold                 the threshold detector
//	onnx:<model>              the ONNX model detector running model <model>
//	threshold+onnx:<model>    both saw the defect (merged into one defect)
//
// A combined detector lists its parts joined by "+", the threshold
// detector first, then models in the order they were added. A model name
// is 1 to 128 bytes without "+" and control characters.
type Detector string

// DetectorThreshold is the threshold detector.
const DetectorThreshold Detector = "threshold"

// ModelDetectorPrefix starts the identity of a model detector.
const ModelDetectorPrefix = "onnx:"

// detectorSep joins the parts of a combined detector.
const detectorSep = "+"

// maxModelName bounds a model name in a detector identity, in bytes.
const maxModelName = 128

// ModelDetector returns the identity of the model detector running model
// (ModelDetectorPrefix + model). It does not check the name; ParseDetector
// does.
func ModelDetector(model string) Detector { return Detector(ModelDetectorPrefix + model) }

// ParseDetector checks s and returns it as a Detector: one part, or
// several joined by "+", each "threshold" or "onnx:<model>", without
// repeats. The error wraps ErrInvalid and says what is wrong.
func ParseDetector(s string) (Detector, error) {
	if s == "" {
		return "", fmt.Errorf("%w: detector is empty", ErrInvalid)
	}
	parts := strings.Split(s, detectorSep)
	for i, p := range parts {
		if err := checkDetectorPart(p); err != nil {
			return "", fmt.Errorf("%w: detector %q: %v", ErrInvalid, s, err)
		}
		if slices.Contains(parts[:i], p) {
			return "", fmt.Errorf("%w: detector %q: %q appears twice", ErrInvalid, s, p)
		}
	}
	return Detector(s), nil
}

func checkDetectorPart(p string) error {
	if Detector(p) == DetectorThreshold {
		return nil
	}
	name, ok := strings.CutPrefix(p, ModelDetectorPrefix)
	if !ok {
		return fmt.Errorf("part %q: want %s or %s<model>", p, DetectorThreshold, ModelDetectorPrefix)
	}
	if name == "" || len(name) > maxModelName {
		return fmt.Errorf("model name of %q: want 1 to %d bytes", p, maxModelName)
	}
	if strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("model name of %q has a control character", p)
	}
	return nil
}

// Parts returns the single detectors d is made of (d itself when it is
// one); none for the empty detector.
func (d Detector) Parts() []Detector {
	if d == "" {
		return nil
	}
	ss := strings.Split(string(d), detectorSep)
	ps := make([]Detector, len(ss))
	for i, s := range ss {
		ps[i] = Detector(s)
	}
	return ps
}

// Has reports whether part is one of d's parts.
func (d Detector) Has(part Detector) bool { return slices.Contains(d.Parts(), part) }

// Model returns the model name of a single model detector, and false for
// any other detector (threshold, combined, empty).
func (d Detector) Model() (string, bool) {
	name, ok := strings.CutPrefix(string(d), ModelDetectorPrefix)
	if !ok || strings.Contains(name, detectorSep) {
		return "", false
	}
	return name, true
}

// CombineDetectors returns the identity of a defect that the detectors a
// and b both saw: every part of either, once, the threshold detector
// first, then the other parts of a, then those of b. An empty a or b
// gives the other.
func CombineDetectors(a, b Detector) Detector {
	var ps []Detector
	if a.Has(DetectorThreshold) || b.Has(DetectorThreshold) {
		ps = append(ps, DetectorThreshold)
	}
	for _, p := range append(a.Parts(), b.Parts()...) {
		if !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	return Detector(joinTermsSep(ps, detectorSep))
}

func joinTerms[S ~string](ts []S) string { return joinTermsSep(ts, ", ") }

func joinTermsSep[S ~string](ts []S, sep string) string {
	var b strings.Builder
	for i, t := range ts {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(string(t))
	}
	return b.String()
}
