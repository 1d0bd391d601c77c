package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/webinspect/webinspect/rollmap/versions"
)

// cmdVersions lists the recipes and models the rolls directory's line ran
// with: their content-addressed IDs (what each defect's recipe_version and
// model_version name), who registered each and when.
func cmdVersions(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("versions", flag.ContinueOnError)
	rolls := fs.String("rolls", "rolls", "`DIR` of roll maps whose version registry to list")
	kind := fs.String("kind", "", "list only this `KIND`: recipe, model or classifier")
	asJSON := fs.Bool("json", false, "one JSON object per version instead of a table")
	pos, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", pos[0])}
	}
	switch *kind {
	case "", versions.KindRecipe, versions.KindModel, versions.KindClassifier:
	default:
		return usageError{fmt.Sprintf("--kind %q: must be recipe, model or classifier", *kind)}
	}
	if st, err := os.Stat(*rolls); err != nil || !st.IsDir() {
		return fmt.Errorf("--rolls %s: not a directory of roll maps", *rolls)
	}
	vs, lerr := versions.ListDir(*rolls)
	if lerr != nil {
		log.Warn().Err(lerr).Msg("the version registry has damaged lines; listing the readable ones")
	}
	var out []versions.Version
	for _, v := range vs {
		if *kind == "" || v.Kind == *kind {
			out = append(out, v)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, v := range out {
			if err := enc.Encode(v); err != nil {
				return err
			}
		}
		return nil
	}
	if len(out) == 0 {
		fmt.Fprintf(stdout, "no versions registered in %s (run or replay registers the recipe and model they use)\n",
			filepath.Join(*rolls, versions.DirName))
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tVERSION\tNAME\tMADE BY\tMADE AT (UTC)\tORIGIN\tNOTE")
	for _, v := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Kind, v.ID, v.Name, v.MadeBy, v.MadeAt.UTC().Format(time.DateTime), v.Origin, v.Note)
	}
	return tw.Flush()
}
