package engine

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/webinspect/webinspect/internal/boundedfile"
	"github.com/webinspect/webinspect/internal/fieldcheck"

	"github.com/webinspect/webinspect/marking"
	"github.com/webinspect/webinspect/model/edge"
	"github.com/webinspect/webinspect/model/infer"
	"github.com/webinspect/webinspect/rollmap"
)

// Recipe is the per-product configuration: how to detect, how to classify,
// and what to do with each defect. Recipes are JSON files; see
// engine/RECIPES.md for the format. Field names in error messages are the
// JSON paths, e.g. "threshold.k_sigma".
type Recipe struct {
	Name      string           `json:"name"`
	Material  string           `json:"material"`
	Threshold ThresholdOptions `json:"threshold"`
	Assembly  AssemblyOptions  `json:"assembly"`
	Pipeline  PipelineOptions  `json:"pipeline"`
	Images    ImagesOptions    `json:"images"`
	// Model configures the learned (ONNX) detector that runs beside the
	// threshold detector when a model is given (Model.Path or --model).
	Model ModelOptions `json:"model"`
	// Classifier configures the defect classifier learned from reviews
	// (webinspect learn), run on each decided defect's crop.
	Classifier ClassifierOptions `json:"classifier"`
	// Lanes are the slit widths the roll is cut into, across the web. Each
	// defect is assigned to the lane holding most of its width; the roll
	// summary counts and grades per lane. Empty: no lanes.
	Lanes []rollmap.Lane `json:"lanes,omitempty"`
	// Grading is the roll grading scheme (textile 4-point or count per
	// area); nil: rolls are not graded.
	Grading *rollmap.GradingScheme `json:"grading,omitempty"`
	// Marking configures the marking unit (marking). Its output kind
	// "none" (the default) disables marking.
	Marking marking.Options `json:"marking"`
	// Classes are tried in order; the first rule whose conditions all hold
	// names the defect's class. A rule without conditions matches anything,
	// so the last rule is usually the catch-all.
	Classes []ClassRule `json:"classes"`
	// Severity rules are tried in order; the first match sets the severity.
	Severity []SeverityRule `json:"severity"`
	// Decision rules are tried in order; the first match sets the decision.
	// A defect that matches no rule is passed.
	Decisions []DecisionRule `json:"decisions"`
}

// CanonicalBytes is the recipe as the engine runs it (defaults filled in)
// as compact JSON in the field order of Recipe: the bytes its version is
// the SHA-256 of (rollmap/versions). Recipe files that differ only in
// layout, key order or spelled-out defaults give the same bytes.
func (r *Recipe) CanonicalBytes() ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("recipe %s: canonical bytes: %w", r.Name, err)
	}
	return b, nil
}

