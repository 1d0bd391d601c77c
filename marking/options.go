package marking

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/internal/fieldcheck"
	"github.com/webinspect/webinspect/rollmap"
)

// Errors returned by the package.
var (
	// ErrOptions is wrapped by every error of Options.Validate; the message
	// names the recipe field (e.g. "marking.heads[1].cd_end_mm") and its
	// allowed range.
	ErrOptions = errors.New("marking options")
	// ErrClosed is returned by Schedule and by outputs after Close.
	ErrClosed = errors.New("marking: closed")
	// ErrDisconnected is returned by an output's Send when it has no
	// connection to its device and could not make one.
	ErrDisconnected = errors.New("marking: output disconnected")
	// ErrDuplicate is returned by SimMarker.Send when it is given a mark it
	// already holds or already fired (a mark must fire once).
	ErrDuplicate = errors.New("marking: mark sent twice")
	// ErrMissed is wrapped by MarkEvent.Err of missed events; the message
	// says why the mark could not be delivered in time.
	ErrMissed = errors.New("marking: mark missed")
	// ErrBadLine is returned by ParseMarkLine for a line that is not a
	// well-formed MARK line.
	ErrBadLine = errors.New("marking: bad MARK line")
	// ErrEncoder is returned by Schedule for an encoder resolution that is
	// not a positive finite number.
	ErrEncoder = errors.New("marking: bad encoder resolution")
)

// Output kinds for OutputOptions.Kind.
const (
	OutputNone   = "none"   // no device: marks are scheduled and "fired" for the roll map only
	OutputSim    = "sim"    // SimMarker
	OutputModbus = "modbus" // ModbusOutput
	OutputTCP    = "tcp"    // LineOutput (PROTOCOL.md)
)

// Any matches every class, severity or decision in the selection lists.
const Any = "*"

// Options is the recipe section "marking": the geometry and timing of the
// marking unit, what gets marked and where the marks are sent. JSON names
// are the recipe's; Validate names fields as "marking.<json name>".
type Options struct {
	// MarkerDistanceMM is the distance along MD from the camera line to the
	// marker heads, in mm. Range 1..100000.
	MarkerDistanceMM float64 `json:"marker_distance_mm"`
	// Heads are the marker heads. A defect is marked by every head whose CD
	// range overlaps the defect's CD range, or whose lane is the defect's
	// lane. 1..64 heads.
	Heads []Head `json:"heads"`
	// ActuationDelayMS is the time from the fire command to the mark being
	// on the web (valve, solenoid, label arm), in ms. Range 0..1000.
	ActuationDelayMS float64 `json:"actuation_delay_ms"`
	// MarkLengthMM is how long a mark is along MD: a mark for a defect whose
	// MD start is s covers [s, s+MarkLengthMM]. Range 1..10000.
	MarkLengthMM float64 `json:"mark_length_mm"`
	// MinSpacingMM merges defects on the same head whose MD starts are closer
	// than this into one mark (placed at the earliest start). It may not
	// exceed MarkLengthMM, so a merged defect always starts under its mark.
	// Range 0..mark_length_mm.
	MinSpacingMM float64 `json:"min_spacing_mm"`
	// ToleranceMM is the placement tolerance: a mark that can no longer land
	// within ToleranceMM of its defect's MD start is late (when scheduled)
	// or missed (while pending). Range 0.1..1000.
	ToleranceMM float64 `json:"tolerance_mm"`
	// Classes, Severities and Decisions select the defects to mark: a defect
	// is marked when its class, severity and decision are each in the
	// matching list. "*" matches anything. Each list needs >= 1 entry;
	// a decision is "*" or a rollmap.Decision.
	Classes    []string           `json:"classes"`
	Severities []string           `json:"severities"`
	Decisions  []rollmap.Decision `json:"decisions"`
	// SpeedWindowMS is the time over which the web speed is measured from
	// the encoder observations (at most the last 64 observations are used).
	// Range 0.1..1000.
	SpeedWindowMS float64 `json:"speed_window_ms"`
	// Output says where marks are sent.
	Output OutputOptions `json:"output"`
}

// Head is one marker head. It is addressed either by a CD range
// (CDEndMM > CDStartMM) or, when CDStartMM and CDEndMM are both 0, by a lane
// index (rollmap.Defect.Lane).
type Head struct {
	// Name identifies the head in logs and on the wire: letters, digits,
	// '_', '-' and '.', 1..32 characters, unique.
	Name string `json:"name"`
	// CDStartMM and CDEndMM are the CD band the head covers, in the
	// machine's frame: mm from where the cameras' geometry puts the
	// operator-side web edge (a head does not follow a wandering web; a
	// defect's machine CD is its roll CD + rollmap.Defect.WebEdgeMM).
	// Range 0 <= cd_start_mm < cd_end_mm <= 20000.
	CDStartMM float64 `json:"cd_start_mm"`
	CDEndMM   float64 `json:"cd_end_mm"`
	// Lane is the lane the head marks when no CD band is set. Range 0..1023.
	Lane int `json:"lane"`
}

