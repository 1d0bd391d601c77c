package plant

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
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

// checkURLs refuses a NATS URL that carries credentials (user@host or
// token@host): they would show in ps, logs and errors. The message names
// the URL's place in the list, not the URL.
func checkURLs(urls []string) error {
	if len(urls) == 0 {
		return fmt.Errorf("%w: URLs: no NATS server", ErrInvalidOptions)
	}
	for i, u := range urls {
		if strings.Contains(u, "@") {
			return fmt.Errorf("%w: URLs: NATS URL %d of %d carries credentials (…@host): give the token as Token instead", ErrInvalidOptions, i+1, len(urls))
		}
	}
	return nil
}

// authError is ErrAuth for urls; token is what this client presented
// (only whether there was one is told).
func authError(urls []string, token string) error {
	why := "the server refused the token this client presented"
	if token == "" {
		why = "the server requires credentials and this client has none"
	}
	return fmt.Errorf("%w at %s: %s", ErrAuth, strings.Join(urls, ","), why)
}

// linkError is why nc is not connected: ErrAuth or ErrTLS when the last
// attempt was refused.
func linkError(nc *nats.Conn, urls []string, token, caFile string) error {
	if errors.Is(nc.LastError(), nats.ErrAuthorization) {
		return authError(urls, token)
	}
	if err, ok := tlsError(urls, caFile, wantsTLS(caFile, urls), nc.LastError()); ok {
		return err
	}
	return errors.New("not connected to NATS")
}

// connect opens a connection that keeps reconnecting for ever and does not
// fail when no server is up yet. It tries every URL once first: a server
// that refuses the credentials (token, "" for none) is an error now
// (ErrAuth), and so is one whose TLS does not verify (ErrTLS: caFile is
// the CA bundle to verify servers with, clientTLS), not a connection that
// retries in silence. A refusal later (a server restarted with another
// token or certificate) is logged once, at error level, and the
// connection keeps trying, so that the server put right is joined again
// without a restart. A token sent without TLS to a host other than
// loopback is logged once at warning level: it travels in clear.
func connect(urls []string, name, token, caFile string, log zerolog.Logger) (*nats.Conn, error) {
	tlsCfg, err := clientTLS(caFile, urls)
	if err != nil {
		return nil, err
	}
	// refusal is why the server(s) at at refused this client, nil when
	// err is no refusal.
	refusal := func(err error, at []string) error {
		if errors.Is(err, nats.ErrAuthorization) {
			return authError(at, token)
		}
		if terr, ok := tlsError(at, caFile, tlsCfg != nil, err); ok {
			return terr
		}
		return nil
	}
	base := []nats.Option{nats.Name(name), nats.Timeout(2 * time.Second)}
	if token != "" {
		base = append(base, nats.Token(token))
	}
	if tlsCfg != nil {
		// Every URL, whatever its scheme: never plain text once asked
		// for TLS.
		base = append(base, nats.Secure(tlsCfg))
	}
	var conn atomic.Pointer[nats.Conn]
	var refused, warned atomic.Bool
	accepted := func(nc *nats.Conn) {
		if refused.Swap(false) {
			log.Info().Str("nats", strings.Join(urls, ",")).Msg("NATS takes this client again")
		}
		_, notTLS := nc.TLSConnectionState()
		if srv := nc.ConnectedUrlRedacted(); tokenInClear(token, srv, notTLS == nil) && !warned.Swap(true) {
			log.Warn().Str("nats", srv).Msg("the NATS token travels in clear to a server other machines reach: " +
				"give the NATS server a certificate (--tls-cert, --tls-key) and this client the CA (--nats-ca) with tls:// URLs")
		}
	}
	opts := append(base[:len(base):len(base)],
		nats.MaxReconnects(-1),
		nats.IgnoreAuthErrorAbort(),
		// 250 ms + up to 100 ms of jitter after each pass over the URLs;
		// the pass's last refusal is logged here.
		nats.CustomReconnectDelay(func(int) time.Duration {
			if nc := conn.Load(); nc != nil {
				if err := refusal(nc.LastError(), urls); err != nil && !refused.Swap(true) {
					log.Error().Err(err).Msg("NATS refuses this client; it keeps trying (the roll map keeps everything meanwhile)")
				}
			}
			return 250*time.Millisecond + rand.N(100*time.Millisecond)
		}),
		// nats.go's own handler prints to stderr; a refusal is logged
		// above, anything else here.
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if !errors.Is(err, nats.ErrAuthorization) {
				ev := log.Warn().Err(err)
				if sub != nil {
					ev = ev.Str("subject", sub.Subject)
				}
				ev.Msg("NATS reports an error")
			}
		}),
		nats.ConnectHandler(accepted),
		nats.ReconnectHandler(accepted),
	)
	all := strings.Join(urls, ",")
	nc, err := nats.Connect(all, opts...)
	if err != nil {
		// The error is one URL's, and one that is down hides the
		// refusal of another that is up: ask each alone, to name the
		// server that refuses.
		for i := 0; len(urls) > 1 && i < len(urls); i++ {
			pc, perr := nats.Connect(urls[i], append(base[:len(base):len(base)], nats.NoReconnect())...)
			if perr == nil {
				pc.Close()
			} else if rerr := refusal(perr, urls[i:i+1]); rerr != nil {
				return nil, rerr
			}
		}
		if rerr := refusal(err, urls); rerr != nil {
			return nil, rerr
		}
		// No server up yet: keep trying in the background.
		nc, err = nats.Connect(all, append(opts, nats.RetryOnFailedConnect(true))...)
		if err != nil {
			return nil, fmt.Errorf("plant: connect to NATS at %s: %w", all, err)
		}
	}
	conn.Store(nc)
	return nc, nil
}
