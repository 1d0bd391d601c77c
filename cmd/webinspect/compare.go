package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/webinspect/webinspect/acquisition"
	"github.com/webinspect/webinspect/acquisition/recording"
	"github.com/webinspect/webinspect/api"
	"github.com/webinspect/webinspect/engine"
	"github.com/webinspect/webinspect/internal/boundedfile"
	"github.com/webinspect/webinspect/model/classify"
	"github.com/webinspect/webinspect/model/onnx"
	"github.com/webinspect/webinspect/rollmap"
	"github.com/webinspect/webinspect/rollmap/versions"
)

// # webinspect compare
//
// compare re-scores a stored roll with a candidate recipe and/or model
// and lists what would change. With the roll's recording (the roll's
// source, or --recording) the recording is replayed with the candidate
// into a fresh store in OUT/rerun (the stored roll, its image archive and
// its version registry are only read), and the two rolls' defects are
// paired by rollmap.CompareDefects. Without a recording only the defects
// the roll map holds can be decided again (engine.Recipe.Rescore); the
// output says what that cannot see. What is not given on the command
// line is what the roll was inspected with: its recipe, model and
// classifier versions, taken from the rolls directory's registry.

// compareFiles are what compare writes into OUT.
const (
	compareCSV   = "changes.csv"
	compareHTML  = "changes.html"
	compareCrops = "crops"
	compareRerun = "rerun"
)

func cmdCompare(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	rolls := fs.String("rolls", "rolls", "`DIR` of roll maps, used when ROLL is an ID rather than a directory")
	recipeF := fs.String("recipe", "", "candidate recipe `FILE` or built-in name (default: the recipe the roll was inspected with)")
	recDir := fs.String("recording", "", "the roll's recording `DIR` (default: the roll's source, when it is a recording)")
	out := fs.String("out", "", "`DIR` to write changes.csv, changes.html and the crops into; must not exist or be empty (default: compare-ROLLID)")
	ef := addEngineFlags(fs)
	pos, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"expected exactly one roll: webinspect compare ROLL --model NEW [--recipe NEW]"}
	}
	if *ef.model == "" && *recipeF == "" && *ef.classifier == "" {
		return usageError{"nothing to compare: give a candidate --model, --recipe or --classifier"}
	}
	dir, err := rollDirOf(pos[0], *rolls)
	if err != nil {
		return err
	}
	dir = filepath.Clean(dir)
	meta, old, unins, err := rollmap.ReadRoll(dir)
	var notes []string
	switch {
	case err == nil:
	case (errors.Is(err, rollmap.ErrCorrupt) || errors.Is(err, rollmap.ErrTruncated)) && meta.ID != "":
		notes = append(notes, fmt.Sprintf("the roll map is damaged; compared the %d readable defects (%s)", len(old), describeDamage(err)))
		log.Warn().Str("roll", meta.ID).Msg("roll map damaged; comparing the readable defects")
	default:
		return fmt.Errorf("roll %s: %w", dir, err)
	}
	if meta.Open {
		notes = append(notes, "the roll was still open: compared what its roll map held at the start of compare")
	}
	storeRoot := filepath.Dir(dir)
	if *out == "" {
		*out = "compare-" + meta.ID
	}
	c := &comparer{storeRoot: storeRoot, meta: meta, old: old, unins: unins, ef: ef, recipeF: *recipeF, out: *out, notes: notes}
	if err := c.resolveVersions(); err != nil {
		return err
	}
	if err := freshDir(*out); err != nil {
		return err
	}
	// The recording, if there is one.
	rec := *recDir
	if rec == "" && meta.Source != "" {
		if _, err := os.Stat(filepath.Join(meta.Source, recording.MetaFile)); err == nil {
			rec = meta.Source
		}
	}
	var cmpRes rollmap.Comparison
	var newImages string
	if rec != "" {
		newDefects, newUnins, err := c.rerun(ctx, rec)
		if err != nil {
			return err
		}
		cmpRes = rollmap.CompareDefects(old, newDefects)
		noteUninspected(&cmpRes, c.unins, newUnins)
		newImages = filepath.Join(*out, compareRerun, imagesDirName)
		c.basis = "the recording " + rec + ", replayed with the candidate into " + filepath.Join(*out, compareRerun)
	} else {
		if cmpRes, err = c.rescoreStored(); err != nil {
			return err
		}
		newImages = filepath.Join(storeRoot, imagesDirName)
	}
	return c.write(&cmpRes, newImages, stdout)
}

