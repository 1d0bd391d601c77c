// Package plant joins the lines of a mill into one plant over NATS
// JetStream: each engine publishes what its roll map records (Publisher),
// and the plant service (Service) consumes every line into a plant-wide
// Parquet dataset and answers plant-wide questions (trends, Pareto, rolls
// to hold) over HTTP.
//
// # Model
//
// The roll map on disk stays the source of truth. A Publisher never sits
// on the engine's path: it reads the roll store (rollmap.Store) on its own
// goroutine, only what is synced to disk (rollmap.Store.Durable), publishes
// it with awaited acknowledgements and a message ID per record, and then
// moves a publish position per roll, kept in the roll's directory
// (plant-position.json, written to a temporary file, fsynced and renamed).
// After a NATS outage or a restart of the engine it resumes from that
// position; a record published but not yet counted in the position is
// published again with the same message ID, which JetStream drops within
// its duplicate window, and the plant drops by key after it: by (line,
// roll, defect ID) in the index of the defect's partition (index.go), so
// that the plant starts without reading its dataset's rows. In its
// background the service merges the dataset's many small part files into
// a few per partition, through a journal a crash cannot tear (compact.go).
//
// # Subjects and messages
//
// Every message is one JSON object (Message) on
//
//	webinspect.<plant>.<line>.<kind>
//
// with kind one of defects, uninspected, roll (start, end, splice,
// context), reviews, marks (stream WEBINSPECT) or status (stream
// WEBINSPECT_STATUS, the newest few per line). The Nats-Msg-Id header is
// <line>/<roll>/<what>/<n>: the defect ID for a defect, the index of the
// row in the roll map for uninspected ranges, marks, reviews, splices and
// context changes. Message.V is the format version (Version); the plant
// parks a message of another version, a body it cannot parse, or one whose
// subject disagrees with its body, in the dead-letter stream
// WEBINSPECT_DEAD (subject webinspect_dead.<plant>.<line>.<kind>) with the
// reason in the Webinspect-Dead-Reason header, and acknowledges it: it is
// never dropped silently and never blocks the lines behind it.
//
// # Authentication
//
// The bus takes one shared secret, the plant's NATS token: StartServer
// with ServerOptions.Token requires it of every client (nats-server's
// token authorization) and of the routes of a cluster (user RouteUser,
// the token as password); PublisherOptions.Token and ServiceOptions.Token
// present it. A token is the least a mill's IT has to operate that
// nats-server supports natively; it keeps out whoever is not part of the
// plant (fake defects in the auditable record, streams deleted). Without
// a Token, StartServer listens only on loopback unless Insecure. A server
// that is up and refuses a client at its start is an error at once
// (ErrAuth, naming the server, never the token); a refusal later (a
// server restarted with another token) is logged once and the client
// keeps trying, while the roll map keeps everything. URLs with
// credentials in them are refused (they would show in logs). The token is
// never logged, counted, or written to positions or the dataset.
//
// # TLS
//
// Without TLS the token and every record cross the plant network in
// clear. ServerOptions.TLSCert and TLSKey make the server take clients
// over TLS only (TLS 1.2 or later), checked at start by LoadCert (valid
// now, at least one Subject Alternative Name, serverAuth, the key
// matching and not readable by every user); in a cluster TLSCA makes
// the routes mutual TLS against the plant's CA, as nats-server's own
// configuration does. PublisherOptions.TLSCA and ServiceOptions.TLSCA
// (LoadCA) make every connection TLS whatever the URL's scheme; a tls://
// URL without one is verified against the system's roots. A client
// always verifies the chain and the host it dialled, and never falls
// back to plain text once TLS was asked for; a nats:// client without a
// CA follows a server that requires TLS into it (nats.go), verified the
// same way. A TLS failure at start is an error at once (ErrTLS, naming
// the server and what did not verify), a later one is logged once while
// the client keeps trying, as for ErrAuth; unusable files are
// ErrTLSFile, naming the file. TLS does not replace the token (clients
// present no certificate): a token sent without TLS to a host other
// than loopback is logged once at warning level, not refused, so that a
// plant running without TLS keeps running after an upgrade.
//
// # Time
//
// Every time in a message is the engine's: a defect's day in the plant
// dataset is the UTC day of its own time, and it belongs to the roll the
// engine numbered it on. The plant's clock is used only for "last seen"
// and for latency figures, so a line whose clock is off by minutes still
// lands in the right roll and day.
package plant

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/webinspect/webinspect/rollmap"
)

