package api

import (
	"errors"
	"net/http"
	"regexp"
	"strings"

	"github.com/webinspect/webinspect/internal/textcheck"
	"github.com/webinspect/webinspect/rollmap"
	"github.com/webinspect/webinspect/rollmap/calibrate"
	"github.com/webinspect/webinspect/rollmap/versions"
)

// Calibrator knows the recipes behind the rolls (the engine's recipe
// rules, which the API does not import): it gives the calibration
// settings of a recipe and makes a calibrated recipe a new version.
// cmd/webinspect implements it over the rolls directory's version
// registry. Errors name the recipe that is unknown.
type Calibrator interface {
	// Settings returns the calibration settings of the recipe ref, a
	// version ID of the registry (the API passes nothing else).
	Settings(ref string) (calibrate.Settings, error)
	// Apply makes a new version of recipe ref with the detector's
	// threshold set (calibrate.DetectorThreshold or DetectorModel),
	// registered as made by `by` now, with note.
	Apply(ref, detector string, threshold float64, by, note string) (versions.Version, error)
}

// recipeVersionRE is a recipe version ID: the API names recipes only by
// their versions in the registry, never by a path on the server.
var recipeVersionRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

// calibrationBody is the answer of GET /api/calibration: the report,
// and why a detector has no proposal, if none has.
type calibrationBody struct {
	calibrate.Report
	Error string `json:"error,omitempty"`
}

// handleCalibration answers GET /api/calibration?rolls=A,B&recipe=VERSION:
// each detector's curve and proposal from the reviews of the rolls
// (default: every roll), for the recipe (default: the version that
// decided most reviewed defects).
func (s *Server) handleCalibration(w http.ResponseWriter, r *http.Request) {
	q, err := strictQuery(r.URL.RawQuery, "rolls", "recipe")
	if err != nil {
		s.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.opts.Calibrator == nil {
		s.writeError(w, http.StatusServiceUnavailable, "no calibrator: this server was started without the recipe registry")
		return
	}
	var ids []string
	if q["rolls"] != "" {
		ids = strings.Split(q["rolls"], ",")
	}
	rolls, err := calibrate.LoadRolls(s.opts.Store, ids)
	if err != nil {
		if errors.Is(err, rollmap.ErrNotFound) || errors.Is(err, rollmap.ErrBadRollID) {
			s.writeError(w, http.StatusNotFound, err.Error())
			return
		}
		s.storeError(w, r, "", err)
		return
	}
	ref := q["recipe"]
	if ref == "" {
		if ref = calibrate.ReviewedRecipe(rolls); ref == "" {
			s.writeError(w, http.StatusUnprocessableEntity, "no defect of these rolls names its recipe version (rolls inspected before versions were recorded): give recipe")
			return
		}
	}
	if !recipeVersionRE.MatchString(ref) {
		s.writeError(w, http.StatusBadRequest, "recipe: must be a recipe version ID (16 hex digits, as webinspect versions lists them)")
		return
	}
	set, err := s.opts.Calibrator.Settings(ref)
	if err != nil {
		s.writeError(w, http.StatusNotFound, err.Error())
		return
	}
	rep, err := calibrate.Compute(rolls, set)
	switch {
	case errors.Is(err, calibrate.ErrNoDefects):
		s.writeError(w, http.StatusUnprocessableEntity, err.Error())
	case errors.Is(err, calibrate.ErrTooFewReviews):
		s.writeJSON(w, http.StatusOK, calibrationBody{Report: rep, Error: err.Error()})
	case err != nil:
		s.writeError(w, http.StatusInternalServerError, err.Error())
	default:
		s.writeJSON(w, http.StatusOK, calibrationBody{Report: rep})
	}
}

// applyBody is the body of POST /api/calibration/apply.
type applyBody struct {
	Recipe    string   `json:"recipe"`
	Detector  string   `json:"detector"`
	Threshold *float64 `json:"threshold"`
	By        string   `json:"by"`
	Note      string   `json:"note"`
}

// handleCalibrationApply makes a new recipe version with one detector's
// threshold set, recording who applied it and when.
func (s *Server) handleCalibrationApply(w http.ResponseWriter, r *http.Request) {
	var b applyBody
	if !s.decodeBody(w, r, &b, false) {
		return
	}
	if s.opts.Calibrator == nil {
		s.writeError(w, http.StatusServiceUnavailable, "no calibrator: this server was started without the recipe registry")
		return
	}
	switch {
	case !recipeVersionRE.MatchString(b.Recipe):
		s.writeError(w, http.StatusBadRequest, "recipe: required, a recipe version ID (16 hex digits)")
		return
	case b.Detector != calibrate.DetectorThreshold && b.Detector != calibrate.DetectorModel:
		s.writeError(w, http.StatusBadRequest, `detector: must be "threshold" or "model"`)
		return
	case b.Threshold == nil:
		s.writeError(w, http.StatusBadRequest, "threshold: required")
		return
	}
	if err := textcheck.Check("by", b.By, textcheck.MaxName); err != nil || strings.TrimSpace(b.By) == "" {
		s.writeError(w, http.StatusBadRequest, "by: who applies it is required (1 to 64 bytes, no control characters)")
		return
	}
	if err := textcheck.Check("note", b.Note, 256); err != nil {
		s.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	v, err := s.opts.Calibrator.Apply(b.Recipe, b.Detector, *b.Threshold, b.By, b.Note)
	if err != nil {
		s.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.log.Info().Str("recipe_version", v.ID).Str("from", b.Recipe).Str("by", v.MadeBy).Msg("recipe calibrated")
	s.writeJSON(w, http.StatusOK, map[string]any{"version": v})
}
