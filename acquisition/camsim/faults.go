package camsim

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strconv"
)

// Fault kinds.
const (
	FaultFrameDropped = "frame-dropped" // FrameDrop: nothing of the frame was sent
	FaultPacketsLost  = "packets-lost"  // PacketLoss: some packets were not sent
)

// Fault is one frame the camera did not send whole: the ground truth of
// what a host may report lost. With resends a frame of kind packets-lost
// can still be completed; without them (NoResend) it cannot.
type Fault struct {
	Camera      int
	BlockID     uint64
	FirstLine   int64 // line counter of the frame's line 0 since AcquisitionStart
	Lines       int
	FirstCount  int64 // encoder counts of the frame's first and last line
	LastCount   int64
	Kind        string
	LostPackets int // packets not sent (0 for a dropped frame)
	Resendable  bool
}

// FaultsHeader is the header line of a faults CSV file.
const FaultsHeader = "camera,block_id,first_line,lines,first_count,last_count,kind,lost_packets,resendable"

// WriteFaultsCSV writes faults as CSV with the FaultsHeader columns.
func WriteFaultsCSV(w io.Writer, faults []Fault) error {
	cw := csv.NewWriter(w)
	if _, err := io.WriteString(w, FaultsHeader+"\n"); err != nil {
		return fmt.Errorf("camsim: write faults: %w", err)
	}
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	for _, f := range faults {
		rec := []string{strconv.Itoa(f.Camera), strconv.FormatUint(f.BlockID, 10), i64(f.FirstLine), strconv.Itoa(f.Lines),
			i64(f.FirstCount), i64(f.LastCount), f.Kind, strconv.Itoa(f.LostPackets), strconv.FormatBool(f.Resendable)}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("camsim: write faults: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("camsim: write faults: %w", err)
	}
	return nil
}

// Faults returns every frame the cameras did not send whole so far, camera
// by camera in block order.
func (e *Emulator) Faults() []Fault {
	var out []Fault
	for _, c := range e.cams {
		c.str.mu.Lock()
		out = append(out, c.str.faults...)
		c.str.mu.Unlock()
	}
	return out
}

// writeFaults writes FaultsFile, if set.
func (e *Emulator) writeFaults() error {
	p := e.opts.FaultsFile
	if p == "" {
		return nil
	}
	f, err := os.Create(p)
	if err != nil {
		return fmt.Errorf("camsim: faults file: %w", err)
	}
	err = WriteFaultsCSV(f, e.Faults())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// recordFault notes frame f of camera cam if it was not sent whole.
func (s *streamer) recordFault(f *frame, lost int) {
	if !f.dropped && lost == 0 {
		return
	}
	ft := Fault{Camera: s.cam, BlockID: f.blockID, FirstLine: f.firstSeq, Lines: f.lines,
		FirstCount: f.firstCount, LastCount: f.lastCount, Kind: FaultPacketsLost,
		LostPackets: lost, Resendable: !s.noResend}
	if f.dropped {
		ft.Kind, ft.Resendable = FaultFrameDropped, false
	}
	s.mu.Lock()
	s.faults = append(s.faults, ft)
	s.mu.Unlock()
}