// ThresholdOptions configures the threshold detector: a per-column
// background model with dynamic bright and dark thresholds.
type ThresholdOptions struct {
	// KSigma is how many background standard deviations a pixel must differ
	// from the column mean to be flagged. Range 2..50.
	KSigma float64 `json:"k_sigma"`
	// MinContrast is the smallest difference from the background, in grey
	// levels after flat-field, that can flag a pixel. Range 1..254.
	MinContrast float64 `json:"min_contrast"`
	// BackgroundLines is the time constant of the background model in lines
	// (the update weight is 1/BackgroundLines). Range 8..1000000.
	BackgroundLines int `json:"background_lines"`
	// AdaptFlaggedLines, when non-zero, lets flagged pixels pull the
	// background with weight 1/AdaptFlaggedLines, so that a lasting change of
	// shade is learned eventually. 0 means flagged pixels never update it.
	AdaptFlaggedLines int `json:"adapt_flagged_lines"`
	// LearnLines is how many lines the background learns from at the start
	// before detection begins. Range 8..1000000.
	LearnLines int `json:"learn_lines"`
	// FlatFieldTarget is the grey level a white reference maps to. Range 1..255.
	FlatFieldTarget int `json:"flat_field_target"`
	// MinAreaPx drops flagged regions smaller than this many pixels before
	// they are assembled. Range 1..10000.
	MinAreaPx int `json:"min_area_px"`
	// MinSizeMM drops defects whose largest dimension is below this, in mm.
	// This is the recipe's detection limit. Range 0..1000.
	MinSizeMM float64 `json:"min_size_mm"`
	// OffWeb finds the web's edges on every line (model/edge, the code the
	// taught model, teach and eval use) so that the background beyond them
	// (a backlight, a white or black roller) and a web that wanders across
	// the camera are never taken for defects. Mode auto (the default)
	// decides from the first learn lines whether the lines end in a
	// saturated band (bright or dark) or the web fills them (none).
	OffWeb edge.Options `json:"off_web"`
	// MinPeakContrast is the score floor of the threshold detector: a
	// defect it found is reported only when its peak |contrast| (the
	// record's peak_score) reaches this, in grey levels, unless the model
	// detector saw it too. 0 (the default) reports every defect the
	// pixels' thresholds found. Unlike MinContrast it does not change
	// which pixels are flagged, so a defect keeps its extent and class;
	// `webinspect calibrate` proposes it from reviews. Range 0..255.
	MinPeakContrast float64 `json:"min_peak_contrast,omitempty"`
	// FalseAlarmsPer100M is the false-alarm target of the threshold
	// detector, in false defects per 100 m of web (all cameras): the rate
	// `webinspect calibrate` proposes MinPeakContrast for. Range
	// 1e-6..100.
	FalseAlarmsPer100M float64 `json:"false_alarms_per_100m"`
}

// AssemblyOptions configures how regions become defects.
type AssemblyOptions struct {
	// MergeGapMM merges regions (across blocks, cameras and small breaks)
	// whose bounding boxes are closer than this, in mm. Range 0..1000.
	MergeGapMM float64 `json:"merge_gap_mm"`
}

// PipelineOptions sizes the queues between stages.
type PipelineOptions struct {
	// RingBlocks is the number of preallocated blocks in each camera's ring.
	// Range 2..4096.
	RingBlocks int `json:"ring_blocks"`
	// ResultQueue is the capacity of the queue from the detectors to the
	// assembler, in blocks. Range 1..65536.
	ResultQueue int `json:"result_queue"`
	// FlushMillis is how often the roll map is flushed to disk. Range 10..60000.
	FlushMillis int `json:"flush_ms"`
	// MaxMemoryMB is the memory budget of the preallocated buffers (rings,
	// region buffers, crop history) in MiB; 0 means half of the machine's
	// memory. Never more than the machine has available. Range 0 or
	// 16..16777216 (see engine/memory.go and RECIPES.md).
	MaxMemoryMB int `json:"max_memory_mb,omitempty"`
}

// ImagesOptions configures the defect crops kept in the image archive.
type ImagesOptions struct {
	// Enabled keeps a crop of every defect (when the engine has an image
	// archive). Default true.
	Enabled bool `json:"enabled"`
	// MarginPx is the margin around the defect's bounding box, in pixels
	// (lines along MD). Range 0..1024.
	MarginPx int `json:"margin_px"`
	// MaxPx bounds each side of a crop, in pixels: a bigger defect keeps
	// the MaxPx × MaxPx window around its centre. Range 16..4096.
	MaxPx int `json:"max_px"`
	// HistoryLines is how many lines of each camera are kept for cutting
	// crops; 0 sizes it from the pipeline (ring and result queue depth
	// plus MaxPx). Range 0 or 256..1000000.
	HistoryLines int `json:"history_lines"`
}

