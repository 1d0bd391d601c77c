package plant

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/internal/poll"
	"github.com/webinspect/webinspect/internal/syncbuf"
)

// noSecret fails t if text holds one of secrets.
func noSecret(t *testing.T, where, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s holds the secret %q", where, s)
		}
	}
}

// A server with a token refuses a client with none or another one at
// once, with ErrAuth naming the server and not the tokens: nats.go
// itself, the line's publisher and the plant service alike.
func TestAuthRefused(t *testing.T) {
	const tok = "plant-token-Zq8w3LmN5rT"
	dir := t.TempDir()
	node := newNode(t, ServerOptions{Name: "auth", Port: freePort(t), StoreDir: filepath.Join(dir, "nats"), Token: tok})
	urls := []string{node.url()}
	if _, err := nats.Connect(urls[0], nats.Timeout(2*time.Second)); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("a plain client without the token: %v, want %v", err, nats.ErrAuthorization)
	}
	l := newLine(t, dir, "L1", 1)
	for _, c := range []struct{ name, token, want string }{
		{"none", "", "requires credentials and this client has none"},
		{"wrong", "not-the-plant-token-42", "refused the token"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewPublisher(PublisherOptions{URLs: urls, Token: c.token, Plant: "mill", Line: "L1", Store: l.store})
			if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), urls[0]) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("publisher: %v; want %v naming %s: %s", err, ErrAuth, urls[0], c.want)
			}
			noSecret(t, "the publisher's error", fmt.Sprint(err), tok, c.token)
			svc, err := NewService(ServiceOptions{URLs: urls, Token: c.token, Data: filepath.Join(dir, "plant-"+c.name)})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- svc.Run(ctx) }()
			select {
			case err := <-errc:
				if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), urls[0]) || !strings.Contains(err.Error(), c.want) {
					t.Errorf("service: %v; want %v naming %s: %s", err, ErrAuth, urls[0], c.want)
				}
				noSecret(t, "the service's error", fmt.Sprint(err), tok, c.token)
			case <-time.After(30 * time.Second): // a deadline for a hang, not a speed
				t.Fatal("the plant service with refused credentials neither ran nor returned")
			}
		})
	}
}

