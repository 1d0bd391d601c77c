package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/webinspect/webinspect/api"
	"github.com/webinspect/webinspect/rollmap"
)

func cmdExport(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	format := fs.String("format", "csv", "output `FORMAT`: csv, json, parquet, cutlist (the defects to remove per lane), or the one-page roll report as pdf or html")
	out := fs.String("out", "", "output `FILE` (default: standard output)")
	rolls := fs.String("rolls", "rolls", "`DIR` of roll maps, used when ROLL is an ID rather than a directory")
	pos, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"expected exactly one roll: webinspect export ROLL --format csv|json|parquet|cutlist|pdf|html"}
	}
	switch *format {
	case "csv", "json", "parquet", "cutlist", "pdf", "html":
	default:
		return usageError{fmt.Sprintf("--format %q: must be csv, json, parquet, cutlist, pdf or html", *format)}
	}
	dir, err := rollDirOf(pos[0], *rolls)
	if err != nil {
		return err
	}
	if *format == "pdf" || *format == "html" {
		return exportReport(dir, *format, *out, stdout)
	}
	meta, defects, unins, err := rollmap.ReadRoll(dir)
	var damage error // a stream damaged mid-way: the readable part is exported, then this is the exit status
	switch {
	case err == nil:
	case errors.Is(err, rollmap.ErrCorrupt) && meta.ID != "":
		damage = fmt.Errorf("roll %s is damaged: exported the %d readable defects (%s); a damaged part could not be read (%s)",
			meta.ID, len(defects), readableUpTo(defects), describeDamage(err))
		log.Warn().Str("roll", meta.ID).Int("defects", len(defects)).Msg("roll map damaged mid-way; exporting the readable batches")
	case errors.Is(err, rollmap.ErrTruncated) && meta.ID != "":
		log.Warn().Str("damage", describeDamage(err)).Msg("roll map is truncated; exporting every complete record")
	default:
		return err
	}
	w := stdout
	var f *os.File
	if *out != "" {
		if f, err = os.Create(*out); err != nil {
			return err
		}
		w = f
	}
	switch *format {
	case "csv":
		err = rollmap.ExportCSV(w, defects)
	case "json":
		err = rollmap.ExportJSON(w, meta, defects, unins)
	case "parquet":
		err = rollmap.ExportParquetRoll(w, meta, defects)
	case "cutlist":
		err = rollmap.ExportMarkingList(w, meta.Lanes, defects, nil)
	}
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = damage
	}
	return err
}

// rollDirOf is the directory of the roll arg names: a roll directory, or
// the ID of a roll in the rolls directory.
func rollDirOf(arg, rolls string) (string, error) {
	if st, err := os.Stat(arg); err == nil && st.IsDir() {
		return arg, nil
	}
	dir := filepath.Join(rolls, arg)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return "", fmt.Errorf("roll %q: not a roll directory, and no roll of that ID in %s", arg, rolls)
	}
	return dir, nil
}

// readableUpTo says how far the readable defects of a damaged roll go.
func readableUpTo(ds []rollmap.Defect) string {
	if len(ds) == 0 {
		return "no defects"
	}
	last := ds[0]
	for _, d := range ds {
		if d.ID > last.ID {
			last = d
		}
	}
	return fmt.Sprintf("%d defects, up to defect %d at %.3f m", len(ds), last.ID, last.MDStartM)
}

// describeDamage is a reader's error on one line: which file, how many
// batches were readable, where they stop and what is wrong (the roll map
// reader never passes on a decoder's recovered panic).
func describeDamage(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

// exportReport writes the roll report of the roll in dir: its store is
// the directory above, its crops in that store's image archive.
func exportReport(dir, format, out string, stdout io.Writer) (err error) {
	dir = filepath.Clean(dir)
	store, err := rollmap.OpenStore(filepath.Dir(dir))
	if err != nil {
		return err
	}
	defer store.Close()
	w := stdout
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer func() {
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}()
		w = f
	}
	images := api.DirImages(filepath.Join(filepath.Dir(dir), imagesDirName))
	return api.WriteReport(w, format, store, images, filepath.Base(dir))
}
