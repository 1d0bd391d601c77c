package engine

import (
	"fmt"
	"sort"
	"strings"

	"github.com/webinspect/webinspect/rollmap"
)

// Field checks of Recipe.Validate: each names the field by its JSON path.

func firstErr(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func nonEmpty(field, v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("%s: must not be empty", field)
	}
	return nil
}

func oneOf(field, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%s = %q: must be one of %s", field, v, strings.Join(allowed, ", "))
}

func knownClass(field, v string, known map[string]bool) error {
	if known[v] {
		return nil
	}
	var names []string
	for k := range known {
		names = append(names, k)
	}
	sort.Strings(names)
	return fmt.Errorf("%s = %q: must be one of %s", field, v, strings.Join(names, ", "))
}

func orZero(err error, v int) error {
	if v == 0 {
		return nil
	}
	return err
}

func orEmpty(err error, v string) error {
	if v == "" {
		return nil
	}
	return err
}

func minMax(prefix, name string, lo, hi float64) error {
	if lo < 0 || hi < 0 {
		return fmt.Errorf("%s.min_%s/max_%s: must not be negative", prefix, name, name)
	}
	if hi != 0 && lo > hi {
		return fmt.Errorf("%s.min_%s = %g is greater than max_%s = %g", prefix, name, lo, name, hi)
	}
	return nil
}

// decisionNames lists the known decisions for error messages.
func decisionNames() []string {
	var ns []string
	for _, d := range rollmap.Decisions() {
		ns = append(ns, string(d))
	}
	return ns
}