// With the token, a line publishes into the plant end to end. When the
// server comes back with another token the line keeps recording, logs
// the refusal naming the server, and loses nothing: once the token is put
// right the plant holds every defect. The plant service logs the refusal
// too. The token shows nowhere: not in
// the logs, the metrics, the roll map's files or the plant's dataset.
func TestAuthEndToEnd(t *testing.T) {
	const tok, other = "plant-token-Hk2v9QpX4wE", "rotated-token-Bn7c1YsD6uJ"
	dir := t.TempDir()
	node := newNode(t, ServerOptions{Name: "auth", Port: freePort(t), StoreDir: filepath.Join(dir, "nats"), Token: tok})
	urls := []string{node.url()}
	var logs syncbuf.Buffer
	logger := zerolog.New(&logs).Level(zerolog.DebugLevel)
	reg := prometheus.NewRegistry()
	l := newLine(t, dir, "L1", 1)
	l.startRoll(t)
	l.web(t, 30)
	p, err := NewPublisher(PublisherOptions{URLs: urls, Token: tok, Plant: "mill", Line: "L1", Store: l.store,
		Interval: 20 * time.Millisecond, AckTimeout: 2 * time.Second, Logger: logger, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	pub := goRun(func(ctx context.Context) { p.Run(ctx); p.Close() })
	defer pub.stop()
	svc, err := NewService(ServiceOptions{URLs: urls, Token: tok, Data: filepath.Join(dir, "plant"),
		FlushInterval: 50 * time.Millisecond, AckWait: 2 * time.Second, Logger: logger, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	run := goRun(func(ctx context.Context) { svc.Run(ctx) })
	defer run.stop()
	first := waitPlantHolds(t, svc, l, "the plant holds the line's defects published with the token")

	node.stop()
	node.o.Token = other
	node.start()
	l.web(t, 30)
	poll.Until(t, 60*time.Second, "the line logs that NATS refuses its token", func() bool {
		s := logs.String()
		return strings.Contains(s, ErrAuth.Error()+" at "+urls[0]) && strings.Contains(s, "refused the token")
	})
	poll.Until(t, 60*time.Second, "the plant service logs that NATS refuses its token", func() bool {
		for _, ln := range strings.Split(logs.String(), "\n") {
			if strings.Contains(ln, `"level":"error"`) && strings.Contains(ln, ErrAuth.Error()+" at "+urls[0]) && !strings.Contains(ln, `"line"`) {
				return true
			}
		}
		return false
	})
	if n := len(l.truth(t)); n <= len(first) {
		t.Fatalf("the roll map has %d defects after the refusal, %d before: the line stopped recording", n, len(first))
	}
	node.stop()
	node.o.Token = tok
	node.start()
	l.web(t, 10)
	l.startRoll(t)
	all := waitPlantHolds(t, svc, l, "the plant holds every defect once the token is right again")
	t.Logf("%d defects end to end, %d of them recorded while NATS refused the line", len(all), len(all)-len(first))

	pub.stop()
	run.stop()
	noSecret(t, "the log", logs.String(), tok, other)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	noSecret(t, "the metrics", fmt.Sprint(mfs), tok, other)
	for _, root := range []string{l.store.Root(), filepath.Join(dir, "plant")} {
		files := 0
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			files++
			noSecret(t, path, string(b), tok, other)
			return err
		})
		if err != nil || files == 0 {
			t.Errorf("%s: %d files read (%v)", root, files, err)
		}
	}
}

// A server other machines can reach needs a token or Insecure; routes and
// client URLs with credentials in them are refused without repeating them.
func TestAuthOptions(t *testing.T) {
	dir := t.TempDir()
	_, err := StartServer(ServerOptions{Host: "0.0.0.0", Port: -1, StoreDir: filepath.Join(dir, "a")})
	if !errors.Is(err, ErrNoCredentials) || !strings.Contains(err.Error(), "0.0.0.0") {
		t.Errorf("0.0.0.0 without a token: %v, want %v naming the address", err, ErrNoCredentials)
	}
	for _, o := range []ServerOptions{
		{Host: "0.0.0.0", Port: -1, StoreDir: filepath.Join(dir, "b"), Insecure: true},
		{Host: "0.0.0.0", Port: -1, StoreDir: filepath.Join(dir, "c"), Token: "plant-token-Zq8w3LmN5rT"},
		{Host: "localhost", Port: -1, StoreDir: filepath.Join(dir, "d")},
	} {
		s, err := StartServer(o)
		if err != nil {
			t.Errorf("%s insecure %v token %v: %v", o.Host, o.Insecure, o.Token != "", err)
			continue
		}
		s.Shutdown()
		s.WaitForShutdown()
	}
	_, err = StartServer(ServerOptions{Port: -1, StoreDir: filepath.Join(dir, "e"), ClusterName: "p", ClusterPort: -1,
		Routes: []string{"nats-route://u:route-secret@127.0.0.1:1"}})
	if !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("a route with credentials: %v, want %v", err, ErrInvalidOptions)
	}
	noSecret(t, "the route error", fmt.Sprint(err), "route-secret")
	l := newLine(t, dir, "L1", 1)
	_, err = NewPublisher(PublisherOptions{URLs: []string{"nats://url-secret@127.0.0.1:1"}, Plant: "mill", Line: "L1", Store: l.store})
	if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), "carries credentials") {
		t.Errorf("a URL with a token: %v, want %v", err, ErrInvalidOptions)
	}
	noSecret(t, "the URL error", fmt.Sprint(err), "url-secret")
	_, err = NewService(ServiceOptions{URLs: []string{"nats://u:url-secret@127.0.0.1:1"}, Data: filepath.Join(dir, "p")})
	if !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("service, a URL with a password: %v, want %v", err, ErrInvalidOptions)
	}
	noSecret(t, "the URL error", fmt.Sprint(err), "url-secret")
}