// comparer holds one compare run's inputs.
type comparer struct {
	storeRoot string
	meta      rollmap.RollMeta
	old       []rollmap.Defect
	unins     []rollmap.Uninspected
	ef        *engineFlags
	recipeF   string
	out       string
	notes     []string
	limits    []string
	basis     string

	// The roll's versions (the most frequent among its defects).
	oldRecipe, oldModel, oldClassifier string
	// The candidate: recipe and the model and classifier directories ("" none).
	recipe                  *engine.Recipe
	modelDir, classifierDir string
}

// mostCommon returns the most frequent non-empty value of f over ds, and
// how many distinct non-empty values there are.
func mostCommon(ds []rollmap.Defect, f func(d *rollmap.Defect) string) (string, int) {
	n := map[string]int{}
	best := ""
	for i := range ds {
		v := f(&ds[i])
		if v == "" {
			continue
		}
		n[v]++
		if n[v] > n[best] || n[v] == n[best] && v < best {
			best = v
		}
	}
	return best, len(n)
}

// versionPath is where the registry of the store keeps version id of kind.
func (c *comparer) versionPath(kind, id string) string {
	if kind == versions.KindRecipe {
		return filepath.Join(c.storeRoot, versions.DirName, kind, id+".json")
	}
	return filepath.Join(c.storeRoot, versions.DirName, kind, id)
}

// resolveVersions finds what the roll was inspected with and what the
// candidate is: each part not given on the command line is the roll's.
// A candidate that does not load is an error naming it, before anything
// is written.
func (c *comparer) resolveVersions() error {
	var n int
	c.oldRecipe, n = mostCommon(c.old, func(d *rollmap.Defect) string { return d.RecipeVersion })
	if n > 1 {
		c.notes = append(c.notes, fmt.Sprintf("the roll's defects name %d recipe versions; the recorded side is each defect as decided, the candidate's defaults are the most frequent (%s)", n, c.oldRecipe))
	}
	c.oldModel, _ = mostCommon(c.old, func(d *rollmap.Defect) string { return d.ModelVersion })
	c.oldClassifier, _ = mostCommon(c.old, func(d *rollmap.Defect) string { return d.ClassifierVersion })

	var err error
	if c.recipeF != "" {
		// The material is only loadRecipe's default; the flag is set.
		if c.recipe, err = loadRecipe(c.recipeF, acquisition.Info{}); err != nil {
			return err
		}
	} else if c.recipe, err = c.rollRecipe(); err != nil {
		return err
	}
	switch {
	case *c.ef.model != "":
		c.modelDir = *c.ef.model
	case c.recipeF != "" && c.recipe.Model.Path != "":
		c.modelDir = c.recipe.Model.Path
	case c.oldModel != "":
		c.modelDir = c.versionPath(versions.KindModel, c.oldModel)
		if _, err := os.Stat(c.modelDir); err != nil {
			return fmt.Errorf("the roll was inspected with model %s, which the registry %s does not hold; give --model",
				c.oldModel, filepath.Join(c.storeRoot, versions.DirName))
		}
	}
	switch {
	case *c.ef.classifier != "":
		c.classifierDir = *c.ef.classifier
	case c.recipeF != "" && c.recipe.Classifier.Path != "":
		c.classifierDir = c.recipe.Classifier.Path
	case c.oldClassifier != "":
		if p := c.versionPath(versions.KindClassifier, c.oldClassifier); dirExists(p) {
			c.classifierDir = p
		} else {
			c.notes = append(c.notes, fmt.Sprintf("the roll's classifier %s is not in the registry: the candidate runs without a classifier", c.oldClassifier))
		}
	}
	// Load the candidate's model and classifier once now, so that a
	// corrupt or incompatible one is refused before anything is written.
	if c.modelDir != "" {
		if _, err := loadModel(c.modelDir, *c.ef.ortLib, c.recipe); err != nil {
			return err
		}
	}
	if c.classifierDir != "" {
		if err := onnx.Init(*c.ef.ortLib); err != nil {
			return fmt.Errorf("--classifier %s: %w", c.classifierDir, err)
		}
		cl, err := classify.Load(c.classifierDir)
		if err != nil {
			return fmt.Errorf("--classifier %s: %w", c.classifierDir, err)
		}
		cl.Close()
	}
	*c.ef.model, *c.ef.classifier = c.modelDir, c.classifierDir
	return nil
}

