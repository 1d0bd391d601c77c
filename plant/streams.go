package plant

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// How long the streams keep what they hold.
const (
	// RecordsMaxAge is how long WEBINSPECT keeps a record: a plant service
	// down for up to a month catches up without losing one.
	RecordsMaxAge = 30 * 24 * time.Hour
	// DuplicateWindow is JetStream's de-duplication window by message ID.
	DuplicateWindow = 10 * time.Minute
	// DeadMaxAge is how long a parked message is kept.
	DeadMaxAge = 90 * 24 * time.Hour
)

// streamConfigs are the plant's three streams with the given replicas.
func streamConfigs(replicas int) []jetstream.StreamConfig {
	subs := make([]string, 0, len(recordKinds))
	for _, k := range recordKinds {
		subs = append(subs, SubjectRoot+".*.*."+k)
	}
	return []jetstream.StreamConfig{
		{Name: Stream, Subjects: subs, Storage: jetstream.FileStorage, Replicas: replicas,
			MaxAge: RecordsMaxAge, Duplicates: DuplicateWindow, Description: "webinspect roll map records of every line"},
		{Name: StatusStream, Subjects: []string{SubjectRoot + ".*.*." + KindStatus}, Storage: jetstream.FileStorage,
			Replicas: replicas, MaxMsgsPerSubject: 1, MaxAge: 24 * time.Hour, Description: "webinspect line status, newest per line"},
		{Name: DeadStream, Subjects: []string{DeadSubjectRoot + ".>"}, Storage: jetstream.FileStorage, Replicas: replicas,
			MaxAge: DeadMaxAge, Description: "webinspect plant messages that could not be taken, with the reason"},
	}
}

// ensureStreams creates the streams that do not exist yet (an existing
// stream is left as it is: the plant service and every line may race to
// create them).
func ensureStreams(ctx context.Context, js jetstream.JetStream, replicas int) error {
	for _, cfg := range streamConfigs(replicas) {
		if _, err := js.Stream(ctx, cfg.Name); err == nil {
			continue
		}
		if _, err := js.CreateStream(ctx, cfg); err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return err
		}
	}
	return nil
}

// connect opens a connection that keeps reconnecting for ever and does not
// fail when no server is up yet.
func connect(urls []string, name string) (*nats.Conn, error) {
	return nats.Connect(strings.Join(urls, ","),
		nats.Name(name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, 100*time.Millisecond),
		nats.Timeout(2*time.Second),
	)
}
