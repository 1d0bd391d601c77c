package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/webinspect/webinspect/api"
	"github.com/webinspect/webinspect/engine"
	"github.com/webinspect/webinspect/internal/atomicfile"
	"github.com/webinspect/webinspect/rollmap"
	"github.com/webinspect/webinspect/rollmap/calibrate"
	"github.com/webinspect/webinspect/rollmap/versions"
)

// cmdCalibrate re-calibrates the detectors' thresholds of a recipe from
// the reviews of stored rolls: it lists each detector's curve of
// confirmed defects kept against false alarms removed, and the proposed
// threshold; --apply makes the proposal a new recipe version.
func cmdCalibrate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("calibrate", flag.ContinueOnError)
	rollsDir := fs.String("rolls", "rolls", "`DIR` of roll maps whose reviews to calibrate from")
	rollIDs := fs.String("roll", "", "only these rolls, `ID[,ID…]` (default: every roll of --rolls)")
	recipeRef := fs.String("recipe", "", "recipe to calibrate: a version `ID` of the registry, a file or a built-in name (default: the version that decided most reviewed defects)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	apply := fs.Bool("apply", false, "make the proposal a new recipe version, registered in --rolls with who applied it and when")
	by := fs.String("by", "", "`NAME` of who applies it (default: user@host)")
	out := fs.String("out", "", "with --apply, also write the new recipe to `FILE` (for run --recipe)")
	pos, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", pos[0])}
	}
	if (*out != "" || *by != "") && !*apply {
		return usageError{"--out and --by go with --apply"}
	}
	if st, err := os.Stat(*rollsDir); err != nil || !st.IsDir() {
		return fmt.Errorf("--rolls %s: not a directory of roll maps", *rollsDir)
	}
	store, err := rollmap.OpenStore(*rollsDir)
	if err != nil {
		return err
	}
	var ids []string
	if *rollIDs != "" {
		ids = strings.Split(*rollIDs, ",")
	}
	rolls, err := calibrate.LoadRolls(store, ids)
	if err != nil {
		if errors.Is(err, rollmap.ErrNotFound) {
			return fmt.Errorf("--roll: %w in %s", err, *rollsDir)
		}
		return err
	}
	if len(rolls) == 0 {
		return fmt.Errorf("--rolls %s holds no rolls", *rollsDir)
	}
	cal := recipeCalibrator{root: *rollsDir}
	ref := *recipeRef
	if ref == "" {
		if ref = calibrate.ReviewedRecipe(rolls); ref == "" {
			return fmt.Errorf("no defect of the rolls names its recipe version (rolls inspected before versions were recorded): give --recipe")
		}
	}
	recipe, ver, err := cal.resolve(ref)
	if err != nil {
		return err
	}
	rep, cerr := calibrate.Compute(rolls, recipe.CalibrationSettings(ver.ID))
	if cerr != nil && !errors.Is(cerr, calibrate.ErrTooFewReviews) {
		return cerr
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printCalibration(stdout, rep)
	}
	if cerr != nil {
		return cerr
	}
	if !*apply {
		return nil
	}
	next, nv, err := cal.applyAll(recipe, ver, rep, *by)
	if err != nil {
		return err
	}
	if nv.ID == "" {
		fmt.Fprintln(stdout, "nothing to apply: no detector's proposal changes its threshold")
		return nil
	}
	if *out != "" {
		b, err := json.MarshalIndent(next, "", "  ")
		if err != nil {
			return err
		}
		if err := atomicfile.WriteFile(filepath.Dir(*out), filepath.Base(*out), append(b, '\n')); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
	}
	fmt.Fprintf(stdout, "new recipe version %s (%s) registered by %s at %s; it is kept as %s\n",
		nv.ID, nv.Note, nv.MadeBy, nv.MadeAt.Format(time.RFC3339), cal.contentPath(nv))
	return nil
}

// printCalibration lists each detector's curve and proposal.
func printCalibration(w io.Writer, rep calibrate.Report) {
	fmt.Fprintf(w, "recipe %s (version %s), rolls %s: %.1f m", rep.Recipe, rep.RecipeVersion, strings.Join(rep.Rolls, ", "), rep.LengthM)
	if rep.OtherRecipes > 0 {
		fmt.Fprintf(w, "; %d defects of other recipes left out", rep.OtherRecipes)
	}
	fmt.Fprintln(w)
	for _, c := range rep.Curves {
		fmt.Fprintf(w, "\n%s detector: %d defects, %d reviewed (%d confirmed, %d false alarms, %d confirmed the recipe acts on); threshold in force %.2f (%s), target %g false alarms per 100 m (%s)\n",
			c.Name, c.Defects, c.Reviewed, c.Confirmed, c.FalseAlarms, c.MustKeep, c.Current, c.Field, c.Target, c.TargetField)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "THRESHOLD\tCONFIRMED KEPT\tCONFIRMED LOST\tACTED-ON LOST\tFALSE KEPT\tFALSE REMOVED\tDEFECTS KEPT\tFALSE/100 m\t")
		for _, p := range c.Points {
			fmt.Fprintf(tw, "%.2f\t%d\t%d\t%d\t%d\t%d\t%d\t%.2f\t\n", p.Threshold, p.ConfirmedKept, p.ConfirmedLost, p.MustKeepLost,
				p.FalseKept, p.FalseRemoved, p.DefectsKept, p.FalsePer100M)
		}
		tw.Flush()
		if c.Proposal == nil {
			fmt.Fprintf(w, "no proposal: %s\n", c.Error)
			continue
		}
		fmt.Fprintf(w, "proposal: %s = %g: %s\n", c.Field, c.Proposal.Threshold, c.Proposal.Reason)
	}
}

