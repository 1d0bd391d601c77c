// Package textcheck is the one check for the short free-text fields people
// type into webinspect: recipe names, roll IDs, reviewers, review labels,
// splice notes. Such text reaches roll.json (rewritten on every flush), CSV
// exports, HTTP headers and the operator's screen, so it is bounded and
// holds only characters that print as themselves.
//
// # Rules
//
// A field passes when it is
//
//   - at most its maximum length in bytes (Limit for the field kind);
//   - valid UTF-8;
//   - free of control characters (Unicode Cc: NUL, tab, CR, LF, DEL, C1),
//     line and paragraph separators (U+2028, U+2029);
//   - free of bidirectional formatting characters, which reorder what a
//     reader sees (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069).
//
// Emptiness is the caller's rule: Check accepts "", CheckRequired does not.
package textcheck

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Maximum lengths in bytes of the field kinds.
const (
	// MaxName bounds a name: recipe name, roll ID, reviewer, label.
	MaxName = 64
	// MaxNote bounds a note: a splice note.
	MaxNote = 256
)

// Errors returned by Check; each wraps ErrText.
var (
	// ErrText is wrapped by every error of this package.
	ErrText = errors.New("text")
	// ErrEmpty is returned by CheckRequired for an empty field.
	ErrEmpty = fmt.Errorf("%w: empty", ErrText)
	// ErrTooLong is returned for a field longer than its maximum.
	ErrTooLong = fmt.Errorf("%w: too long", ErrText)
	// ErrEncoding is returned for a field that is not valid UTF-8.
	ErrEncoding = fmt.Errorf("%w: not valid UTF-8", ErrText)
	// ErrControl is returned for a control character or line separator.
	ErrControl = fmt.Errorf("%w: control character", ErrText)
	// ErrBidi is returned for a bidirectional formatting character.
	ErrBidi = fmt.Errorf("%w: bidirectional formatting character", ErrText)
)

// IsBidi reports whether r is a bidirectional formatting character.
func IsBidi(r rune) bool {
	switch {
	case r == 0x061C, r == 0x200E, r == 0x200F:
		return true
	case r >= 0x202A && r <= 0x202E:
		return true
	case r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// Check returns nil when s follows the package rules with at most max bytes.
// The error names field and, for a bad character, its byte offset and code
// point (never the text itself, which may be huge or reorder the message).
func Check(field, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%s is %d bytes: %w: at most %d", field, len(s), ErrTooLong, max)
	}
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			if _, n := utf8.DecodeRuneInString(s[i:]); n <= 1 {
				return fmt.Errorf("%s: byte %d: %w", field, i, ErrEncoding)
			}
		case unicode.Is(unicode.Cc, r), r == 0x2028, r == 0x2029:
			return fmt.Errorf("%s: byte %d is U+%04X: %w", field, i, r, ErrControl)
		case IsBidi(r):
			return fmt.Errorf("%s: byte %d is U+%04X: %w", field, i, r, ErrBidi)
		}
	}
	return nil
}

// CheckRequired is Check that also refuses an empty field.
func CheckRequired(field, s string, max int) error {
	if s == "" {
		return fmt.Errorf("%s is empty: %w, want 1 to %d bytes", field, ErrEmpty, max)
	}
	return Check(field, s, max)
}
