// Package fieldcheck words the range errors of configuration files (the
// recipe, the marking unit's options) the same way everywhere: the field's
// path, its value and what it must be, as in
// "threshold.min_size_mm = -1: must be between 0 and 1000".
package fieldcheck

import "fmt"

// Float returns nil when lo <= v <= hi, else an error naming field, v and
// the range. NaN is out of every range.
func Float(field string, v, lo, hi float64) error {
	if v >= lo && v <= hi {
		return nil
	}
	return fmt.Errorf("%s = %g: must be between %g and %g", field, v, lo, hi)
}

// Int is Float for integers.
func Int(field string, v, lo, hi int) error {
	if v >= lo && v <= hi {
		return nil
	}
	return fmt.Errorf("%s = %d: must be between %d and %d", field, v, lo, hi)
}