// recipeCalibrator resolves the recipes of a rolls directory for
// calibration and applies proposals as new recipe versions in its
// registry. The API calls it through api.Calibrator.
type recipeCalibrator struct{ root string }

var _ api.Calibrator = recipeCalibrator{}

var versionID = regexp.MustCompile(`^[0-9a-f]{16}$`)

// resolve loads the recipe named by ref: a version ID of the registry
// (its kept copy), else a recipe file or built-in name.
func (c recipeCalibrator) resolve(ref string) (*engine.Recipe, versions.Version, error) {
	if versionID.MatchString(ref) {
		v, err := registryGet(c.root, ref)
		if err != nil {
			return nil, versions.Version{}, fmt.Errorf("recipe %s: %w (webinspect versions --rolls %s lists them)", ref, err, c.root)
		}
		r, err := engine.LoadRecipe(c.contentPath(v))
		if err != nil {
			return nil, versions.Version{}, err
		}
		return r, v, nil
	}
	r, err := engine.LoadRecipe(ref)
	if err != nil {
		return nil, versions.Version{}, err
	}
	canon, err := r.CanonicalBytes()
	if err != nil {
		return nil, versions.Version{}, err
	}
	sha := versions.Digest(canon)
	return r, versions.Version{Kind: versions.KindRecipe, ID: versions.IDOf(sha), SHA256: sha, Name: r.Name, Origin: ref}, nil
}

func (c recipeCalibrator) contentPath(v versions.Version) string {
	reg, err := versions.Open(c.root)
	if err != nil {
		return ""
	}
	return reg.ContentPath(v)
}

// registryGet finds a recipe version in the registry of root without
// creating the registry.
func registryGet(root, id string) (versions.Version, error) {
	vs, err := versions.ListDir(root)
	for _, v := range vs {
		if v.Kind == versions.KindRecipe && v.ID == id {
			return v, nil
		}
	}
	if err != nil {
		return versions.Version{}, err
	}
	return versions.Version{}, fmt.Errorf("no such version in %s/%s", root, versions.DirName)
}

// Settings is api.Calibrator's: the calibration settings of a recipe.
func (c recipeCalibrator) Settings(ref string) (calibrate.Settings, error) {
	r, v, err := c.resolve(ref)
	if err != nil {
		return calibrate.Settings{}, err
	}
	return r.CalibrationSettings(v.ID), nil
}

// Apply is api.Calibrator's: one detector's threshold set in a new
// recipe version.
func (c recipeCalibrator) Apply(ref, detector string, threshold float64, by, note string) (versions.Version, error) {
	r, v, err := c.resolve(ref)
	if err != nil {
		return versions.Version{}, err
	}
	next, err := r.WithThreshold(detector, threshold)
	if err != nil {
		return versions.Version{}, err
	}
	field := engine.FieldThresholdFloor
	if detector == calibrate.DetectorModel {
		field = engine.FieldModelFloor
	}
	old := r.Threshold.MinPeakContrast
	if detector == calibrate.DetectorModel {
		old = r.Model.MinPeakScore
	}
	msg := fmt.Sprintf("%s %g -> %g", field, old, threshold)
	if note != "" {
		msg += "; " + note
	}
	return c.register(next, v, by, msg)
}

// applyAll sets every detector's proposed threshold that changes and
// registers the result; a zero version when nothing changes.
func (c recipeCalibrator) applyAll(r *engine.Recipe, v versions.Version, rep calibrate.Report, by string) (*engine.Recipe, versions.Version, error) {
	next := r
	var notes []string
	for _, cv := range rep.Curves {
		if cv.Proposal == nil || !cv.Proposal.Change {
			continue
		}
		n, err := next.WithThreshold(cv.Name, cv.Proposal.Threshold)
		if err != nil {
			return nil, versions.Version{}, err
		}
		next = n
		notes = append(notes, fmt.Sprintf("%s = %g, threshold in force was %g (removes %d of %d reviewed false alarms, loses %d of %d confirmed)",
			cv.Field, cv.Proposal.Threshold, cv.Current, cv.Proposal.Point.FalseRemoved, cv.FalseAlarms,
			cv.Proposal.Point.ConfirmedLost, cv.Confirmed))
	}
	if len(notes) == 0 {
		return r, versions.Version{}, nil
	}
	notes = append(notes, "from reviews of rolls "+strings.Join(rep.Rolls, ", "))
	nv, err := c.register(next, v, by, strings.Join(notes, "; "))
	return next, nv, err
}

// register registers recipe r, calibrated from version parent, with who
// applied it (by, default user@host) and when.
func (c recipeCalibrator) register(r *engine.Recipe, parent versions.Version, by, note string) (versions.Version, error) {
	reg, err := versions.Open(c.root)
	if err != nil {
		return versions.Version{}, err
	}
	canon, err := r.CanonicalBytes()
	if err != nil {
		return versions.Version{}, err
	}
	if by == "" {
		by = versions.Maker()
	}
	v, err := reg.RegisterRecipe(versions.Version{Name: r.Name, Origin: "calibrate:" + parent.ID, MadeBy: by,
		MadeAt: time.Now(), Note: "calibrated from " + parent.ID + ": " + note}, canon)
	if err != nil {
		return versions.Version{}, err
	}
	log.Info().Str("recipe_version", v.ID).Str("from", parent.ID).Str("by", v.MadeBy).Str("note", v.Note).Msg("recipe calibrated")
	return v, nil
}
