package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
	dir := pos[0]
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		dir = filepath.Join(*rolls, pos[0])
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return fmt.Errorf("roll %q: not a roll directory, and no roll of that ID in %s", pos[0], *rolls)
		}
	}
	if *format == "pdf" || *format == "html" {
		return exportReport(dir, *format, *out, stdout)
	}
	meta, defects, unins, err := rollmap.ReadRoll(dir)
	if err != nil && !errors.Is(err, rollmap.ErrTruncated) {
		return err
	}
	if err != nil {
		log.Warn().Err(err).Msg("roll map is truncated; exporting every complete record")
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
		err = rollmap.ExportParquet(w, defects)
	case "cutlist":
		err = rollmap.ExportMarkingList(w, meta.Lanes, defects, nil)
	}
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	return err
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
