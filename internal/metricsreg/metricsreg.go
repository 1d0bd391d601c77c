// Package metricsreg registers a component's Prometheus collectors on the
// registerer its constructor was given, without losing an error.
//
// # Rules
//
// Constructors across webinspect take a prometheus.Registerer, nil
// allowed (STYLE.md, "Metrics off the hot path"). Registering can fail
// in two ways that call for different answers:
//
//   - The registerer already holds an equal collector: same descriptors,
//     same type. This is a second component of the same kind on one
//     registry (two schedulers, a second engine run, an archive reopened).
//     The component shares the collector already registered, so the
//     metric keeps counting across them: Register returns the existing
//     collector.
//   - Anything else: a name registered with other labels or help, a
//     collector of another type under the same name, an invalid
//     descriptor. That is a programming error: Register returns it, and
//     the constructor reports it to its caller.
//
// A collector bound to one object (a pool that reports its own counters
// at scrape time) cannot be shared: Replace unregisters the previous
// object's collector and registers the new one.
package metricsreg

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c on reg and returns the collector to use: c, or the
// collector of c's type already registered with the same descriptors. Any
// other registration error is returned (with c). A nil reg registers
// nothing and returns c.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if old, ok := are.ExistingCollector.(C); ok {
			return old, nil
		}
		return c, fmt.Errorf("metrics: a collector of type %T is already registered with the descriptors of %T", are.ExistingCollector, c)
	}
	return c, fmt.Errorf("metrics: %w", err)
}

// Replace registers c on reg in place of any collector registered with the
// same descriptors, for collectors that report one object's state (which a
// new object replaces). Other registration errors are returned. A nil reg
// registers nothing.
func Replace(reg prometheus.Registerer, c prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	err := reg.Register(c)
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		reg.Unregister(are.ExistingCollector)
		err = reg.Register(c)
	}
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// Set registers several collectors of different types and keeps the first
// error, so a constructor registers each with one line and checks once:
//
//	var s metricsreg.Set
//	lines = metricsreg.Add(&s, reg, lines)
//	drops = metricsreg.Add(&s, reg, drops)
//	if err := s.Err(); err != nil { ... }
type Set struct{ err error }

// Add registers c on reg as Register does, remembering the first error in
// s, and returns the collector to use.
func Add[C prometheus.Collector](s *Set, reg prometheus.Registerer, c C) C {
	c, err := Register(reg, c)
	if err != nil && s.err == nil {
		s.err = err
	}
	return c
}

// Err returns the first registration error, or nil.
func (s *Set) Err() error { return s.err }
