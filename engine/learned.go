package engine

import (
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/model/classify"
	"github.com/webinspect/webinspect/rollmap"
)

// # The learned defect classifier
//
// The classifier learned from reviews (model/classify, webinspect learn)
// runs in the assembly, once per decided defect, on the crop just cut for
// the archive: nothing is added to the per-line path. It gives the defect
// LearnedClass and LearnedConfidence; when the confidence reaches the
// recipe's classifier.override_min_confidence the learned class replaces
// the rule-based one (kept in RuleClass) and the recipe's severity and
// decision rules are applied again for the new class, before the defect
// is written and its mark scheduled. A defect without a crop (crops off,
// or its lines no longer held) is not classified. SetClassifier swaps the
// classifier while the engine runs; a classifier that does not load is
// never swapped in, so the engine keeps the one it has.
//
// A classifier trained on the taught model's scores (feature set
// classify.FeaturesWithModel: the model's peak and mean score over the
// defect and the area it flagged, which the model detector computed on
// the line stream anyway and the defect record keeps in model_score,
// model_mean_score and model_area_mm2) is tied to the model whose scores
// it learned: the engine takes it only when it runs that model
// (Options.ModelVersion equal to the classifier's model_version), else
// New fails and SetClassifier refuses it and keeps the classifier it
// has. Another model's scores have another scale, and an engine without
// a model would give every defect "not flagged": both would be silently
// misread. No extra inference runs for these features.

// ClassifierOptions configures the defect classifier learned from reviews
// (model/classify). Every defect with a crop gets the learned class and
// its confidence beside the rule-based class; the learned class replaces
// the rule-based one (and severity and decision follow the new class)
// only when its confidence reaches OverrideMinConfidence.
type ClassifierOptions struct {
	// Path is the classifier directory (classifier.onnx, classifier.json)
	// run when --classifier does not name one; "" = none.
	Path string `json:"path,omitempty"`
	// OverrideMinConfidence is the confidence from which the learned class
	// overrides the rule-based one: 0.5..1, or 0 to record the learned
	// class without ever overriding. Default 0.9.
	OverrideMinConfidence float64 `json:"override_min_confidence"`
}

func (c *ClassifierOptions) validate() error {
	if v := c.OverrideMinConfidence; v != 0 && (v < 0.5 || v > 1) {
		return fmt.Errorf("classifier.override_min_confidence = %g: want 0 (never override) or 0.5..1", v)
	}
	return nil
}

// Classifier is a loaded defect classifier and its version.
type Classifier struct {
	C       *classify.Classifier
	Version string // rollmap/versions ID of the classifier directory
}

// learnedStage runs the classifier in the assembly goroutine.
type learnedStage struct {
	cur        atomic.Pointer[Classifier]
	recipe     *Recipe
	webWidthMM float64
	feats      []float32
	log        zerolog.Logger
	seconds    prometheus.Observer
	errors     prometheus.Counter
}

// MeasuredOf is what the classifier is given of defect d on a web
// webWidthMM wide: the measures the recipe's rules saw (see Measure), the
// signed contrast and the distance to the nearer web edge. webinspect
// learn computes it the same way from the roll map.
func MeasuredOf(d *rollmap.Defect, webWidthMM float64) classify.Measured {
	m := measureOf(d)
	edge := d.CDStartMM
	if webWidthMM > 0 {
		edge = min(edge, webWidthMM-d.CDEndMM)
	}
	return classify.Measured{LengthMM: m.LengthMM, WidthMM: m.WidthMM, AreaMM2: m.AreaMM2, Contrast: d.Contrast,
		PeakAbs: d.PeakScore, Polarity: d.Polarity, EdgeMM: max(edge, 0), Uniformity: m.Uniformity(),
		Model: classify.ModelScores{Peak: d.ModelScore, Mean: d.ModelMeanScore, AreaMM2: d.ModelAreaMM2}}
}

