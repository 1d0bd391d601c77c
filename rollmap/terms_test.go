package rollmap

import (
	"errors"
	"slices"
	"testing"
)

func TestParseTerms(t *testing.T) {
	for _, d := range Decisions() {
		if got, err := ParseDecision(string(d)); err != nil || got != d {
			t.Errorf("ParseDecision(%q) = %q, %v", d, got, err)
		}
	}
	if _, err := ParseDecision("reject"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseDecision(reject): %v, want ErrInvalid", err)
	}
	want := []Reason{"dropped-block", "source-error", "engine-restart", "camera-ended", "camera-frame-lost"}
	if !slices.Equal(Reasons(), want) {
		t.Errorf("Reasons() = %q, want %q", Reasons(), want)
	}
	for _, r := range want {
		if got, err := ParseReason(string(r)); err != nil || got != r {
			t.Errorf("ParseReason(%q) = %q, %v", r, got, err)
		}
	}
	if _, err := ParseReason("tea-break"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseReason(tea-break): %v, want ErrInvalid", err)
	}
	// The lists are copies.
	Decisions()[0], Reasons()[0] = "x", "x"
	if !DecisionPass.Valid() || Decision("x").Valid() || !ReasonDropped.Valid() || Reason("x").Valid() {
		t.Error("Valid changed by writing to a returned list")
	}
}

func TestDetector(t *testing.T) {
	m := ModelDetector("fabric-v2")
	if m != "onnx:fabric-v2" {
		t.Fatalf("ModelDetector = %q", m)
	}
	if name, ok := m.Model(); !ok || name != "fabric-v2" {
		t.Errorf("Model() = %q, %v", name, ok)
	}
	both := CombineDetectors(m, DetectorThreshold)
	if both != "threshold+onnx:fabric-v2" {
		t.Errorf("CombineDetectors(model, threshold) = %q", both)
	}
	for _, c := range []struct{ a, b, want Detector }{
		{DetectorThreshold, m, both},
		{both, m, both},
		{both, DetectorThreshold, both},
		{m, m, m},
		{"", m, m},
		{DetectorThreshold, "", DetectorThreshold},
		{"", "", ""},
		{m, ModelDetector("b"), "onnx:fabric-v2+onnx:b"},
	} {
		if got := CombineDetectors(c.a, c.b); got != c.want {
			t.Errorf("CombineDetectors(%q, %q) = %q, want %q", c.a, c.b, got, c.want)
		}
	}
	if _, ok := both.Model(); ok {
		t.Error("a combined detector has one model")
	}
	if _, ok := DetectorThreshold.Model(); ok {
		t.Error("threshold has a model")
	}
	if !both.Has(DetectorThreshold) || !both.Has(m) || m.Has(DetectorThreshold) {
		t.Error("Has")
	}
	if !slices.Equal(both.Parts(), []Detector{DetectorThreshold, m}) || Detector("").Parts() != nil {
		t.Errorf("Parts = %q", both.Parts())
	}
	for _, ok := range []string{"threshold", "onnx:m", "threshold+onnx:m", "onnx:a+onnx:b", "onnx:ümlaut model"} {
		if d, err := ParseDetector(ok); err != nil || string(d) != ok {
			t.Errorf("ParseDetector(%q) = %q, %v", ok, d, err)
		}
	}
	for _, bad := range []string{"", "onnx:", "ml", "threshold+", "threshold+threshold", "onnx:a\x01", "+onnx:m", "Threshold"} {
		if _, err := ParseDetector(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseDetector(%q): %v, want ErrInvalid", bad, err)
		}
	}
}
