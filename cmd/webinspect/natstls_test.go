package main

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/webinspect/webinspect/internal/testpki"
)

// Bad TLS files and flags are refused before anything starts (exit 2),
// naming the file and what is wrong, never the key.
func TestNatsTLSFlags(t *testing.T) {
	t.Setenv("WEBINSPECT_TOKEN", "")
	t.Setenv(natsTokenEnv, "")
	dir := t.TempDir()
	ca := testpki.NewCA(t, dir, "plant")
	cert, key := ca.Issue(t, testpki.Leaf{Name: "nats", Hosts: []string{"127.0.0.1"}})
	_, otherKey := ca.Issue(t, testpki.Leaf{Name: "other", Hosts: []string{"127.0.0.1"}})
	expired, expiredKey := ca.Issue(t, testpki.Leaf{Name: "expired", Hosts: []string{"127.0.0.1"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	noCerts := filepath.Join(dir, "empty-ca.pem")
	if err := os.WriteFile(noCerts, []byte("# the plant's CA goes here\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "nosuch.pem")
	rolls := t.TempDir()
	data := filepath.Join(t.TempDir(), "plant")
	store := t.TempDir()
	runArgs := []string{"run", "--rolls", rolls, "--plant", "tls://127.0.0.1:1", "--line", "L1"}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"nats", "--store", store, "--tls-cert", cert}, []string{"--tls-cert needs --tls-key"}},
		{[]string{"nats", "--store", store, "--tls-key", key}, []string{"--tls-key needs --tls-cert"}},
		{[]string{"nats", "--store", store, "--tls-cert", missing, "--tls-key", key}, []string{"TLS certificate file " + missing + ": no such file"}},
		{[]string{"nats", "--store", store, "--tls-cert", cert, "--tls-key", missing}, []string{"TLS key file " + missing + ": no such file"}},
		{[]string{"nats", "--store", store, "--tls-cert", cert, "--tls-key", otherKey},
			[]string{"TLS key file " + otherKey + ": the private key does not match the certificate in " + cert}},
		{[]string{"nats", "--store", store, "--tls-cert", expired, "--tls-key", expiredKey}, []string{"TLS certificate file " + expired + ": the certificate expired on"}},
		{[]string{"nats", "--store", store, "--tls-cert", key, "--tls-key", key}, []string{"TLS certificate file " + key + ": holds no PEM certificate"}},
		{append(slices.Clone(runArgs), "--nats-ca", noCerts), []string{"--nats-ca: TLS CA file " + noCerts + ": holds no PEM certificate"}},
		{append(slices.Clone(runArgs), "--nats-ca", missing), []string{"--nats-ca: TLS CA file " + missing + ": no such file"}},
		{[]string{"run", "--rolls", rolls, "--nats-ca", ca.File}, []string{"--nats-ca needs --plant URL"}},
		{[]string{"plant", "--data", data, "--nats", "tls://127.0.0.1:1", "--nats-ca", noCerts}, []string{"--nats-ca: TLS CA file " + noCerts}},
		{[]string{"plant", "--data", data, "--nats-ca", ca.File}, []string{"--nats-ca is for an external NATS server", "webinspect nats --tls-cert"}},
	} {
		code, stderr := runCLIWithin(t, time.Minute, c.args...)
		oneLineError(t, code, stderr, c.want...)
		if code != 2 {
			t.Errorf("%s: exit %d, want 2", strings.Join(c.args, " "), code)
		}
		for _, k := range []string{key, otherKey, expiredKey} {
			if strings.Contains(stderr, testpki.KeyLine(t, k)) {
				t.Errorf("%s: the key is in the error", strings.Join(c.args, " "))
			}
		}
	}
	nothingStarted(t, rolls, data)
}

// End to end through the commands over TLS, on real sockets:
// webinspect nats with a token and a certificate from a throwaway CA; a
// line and a plant service that do not trust it (no CA with nats:// or
// tls://, another CA, a host name the certificate is not for) are refused
// at once naming the server and what did not verify, and the line's roll
// map keeps what it had; with the CA the line publishes its roll over TLS
// and the plant holds every defect. No log holds the token or the key.
func TestNatsTLSEndToEnd(t *testing.T) {
	t.Setenv("WEBINSPECT_TOKEN", "")
	t.Setenv(natsTokenEnv, "")
	dir := t.TempDir()
	const tok = "plant-token-Tl5cMd9zXq2W"
	good := writeToken(t, filepath.Join(dir, "nats.token"), tok, 0o600)
	ca := testpki.NewCA(t, dir, "plant")
	other := testpki.NewCA(t, dir, "other")
	cert, key := ca.Issue(t, testpki.Leaf{Name: "nats", Hosts: []string{"127.0.0.1"}})

	rolls := replayedRoll(t, dir)
	rollID, taken := firstRoll(t, rolls)
	if len(taken) == 0 {
		t.Fatal("the replayed roll has no defects to publish")
	}
	dirsBefore, _ := rollDirs(rolls)

	natsAddr := freeAddr(t)
	_, port, _ := net.SplitHostPort(natsAddr)
	url := "tls://" + natsAddr
	natsChild, natsLogs := startLoggedChild(t, "nats --listen "+natsAddr+" --store "+filepath.Join(dir, "ns")+" --nats-token-file "+good+
		" --tls-cert "+cert+" --tls-key "+key)
	defer func() { natsChild.Process.Signal(syscall.SIGTERM); natsChild.Wait() }()
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	waitNatsTakes(t, "webinspect nats takes a TLS client with the token", url, nats.Token(tok), nats.Secure(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))

	data := filepath.Join(dir, "plant")
	runArgs := func(u string, extra ...string) []string {
		return append([]string{"run", "--rolls", rolls, "--listen", "127.0.0.1:0", "--plant", u, "--line", "L1", "--nats-token-file", good}, extra...)
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{runArgs("nats://" + natsAddr), []string{"NATS TLS failed at nats://" + natsAddr, "the server requires TLS", "does not verify against the system's root CAs", "--nats-ca"}},
		{runArgs(url), []string{"NATS TLS failed at " + url, "does not verify against the system's root CAs", "--nats-ca"}},
		{runArgs(url, "--nats-ca", other.File), []string{"NATS TLS failed at " + url, "does not verify against the CA file " + other.File}},
		{runArgs("tls://localhost:"+port, "--nats-ca", ca.File), []string{"NATS TLS failed at tls://localhost:" + port, "not for the host localhost"}},
		{[]string{"plant", "--data", data, "--listen", "127.0.0.1:0", "--nats", url, "--nats-token-file", good},
			[]string{"NATS TLS failed at " + url, "does not verify against the system's root CAs", "--nats-ca"}},
	} {
		code, stderr := runCLIWithin(t, time.Minute, c.args...)
		oneLineError(t, code, stderr, c.want...)
		if code != 1 {
			t.Errorf("%v: exit %d, want 1", c.args, code)
		}
		if strings.Contains(stderr, tok) || strings.Contains(stderr, testpki.KeyLine(t, key)) {
			t.Errorf("%v: a secret is in the output", c.args)
		}
	}
	if dirs, _ := rollDirs(rolls); !slices.Equal(dirs, dirsBefore) {
		t.Fatalf("refused starts changed the rolls: %v, before %v", dirs, dirsBefore)
	}

	if id, ids := firstRoll(t, rolls); id != rollID || !slices.Equal(ids, taken) {
		t.Fatalf("after the refused starts the roll map has %s with %d defects, before %s with %d", id, len(ids), rollID, len(taken))
	}
	plantLogs, lineLogs := publishThroughPlant(t, rolls, data, url, rollID, " --nats-token-file "+good+" --nats-ca "+ca.File)
	got := plantRollDefects(t, data, url, rollID)
	if !slices.Equal(got, taken) {
		t.Fatalf("the plant holds %d defects of %s (%v), the roll map %d (%v)", len(got), rollID, got, len(taken), taken)
	}
	natsChild.Process.Signal(syscall.SIGTERM)
	natsChild.Wait()
	for name, l := range map[string]string{"nats": natsLogs.String(), "plant": plantLogs, "run": lineLogs} {
		if strings.Contains(l, tok) || strings.Contains(l, testpki.KeyLine(t, key)) {
			t.Errorf("the %s log holds a secret", name)
		}
		if strings.Contains(l, "travels in clear") {
			t.Errorf("the %s log warns of a token in clear over TLS", name)
		}
	}
	if l := natsLogs.String(); !strings.Contains(l, "tls=true") || !strings.Contains(l, "TLS only") {
		t.Errorf("the nats log does not say it serves TLS:\n%s", l)
	}
	t.Logf("%d defects of %s published over TLS after five refused starts", len(got), rollID)
}

// A NATS server with a token but without TLS on an address other
// machines reach starts (as before) and warns that the token travels in
// clear, saying how to give it TLS: webinspect nats and plant's embedded
// server alike.
func TestNatsTokenInClearWarning(t *testing.T) {
	t.Setenv("WEBINSPECT_TOKEN", "")
	t.Setenv(natsTokenEnv, "")
	const tok = "plant-token-Cl3arW4rnXy"
	tokFile := writeToken(t, filepath.Join(t.TempDir(), "nats.token"), tok, 0o600)
	for _, c := range []struct {
		name, args, hint string
	}{
		{"nats", "nats --store " + filepath.Join(t.TempDir(), "ns") + " --listen 0.0.0.0:", "give it --tls-cert and --tls-key"},
		{"plant", "plant --data " + t.TempDir() + " --listen 127.0.0.1:0 --nats-listen 0.0.0.0:", "the embedded server has no TLS: run webinspect nats --tls-cert"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, port, err := net.SplitHostPort(freeAddr(t))
			if err != nil {
				t.Fatal(err)
			}
			child, logs := startLoggedChild(t, c.args+port+" --nats-token-file "+tokFile)
			waitNatsTakes(t, "the server takes a client with the token", "nats://127.0.0.1:"+port, nats.Token(tok))
			child.Process.Signal(syscall.SIGTERM)
			if err := child.Wait(); err != nil {
				t.Fatal(err)
			}
			l := logs.String()
			if !strings.Contains(l, "WRN") || !strings.Contains(l, "token travels in clear") || !strings.Contains(l, c.hint) {
				t.Errorf("no warning that the token travels in clear, saying %q:\n%s", c.hint, l)
			}
			if strings.Contains(l, tok) {
				t.Error("the log holds the token")
			}
		})
	}
}