// rollRecipe is the recipe the roll was inspected with, from the
// registry: by the version its defects name, else the one recipe of the
// roll's recipe name the registry holds.
func (c *comparer) rollRecipe() (*engine.Recipe, error) {
	id := c.oldRecipe
	if id == "" {
		vs, _ := versions.ListDir(c.storeRoot)
		var ids []string
		for _, v := range vs {
			if v.Kind == versions.KindRecipe && v.Name == c.meta.Recipe {
				ids = append(ids, v.ID)
			}
		}
		if len(ids) != 1 {
			return nil, fmt.Errorf("roll %s: its defects name no recipe version and the registry holds %d recipes named %q; give --recipe",
				c.meta.ID, len(ids), c.meta.Recipe)
		}
		id = ids[0]
	}
	p := c.versionPath(versions.KindRecipe, id)
	b, err := boundedfile.Read(p, engine.MaxRecipeBytes)
	if err != nil {
		return nil, fmt.Errorf("roll %s was inspected with recipe %s, which the registry does not hold (%v); give --recipe", c.meta.ID, id, err)
	}
	r, err := engine.ParseRecipe("recipe "+id+" of the registry", b)
	if err != nil {
		return nil, err
	}
	c.recipeF = p
	return r, nil
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// freshDir creates dir, or accepts it empty: compare never overwrites.
func freshDir(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return os.MkdirAll(dir, 0o755)
	case err != nil:
		return fmt.Errorf("--out %s: %w", dir, err)
	case len(ents) > 0:
		return fmt.Errorf("--out %s is not empty (compare never overwrites): give another --out or remove it", dir)
	}
	return nil
}

// rerun replays the recording with the candidate into OUT/rerun and
// returns the defects and uninspected ranges of the roll it made.
func (c *comparer) rerun(ctx context.Context, rec string) ([]rollmap.Defect, []rollmap.Uninspected, error) {
	rollsDir := filepath.Join(c.out, compareRerun)
	c.ef.recipeFrom = c.recipeF
	var sink strings.Builder
	id, err := replayInto(ctx, rec, false, c.recipeF, c.recipe, c.ef, rollsDir, c.meta.ID, &sink)
	log.Info().Str("rerun", strings.TrimSpace(sink.String())).Msg("re-run with the candidate")
	if err != nil {
		return nil, nil, fmt.Errorf("re-running the recording %s with the candidate: %w", rec, err)
	}
	m, ds, us, err := rollmap.ReadRoll(filepath.Join(rollsDir, id))
	if err != nil {
		return nil, nil, fmt.Errorf("reading the re-run roll: %w", err)
	}
	// A recording that ran through a roll change holds more than this
	// roll; the re-run starts at the recording's start.
	if d := m.LengthM - c.meta.LengthM; d > 1 || d < -1 {
		n := fmt.Sprintf("the re-run covers %.1f m of web, the recorded roll %.1f m: if the recording holds more than this roll (a roll change while it ran), the MD positions do not line up and the changes are not this candidate's", m.LengthM, c.meta.LengthM)
		c.notes = append(c.notes, n)
		log.Warn().Msg(n)
	}
	return ds, us, nil
}

