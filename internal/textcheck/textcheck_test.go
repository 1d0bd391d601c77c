package textcheck

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		name, s string
		want    error
	}{
		{"empty", "", nil},
		{"ascii", "fabric-default 2m", nil},
		{"accents", "Müller & Söhne — tissu écru", nil},
		{"cjk", "布料检验", nil},
		{"arabic", "قماش", nil},
		{"emoji zwj", "👩‍🔧", nil},
		{"max", strings.Repeat("x", 64), nil},
		{"too long", strings.Repeat("x", 65), ErrTooLong},
		{"too long multibyte", strings.Repeat("é", 33), ErrTooLong},
		{"nul", "a\x00b", ErrControl},
		{"newline", "a\nb", ErrControl},
		{"cr", "a\rb", ErrControl},
		{"tab", "a\tb", ErrControl},
		{"del", "a\x7fb", ErrControl},
		{"c1", "a\u0085b", ErrControl},
		{"line sep", "a\u2028b", ErrControl},
		{"para sep", "a\u2029b", ErrControl},
		{"rlo", "invoice\u202Etxt.exe", ErrBidi},
		{"lri", "a\u2066b", ErrBidi},
		{"pdi", "a\u2069b", ErrBidi},
		{"rlm", "a\u200Fb", ErrBidi},
		{"alm", "a\u061Cb", ErrBidi},
		{"bad utf8", "a\xffb", ErrEncoding},
		{"truncated utf8", "a\xe2\x82", ErrEncoding},
		{"literal U+FFFD", "a\uFFFDb", nil},
	} {
		err := Check("name", c.s, MaxName)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: Check(%q) = %v, want %v", c.name, c.s, err, c.want)
		}
		if err != nil {
			if !errors.Is(err, ErrText) || !strings.HasPrefix(err.Error(), "name") {
				t.Errorf("%s: error %q does not wrap ErrText or name the field", c.name, err)
			}
			if strings.ContainsAny(err.Error(), "\x00\n\u202E") {
				t.Errorf("%s: error %q repeats the bad character", c.name, err)
			}
		}
	}
}

func TestCheckRequired(t *testing.T) {
	if err := CheckRequired("reviewer", "", MaxName); !errors.Is(err, ErrEmpty) {
		t.Errorf("CheckRequired(\"\") = %v, want ErrEmpty", err)
	}
	if err := CheckRequired("reviewer", "ana", MaxName); err != nil {
		t.Errorf("CheckRequired(ana) = %v", err)
	}
	if err := CheckRequired("reviewer", "a\u202Eb", MaxName); !errors.Is(err, ErrBidi) {
		t.Errorf("CheckRequired(bidi) = %v, want ErrBidi", err)
	}
}

func FuzzCheck(f *testing.F) {
	f.Add("fabric", 64)
	f.Add("a\u202Eb", 8)
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 0 || max > 1<<20 {
			return
		}
		if Check("f", s, max) != nil {
			return
		}
		// Anything accepted is short, valid and holds no forbidden rune.
		if len(s) > max || !utf8.ValidString(s) {
			t.Fatalf("accepted %q (max %d)", s, max)
		}
		for _, r := range s {
			if r < 0x20 || r == 0x7f || IsBidi(r) {
				t.Fatalf("accepted %q with U+%04X", s, r)
			}
		}
	})
}