// ModelOptions is the recipe's model section: the ONNX anomaly detector
// (model/infer) that runs beside the threshold detector. Its inference
// fields are infer.Options itself, embedded, so their JSON names are
// promoted into the section and their ranges are checked once, by
// infer.Options.Validate (errors name "model.<field>"); the recipe adds
// the model's path and the teach target.
type ModelOptions struct {
	// Path is the model directory (model.onnx and model.json); "" runs no
	// model unless one is given on the command line.
	Path string `json:"path,omitempty"`
	// FalseAlarmsPer100M is the false-alarm rate `webinspect teach`
	// calibrates the threshold for when it teaches on a recording: false
	// defects per 100 m of good web, all cameras together. (0, 100]
	// (checked as 1e-6..100).
	FalseAlarmsPer100M float64 `json:"false_alarms_per_100m"`
	// MinPeakScore is the model detector's score floor: a defect it found
	// is reported only when its peak anomaly score reaches this, unless
	// the threshold detector saw it too. 0 (the default) reports every
	// defect above the anomaly-map threshold; `webinspect calibrate`
	// proposes it from reviews against FalseAlarmsPer100M. Range 0..1e9.
	MinPeakScore float64 `json:"min_peak_score,omitempty"`
	// Options are the tiles cut from each camera's flat-fielded lines, the
	// worker pool that scores them, the threshold on the stitched anomaly
	// map and the off-web search (bin, overlap_cd, overlap_md, workers,
	// batch, max_wait_ms, in_flight, threshold, min_area_px, stitch,
	// off_web.{mode,level,min_band,guard}).
	infer.Options
}

// validate checks the model section, naming a bad field by its recipe
// path ("model.off_web.min_band = 5000: must be between 1 and 4096").
func (m *ModelOptions) validate() error {
	if err := m.Options.Validate(); err != nil {
		if fe, ok := errors.AsType[*infer.FieldError](err); ok {
			return errors.New(fe.At("model."))
		}
		return fmt.Errorf("model: %v", err)
	}
	return firstErr([]error{
		fieldcheck.Float("model.false_alarms_per_100m", m.FalseAlarmsPer100M, 1e-6, 100),
		fieldcheck.Float("model.min_peak_score", m.MinPeakScore, 0, 1e9),
	})
}

// FramesFalseAlarmRate converts the recipe's false alarms per 100 m of web
// into the false-alarm rate per taught frame: a frame is frameLines lines
// of lineMM of one of cameras cameras.
func (m ModelOptions) FramesFalseAlarmRate(frameLines int, lineMM float64, cameras int) float64 {
	frameM := float64(frameLines) * lineMM / 1000
	return m.FalseAlarmsPer100M / 100 * frameM / float64(max(cameras, 1))
}

// SeverityRule sets the severity of defects of a class ("*" for any) whose
// size and peak contrast reach the given minimums.
type SeverityRule struct {
	Class       string  `json:"class"`
	MinSizeMM   float64 `json:"min_size_mm,omitempty"`
	MinContrast float64 `json:"min_contrast,omitempty"`
	Severity    string  `json:"severity"`
}

// DecisionRule maps a class and severity ("*" for any) to a decision.
type DecisionRule struct {
	Class    string           `json:"class"`
	Severity string           `json:"severity"`
	Decision rollmap.Decision `json:"decision"`
}

// Decisions the engine can take for a defect: the roll map's, under the
// names the engine has always used (rollmap.Decision is the one
// definition).
const (
	DecisionPass   = rollmap.DecisionPass
	DecisionMark   = rollmap.DecisionMark
	DecisionReview = rollmap.DecisionReview
)

// Errors returned when loading recipes.
var (
	// ErrRecipe is wrapped by every recipe loading or validation error.
	ErrRecipe = errors.New("recipe")
	// ErrUnknownRecipe is returned for a built-in recipe name that does not exist.
	ErrUnknownRecipe = errors.New("no such built-in recipe")
)

//go:embed recipes/*.json
var builtinFS embed.FS

