package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/webinspect/webinspect/engine/status"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webinspect/webinspect/api"
	"github.com/webinspect/webinspect/engine"
	"github.com/webinspect/webinspect/model/classify"
	"github.com/webinspect/webinspect/model/onnx"
	"github.com/webinspect/webinspect/rollmap"
	"github.com/webinspect/webinspect/rollmap/archive"
	"github.com/webinspect/webinspect/rollmap/versions"
)

// imagesDirName is the image archive's directory inside the rolls directory.
const imagesDirName = "images"

// engineFlags are the flags run and replay share: the learned model and
// the image archive.
type engineFlags struct {
	model    *string
	ortLib   *string
	images   *bool
	imgBytes *int64
	imgAge   *time.Duration
	imgFree  *int64
	// recipeFrom is the --recipe value, for the recipe version's origin.
	recipeFrom string
	classifier *string
}

func addEngineFlags(fs *flag.FlagSet) *engineFlags {
	d := archive.DefaultOptions()
	return &engineFlags{
		model:    fs.String("model", "", "ONNX model `DIR` (model.onnx + model.json, as webinspect teach writes it) run beside the threshold detector (default: the recipe's model.path)"),
		ortLib:   fs.String("ort-lib", "", "ONNX Runtime library `FILE` (default: $"+onnx.EnvLibrary+" or "+onnx.LibraryRelPath+")"),
		images:   fs.Bool("images", true, "keep a crop of every defect in ROLLS/images"),
		imgBytes: fs.Int64("images-max-bytes", 4<<30, "image archive disk budget in bytes: the oldest crops go first (0: no budget)"),
		imgAge:   fs.Duration("images-max-age", 90*24*time.Hour, "delete crops older than this (0: keep)"),
		imgFree:  fs.Int64("images-min-free", d.MinFreeBytes, "stop archiving crops while the disk has less free space than this, in bytes"),
		classifier: fs.String("classifier", "", "defect classifier `DIR` (classifier.onnx + classifier.json, as webinspect learn writes it) run on each defect's crop "+
			"(default: the recipe's classifier.path); run reloads it on SIGHUP"),
	}
}

// crops tells whether the engine will keep crops (it needs their line
// history then).
func (f *engineFlags) crops(recipe *engine.Recipe) bool {
	return *f.images && recipe.Images.Enabled
}

// wired is what the flags set up beside the engine; close releases it.
type wired struct {
	model     *onnx.Model
	modelName string
	archive   *archive.Archive
	// recipeVersion and modelVersion are the versions registered in the
	// rolls directory (rollmap/versions); modelVersion "" without a model.
	recipeVersion, modelVersion versions.Version
	// classifier is the defect classifier and its directory ("" for none).
	classifier    *engine.Classifier
	classifierDir string
	registry      *versions.Registry
}

// describeModel names the learned model for the start-up log.
func (w *wired) describeModel() string {
	if w.model == nil {
		return "none (threshold detector only)"
	}
	return w.modelName
}

func (w *wired) close() {
	if w.classifier != nil {
		w.classifier.C.Close()
	}
	if w.archive != nil {
		if err := w.archive.Close(); err != nil {
			log.Error().Err(err).Msg("close image archive")
		}
	}
}

