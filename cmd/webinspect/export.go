package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/webinspect/webinspect/rollmap"
)

func cmdExport(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	format := fs.String("format", "csv", "output format: csv, json, parquet, or cutlist (the defects to remove per lane)")
	out := fs.String("out", "", "output file (default: standard output)")
	rolls := fs.String("rolls", "rolls", "directory of roll maps, used when ROLL is an ID rather than a directory")
	pos, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"expected exactly one roll: webinspect export ROLL --format csv|json|parquet"}
	}
	switch *format {
	case "csv", "json", "parquet", "cutlist":
	default:
		return usageError{fmt.Sprintf("--format %q: must be csv, json, parquet or cutlist", *format)}
	}
	dir := pos[0]
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		dir = filepath.Join(*rolls, pos[0])
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return fmt.Errorf("roll %q: not a roll directory, and no roll of that ID in %s", pos[0], *rolls)
		}
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