// noteUninspected notes the changes that lie where one side did not
// inspect the web (a newly flagged defect where the recorded roll has an
// uninspected range, a defect no longer flagged where the re-run has
// one): they are not the candidate's doing.
func noteUninspected(r *rollmap.Comparison, oldUnins, newUnins []rollmap.Uninspected) {
	for i := range r.Changes {
		ch := &r.Changes[i]
		var d *rollmap.Defect
		var us []rollmap.Uninspected
		var who string
		switch ch.Kind {
		case rollmap.ChangeNew:
			d, us, who = ch.New, oldUnins, "the recorded roll"
		case rollmap.ChangeGone:
			d, us, who = ch.Old, newUnins, "the re-run"
		default:
			continue
		}
		for _, u := range us {
			if d.MDStartM <= u.MDEndM && u.MDStartM <= d.MDEndM && d.CDStartMM <= u.CDEndMM && u.CDStartMM <= d.CDEndMM {
				ch.Note = strings.TrimPrefix(ch.Note+"; in a range "+who+" did not inspect ("+string(u.Reason)+")", "; ")
				break
			}
		}
	}
}

// rescoreStored decides every stored defect again with the candidate
// recipe (engine.Recipe.Rescore): no recording, so no new defects.
func (c *comparer) rescoreStored() (rollmap.Comparison, error) {
	c.basis = "the roll map and its archived crops (no recording: the roll's source " + cmp.Or(c.meta.Source, "(none)") + " is not a recording; give --recording DIR if it has moved)"
	c.limits = append(c.limits, engine.RescoreLimits)
	if *c.ef.model != "" && c.modelDir != c.versionPath(versions.KindModel, c.oldModel) {
		c.limits = append(c.limits, fmt.Sprintf("the candidate model %s was not run: a model scores the flat-fielded web, which only the recording holds; model detections are as recorded", c.modelDir))
	}
	var label func(d *rollmap.Defect) string
	if c.classifierDir != "" && c.classifierDir != c.versionPath(versions.KindClassifier, c.oldClassifier) {
		cl, err := c.cropClassifier()
		if err != nil {
			return rollmap.Comparison{}, err
		}
		defer cl.close()
		label = cl.label
	}
	res := rollmap.Comparison{Old: len(c.old)}
	kept := make([]rollmap.Defect, 0, len(c.old))
	notes := map[int64]string{}
	for i := range c.old {
		cand := c.old[i]
		if label != nil {
			if why := label(&cand); why != "" {
				notes[cand.ID] = why
			}
		}
		d, why := c.recipe.Rescore(cand)
		if why != "" {
			res.Changes = append(res.Changes, rollmap.Change{Kind: rollmap.ChangeGone, Old: &c.old[i], Note: "the candidate would not record it: " + why})
			continue
		}
		kept = append(kept, d)
	}
	res.New = len(kept)
	j := 0
	for i := range c.old {
		if j >= len(kept) || kept[j].ID != c.old[i].ID {
			continue
		}
		if k := rollmap.PairChange(&c.old[i], &kept[j]); k != "" {
			note := "re-decided from the roll map's measures"
			if kept[j].ClassifierVersion != c.old[i].ClassifierVersion {
				note += " and the candidate classifier on the crop"
			}
			if n := notes[c.old[i].ID]; n != "" {
				note += "; " + n
			}
			res.Changes = append(res.Changes, rollmap.Change{Kind: k, Old: &c.old[i], New: &kept[j], Note: note})
		} else {
			res.Unchanged++
		}
		j++
	}
	rollmap.SortChanges(res.Changes)
	return res, nil
}

