package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/webinspect/webinspect/plant"
)

// compactFlags are the compaction flags of plant and plant compact.
type compactFlags struct {
	every, grace time.Duration
	maxParts     int
	maxRows      int64
}

func addCompactFlags(fs *flag.FlagSet, every bool) *compactFlags {
	d := plant.DefaultCompactOptions()
	f := &compactFlags{every: d.Interval}
	if every {
		fs.DurationVar(&f.every, "compact-every", d.Interval, "how often the service looks for dataset partitions to compact in its background (0: never; then run webinspect plant compact)")
	}
	fs.DurationVar(&f.grace, "compact-grace", d.Grace, "compact a day's partitions this long after the UTC day ended (late records still come as part files after it)")
	fs.IntVar(&f.maxParts, "compact-max-parts", d.MaxParts, "compact a partition with more part files than this while its day runs")
	fs.Int64Var(&f.maxRows, "compact-max-rows", d.MaxRows, "rows of a merged file, at most (a part file is never split)")
	return f
}

// options returns the flags as plant.CompactOptions, refusing one out of
// range as a command-line mistake naming the flag.
func (f *compactFlags) options() (plant.CompactOptions, error) {
	o := plant.CompactOptions{Interval: f.every, Grace: f.grace, MaxParts: f.maxParts, MaxRows: f.maxRows}
	if o.Interval == 0 {
		o.Interval = -1
	}
	if o.Grace == 0 {
		o.Grace = time.Nanosecond // 0 means the default to plant; a grace of none is asked for here
	}
	if err := o.Validate(); err != nil {
		r := strings.NewReplacer(plant.ErrInvalidOptions.Error()+": ", "", "Compact.Interval", "--compact-every", "Compact.Grace", "--compact-grace",
			"Compact.MaxParts", "--compact-max-parts", "Compact.MaxRows", "--compact-max-rows")
		return o, usageError{r.Replace(err.Error())}
	}
	return o, nil
}

// cmdPlantCompact compacts the plant dataset once, with the service
// stopped (a running service compacts in its own background and holds
// the data directory): webinspect plant compact --data DIR.
func cmdPlantCompact(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("plant compact", flag.ContinueOnError)
	data := fs.String("data", "plant-data", "`DIR` of the plant dataset (the plant service's --data)")
	cf := addCompactFlags(fs, false)
	pos, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", pos[0])}
	}
	o, err := cf.options()
	if err != nil {
		return err
	}
	st, err := plant.Compact(ctx, *data, o, log, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "compacted %d partitions of %s: %d files into %d, %d rows\n", st.Partitions, *data, st.Files, st.Outputs, st.Rows)
	if st.Failed > 0 {
		return fmt.Errorf("%d partitions not compacted (an unreadable part file or a disk error, named in the log above): left as they were", st.Failed)
	}
	return nil
}
