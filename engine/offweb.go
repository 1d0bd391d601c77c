package engine

import (
	"fmt"
	"slices"

	"github.com/webinspect/webinspect/model/edge"
)

// validOffWeb checks an edge search's settings against model/edge's
// ranges, naming the recipe fields by their JSON paths
// (threshold.off_web.min_band).
func validOffWeb(path string, o *edge.Options) error {
	if !slices.Contains(edge.Modes, o.Mode) {
		return fmt.Errorf("%s.mode = %q: must be one of auto, none, bright, dark", path, o.Mode)
	}
	if f, bad := o.BadField(); bad {
		return fmt.Errorf("%s.%s = %d: must be between %d and %d", path, f.JSON, f.Get(o), f.Lo, f.Hi)
	}
	return nil
}
