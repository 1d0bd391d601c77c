package metricsreg

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newCounter(help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: "test_things_total", Help: help})
}

func TestRegisterSharesEqualCollectors(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := Register(reg, newCounter("Things."))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Register(reg, newCounter("Things."))
	if err != nil {
		t.Fatal(err)
	}
	a.Inc()
	b.Inc()
	if a != b || testutil.ToFloat64(a) != 2 {
		t.Errorf("second registration got its own counter (value %v): want the first one shared", testutil.ToFloat64(a))
	}
	if n, err := testutil.GatherAndCount(reg, "test_things_total"); err != nil || n != 1 {
		t.Errorf("registry holds %d series, %v", n, err)
	}
}

func TestRegisterReturnsConflicts(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := Register(reg, newCounter("Things.")); err != nil {
		t.Fatal(err)
	}
	// Same name, other help: a programming error, not a share.
	if _, err := Register(reg, newCounter("Other things.")); err == nil || !strings.HasPrefix(err.Error(), "metrics: ") {
		t.Errorf("conflicting help: %v, want an error", err)
	}
	// Same descriptors, another type: cannot be shared as the asked type.
	o := objCollector{1, prometheus.NewDesc("test_things_total", "Things.", nil, nil)}
	if _, err := Register(reg, o); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Errorf("a collector of another type under a counter's descriptors: %v, want an error", err)
	}
	// nil registerer: nothing to do.
	c := newCounter("x")
	if got, err := Register(nil, c); err != nil || got != c {
		t.Errorf("nil registerer: %v, %v", got, err)
	}
}

func TestSetKeepsFirstError(t *testing.T) {
	reg := prometheus.NewRegistry()
	var s Set
	a := Add(&s, reg, newCounter("Things."))
	b := Add(&s, reg, newCounter("Things."))
	if s.Err() != nil || a != b {
		t.Fatalf("shared registration: %v", s.Err())
	}
	Add(&s, reg, newCounter("Other help."))
	first := s.Err()
	Add(&s, reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "bad name!", Help: "x"}))
	if first == nil || s.Err() != first {
		t.Errorf("Err() = %v, want the first error %v", s.Err(), first)
	}
}

type objCollector struct {
	v    float64
	desc *prometheus.Desc
}

func (o objCollector) Describe(ch chan<- *prometheus.Desc) { ch <- o.desc }
func (o objCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(o.desc, prometheus.GaugeValue, o.v)
}

func TestReplace(t *testing.T) {
	reg := prometheus.NewRegistry()
	desc := prometheus.NewDesc("test_pool_tiles", "Tiles.", nil, nil)
	if err := Replace(reg, objCollector{1, desc}); err != nil {
		t.Fatal(err)
	}
	if err := Replace(reg, objCollector{2, desc}); err != nil {
		t.Fatal(err)
	}
	fams, err := reg.Gather()
	if err != nil || len(fams) != 1 || fams[0].GetMetric()[0].GetGauge().GetValue() != 2 {
		t.Errorf("after Replace: %v, %v; want the second object's value 2", fams, err)
	}
	if err := Replace(reg, objCollector{3, prometheus.NewDesc("test_pool_tiles", "Other help.", nil, nil)}); err == nil {
		t.Error("Replace with conflicting help succeeded")
	}
	if err := Replace(nil, objCollector{1, desc}); err != nil {
		t.Error(err)
	}
}
