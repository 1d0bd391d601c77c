// Package marking drives the marking unit: it turns decided defects into
// marks fired at the encoder count that puts each mark on its defect, sends
// them to a device (Modbus TCP, a plain TCP line protocol, or a simulated
// marker) and reports what became of every mark.
//
// # Model
//
// Positions are encoder counts (mm = count · mmPerCount). A defect whose
// MD start was under the camera line at count c0 is under the marker heads
// at the marker count
//
//	M = c0 + D,                  D = MarkerDistanceMM / mmPerCount
//
// A head puts ink on the web ActuationDelayMS (τ) after it is commanded,
// during which the web moves v·τ (v in counts per second, measured from
// the encoder observations). So the head must be commanded at the target
//
//	T = M − v·τ
//
// and the mark covers MD [md_start, md_start + MarkLengthMM]. T moves with
// the speed; it is recomputed from the current speed whenever a fire
// decision is taken.
//
// # Timing
//
//	camera line                                            marker head
//	    │◀────────────── MarkerDistanceMM (D counts) ──────────────▶│
//	    │                                                           │
//	────┼──────────────┼───────────────────────────────┼────────────┼──▶ encoder count
//	    c0             c0 + decision                   T            M
//	    imaged         Schedule (decided)              head fired   ink on the defect
//	                   │◀──────── margin ─────────────▶│◀── v·τ ───▶│
//
// The margin is what the pipeline has to spare: 2 m downstream it is
// 1.2 s at 100 m/min and 0.2 s at 600 m/min, minus τ. If the decision
// comes after T (plus the tolerance), the mark is late: recorded, counted
// and logged, not fired.
//
// # Firing
//
// The scheduler is a state machine driven by Observe(count, time), which
// the engine calls for every line (or block). On each observation made
// while the web moves forwards, every pending mark with T <= count fires,
// in MD order. Nothing fires while the web is stopped or runs backwards; a
// mark that fired is never fired again, so after a jog back the web passes
// under the heads without new marks, and a mark still pending fires when
// the encoder passes its target going forwards.
//
// A software timer cannot place a mark within ±2 mm at 600 m/min (10
// mm/ms), so devices that can fire on their own encoder (CountTriggered:
// ModbusOutput, LineOutput, SimMarker) receive each mark as soon as it is
// scheduled, with M and T, and fire in hardware. Other outputs receive a
// mark when the observed count reaches T; their placement is then bounded
// by the observation step and by their delivery latency.
//
// # Never blocking
//
// Schedule and Observe never wait for a device. Marks go to the output
// goroutine through a bounded queue; when it is full, or the device is
// unreachable, marks stay pending and are offered again on later
// observations until they can no longer be placed within ToleranceMM (the
// encoder passed T + tolerance): then they are missed. Failed sends are
// retried with exponential backoff between BackoffMinMS and BackoffMaxMS;
// the outputs reconnect on the next send.
//
// # Statuses
//
// Every defect's mark goes through MarkEvents, delivered in order through
// the callback given to NewScheduler: scheduled; fired (with the encoder
// count); acknowledged (the device confirmed it: a successful Modbus write,
// an "ACK" line, SimMarker accepting it); late; missed. Count-triggered
// devices acknowledge before they fire. Defects merged into one mark (MD
// starts closer than MinSpacingMM on the same head) each get their events,
// carrying the mark's ID (its first defect). The wire formats are in
// PROTOCOL.md.
//
// # Metrics
//
//	webinspect_mark_events_total{status}     events per defect, by status
//	webinspect_mark_output_errors_total      failed sends
//	webinspect_marks_pending                 marks waiting to fire
package marking