// cropClassifier is the candidate classifier run on the archived crops.
type cropClassifier struct {
	c      *engine.Classifier
	images api.DirImages
	webMM  float64
	feats  []float32
}

// cropClassifier loads the candidate classifier for the crops of the
// roll's image archive.
func (c *comparer) cropClassifier() (*cropClassifier, error) {
	cl, err := classify.Load(c.classifierDir)
	if err != nil {
		return nil, fmt.Errorf("--classifier %s: %w", c.classifierDir, err)
	}
	// On the crops, a classifier of the model's features reads the
	// model scores the roll recorded: they must be its model's.
	if err := cl.CheckModel(c.oldModel); err != nil {
		cl.Close()
		return nil, fmt.Errorf("--classifier %s on the roll's crops: %w", c.classifierDir, err)
	}
	sha, err := versions.FilesDigest(c.classifierDir, classify.GraphFileName, classify.SidecarFileName)
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("--classifier %s: %w", c.classifierDir, err)
	}
	c.limits = append(c.limits, "the candidate classifier ran on the archived crops; a defect without a readable crop keeps its recorded learned class (its note says so)")
	return &cropClassifier{c: &engine.Classifier{C: cl, Version: versions.IDOf(sha)},
		images: api.DirImages(filepath.Join(c.storeRoot, imagesDirName)), webMM: c.meta.WebWidthMM}, nil
}

func (cc *cropClassifier) close() { cc.c.C.Close() }

// label runs the classifier on d's archived crop, or says why it could
// not (d then keeps its recorded learned class).
func (cc *cropClassifier) label(d *rollmap.Defect) string {
	if d.ImageRef == "" {
		return "no crop (" + cmp.Or(d.ImageError, "none recorded") + "): learned class as recorded"
	}
	pix, w, h, err := readGrayCrop(cc.images, d.ImageRef)
	if err != nil {
		return fmt.Sprintf("crop not readable (%v): learned class as recorded", err)
	}
	if cc.feats, err = cc.c.Label(cc.feats, d, cc.webMM, pix, w, h); err != nil {
		return fmt.Sprintf("classifier failed on the crop (%v): learned class as recorded", err)
	}
	return ""
}

// readGrayCrop reads crop ref as 8-bit grey pixels, stride w.
func readGrayCrop(images api.DirImages, ref string) ([]uint8, int, int, error) {
	rc, err := images.Open(ref)
	if err != nil {
		return nil, 0, 0, err
	}
	defer rc.Close()
	img, err := png.Decode(io.LimitReader(rc, 16<<20))
	if err != nil {
		return nil, 0, 0, err
	}
	b := img.Bounds()
	g, ok := img.(*image.Gray)
	if !ok {
		g = image.NewGray(b)
		draw.Draw(g, b, img, b.Min, draw.Src)
	}
	w, h := b.Dx(), b.Dy()
	pix := make([]uint8, w*h)
	for y := 0; y < h; y++ {
		copy(pix[y*w:(y+1)*w], g.Pix[y*g.Stride:y*g.Stride+w])
	}
	return pix, w, h, nil
}

