package engine

import (
	"fmt"

	"github.com/webinspect/webinspect/model/edge"
)

// validOffWeb checks an edge search's settings, naming the recipe fields
// by their JSON paths (threshold.off_web.min_band).
func validOffWeb(path string, o *edge.Options) error {
	switch {
	case o.Mode != edge.None && o.Mode != edge.Auto && o.Mode != edge.Bright && o.Mode != edge.Dark:
		return fmt.Errorf("%s.mode = %q: must be one of auto, none, bright, dark", path, o.Mode)
	case o.Level < 0 || o.Level > 255:
		return fmt.Errorf("%s.level = %d: must be between 0 and 255", path, o.Level)
	case o.MinBand < 1 || o.MinBand > 4096:
		return fmt.Errorf("%s.min_band = %d: must be between 1 and 4096", path, o.MinBand)
	case o.Guard < 0 || o.Guard > 64:
		return fmt.Errorf("%s.guard = %d: must be between 0 and 64", path, o.Guard)
	}
	return nil
}
