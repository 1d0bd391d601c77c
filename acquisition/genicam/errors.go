package genicam

import (
	"errors"
	"fmt"
)

// Errors returned (wrapped) by this package. Classify with errors.Is; the
// wrapping error names the feature or URL and the reason in detail.
var (
	// ErrNotFound is returned when no node has the requested name.
	ErrNotFound = errors.New("no such feature")
	// ErrWrongType is returned when a feature is accessed as a type it does
	// not have (Int on a String, Execute on an Integer, ...).
	ErrWrongType = errors.New("wrong feature type")
	// ErrReadOnly is returned when writing a feature whose access mode is
	// RO (by its own AccessMode, an ImposedAccessMode or the node it writes
	// through).
	ErrReadOnly = errors.New("read-only")
	// ErrWriteOnly is returned when reading a feature whose access mode is WO.
	ErrWriteOnly = errors.New("write-only")
	// ErrLocked is returned when writing a feature whose pIsLocked is true.
	ErrLocked = errors.New("locked")
	// ErrOutOfRange is returned when a value is below Min, above Max, off
	// the Inc grid, or too long for its register.
	ErrOutOfRange = errors.New("out of range")
	// ErrNotAvailable is returned when a feature's pIsAvailable is false.
	ErrNotAvailable = errors.New("not available")
	// ErrNotImplemented is returned when a feature's pIsImplemented is false.
	ErrNotImplemented = errors.New("not implemented")
	// ErrNotEnumEntry is returned when an enumeration is set to a name that
	// is none of its entries, or holds a value that matches no entry.
	ErrNotEnumEntry = errors.New("not an enumeration entry")
	// ErrNotConnected is returned when a register is accessed through a
	// Port node that has no Port connected.
	ErrNotConnected = errors.New("port not connected")
	// ErrTooLarge is returned when a file, register, node count or formula
	// exceeds the package's size limits.
	ErrTooLarge = errors.New("too large")
	// ErrMalformed is returned for a device description or URL that does
	// not follow the GenICam standard (bad XML, missing or dangling
	// references, bad numbers, bad register lengths).
	ErrMalformed = errors.New("malformed")
	// ErrRecursion is returned when evaluating a node reaches the same node
	// again (a -> b -> a through pValue, pAddress, formula variables ...) or
	// exceeds the maximum evaluation depth.
	ErrRecursion = errors.New("recursive reference")
	// ErrFormula is returned for a formula that does not parse or cannot be
	// evaluated (unknown variable or function, integer division by zero).
	ErrFormula = errors.New("formula error")
	// ErrUnsupported is returned for GenICam URLs other than Local: (File:,
	// http:) and node kinds this package does not evaluate.
	ErrUnsupported = errors.New("unsupported")
)

// FeatureError is the error returned by feature access. It names the
// feature, the operation and the reason; Unwrap gives the cause, which is
// one of the Err… sentinels or a Port error.
type FeatureError struct {
	Feature string // the name passed to the accessor
	Op      string // "get", "set" or "execute"
	Detail  string // human-readable detail, may be empty
	Err     error  // the cause
}

func (e *FeatureError) Error() string {
	s := "genicam: " + e.Op + " " + e.Feature + ": "
	if e.Detail != "" {
		return s + e.Err.Error() + ": " + e.Detail
	}
	return s + e.Err.Error()
}

func (e *FeatureError) Unwrap() error { return e.Err }

// nodeErr is the internal error carrying the innermost node name and detail;
// FeatureError wraps it at the API boundary.
type nodeErr struct {
	node   string
	detail string
	err    error
}

func (e *nodeErr) Error() string {
	s := e.err.Error()
	if e.detail != "" {
		s += ": " + e.detail
	}
	if e.node != "" {
		s += " (node " + e.node + ")"
	}
	return s
}

func (e *nodeErr) Unwrap() error { return e.err }

func errf(node string, sentinel error, format string, args ...any) error {
	return &nodeErr{node: node, detail: fmt.Sprintf(format, args...), err: sentinel}
}