// write writes OUT/changes.csv, OUT/changes.html and the crops they link
// (OUT/crops/REF), and prints the summary.
func (c *comparer) write(r *rollmap.Comparison, newImages string, stdout io.Writer) error {
	oldImages := api.DirImages(filepath.Join(c.storeRoot, imagesDirName))
	cropsDir := filepath.Join(c.out, compareCrops)
	if err := os.MkdirAll(cropsDir, 0o755); err != nil {
		return err
	}
	have := map[string]string{}
	copyCrop := func(src api.DirImages, d *rollmap.Defect) {
		if d == nil || d.ImageRef == "" {
			return
		}
		if _, ok := have[d.ImageRef]; ok {
			return
		}
		have[d.ImageRef] = ""
		rc, err := src.Open(d.ImageRef)
		if err != nil {
			return
		}
		defer rc.Close()
		f, err := os.Create(filepath.Join(cropsDir, d.ImageRef))
		if err != nil {
			return
		}
		if _, err := io.Copy(f, io.LimitReader(rc, 16<<20)); err == nil && f.Close() == nil {
			have[d.ImageRef] = compareCrops + "/" + d.ImageRef
		} else {
			f.Close()
		}
	}
	for i := range r.Changes {
		copyCrop(oldImages, r.Changes[i].Old)
		copyCrop(api.DirImages(newImages), r.Changes[i].New)
	}
	crop := func(ref string) string { return have[ref] }
	fc, err := os.Create(filepath.Join(c.out, compareCSV))
	if err != nil {
		return err
	}
	err = rollmap.ExportChangesCSV(fc, r, crop)
	if cerr := fc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	page := &api.ComparisonPage{
		RollID: c.meta.ID, Basis: c.basis, Limits: c.limits, Notes: c.notes, Cmp: r, Crop: crop, Generated: time.Now(),
		Recorded:  describeSide(c.meta.Recipe, c.oldRecipe, c.oldModel, c.oldClassifier),
		Candidate: c.describeCandidate(),
	}
	fh, err := os.Create(filepath.Join(c.out, compareHTML))
	if err != nil {
		return err
	}
	err = api.WriteComparisonHTML(fh, page)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "roll %s re-scored from %s\n", c.meta.ID, strings.SplitN(c.basis, ",", 2)[0])
	fmt.Fprintf(stdout, "recorded:  %s\ncandidate: %s\n", page.Recorded, page.Candidate)
	fmt.Fprintf(stdout, "defects: %d recorded, %d with the candidate, %d unchanged; %d newly flagged, %d no longer flagged, %d reclassified, %d decision changed, %d severity changed (%d changes of decision)\n",
		r.Old, r.New, r.Unchanged, r.Count(rollmap.ChangeNew), r.Count(rollmap.ChangeGone), r.Count(rollmap.ChangeClass),
		r.Count(rollmap.ChangeDecision), r.Count(rollmap.ChangeSeverity), r.DecisionChanges())
	for _, l := range c.limits {
		fmt.Fprintf(stdout, "not re-scored: %s\n", l)
	}
	for _, n := range c.notes {
		fmt.Fprintf(stdout, "note: %s\n", n)
	}
	fmt.Fprintf(stdout, "wrote %s and %s\n", filepath.Join(c.out, compareCSV), filepath.Join(c.out, compareHTML))
	return nil
}

func describeSide(recipeName, recipe, model, classifier string) string {
	return fmt.Sprintf("recipe %s (version %s), model %s, classifier %s", recipeName, cmp.Or(recipe, "unrecorded"),
		cmp.Or(model, "none (threshold only)"), cmp.Or(classifier, "none"))
}

func (c *comparer) describeCandidate() string {
	canon, _ := c.recipe.CanonicalBytes()
	rv := versions.IDOf(versions.Digest(canon))
	md, cd := "none (threshold only)", "none"
	if c.modelDir != "" {
		md = c.modelDir
		if sha, err := versions.FilesDigest(c.modelDir, onnx.ModelFileName, onnx.SidecarFileName); err == nil {
			md = fmt.Sprintf("%s (version %s)", c.modelDir, versions.IDOf(sha))
		}
	}
	if c.classifierDir != "" {
		cd = c.classifierDir
		if sha, err := versions.FilesDigest(c.classifierDir, classify.GraphFileName, classify.SidecarFileName); err == nil {
			cd = fmt.Sprintf("%s (version %s)", c.classifierDir, versions.IDOf(sha))
		}
	}
	return fmt.Sprintf("recipe %s (version %s), model %s, classifier %s", c.recipe.Name, rv, md, cd)
}