// Version is the message format version this package writes and reads.
const Version = 1

// Stream and subject names.
const (
	Stream          = "WEBINSPECT"
	StatusStream    = "WEBINSPECT_STATUS"
	DeadStream      = "WEBINSPECT_DEAD"
	SubjectRoot     = "webinspect"
	DeadSubjectRoot = "webinspect_dead"
	// DeadReasonHeader holds why a message was parked.
	DeadReasonHeader = "Webinspect-Dead-Reason"
	// DeadSubjectHeader holds the subject the message came on.
	DeadSubjectHeader = "Webinspect-Original-Subject"
)

// Subject kinds (the last token of a subject).
const (
	KindDefects     = "defects"
	KindUninspected = "uninspected"
	KindRoll        = "roll"
	KindReviews     = "reviews"
	KindMarks       = "marks"
	KindStatus      = "status"
)

// recordKinds are the kinds of the WEBINSPECT stream.
var recordKinds = []string{KindDefects, KindUninspected, KindRoll, KindReviews, KindMarks}

// Roll event types of a KindRoll message (Message.Event).
const (
	EventStart   = "start"
	EventEnd     = "end"
	EventSplice  = "splice"
	EventContext = "context"
)

// Errors.
var (
	// ErrInvalidOptions is returned when an option is out of range; the
	// message names it.
	ErrInvalidOptions = errors.New("plant: invalid options")
	// ErrBadMessage wraps every reason a message is parked.
	ErrBadMessage = errors.New("bad message")
	// ErrAuth is returned when a NATS server refuses this client: no
	// credentials were given and it needs them, or not the ones it has.
	// The message names the server, never the credentials.
	ErrAuth = errors.New("plant: NATS authentication failed")
	// ErrNoCredentials is returned by StartServer for a listener other
	// machines can reach, with no Token and Insecure not set.
	ErrNoCredentials = errors.New("plant: NATS server without credentials")
	// ErrTLS is returned when the TLS of a connection to a NATS server
	// fails: the server's certificate does not verify against the CA the
	// client trusts, is not for the host it dialled, has expired, or the
	// server does not speak TLS and the client requires it. The message
	// names the server and what did not verify.
	ErrTLS = errors.New("plant: NATS TLS failed")
	// ErrTLSFile is returned when a certificate, key or CA file cannot be
	// used; the message names the file and what is wrong, never what it
	// holds.
	ErrTLSFile = errors.New("plant: bad TLS file")
	// ErrBadPart wraps why compaction could not read a part file fully
	// (truncated, corrupt, another schema): the partition is left as it
	// is and the file is never deleted.
	ErrBadPart = errors.New("plant: unreadable part file")
	// ErrDataInUse is returned when another process (or Run in this one)
	// holds the plant data directory: one service or compaction at a time.
	ErrDataInUse = errors.New("plant: data directory in use")
)

// Message is one record on the plant bus. Exactly one of the payload
// fields is set, as Kind (the subject's kind) says.
type Message struct {
	V     int    `json:"v"`
	Plant string `json:"plant"`
	Line  string `json:"line"`
	Kind  string `json:"kind"`
	Roll  string `json:"roll,omitempty"`
	// Seq is the row's index in the roll map (uninspected ranges, marks,
	// reviews, splices, context changes); the defect ID for defects.
	Seq int64 `json:"seq"`
	// Event is the roll event for KindRoll: start, end, splice, context.
	Event string `json:"event,omitempty"`
	// Sent is when the engine published it (the engine's clock).
	Sent time.Time `json:"sent"`

	Defect      *rollmap.Defect        `json:"defect,omitempty"`
	Uninspected *rollmap.Uninspected   `json:"uninspected,omitempty"`
	RollInfo    *RollInfo              `json:"roll_info,omitempty"`
	Splice      *rollmap.Splice        `json:"splice,omitempty"`
	Context     *rollmap.ContextChange `json:"context,omitempty"`
	Review      *rollmap.Review        `json:"review,omitempty"`
	Mark        *rollmap.MarkEvent     `json:"mark,omitempty"`
	Status      *LineStatus            `json:"status,omitempty"`
}

// RollInfo is a roll's start or end as published: the engine's times.
type RollInfo struct {
	Recipe     string              `json:"recipe"`
	Material   string              `json:"material"`
	WebWidthMM float64             `json:"web_width_mm"`
	Started    time.Time           `json:"started"`
	Ended      time.Time           `json:"ended,omitzero"`
	LengthM    float64             `json:"length_m"`
	Context    rollmap.RollContext `json:"context,omitzero"`
}

