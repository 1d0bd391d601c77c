package engine

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"github.com/webinspect/webinspect/acquisition"
)

// # Memory budget
//
// The engine preallocates its buffers when it is built (New): per camera
// a ring of pipeline.ring_blocks blocks (plus the scratch block a dropped
// block is read into), the recycled region buffers of the result queue
// (pipeline.result_queue + 2 of regionsPerBlock regions), and, when crops
// are kept, the line history crops are cut from (images.history_lines, or
// by default every line that can be in flight: ring and queue depth plus
// a crop). A line costs its pixels plus its 8-byte encoder count.
//
// Before anything is allocated, and before a roll is opened, CheckConfig
// adds these up (MemoryNeed) and refuses a configuration that needs more
// than the budget: pipeline.max_memory_mb when the recipe sets it, else
// half of the machine's memory (MemTotal in /proc/meminfo; 4 GiB where it
// cannot be read), and never more than the memory available now
// (MemAvailable). The other half is left to the model runtime, the roll
// map, the page cache and the rest of the machine. The error names the
// recipe fields and the bytes each needs.

// defaultBudgetNoMeminfo is the budget where /proc/meminfo cannot be read.
const defaultBudgetNoMeminfo = 4 << 30

// MemoryNeed is what New preallocates for a recipe and a source, in bytes.
type MemoryNeed struct {
	Cameras       int
	Rings         float64 // pipeline.ring_blocks (+1 scratch) blocks per camera
	Regions       float64 // pipeline.result_queue + 2 region buffers per camera
	History       float64 // crop history lines per camera (0 without crops)
	HistoryLines  int
	LinesPerBlock int
}

// Total is the sum of the parts.
func (m MemoryNeed) Total() float64 { return m.Rings + m.Regions + m.History }

// EstimateMemory returns what New would preallocate for recipe r and
// source info, crops telling whether crops are kept. It allocates nothing
// and does not overflow on absurd sizes (floating point).
func EstimateMemory(r *Recipe, info acquisition.Info, crops bool) MemoryNeed {
	m := MemoryNeed{Cameras: len(info.Cameras), LinesPerBlock: info.LinesPerBlock}
	lpb := float64(info.LinesPerBlock)
	regionBytes := float64(unsafe.Sizeof(region{}))*regionsPerBlock + float64(unsafe.Sizeof([]region{}))
	if crops {
		m.HistoryLines = historyLines(r, info.LinesPerBlock)
	}
	for _, c := range info.Cameras {
		line := float64(c.Width) + 8 // pixels and the encoder count
		m.Rings += float64(r.Pipeline.RingBlocks+1) * lpb * line
		m.Regions += float64(r.Pipeline.ResultQueue+2) * regionBytes
		m.History += float64(m.HistoryLines) * line
	}
	return m
}

// Budget is the memory a configuration may preallocate, and where the
// figure comes from (for the error message).
type Budget struct {
	Bytes     float64
	Source    string  // "pipeline.max_memory_mb", "half of this machine's memory", …
	Available float64 // MemAvailable, 0 when unknown
}

// meminfo reads MemTotal and MemAvailable from /proc/meminfo, in bytes;
// 0 when unknown. A variable so tests can play a smaller machine.
var meminfo = func() (total, available float64) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		n, err := strconv.ParseFloat(fs[0], 64)
		if err != nil {
			continue
		}
		if len(fs) > 1 && fs[1] == "kB" {
			n *= 1024
		}
		switch k {
		case "MemTotal":
			total = n
		case "MemAvailable":
			available = n
		}
	}
	return total, available
}

// MemoryBudget returns the budget for recipe r on this machine.
func MemoryBudget(r *Recipe) Budget {
	total, avail := meminfo()
	b := Budget{Available: avail}
	switch {
	case r.Pipeline.MaxMemoryMB > 0:
		b.Bytes, b.Source = float64(r.Pipeline.MaxMemoryMB)*(1<<20), "pipeline.max_memory_mb"
	case total > 0:
		b.Bytes, b.Source = total/2, "half of this machine's "+formatBytes(total)
	default:
		b.Bytes, b.Source = defaultBudgetNoMeminfo, "the default budget (this machine's memory is unknown)"
	}
	return b
}

// checkMemory refuses a configuration whose buffers do not fit the budget.
func checkMemory(r *Recipe, info acquisition.Info, crops bool) error {
	need := EstimateMemory(r, info, crops)
	b := MemoryBudget(r)
	limit, what := b.Bytes, "the budget is "+formatBytes(b.Bytes)+" ("+b.Source+")"
	if b.Available > 0 && b.Available < limit {
		limit, what = b.Available, "this machine has "+formatBytes(b.Available)+" available"
	}
	if need.Total() <= limit {
		return nil
	}
	hist := "images.history_lines " + strconv.Itoa(r.Images.HistoryLines)
	if r.Images.HistoryLines == 0 {
		hist = fmt.Sprintf("images.history_lines 0 (auto: %d lines from ring_blocks + result_queue)", need.HistoryLines)
	}
	return fmt.Errorf("%w: the pipeline needs %s but %s: pipeline.ring_blocks %d needs %s, pipeline.result_queue %d needs %s, %s needs %s "+
		"(%d cameras, %d-line blocks); lower them, turn crops off (images.enabled), or set pipeline.max_memory_mb",
		ErrConfig, formatBytes(need.Total()), what,
		r.Pipeline.RingBlocks, formatBytes(need.Rings), r.Pipeline.ResultQueue, formatBytes(need.Regions), hist, formatBytes(need.History),
		need.Cameras, need.LinesPerBlock)
}

// formatBytes prints n bytes with their exact count and a readable size.
func formatBytes(n float64) string {
	const gb, mb = 1e9, 1e6
	switch {
	case n >= gb:
		return fmt.Sprintf("%.0f bytes (%.1f GB)", n, n/gb)
	case n >= mb:
		return fmt.Sprintf("%.0f bytes (%.1f MB)", n, n/mb)
	}
	return fmt.Sprintf("%.0f bytes", n)
}

// CheckConfig checks, without allocating anything, what New would refuse
// for a recipe and a source: the recipe's fields, the source's geometry
// and the memory the buffers need (see "Memory budget"), crops telling
// whether crops will be kept. Callers check before they open a roll, so
// that a configuration error leaves no empty roll behind.
func CheckConfig(r *Recipe, info acquisition.Info, crops bool) error {
	if r == nil {
		return fmt.Errorf("%w: a recipe is required", ErrConfig)
	}
	if err := r.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if err := checkGeometry(info); err != nil {
		return err
	}
	return checkMemory(r, info, crops)
}