// BuiltinRecipes lists the names of the recipes shipped with the engine.
func BuiltinRecipes() []string {
	ents, _ := builtinFS.ReadDir("recipes")
	var names []string
	for _, e := range ents {
		names = append(names, strings.TrimSuffix(e.Name(), ".json"))
	}
	sort.Strings(names)
	return names
}

// LoadRecipe loads a recipe from a file path, or a built-in recipe by name
// (fabric, leather, film) when no such file exists.
func LoadRecipe(nameOrPath string) (*Recipe, error) {
	data, err := boundedfile.Read(nameOrPath, MaxRecipeBytes)
	src := nameOrPath
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) || strings.ContainsAny(nameOrPath, "/\\.") {
			return nil, fmt.Errorf("%w %s: %v", ErrRecipe, nameOrPath, unwrapPathErr(err))
		}
		data, err = builtinFS.ReadFile("recipes/" + nameOrPath + ".json")
		if err != nil {
			return nil, fmt.Errorf("%w %q: %w (built-in: %s)", ErrRecipe, nameOrPath, ErrUnknownRecipe, strings.Join(BuiltinRecipes(), ", "))
		}
		src = "built-in " + nameOrPath
	} else {
		src = filepath.Base(nameOrPath)
	}
	return ParseRecipe(src, data)
}

// MaxRecipeBytes caps a recipe file: a recipe is a few kilobytes, and a
// path naming /dev/zero or a huge file must not exhaust memory.
const MaxRecipeBytes = 1 << 20