// LineStatus is a line's live state as published every StatusInterval.
type LineStatus struct {
	Time         time.Time `json:"time"` // the engine's clock
	State        string    `json:"state"`
	RollID       string    `json:"roll_id"`
	SpeedMPerMin float64   `json:"speed_m_per_min"`
	MDM          float64   `json:"md_m"`
	Defects      int64     `json:"defects"`       // on the current roll
	UninspectedM float64   `json:"uninspected_m"` // on the current roll
}

// Subject returns webinspect.<plant>.<line>.<kind>.
func Subject(plant, line, kind string) string {
	return SubjectRoot + "." + plant + "." + line + "." + kind
}

// MsgID returns the Nats-Msg-Id of a record: <line>/<roll>/<what>/<n>.
func MsgID(line, roll, what string, n int64) string {
	return fmt.Sprintf("%s/%s/%s/%d", line, roll, what, n)
}

// ValidName reports whether s can name a plant or a line: 1 to 32 bytes of
// [A-Za-z0-9_-], so that it is one subject token and one path element.
func ValidName(what, s string) error {
	if s == "" || len(s) > 32 {
		return fmt.Errorf("%w: %s %q: want 1 to 32 bytes of A-Z a-z 0-9 _ -", ErrInvalidOptions, what, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %s %q: byte %d is %q, allowed are A-Z a-z 0-9 _ -", ErrInvalidOptions, what, s, i, c)
		}
	}
	return nil
}

// parseSubject splits webinspect.<plant>.<line>.<kind>.
func parseSubject(subj string) (plant, line, kind string, err error) {
	t := strings.Split(subj, ".")
	if len(t) != 4 || t[0] != SubjectRoot {
		return "", "", "", fmt.Errorf("%w: subject %q: want %s.<plant>.<line>.<kind>", ErrBadMessage, subj, SubjectRoot)
	}
	return t[1], t[2], t[3], nil
}

// check returns why m, received on subject subj, cannot be taken.
func (m *Message) check(subj string) error {
	plant, line, kind, err := parseSubject(subj)
	if err != nil {
		return err
	}
	if m.V != Version {
		return fmt.Errorf("%w: version %d, this plant reads %d", ErrBadMessage, m.V, Version)
	}
	if m.Plant != plant || m.Line != line || m.Kind != kind {
		return fmt.Errorf("%w: body says plant %q line %q kind %q, subject %s", ErrBadMessage, m.Plant, m.Line, m.Kind, subj)
	}
	if kind != KindStatus {
		if err := rollmap.ValidRollID(m.Roll); err != nil {
			return fmt.Errorf("%w: %w", ErrBadMessage, err)
		}
	}
	missing := func(what string) error {
		return fmt.Errorf("%w: %s message without %s", ErrBadMessage, kind, what)
	}
	switch kind {
	case KindDefects:
		if m.Defect == nil {
			return missing("defect")
		}
		if m.Defect.ID != m.Seq || m.Defect.ID <= 0 || m.Defect.Time.IsZero() {
			return fmt.Errorf("%w: defect %d (seq %d) needs an ID > 0 and a time", ErrBadMessage, m.Defect.ID, m.Seq)
		}
	case KindUninspected:
		if m.Uninspected == nil {
			return missing("uninspected")
		}
	case KindReviews:
		if m.Review == nil {
			return missing("review")
		}
	case KindMarks:
		if m.Mark == nil {
			return missing("mark")
		}
	case KindStatus:
		if m.Status == nil {
			return missing("status")
		}
	case KindRoll:
		switch m.Event {
		case EventStart, EventEnd:
			if m.RollInfo == nil {
				return missing("roll_info")
			}
		case EventSplice:
			if m.Splice == nil {
				return missing("splice")
			}
		case EventContext:
			if m.Context == nil {
				return missing("context")
			}
		default:
			return fmt.Errorf("%w: roll event %q: want start, end, splice or context", ErrBadMessage, m.Event)
		}
	default:
		return fmt.Errorf("%w: unknown kind %q", ErrBadMessage, kind)
	}
	if m.Seq < 0 {
		return fmt.Errorf("%w: seq %d < 0", ErrBadMessage, m.Seq)
	}
	return nil
}
