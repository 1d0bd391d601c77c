package fieldcheck

import (
	"math"
	"testing"
)

func TestRanges(t *testing.T) {
	if err := Float("a.b", 1, 0, 1); err != nil {
		t.Errorf("inclusive upper bound refused: %v", err)
	}
	for _, v := range []float64{-0.5, 1.5, math.NaN(), math.Inf(1)} {
		if err := Float("a.b", v, 0, 1); err == nil {
			t.Errorf("%g accepted for 0..1", v)
		}
	}
	if err := Float("model.threshold", -2, 0, 1e9); err == nil || err.Error() != "model.threshold = -2: must be between 0 and 1e+09" {
		t.Errorf("got %v", err)
	}
	if err := Int("pipeline.ring_blocks", 1, 2, 4096); err == nil || err.Error() != "pipeline.ring_blocks = 1: must be between 2 and 4096" {
		t.Errorf("got %v", err)
	}
	if err := Int("x", 2, 2, 2); err != nil {
		t.Errorf("lo == hi refused: %v", err)
	}
}
