package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"text/tabwriter"
)

// WriteJSON writes one JSON object per result, one per line.
func WriteJSON(w io.Writer, rs ...Result) error {
	enc := json.NewEncoder(w)
	for _, r := range rs {
		// JSON has no NaN: a measurement that could not be taken is null.
		if err := enc.Encode(jsonResult(r)); err != nil {
			return fmt.Errorf("write result of %s: %w", r.Scenario, err)
		}
	}
	return nil
}

// jsonResult replaces NaN and infinite fields, which JSON cannot hold, by
// null.
func jsonResult(r Result) map[string]any {
	out := map[string]any{}
	raw, err := json.Marshal(finite(r))
	if err == nil {
		_ = json.Unmarshal(raw, &out) // a map of a struct we just encoded
	}
	for k, v := range nanFields(r) {
		out[k] = v
	}
	return out
}

// finite returns r with non-finite floats zeroed (nanFields reports them).
func finite(r Result) Result {
	for _, f := range []*float64{&r.AllocsPerBlock, &r.RSSMB, &r.LatencyP50Ms, &r.LatencyP99Ms, &r.LatencyP999Ms, &r.LatencyMaxMs} {
		if math.IsNaN(*f) || math.IsInf(*f, 0) {
			*f = 0
		}
	}
	return r
}

func nanFields(r Result) map[string]any {
	out := map[string]any{}
	for k, f := range map[string]float64{"allocs_per_block": r.AllocsPerBlock, "rss_mb": r.RSSMB} {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			out[k] = nil
		}
	}
	if r.LatencySamples == 0 {
		for _, k := range []string{"latency_p50_ms", "latency_p99_ms", "latency_p999_ms", "latency_max_ms"} {
			out[k] = nil
		}
	}
	return out
}

// WriteTable writes a header and one row per result.
func WriteTable(w io.Writer, rs ...Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tsource\toffered Mpx/s\tMpx/s\tcopy Mpx/s\tof copy\tlines/s\tp50 ms\tp99 ms\tp99.9 ms\tsamples\tdropped blocks\tdropped lines\tuninspected m\tallocs/block\tRSS MiB\tcapacity Mpx/s\tsource lag ms\trecovered\t")
	for _, r := range rs {
		offered := fmt.Sprintf("%.1f", r.OfferedMpxS)
		if r.OfferedAfterMpxS > 0 {
			offered = fmt.Sprintf("%.0f→%.1f", r.OfferedMpxS, r.OfferedAfterMpxS)
		}
		capa, rec := "-", "-"
		if r.CapacityMpxS > 0 {
			capa = fmt.Sprintf("%.0f (×%.1f)", r.CapacityMpxS, r.Headroom)
		}
		if r.Recovered != nil {
			rec = fmt.Sprintf("%v (%d late drops)", *r.Recovered, *r.DropsAfterRecovery)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\t%.0f\t%.3f\t%.0f\t%.2f\t%.2f\t%.2f\t%d\t%d\t%d\t%.3f\t%.2f\t%.0f\t%s\t%.1f\t%s\t\n",
			r.Scenario, r.Source, offered, r.MpxS, r.CopyMpxS, r.OfCopy, r.LinesS,
			r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyP999Ms, r.LatencySamples, r.DroppedBlocks, r.DroppedLines, r.UninspectedM,
			r.AllocsPerBlock, r.RSSMB, capa, r.SourceLagMs, rec)
	}
	return tw.Flush()
}