// setup loads the model (flag or recipe) and opens the image archive.
func (f *engineFlags) setup(recipe *engine.Recipe, rollsDir string, reg prometheus.Registerer) (*wired, error) {
	w := &wired{}
	dir := *f.model
	if dir == "" {
		dir = recipe.Model.Path
	}
	if dir != "" {
		m, err := loadModel(dir, *f.ortLib, recipe)
		if err != nil {
			return nil, err
		}
		w.model, w.modelName = m, filepath.Base(filepath.Clean(dir))
	}
	if err := w.register(rollsDir, recipe, f.recipeFrom, dir); err != nil {
		return nil, err
	}
	if cdir := cmp.Or(*f.classifier, recipe.Classifier.Path); cdir != "" {
		if err := onnx.Init(*f.ortLib); err != nil {
			return nil, fmt.Errorf("--classifier %s: %w", cdir, err)
		}
		c, err := w.loadClassifier(cdir)
		if err != nil {
			return nil, err
		}
		w.classifier, w.classifierDir = c, cdir
	}
	if *f.images && recipe.Images.Enabled {
		o := archive.DefaultOptions()
		o.MaxBytes, o.MaxAge, o.MinFreeBytes = *f.imgBytes, *f.imgAge, *f.imgFree
		if err := o.Validate(); err != nil {
			w.close()
			return nil, usageError{err.Error()}
		}
		a, err := archive.Open(filepath.Join(rollsDir, imagesDirName), o, log, reg)
		if err != nil {
			w.close()
			return nil, err
		}
		w.archive = a
	}
	return w, nil
}

// register records the recipe and the model (from modelDir) in the rolls
// directory's version registry, so every defect can name them.
func (w *wired) register(rollsDir string, recipe *engine.Recipe, recipeFrom, modelDir string) error {
	reg, err := versions.Open(rollsDir)
	if err != nil {
		return err
	}
	w.registry = reg
	canon, err := recipe.CanonicalBytes()
	if err != nil {
		return err
	}
	origin := "built-in:" + recipe.Name
	if recipeFrom != "" {
		origin = "built-in:" + recipeFrom
		if st, err := os.Stat(recipeFrom); err == nil && st.Mode().IsRegular() {
			origin, _ = filepath.Abs(recipeFrom)
		}
	}
	if w.recipeVersion, err = reg.RegisterRecipe(versions.Version{Name: recipe.Name, Origin: origin}, canon); err != nil {
		return err
	}
	if w.model == nil {
		log.Info().Str("recipe_version", w.recipeVersion.ID).Msg("versions")
		return nil
	}
	dir := modelDir
	if filepath.Ext(dir) == ".onnx" {
		return fmt.Errorf("--model %s: give the model's directory (model.onnx and model.json), so its version covers both", dir)
	}
	sc := w.model.Sidecar()
	note := strings.TrimSpace(strings.Join([]string{sc.MadeBy.Tool, sc.MadeBy.Created, sc.MadeBy.Source}, " "))
	if note != "" {
		note = "made by " + note
	}
	abs, _ := filepath.Abs(dir)
	w.modelVersion, err = reg.RegisterFiles(versions.KindModel, versions.Version{Name: w.modelName, Origin: abs, Note: note},
		dir, onnx.ModelFileName, onnx.SidecarFileName)
	if err != nil {
		return err
	}
	log.Info().Str("recipe_version", w.recipeVersion.ID).Str("model_version", w.modelVersion.ID).Msg("versions")
	return nil
}

// loadClassifier loads the defect classifier in dir and registers its
// version. A classifier that does not load, or that was trained on the
// scores of a taught model other than the one loaded (or with none
// loaded), is an error naming why; the caller keeps the one it has.
func (w *wired) loadClassifier(dir string) (*engine.Classifier, error) {
	c, err := classify.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("--classifier %s: %w", dir, err)
	}
	if err := c.CheckModel(w.modelVersion.ID); err != nil { // "" without a model
		c.Close()
		return nil, fmt.Errorf("--classifier %s: %w", dir, err)
	}
	abs, _ := filepath.Abs(dir)
	made := c.Sidecar().Made
	note := strings.TrimSpace(made["tool"] + " " + made["created"] + " " + made["labels"])
	v, err := w.registry.RegisterFiles(versions.KindClassifier, versions.Version{Name: filepath.Base(filepath.Clean(dir)), Origin: abs, Note: note},
		dir, classify.GraphFileName, classify.SidecarFileName)
	if err != nil {
		c.Close()
		return nil, err
	}
	log.Info().Str("classifier", dir).Str("classifier_version", v.ID).Strs("classes", c.Sidecar().Classes).Msg("defect classifier loaded")
	return &engine.Classifier{C: c, Version: v.ID}, nil
}