// OutputOptions configures the device marks are sent to.
type OutputOptions struct {
	// Kind is one of none, sim, modbus, tcp.
	Kind string `json:"kind"`
	// Address is host:port of the device (modbus, tcp).
	Address string `json:"address"`
	// UnitID is the Modbus unit (slave) id. Range 0..255.
	UnitID int `json:"unit_id"`
	// RegisterBase is the first holding register of the mark block (see
	// PROTOCOL.md). Range 0..65535-ModbusRegisters.
	RegisterBase int `json:"register_base"`
	// Coil is the trigger coil written after the registers. Range 0..65535.
	Coil int `json:"coil"`
	// Queue is the capacity of the queue between the scheduler and the
	// output goroutine, in marks. Range 1..65536.
	Queue int `json:"queue"`
	// TimeoutMS bounds one send (connect, write, reply). Range 1..60000.
	TimeoutMS int `json:"timeout_ms"`
	// BackoffMinMS and BackoffMaxMS bound the exponential backoff between
	// failed sends (reconnects). Ranges 1..60000 and backoff_min_ms..600000.
	BackoffMinMS int `json:"backoff_min_ms"`
	BackoffMaxMS int `json:"backoff_max_ms"`
}

// DefaultOptions returns a marker 2 m downstream with one head over the
// whole web, 5 ms actuation, 50 mm marks, 20 mm spacing, ±2 mm tolerance,
// marking every defect whose decision is rollmap.DecisionMark, with no output device.
func DefaultOptions() Options {
	return Options{
		MarkerDistanceMM: 2000,
		Heads:            []Head{{Name: "h0", CDStartMM: 0, CDEndMM: 20000}},
		ActuationDelayMS: 5,
		MarkLengthMM:     50,
		MinSpacingMM:     20,
		ToleranceMM:      2,
		Classes:          []string{Any},
		Severities:       []string{Any},
		Decisions:        []rollmap.Decision{rollmap.DecisionMark},
		SpeedWindowMS:    10,
		Output: OutputOptions{
			Kind:         OutputNone,
			Queue:        256,
			TimeoutMS:    500,
			BackoffMinMS: 10,
			BackoffMaxMS: 1000,
		},
	}
}

// Validate checks every field and returns the first problem, wrapping
// ErrOptions, naming the field and its allowed range.
func (o *Options) Validate() error {
	err := o.validate()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrOptions, err)
	}
	return nil
}

func (o *Options) validate() error {
	const p = "marking."
	if err := fieldcheck.Float(p+"marker_distance_mm", o.MarkerDistanceMM, 1, 100000); err != nil {
		return err
	}
	if len(o.Heads) < 1 || len(o.Heads) > 64 {
		return fmt.Errorf("%sheads: %d heads: must have 1..64", p, len(o.Heads))
	}
	names := map[string]bool{}
	for i, h := range o.Heads {
		f := fmt.Sprintf("%sheads[%d].", p, i)
		if !validName(h.Name) {
			return fmt.Errorf("%sname = %q: must be 1..32 of [A-Za-z0-9_.-]", f, h.Name)
		}
		if names[h.Name] {
			return fmt.Errorf("%sname = %q: must be unique", f, h.Name)
		}
		names[h.Name] = true
		if h.CDStartMM == 0 && h.CDEndMM == 0 {
			if err := fieldcheck.Int(f+"lane", h.Lane, 0, 1023); err != nil {
				return err
			}
			continue
		}
		if err := fieldcheck.Float(f+"cd_start_mm", h.CDStartMM, 0, 20000); err != nil {
			return err
		}
		if !(h.CDEndMM > h.CDStartMM && h.CDEndMM <= 20000) {
			return fmt.Errorf("%scd_end_mm = %g: must be in (cd_start_mm = %g, 20000] (or both 0 to address a lane)", f, h.CDEndMM, h.CDStartMM)
		}
	}
	if err := fieldcheck.Float(p+"actuation_delay_ms", o.ActuationDelayMS, 0, 1000); err != nil {
		return err
	}
	if err := fieldcheck.Float(p+"mark_length_mm", o.MarkLengthMM, 1, 10000); err != nil {
		return err
	}
	if err := fieldcheck.Float(p+"min_spacing_mm", o.MinSpacingMM, 0, o.MarkLengthMM); err != nil {
		return fmt.Errorf("%w (at most mark_length_mm)", err)
	}
	if err := fieldcheck.Float(p+"tolerance_mm", o.ToleranceMM, 0.1, 1000); err != nil {
		return err
	}
	for i, d := range o.Decisions {
		if d != Any && !d.Valid() {
			return fmt.Errorf("%sdecisions[%d] = %q: must be %q or one of %s", p, i, d, Any, decisionNames())
		}
	}
	for _, l := range []struct {
		name string
		v    []string
	}{{"classes", o.Classes}, {"severities", o.Severities}, {"decisions", decisionStrings(o.Decisions)}} {
		if len(l.v) == 0 {
			return fmt.Errorf("%s%s: empty: need at least one entry (%q for any)", p, l.name, Any)
		}
		for i, s := range l.v {
			if strings.TrimSpace(s) == "" {
				return fmt.Errorf("%s%s[%d]: must not be empty", p, l.name, i)
			}
		}
	}
	if err := fieldcheck.Float(p+"speed_window_ms", o.SpeedWindowMS, 0.1, 1000); err != nil {
		return err
	}
	return o.Output.validate(p + "output.")
}