// measureOf rebuilds the Measure the merger classified d with.
func measureOf(d *rollmap.Defect) Measure {
	// The record stores MD in metres; the assembly measured the length in
	// millimetres from line counts. Rounded to a nanometre, the difference
	// of the stored metres gives back that length exactly, so a defect at
	// a size limit (1 mm = 0.001 m, which comes back as 0.99999…) is
	// decided as the engine decided it.
	m := Measure{LengthMM: math.Round((d.MDEndM-d.MDStartM)*1e9) / 1e6, WidthMM: d.CDEndMM - d.CDStartMM, AreaMM2: d.AreaMM2, Polarity: d.Polarity}
	if strings.HasPrefix(string(d.Detector), string(rollmap.DetectorThreshold)) {
		m.PeakAbs, m.MeanAbs = d.PeakScore, d.MeanScore // a defect only the model saw has no contrast
	}
	return m
}

// apply classifies d from its crop (w × h, stride w) and overrides its
// class when the recipe says so.
func (l *learnedStage) apply(d *rollmap.Defect, crop []uint8, w, h int) {
	c := l.cur.Load()
	if c == nil || w == 0 || h == 0 {
		return
	}
	t0 := time.Now()
	var err error
	l.feats, err = c.Label(l.feats, d, l.webWidthMM, crop, w, h)
	l.seconds.Observe(time.Since(t0).Seconds())
	if err != nil {
		l.errors.Inc()
		l.log.Error().Err(err).Int64("defect", d.ID).Msg("defect classifier failed; the rule-based class stands")
		return
	}
	if min := l.recipe.Classifier.OverrideMinConfidence; min > 0 && d.LearnedConfidence >= min && d.LearnedClass != d.Class {
		d.Class = d.LearnedClass
		d.Severity, d.Decision = l.recipe.SeverityDecision(d.Class, measureOf(d))
	}
}

// Label runs the classifier on defect d's crop (w × h grey pixels,
// stride w) on a web webWidthMM wide and records in d the learned class,
// its confidence, the classifier's version and the rule-based class (d's
// class as it stands). It does not override d's class: the recipe says
// when (Recipe.Rescore, the engine's assembly). feats is scratch space,
// returned for reuse.
func (c *Classifier) Label(feats []float32, d *rollmap.Defect, webWidthMM float64, crop []uint8, w, h int) ([]float32, error) {
	feats = classify.FeaturesOf(feats[:0], c.C.Inputs().Set, MeasuredOf(d, webWidthMM), crop, w, h, w)
	class, conf, err := c.C.Classify(feats)
	if err != nil {
		return feats, err
	}
	d.LearnedClass, d.LearnedConfidence, d.ClassifierVersion, d.RuleClass = class, conf, c.Version, d.Class
	return feats, nil
}

// SetClassifier makes c the defect classifier for the defects decided
// from now on (nil: none) and returns the one it replaces. A classifier
// trained on the taught model's scores (classify.FeaturesWithModel) is
// refused unless the engine runs that model (Options.ModelVersion): the
// error says what it needs, and the engine keeps the classifier it has
// (returned with the error). The engine does not close either.
func (e *Engine) SetClassifier(c *Classifier) (*Classifier, error) {
	if c != nil && c.C == nil {
		c = nil
	}
	if c != nil {
		if err := c.C.CheckModel(e.runningModelVersion()); err != nil {
			return e.learned.cur.Load(), err
		}
	}
	return e.learned.cur.Swap(c), nil
}

// runningModelVersion is the version of the taught model the engine runs:
// "" for none, "(unversioned)" for a model given without its version.
func (e *Engine) runningModelVersion() string {
	switch {
	case e.opts.Model == nil:
		return ""
	case e.opts.ModelVersion == "":
		return "(unversioned)"
	}
	return e.opts.ModelVersion
}

// CurrentClassifier returns the classifier in use, nil for none.
func (e *Engine) CurrentClassifier() *Classifier { return e.learned.cur.Load() }