// classifierSetter is the engine's classifier swap (*engine.Engine).
type classifierSetter interface {
	SetClassifier(c *engine.Classifier) (*engine.Classifier, error)
}

// reloadClassifier loads the classifier directory again (it may have been
// trained anew) and swaps it into e. When it does not load, e keeps the
// classifier it has and the error says why.
func (w *wired) reloadClassifier(e classifierSetter) error {
	if w.classifierDir == "" {
		return errors.New("no --classifier to reload")
	}
	c, err := w.loadClassifier(w.classifierDir)
	if err != nil {
		return err
	}
	if _, err := e.SetClassifier(c); err != nil { // the engine keeps the one it has
		c.C.Close()
		return fmt.Errorf("--classifier %s: %w", w.classifierDir, err)
	}
	// The old one is left open: the assembly may be using it this instant.
	return nil
}

// loadModel loads ONNX Runtime (ortLib, or the default search) and the
// model directory dir for recipe.
func loadModel(dir, ortLib string, recipe *engine.Recipe) (*onnx.Model, error) {
	if err := onnx.Init(ortLib); err != nil {
		return nil, fmt.Errorf("--model %s: %w", dir, err)
	}
	return engine.LoadModel(dir, recipe)
}

// options fills the engine options the flags control.
func (w *wired) options(o *engine.Options) {
	o.RecipeVersion, o.ModelVersion = w.recipeVersion.ID, w.modelVersion.ID
	o.Classifier = w.classifier
	if w.model != nil {
		o.Model, o.ModelName = w.model, w.modelName
	}
	if w.archive != nil {
		o.Images = cropSink{a: w.archive, wait: o.Source != nil && !o.Source.Info().Live}
	}
}

// cropWait bounds how long a replay waits for room in the image archive's
// write queue before the crop is skipped (queue_full): a writer that has
// not taken one crop in that time is stuck, not slow.
const cropWait = time.Minute

// cropSink hands the engine's crops to the image archive. A source that
// is not live (a replay) waits for room in the archive's queue: its
// recording waits for the engine, so no crop need be lost to a busy disk.
// A live source never waits (the cameras would drop lines).
type cropSink struct {
	a    *archive.Archive
	wait bool
}

func (c cropSink) PutCrop(w, h, stride int, pix []uint8) (string, error) {
	crop := archive.Crop{W: w, H: h, Stride: stride, Pix: pix}
	if c.wait {
		return c.a.PutWait(crop, cropWait)
	}
	return c.a.Put(crop)
}

// lineControl drives roll changes and splices from the API.
type lineControl struct{ e *engine.Engine }

// lineTimeout bounds how long an API request waits for the engine.
const lineTimeout = 10 * time.Second

func (l lineControl) StartRoll(id string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), lineTimeout)
	defer cancel()
	ch, err := l.e.ChangeRoll(ctx, id)
	return ch.Started, err
}

func (l lineControl) EndRoll() (string, float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), lineTimeout)
	defer cancel()
	ch, err := l.e.EndRoll(ctx)
	if errors.Is(err, engine.ErrNoRoll) {
		err = fmt.Errorf("%w: %s", api.ErrNoRoll, strings.TrimPrefix(err.Error(), engine.ErrNoRoll.Error()+": "))
	}
	return ch.Ended, ch.EndedM, err
}

func (l lineControl) Splice(note string) (string, float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), lineTimeout)
	defer cancel()
	return l.e.Splice(ctx, note)
}

// publishTo returns engine callbacks that put defects and roll events on
// the live event hub.
func publishTo(h *api.Hub) (func([]rollmap.Defect), func(status.RollEvent)) {
	return func(ds []rollmap.Defect) {
			for i := range ds {
				h.Publish("defect", ds[i])
			}
		}, func(ev status.RollEvent) {
			h.Publish("roll", ev)
		}
}