func (o *OutputOptions) validate(p string) error {
	switch o.Kind {
	case OutputNone, OutputSim:
	case OutputModbus, OutputTCP:
		if _, port, err := net.SplitHostPort(o.Address); err != nil || port == "" {
			return fmt.Errorf("%saddress = %q: must be host:port for kind %s", p, o.Address, o.Kind)
		}
	default:
		return fmt.Errorf("%skind = %q: must be one of %s, %s, %s, %s", p, o.Kind, OutputNone, OutputSim, OutputModbus, OutputTCP)
	}
	if err := fieldcheck.Int(p+"unit_id", o.UnitID, 0, 255); err != nil {
		return err
	}
	if err := fieldcheck.Int(p+"register_base", o.RegisterBase, 0, 65535-ModbusRegisters); err != nil {
		return err
	}
	if err := fieldcheck.Int(p+"coil", o.Coil, 0, 65535); err != nil {
		return err
	}
	if err := fieldcheck.Int(p+"queue", o.Queue, 1, 65536); err != nil {
		return err
	}
	if err := fieldcheck.Int(p+"timeout_ms", o.TimeoutMS, 1, 60000); err != nil {
		return err
	}
	if err := fieldcheck.Int(p+"backoff_min_ms", o.BackoffMinMS, 1, 60000); err != nil {
		return err
	}
	return fieldcheck.Int(p+"backoff_max_ms", o.BackoffMaxMS, o.BackoffMinMS, 600000)
}

// Selects reports whether the recipe marks a defect of this class, severity
// and decision.
func (o *Options) Selects(d *rollmap.Defect) bool {
	return inList(o.Classes, d.Class) && inList(o.Severities, d.Severity) && inList(o.Decisions, d.Decision)
}

// covers reports whether head h marks defect d.
func (h *Head) covers(d *rollmap.Defect) bool {
	if h.CDStartMM == 0 && h.CDEndMM == 0 {
		return d.Lane == h.Lane
	}
	// A head's band is in the machine's frame; the defect's CD is on the
	// roll, measured from the web edge found beside it (Defect.WebEdgeMM).
	return d.CDStartMM+d.WebEdgeMM <= h.CDEndMM && d.CDEndMM+d.WebEdgeMM >= h.CDStartMM
}

func inList[S ~string](list []S, v S) bool {
	for _, s := range list {
		if s == Any || s == v {
			return true
		}
	}
	return false
}

func validName(s string) bool {
	if len(s) < 1 || len(s) > 32 {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.'
		if !ok {
			return false
		}
	}
	return true
}

// NewOutput makes the output o.Output asks for: nil for "none" (pass it to
// NewScheduler as is), a count-triggered *SimMarker for "sim" (the caller
// feeds its Observe with the same encoder observations as the scheduler),
// a *ModbusOutput or a *LineOutput. mmPerCount is used by the simulator.
func NewOutput(o Options, mmPerCount float64, log zerolog.Logger) (Output, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	switch o.Output.Kind {
	case OutputSim:
		sm, err := NewSimMarker(o, mmPerCount, true)
		if err != nil {
			return nil, err
		}
		return sm, nil
	case OutputModbus:
		return NewModbusOutput(o.Output, log), nil
	case OutputTCP:
		return NewLineOutput(o.Output, log), nil
	}
	return nil, nil
}

func decisionStrings(ds []rollmap.Decision) []string {
	ss := make([]string, len(ds))
	for i, d := range ds {
		ss[i] = string(d)
	}
	return ss
}

func decisionNames() string {
	return strings.Join(decisionStrings(rollmap.Decisions()), ", ")
}