// DefaultRecipe returns the built-in recipe for a material.
func DefaultRecipe(material string) (*Recipe, error) {
	if material == "" {
		material = "fabric"
	}
	return LoadRecipe(material)
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// ParseRecipe decodes and validates a recipe. src names it in errors.
// Unset fields take the defaults of DefaultRecipeValues.
func ParseRecipe(src string, data []byte) (*Recipe, error) {
	r := defaultRecipeValues()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(r); err != nil {
		return nil, fmt.Errorf("%w %s: %s", ErrRecipe, src, describeJSONError(data, err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w %s: unexpected data after the recipe object", ErrRecipe, src)
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrRecipe, src, err)
	}
	return r, nil
}

func describeJSONError(data []byte, err error) string {
	line := func(off int64) int {
		if off > int64(len(data)) {
			off = int64(len(data))
		}
		return 1 + bytes.Count(data[:off], []byte("\n"))
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("line %d: invalid JSON: %v", line(se.Offset), se)
	case errors.As(err, &te):
		return fmt.Sprintf("line %d: field %s: expected %s, got JSON %s", line(te.Offset), te.Field, te.Type, te.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of file"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return err.Error()
}

func defaultRecipeValues() *Recipe {
	return &Recipe{
		Name: "custom",
		Threshold: ThresholdOptions{
			KSigma: 4.5, MinContrast: 18, BackgroundLines: 512, LearnLines: 256,
			FlatFieldTarget: 255, MinAreaPx: 3, MinSizeMM: 1.0, FalseAlarmsPer100M: 1,
			OffWeb: edge.Options{Mode: edge.Auto, Level: 240, MinBand: 8, Guard: 2},
		},
		Assembly:   AssemblyOptions{MergeGapMM: 3},
		Pipeline:   PipelineOptions{RingBlocks: 16, ResultQueue: 64, FlushMillis: 1000},
		Images:     ImagesOptions{Enabled: true, MarginPx: 16, MaxPx: 256},
		Model:      ModelOptions{FalseAlarmsPer100M: 0.5, Options: infer.DefaultOptions()},
		Classifier: ClassifierOptions{OverrideMinConfidence: 0.9},
		Marking:    marking.DefaultOptions(),
	}
}

// Validate checks every field and names the first bad one with its allowed range.
func (r *Recipe) Validate() error {
	t := r.Threshold
	checks := []error{
		nonEmpty("name", r.Name),
		oneOf("material", r.Material, "fabric", "leather", "film", "nonwoven", "paper", "other"),
		fieldcheck.Float("threshold.k_sigma", t.KSigma, 2, 50),
		fieldcheck.Float("threshold.min_contrast", t.MinContrast, 1, 254),
		fieldcheck.Int("threshold.background_lines", t.BackgroundLines, 8, 1_000_000),
		orZero(fieldcheck.Int("threshold.adapt_flagged_lines", t.AdaptFlaggedLines, 8, 100_000_000), t.AdaptFlaggedLines),
		fieldcheck.Int("threshold.learn_lines", t.LearnLines, 8, 1_000_000),
		fieldcheck.Int("threshold.flat_field_target", t.FlatFieldTarget, 1, 255),
		fieldcheck.Int("threshold.min_area_px", t.MinAreaPx, 1, 10_000),
		fieldcheck.Float("threshold.min_size_mm", t.MinSizeMM, 0, 1000),
		validOffWeb("threshold.off_web", &t.OffWeb),
		fieldcheck.Float("threshold.min_peak_contrast", t.MinPeakContrast, 0, 255),
		fieldcheck.Float("threshold.false_alarms_per_100m", t.FalseAlarmsPer100M, 1e-6, 100),
		fieldcheck.Float("assembly.merge_gap_mm", r.Assembly.MergeGapMM, 0, 1000),
		fieldcheck.Int("pipeline.ring_blocks", r.Pipeline.RingBlocks, 2, 4096),
		fieldcheck.Int("pipeline.result_queue", r.Pipeline.ResultQueue, 1, 65536),
		fieldcheck.Int("pipeline.flush_ms", r.Pipeline.FlushMillis, 10, 60000),
		orZero(fieldcheck.Int("pipeline.max_memory_mb", r.Pipeline.MaxMemoryMB, 16, 16<<20), r.Pipeline.MaxMemoryMB),
		fieldcheck.Int("images.margin_px", r.Images.MarginPx, 0, 1024),
		fieldcheck.Int("images.max_px", r.Images.MaxPx, 16, 4096),
		orZero(fieldcheck.Int("images.history_lines", r.Images.HistoryLines, 256, 1_000_000), r.Images.HistoryLines),
		r.Model.validate(),
		r.Classifier.validate(),
	}
	if len(r.Classes) == 0 {
		checks = append(checks, errors.New("classes: at least one class rule is required"))
	}
	classes := map[string]bool{"*": true}
	for i, c := range r.Classes {
		f := fmt.Sprintf("classes[%d]", i)
		classes[c.Name] = true
		checks = append(checks, c.validate(f))
	}
	severities := map[string]bool{"*": true}
	for i, s := range r.Severity {
		f := fmt.Sprintf("severity[%d]", i)
		severities[s.Severity] = true
		checks = append(checks,
			knownClass(f+".class", s.Class, classes),
			nonEmpty(f+".severity", s.Severity),
			fieldcheck.Float(f+".min_size_mm", s.MinSizeMM, 0, 1e6),
			fieldcheck.Float(f+".min_contrast", s.MinContrast, 0, 255),
		)
	}
	for i, d := range r.Decisions {
		f := fmt.Sprintf("decisions[%d]", i)
		checks = append(checks,
			knownClass(f+".class", d.Class, classes),
			knownClass(f+".severity", d.Severity, severities),
			oneOf(f+".decision", string(d.Decision), decisionNames()...),
		)
	}
	checks = append(checks, r.ValidateText(), r.ValidateSeverities())
	if err := firstErr(checks); err != nil {
		return err
	}
	if err := (rollmap.LanesOptions{Lanes: r.Lanes}).Validate(); err != nil {
		return err
	}
	if r.Grading != nil {
		if err := r.Grading.Validate(); err != nil {
			return err
		}
	}
	if err := r.Marking.Validate(); err != nil {
		return errors.Unwrap(err) // the field path is the message; ErrRecipe wraps it
	}
	return nil
}
