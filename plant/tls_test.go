package plant

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/webinspect/webinspect/internal/poll"
	"github.com/webinspect/webinspect/internal/syncbuf"
	"github.com/webinspect/webinspect/internal/testpki"
)

// tlsNode is a NATS server with a token and a certificate for 127.0.0.1
// and localhost from a throwaway CA: the plant's secure setup.
func tlsNode(t *testing.T, dir string, tok string) (node *natsNode, ca *testpki.CA, key string) {
	t.Helper()
	ca = testpki.NewCA(t, dir, "plant")
	cert, key := ca.Issue(t, testpki.Leaf{Name: "nats", Hosts: []string{"127.0.0.1", "localhost"}})
	node = newNode(t, ServerOptions{Name: "tls", Port: freePort(t), StoreDir: filepath.Join(dir, "nats"), Token: tok, TLSCert: cert, TLSKey: key})
	return node, ca, key
}

// Over TLS with the token, a line's records reach the plant end to end;
// every client connection the server holds is TLS. When the server comes
// back with a certificate of another CA, the line keeps recording and
// logs the refusal naming the server; once the certificate is put right
// the plant holds every defect. No log holds the token or the key.
func TestTLSEndToEnd(t *testing.T) {
	const tok = "plant-token-Tl5sEnd2EndX"
	dir := t.TempDir()
	node, ca, key := tlsNode(t, dir, tok)
	var logs syncbuf.Buffer
	logger := zerolog.New(&logs).Level(zerolog.DebugLevel)
	l := newLine(t, dir, "L1", 1)
	l.startRoll(t)
	l.web(t, 30)
	p, err := NewPublisher(PublisherOptions{URLs: []string{fmt.Sprintf("tls://127.0.0.1:%d", node.o.Port)}, Token: tok, TLSCA: ca.File,
		Plant: "mill", Line: "L1", Store: l.store, Interval: 20 * time.Millisecond, AckTimeout: 2 * time.Second, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	pub := goRun(func(ctx context.Context) { p.Run(ctx); p.Close() })
	defer pub.stop()
	// The service names the server by its host name, with nats:// and
	// the CA: TLS all the same.
	svc, err := NewService(ServiceOptions{URLs: []string{fmt.Sprintf("nats://localhost:%d", node.o.Port)}, Token: tok, TLSCA: ca.File,
		Data: filepath.Join(dir, "plant"), FlushInterval: 50 * time.Millisecond, AckWait: 2 * time.Second, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	run := goRun(func(ctx context.Context) { svc.Run(ctx) })
	defer run.stop()
	first := waitPlantHolds(t, svc, l, "the plant holds the line's defects sent over TLS")
	node.mu.Lock()
	cz, err := node.srv.Connz(&server.ConnzOptions{})
	node.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if len(cz.Conns) < 2 {
		t.Fatalf("the server holds %d client connections, want the line's and the plant's", len(cz.Conns))
	}
	for _, c := range cz.Conns {
		if c.TLSVersion == "" {
			t.Errorf("connection %q is not TLS", c.Name)
		}
	}

	cert, key0 := node.o.TLSCert, node.o.TLSKey
	stranger := testpki.NewCA(t, dir, "stranger")
	node.stop()
	node.o.TLSCert, node.o.TLSKey = stranger.Issue(t, testpki.Leaf{Name: "stranger", Hosts: []string{"127.0.0.1", "localhost"}})
	node.start()
	l.web(t, 30)
	poll.Until(t, 60*time.Second, "the line logs that the server's certificate does not verify", func() bool {
		for _, ln := range strings.Split(logs.String(), "\n") {
			if strings.Contains(ln, `"level":"error"`) && strings.Contains(ln, `"line":"L1"`) &&
				strings.Contains(ln, ErrTLS.Error()+" at tls://127.0.0.1:") && strings.Contains(ln, "does not verify against the CA file "+ca.File) {
				return true
			}
		}
		return false
	})
	if n := len(l.truth(t)); n <= len(first) {
		t.Fatalf("the roll map has %d defects after the refusal, %d before: the line stopped recording", n, len(first))
	}
	node.stop()
	node.o.TLSCert, node.o.TLSKey = cert, key0
	node.start()
	l.startRoll(t)
	all := waitPlantHolds(t, svc, l, "the plant holds every defect once the certificate is right again")

	pub.stop()
	run.stop()
	noSecret(t, "the log", logs.String(), tok, testpki.KeyLine(t, key))
	if strings.Contains(logs.String(), "travels in clear") {
		t.Errorf("a warning that the token travels in clear, over TLS:\n%s", logs.String())
	}
	t.Logf("%d defects over TLS (%s), %d of them recorded while the server's certificate did not verify", len(all), cz.Conns[0].TLSVersion, len(all)-len(first))
}

// Against the TLS server, a client refuses at once, with ErrTLS naming
// the server and what did not verify, whatever does not check out: no CA
// (tls:// or plain nats://), another CA, a host name the certificate is
// not for; a client that asks for TLS refuses a server without it. The
// server refuses a client that speaks plain text.
func TestTLSRefused(t *testing.T) {
	const tok = "plant-token-Tl5sRefusedQ"
	dir := t.TempDir()
	node, ca, key := tlsNode(t, dir, tok)
	other := testpki.NewCA(t, dir, "other")
	// A server whose certificate is for another host than the one dialled.
	misCert, misKey := ca.Issue(t, testpki.Leaf{Name: "elsewhere", Hosts: []string{"nats.plant.invalid"}})
	mis := newNode(t, ServerOptions{Name: "mis", Port: freePort(t), StoreDir: filepath.Join(dir, "mis"), Token: tok, TLSCert: misCert, TLSKey: misKey})
	plain := newNode(t, ServerOptions{Name: "plain", Port: freePort(t), StoreDir: filepath.Join(dir, "plain"), Token: tok})

	hostport := fmt.Sprintf("127.0.0.1:%d", node.o.Port)
	if nc, err := nats.Connect("nats://"+hostport, nats.Token(tok), nats.Timeout(2*time.Second)); err == nil {
		nc.Close()
		t.Error("a nats.go client without the CA connected to the TLS server")
	}
	// A client that does not speak TLS at all: the server's greeting
	// says TLS is required, and the connection is closed on the plain
	// text that follows.
	raw, err := net.DialTimeout("tcp", hostport, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	raw.SetDeadline(time.Now().Add(30 * time.Second)) // a deadline for a hang, not a speed
	rd := bufio.NewReader(raw)
	info, err := rd.ReadString('\n')
	if err != nil || !strings.Contains(info, `"tls_required":true`) {
		t.Errorf("the TLS server's greeting %q (%v) does not say TLS is required", info, err)
	}
	fmt.Fprintf(raw, "CONNECT {\"verbose\":false}\r\nPING\r\n")
	// Refused: the connection closed, or an -ERR; not a PONG, not a hang.
	reply, err := rd.ReadString('\n')
	if errors.Is(err, os.ErrDeadlineExceeded) || err == nil && !strings.HasPrefix(reply, "-ERR") {
		t.Errorf("the TLS server's answer to a plain-text client: %q (%v), want it refused", reply, err)
	}
	raw.Close()

	l := newLine(t, dir, "L1", 1)
	for _, c := range []struct {
		name, url, ca string
		want          []string
	}{
		{"tls, no CA", "tls://" + hostport, "", []string{"does not verify against the system's root CAs", `issued by "CN=plant test CA"`}},
		{"nats, no CA", "nats://" + hostport, "", []string{"the server requires TLS, and the server's certificate", "does not verify against the system's root CAs"}},
		{"another CA", "tls://" + hostport, other.File, []string{"does not verify against the CA file " + other.File}},
		{"wrong host", fmt.Sprintf("tls://127.0.0.1:%d", mis.o.Port), ca.File, []string{"certificate is for nats.plant.invalid, not for the host 127.0.0.1"}},
		{"plain server", fmt.Sprintf("tls://127.0.0.1:%d", plain.o.Port), ca.File, []string{"does not speak TLS"}},
		{"plain server, nats and CA", fmt.Sprintf("nats://127.0.0.1:%d", plain.o.Port), ca.File, []string{"does not speak TLS"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewPublisher(PublisherOptions{URLs: []string{c.url}, Token: tok, TLSCA: c.ca, Plant: "mill", Line: "L1", Store: l.store})
			check := func(who string, err error) {
				t.Helper()
				if !errors.Is(err, ErrTLS) || !strings.Contains(err.Error(), "at "+c.url+": ") {
					t.Errorf("%s: %v; want %v naming %s", who, err, ErrTLS, c.url)
				}
				for _, w := range c.want {
					if !strings.Contains(fmt.Sprint(err), w) {
						t.Errorf("%s: %v; want it to say %q", who, err, w)
					}
				}
				noSecret(t, who+"'s error", fmt.Sprint(err), tok, testpki.KeyLine(t, key))
			}
			check("publisher", err)
			svc, err := NewService(ServiceOptions{URLs: []string{c.url}, Token: tok, TLSCA: c.ca, Data: filepath.Join(dir, "plant")})
			if err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() { errc <- svc.Run(context.Background()) }()
			select {
			case err := <-errc:
				check("service", err)
			case <-time.After(30 * time.Second): // a deadline for a hang, not a speed
				t.Fatal("the plant service neither ran nor returned")
			}
		})
	}
	// In a list, the refusal of a server that is up is not hidden by
	// another that is down.
	down := fmt.Sprintf("tls://127.0.0.1:%d", freePort(t))
	_, err = NewPublisher(PublisherOptions{URLs: []string{"tls://" + hostport, down}, Token: tok, TLSCA: other.File, Plant: "mill", Line: "L1", Store: l.store})
	if !errors.Is(err, ErrTLS) || !strings.Contains(err.Error(), "at tls://"+hostport+": ") {
		t.Errorf("two URLs, one down: %v; want %v naming tls://%s", err, ErrTLS, hostport)
	}
}

// Certificate, key and CA files that cannot be used are refused before a
// server starts or a client connects, with ErrTLSFile naming the file and
// what is wrong, never the key.
func TestTLSFiles(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, dir, "plant")
	cert, key := ca.Issue(t, testpki.Leaf{Name: "nats", Hosts: []string{"127.0.0.1"}})
	_, otherKey := ca.Issue(t, testpki.Leaf{Name: "other", Hosts: []string{"127.0.0.1"}})
	expired, expiredKey := ca.Issue(t, testpki.Leaf{Name: "expired", Hosts: []string{"127.0.0.1"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	future, futureKey := ca.Issue(t, testpki.Leaf{Name: "future", Hosts: []string{"127.0.0.1"}, NotBefore: time.Now().Add(24 * time.Hour)})
	noSAN, noSANKey := ca.Issue(t, testpki.Leaf{Name: "nosan"})
	// copyFile copies from to a file of mode perm.
	copyFile := func(from, name string, perm os.FileMode) string {
		b, err := os.ReadFile(from)
		path := filepath.Join(dir, name)
		if err != nil || os.WriteFile(path, b, perm) != nil || os.Chmod(path, perm) != nil {
			t.Fatalf("copy %s: %v", from, err)
		}
		return path
	}
	openKey := copyFile(key, "open.key", 0o644)
	certAsKey := copyFile(cert, "cert-as.key", 0o600)
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "nosuch.pem")
	secrets := []string{testpki.KeyLine(t, key), testpki.KeyLine(t, otherKey)}
	for _, c := range []struct {
		name      string
		cert, key string
		want      string
	}{
		{"missing cert", missing, key, "certificate file " + missing + ": no such file"},
		{"missing key", cert, missing, "key file " + missing + ": no such file"},
		{"key of another cert", cert, otherKey, "key file " + otherKey + ": the private key does not match the certificate in " + cert},
		{"key in the cert file", key, key, "certificate file " + key + ": holds no PEM certificate"},
		{"cert in the key file", cert, certAsKey, "key file " + certAsKey + ": no usable private key"},
		{"junk cert", junk, key, "certificate file " + junk + ": holds no PEM certificate"},
		{"expired", expired, expiredKey, "certificate file " + expired + ": the certificate expired on"},
		{"not yet valid", future, futureKey, "certificate file " + future + ": the certificate is not valid before"},
		{"no host", noSAN, noSANKey, "certificate file " + noSAN + ": the certificate names no host"},
		{"key every user reads", cert, openKey, "key file " + openKey + ": mode -rw-r--r-- lets every user read the private key"},
		{"no key", cert, "", "needs both files"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := StartServer(ServerOptions{Port: -1, StoreDir: filepath.Join(dir, "s"), TLSCert: c.cert, TLSKey: c.key})
			if !errors.Is(err, ErrTLSFile) || !strings.Contains(fmt.Sprint(err), c.want) {
				t.Errorf("%v; want %v: …%s…", err, ErrTLSFile, c.want)
			}
			noSecret(t, "the error", fmt.Sprint(err), secrets...)
		})
	}
	l := newLine(t, dir, "L1", 1)
	for _, c := range []struct{ ca, want string }{
		{missing, "CA file " + missing + ": no such file"},
		{junk, "CA file " + junk + ": holds no PEM certificate"},
		{key, "CA file " + key + ": holds no PEM certificate (-----BEGIN CERTIFICATE-----) (it holds a private key"},
		{expired, "CA file " + expired + ": every certificate in it has expired"},
	} {
		_, err := NewPublisher(PublisherOptions{URLs: []string{"tls://127.0.0.1:1"}, TLSCA: c.ca, Plant: "mill", Line: "L1", Store: l.store})
		if !errors.Is(err, ErrTLSFile) || !strings.Contains(fmt.Sprint(err), c.want) {
			t.Errorf("publisher: %v; want %v: …%s…", err, ErrTLSFile, c.want)
		}
		_, err = NewService(ServiceOptions{URLs: []string{"tls://127.0.0.1:1"}, TLSCA: c.ca, Data: filepath.Join(dir, "p")})
		if !errors.Is(err, ErrTLSFile) || !strings.Contains(fmt.Sprint(err), c.want) {
			t.Errorf("service: %v; want %v: …%s…", err, ErrTLSFile, c.want)
		}
		noSecret(t, "the error", fmt.Sprint(err), secrets...)
	}
	_, err := StartServer(ServerOptions{Port: -1, StoreDir: filepath.Join(dir, "c"), TLSCert: cert, TLSKey: key, ClusterName: "p", ClusterPort: -1})
	if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(fmt.Sprint(err), "TLSCA") {
		t.Errorf("a TLS cluster without a CA: %v, want %v naming TLSCA", err, ErrInvalidOptions)
	}
}

// Two nodes clustered over TLS routes (each verifying the other against
// the plant's CA) with the token: the route listener greets a peer with
// a certificate of the plant's CA and refuses one without, and a message
// published on one node over TLS reaches a subscriber on the other.
func TestTLSCluster(t *testing.T) {
	const tok = "cluster-token-Tl5sRoutes9"
	dir := t.TempDir()
	ca := testpki.NewCA(t, dir, "plant")
	ports, routes := []int{freePort(t), freePort(t)}, []int{freePort(t), freePort(t)}
	nodes := make([]*natsNode, 2)
	for i := range nodes {
		cert, key := ca.Issue(t, testpki.Leaf{Name: fmt.Sprintf("n%d", i), Hosts: []string{"127.0.0.1"}})
		o := ServerOptions{Name: fmt.Sprintf("n%d", i), Port: ports[i], StoreDir: filepath.Join(dir, fmt.Sprintf("n%d", i)),
			ClusterName: "plant", ClusterPort: routes[i], Routes: []string{fmt.Sprintf("nats-route://127.0.0.1:%d", routes[1-i])},
			Token: tok, TLSCert: cert, TLSKey: key, TLSCA: ca.File}
		nodes[i] = newNode(t, o)
	}
	poll.Until(t, 60*time.Second, "the two nodes route to each other over TLS", func() bool {
		for _, n := range nodes {
			n.mu.Lock()
			r := n.srv.NumRoutes()
			n.mu.Unlock()
			if r == 0 {
				return false
			}
		}
		return true
	})
	// The route listener greets a peer with a certificate of the plant's
	// CA over TLS, and refuses one without a certificate.
	pool, err := LoadCA(ca.File, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pair, err := LoadCert(nodes[1].o.TLSCert, nodes[1].o.TLSKey, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	greet := func(certs []tls.Certificate) (string, error) {
		// The dialer's timeout bounds the handshake too: a deadline for a
		// hang, not a speed (the server's own bound is tlsTimeout).
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", routes[0]),
			&tls.Config{RootCAs: pool, Certificates: certs, MinVersion: tls.VersionTLS12})
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second)) // a deadline for a hang, not a speed
		return bufio.NewReader(c).ReadString('\n')
	}
	if info, err := greet([]tls.Certificate{pair}); err != nil || !strings.Contains(info, `"cluster":"plant"`) {
		t.Errorf("a peer with the plant CA's certificate: greeting %q (%v), want the route's INFO", info, err)
	}
	if info, err := greet(nil); err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("a peer without a certificate: greeting %q (%v), want it refused (certificate required)", info, err)
	}
	conn := func(i int) *nats.Conn {
		nc, err := connect([]string{fmt.Sprintf("tls://127.0.0.1:%d", ports[i])}, "test", tok, ca.File, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	sub, err := conn(1).SubscribeSync("webinspect.test")
	if err != nil {
		t.Fatal(err)
	}
	pub := conn(0)
	var got *nats.Msg
	poll.Until(t, 60*time.Second, "a message from node 0 arrives at node 1", func() bool {
		pub.Publish("webinspect.test", []byte("over TLS routes"))
		got, err = sub.NextMsg(100 * time.Millisecond)
		return err == nil
	})
	if string(got.Data) != "over TLS routes" {
		t.Errorf("got %q", got.Data)
	}
}

// A token goes in clear only without TLS to a host that is not
// loopback: that, and only that, is warned about.
func TestTokenInClear(t *testing.T) {
	for _, c := range []struct {
		token, url string
		tls, want  bool
	}{
		{"tok", "nats://10.1.0.5:4222", false, true},
		{"tok", "nats://nats-a.plant:4222", false, true},
		{"tok", "tls://10.1.0.5:4222", true, false},
		{"", "nats://10.1.0.5:4222", false, false},
		{"tok", "nats://127.0.0.1:4222", false, false},
		{"tok", "nats://localhost:4222", false, false},
		{"tok", "nats://[::1]:4222", false, false},
	} {
		if got := tokenInClear(c.token, c.url, c.tls); got != c.want {
			t.Errorf("token %v, %s, TLS %v: in clear %v, want %v", c.token != "", c.url, c.tls, got, c.want)
		}
	}
}
