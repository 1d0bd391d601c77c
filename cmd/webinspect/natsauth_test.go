package main

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/webinspect/webinspect/internal/poll"
	"github.com/webinspect/webinspect/plant"
	"github.com/webinspect/webinspect/rollmap"
)

// writeToken writes a token file with mode perm.
func writeToken(t *testing.T, path, tok string, perm os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(tok+"\n"), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // past the umask
		t.Fatal(err)
	}
	return path
}

// freeAddr returns a loopback host:port free now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitNatsTakes waits (a minute at most: a bound for a hang, not a
// speed) until the NATS server at url takes a client with opts.
func waitNatsTakes(t *testing.T, what, url string, opts ...nats.Option) {
	t.Helper()
	opts = append(opts, nats.Timeout(time.Second))
	poll.Until(t, time.Minute, what, func() bool {
		nc, err := nats.Connect(url, opts...)
		if err == nil {
			nc.Close()
		}
		return err == nil
	})
}

// runCLIWithin is runCLI that fails t if the command has not returned
// within d (a refused client must not hang).
func runCLIWithin(t *testing.T, d time.Duration, args ...string) (code int, stderr string) {
	t.Helper()
	type result struct {
		code   int
		stderr string
	}
	done := make(chan result, 1)
	go func() {
		code, _, stderr := runCLI(t, args...)
		done <- result{code, stderr}
	}()
	select {
	case r := <-done:
		return r.code, r.stderr
	case <-time.After(d): // a deadline for a hang, not a speed
		t.Fatalf("%v: still running after %v", args, d)
		return 0, ""
	}
}

// The plant's NATS token comes from a file only its owner reads, or from
// $WEBINSPECT_NATS_TOKEN, never from the command line; nats, plant and
// run refuse a bad file naming it and what is wrong, and a NATS listener
// other machines reach without a token, before anything starts (exit 2).
func TestNatsTokenFlags(t *testing.T) {
	t.Setenv("WEBINSPECT_TOKEN", "")
	t.Setenv(natsTokenEnv, "")
	dir := t.TempDir()
	open := writeToken(t, filepath.Join(dir, "open"), "plant-token-0123456789", 0o644)
	group := writeToken(t, filepath.Join(dir, "group"), "plant-token-0123456789", 0o640)
	empty := writeToken(t, filepath.Join(dir, "empty"), "  ", 0o600)
	short := writeToken(t, filepath.Join(dir, "short"), "short", 0o600)
	spaced := writeToken(t, filepath.Join(dir, "spaced"), "plant token 0123456789", 0o600)
	missing := filepath.Join(dir, "nosuch")
	bad := []struct {
		file string
		want []string
	}{
		{open, []string{"--nats-token-file " + open, "mode -rw-r--r--", "chmod 600"}},
		{group, []string{"--nats-token-file " + group, "mode -rw-r-----", "chmod 600"}},
		{empty, []string{"--nats-token-file " + empty, "empty"}},
		{missing, []string{"--nats-token-file", missing, "no such file"}},
		{dir, []string{"--nats-token-file " + dir, "not a regular file"}},
		{short, []string{"--nats-token-file " + short, "5 bytes: want 16..4096"}},
		{spaced, []string{"--nats-token-file " + spaced, "not printable ASCII"}},
	}
	rolls := t.TempDir()
	data := filepath.Join(t.TempDir(), "plant")
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"nats", "--nats-token", "plant-token-0123456789"}, []string{"-nats-token", "visible", "ps", "--nats-token-file"}},
		{[]string{"run", "--rolls", rolls, "--nats-token-file", short}, []string{"--nats-token-file needs --plant URL"}},
		{[]string{"run", "--rolls", rolls, "--plant", "nats://plant-token-0123456789@127.0.0.1:1", "--line", "L1"},
			[]string{"--plant: URL 1 carries credentials", "--nats-token-file"}},
		{[]string{"plant", "--data", data, "--nats", "nats://u:plant-token-0123456789@127.0.0.1:1"},
			[]string{"--nats: URL 1 carries credentials", "--nats-token-file"}},
		{[]string{"plant", "--data", data, "--nats", "nats://127.0.0.1:1", "--nats-insecure"}, []string{"--nats-insecure", "not with --nats"}},
		{[]string{"nats", "--store", t.TempDir(), "--listen", "0.0.0.0:4222"},
			[]string{"--listen 0.0.0.0:4222 can be reached from other machines", "--nats-token-file", natsTokenEnv, "--insecure"}},
		{[]string{"plant", "--data", data, "--nats-listen", "0.0.0.0:4222"},
			[]string{"--nats-listen 0.0.0.0:4222 can be reached from other machines", "--nats-token-file", natsTokenEnv, "--nats-insecure"}},
	}
	for _, b := range bad {
		cases = append(cases,
			struct{ args, want []string }{[]string{"nats", "--store", t.TempDir(), "--nats-token-file", b.file}, b.want},
			struct{ args, want []string }{[]string{"plant", "--data", data, "--nats-token-file", b.file}, b.want},
			struct{ args, want []string }{[]string{"run", "--rolls", rolls, "--plant", "nats://127.0.0.1:1", "--line", "L1", "--nats-token-file", b.file}, b.want})
	}
	for _, c := range cases {
		code, stderr := runCLIWithin(t, time.Minute, c.args...)
		oneLineError(t, code, stderr, c.want...)
		if code != 2 {
			t.Errorf("%s: exit %d, want 2", strings.Join(c.args, " "), code)
		}
		if strings.Contains(stderr, "plant-token-0123456789") {
			t.Errorf("%s: the token is in the error: %q", strings.Join(c.args, " "), stderr)
		}
	}
	t.Setenv(natsTokenEnv, "short")
	code, stderr := runCLIWithin(t, time.Minute, "nats", "--store", t.TempDir())
	oneLineError(t, code, stderr, "$"+natsTokenEnv, "5 bytes")
	nothingStarted(t, rolls, data)
}

// End to end through the commands, on real sockets: webinspect nats with
// a token; a line engine and a plant service with no token or another
// one are refused at once, naming the server and saying authentication
// failed, and the line's roll map keeps what it had; with the token the
// line publishes that roll and the plant holds every one of its defects.
// No log of the three processes holds the token.
func TestNatsTokenEndToEnd(t *testing.T) {
	t.Setenv("WEBINSPECT_TOKEN", "")
	t.Setenv(natsTokenEnv, "")
	dir := t.TempDir()
	const tok, wrongTok = "plant-token-Rf5tG8hJ2kL9", "not-the-token-Qw3eR6tY9u"
	good := writeToken(t, filepath.Join(dir, "nats.token"), tok, 0o600)
	wrong := writeToken(t, filepath.Join(dir, "wrong.token"), wrongTok, 0o600)

	// A roll taken before the line joined the plant.
	rolls := replayedRoll(t, dir)
	rollDefects := func() (string, []int64) { return firstRoll(t, rolls) }
	rollID, taken := rollDefects()
	if len(taken) == 0 {
		t.Fatal("the replayed roll has no defects to publish")
	}

	natsAddr := freeAddr(t)
	url := "nats://" + natsAddr
	natsChild, natsLogs := startLoggedChild(t, "nats --listen "+natsAddr+" --store "+filepath.Join(dir, "ns")+" --nats-token-file "+good)
	defer func() { natsChild.Process.Signal(syscall.SIGTERM); natsChild.Wait() }()
	waitNatsTakes(t, "webinspect nats takes a client with the token", url, nats.Token(tok))
	if _, err := nats.Connect(url, nats.Timeout(time.Second)); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("a client without the token: %v, want an authorization violation", err)
	}

	data := filepath.Join(dir, "plant")
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"run", "--rolls", rolls, "--listen", "127.0.0.1:0", "--plant", url, "--line", "L1"},
			[]string{"NATS authentication failed at " + url, "requires credentials", "--nats-token-file"}},
		{[]string{"run", "--rolls", rolls, "--listen", "127.0.0.1:0", "--plant", url, "--line", "L1", "--nats-token-file", wrong},
			[]string{"NATS authentication failed at " + url, "refused the token", "--nats-token-file"}},
		{[]string{"plant", "--data", data, "--listen", "127.0.0.1:0", "--nats", url},
			[]string{"NATS authentication failed at " + url, "requires credentials"}},
		{[]string{"plant", "--data", data, "--listen", "127.0.0.1:0", "--nats", url, "--nats-token-file", wrong},
			[]string{"NATS authentication failed at " + url, "refused the token"}},
	} {
		code, stderr := runCLIWithin(t, time.Minute, c.args...)
		oneLineError(t, code, stderr, c.want...)
		for _, s := range []string{tok, wrongTok} {
			if strings.Contains(stderr, s) {
				t.Errorf("%v: the token %q is in the output", c.args, s)
			}
		}
	}
	if id, ids := rollDefects(); id != rollID || !slices.Equal(ids, taken) {
		t.Fatalf("after the refused starts the roll map has %s with %d defects, before %s with %d", id, len(ids), rollID, len(taken))
	}
	if ents, _ := rollDirs(rolls); len(ents) != 1 {
		t.Fatalf("refused starts opened rolls: %v", ents)
	}

	plantLogs, lineLogs := publishThroughPlant(t, rolls, data, url, rollID, " --nats-token-file "+good)
	got := plantRollDefects(t, data, url, rollID)
	if !slices.Equal(got, taken) {
		t.Fatalf("the plant holds %d defects of %s (%v), the roll map %d (%v)", len(got), rollID, got, len(taken), taken)
	}
	natsChild.Process.Signal(syscall.SIGTERM)
	natsChild.Wait()
	for name, l := range map[string]string{"nats": natsLogs.String(), "plant": plantLogs, "run": lineLogs} {
		if strings.Contains(l, tok) {
			t.Errorf("the %s log holds the token", name)
		}
		if l == "" {
			t.Errorf("the %s log is empty: nothing was checked", name)
		}
	}
	if !strings.Contains(lineLogs, "token=true") {
		t.Errorf("the line's log does not say it publishes with a token:\n%s", lineLogs)
	}
	t.Logf("%d defects of %s published with the token after two refused starts", len(got), rollID)
}

// --insecure runs the NATS server open to anyone on an address other
// machines reach, and says so in a warning.
func TestNatsInsecure(t *testing.T) {
	t.Setenv(natsTokenEnv, "")
	_, port, err := net.SplitHostPort(freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	child, logs := startLoggedChild(t, "nats --listen 0.0.0.0:"+port+" --store "+filepath.Join(t.TempDir(), "ns")+" --insecure")
	waitNatsTakes(t, "the open NATS server takes a client without a token", "nats://127.0.0.1:"+port)
	child.Process.Signal(syscall.SIGTERM)
	if err := child.Wait(); err != nil {
		t.Fatal(err)
	}
	if l := logs.String(); !strings.Contains(l, "WRN") || !strings.Contains(l, "without a token") || !strings.Contains(l, "--insecure") {
		t.Errorf("no warning about the open server in its log:\n%s", l)
	}
}

// replayedRoll writes a simulated recording below dir and replays it
// into a roll map there: a roll taken before the line joined the plant.
// It returns the roll map's directory.
func replayedRoll(t *testing.T, dir string) (rolls string) {
	t.Helper()
	rec, rolls := filepath.Join(dir, "rec"), filepath.Join(dir, "rolls")
	simulate(t, rec)
	if code, out, stderr := runCLI(t, "replay", rec, "--rolls", rolls); code != 0 {
		t.Fatalf("replay: exit %d: %s %s", code, out, stderr)
	}
	return rolls
}

// firstRoll returns the first roll of the roll map in rolls and its
// defect IDs, sorted.
func firstRoll(t *testing.T, rolls string) (id string, ids []int64) {
	t.Helper()
	st, err := rollmap.OpenStore(rolls)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	infos, err := st.List()
	if err != nil || len(infos) == 0 {
		t.Fatalf("roll map: %d rolls (%v)", len(infos), err)
	}
	id = infos[0].ID
	ds, err := st.Defects(id, rollmap.Query{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	slices.Sort(ids)
	return id, ids
}

// publishThroughPlant runs a plant service (data) and a line L1 (rolls)
// as processes on the NATS server at url, both with clientFlags (token,
// CA), until the plant holds the line's roll rollID as ended; it stops
// both, fails t unless both exit cleanly, and returns their logs.
func publishThroughPlant(t *testing.T, rolls, data, url, rollID, clientFlags string) (plantLogs, lineLogs string) {
	t.Helper()
	plantAddr := freeAddr(t)
	plantChild, pl := startLoggedChild(t, "plant --data "+data+" --listen "+plantAddr+" --nats "+url+clientFlags)
	lineChild, ll := startLoggedChild(t, "run --rolls "+rolls+" --listen 127.0.0.1:0 --plant "+url+" --line L1"+clientFlags+
		" --length 3m --speed 100m/min --width 400mm --defects 5 --seed 9")
	poll.Until(t, 2*time.Minute, "the plant holds the line's earlier roll", func() bool {
		resp, err := http.Get("http://" + plantAddr + "/api/plant/rolls?line=L1")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var rs []plant.RollView
		if json.NewDecoder(resp.Body).Decode(&rs) != nil {
			return false
		}
		return slices.ContainsFunc(rs, func(r plant.RollView) bool { return r.Roll == rollID && r.Ended })
	})
	lineChild.Process.Signal(syscall.SIGTERM)
	plantChild.Process.Signal(syscall.SIGTERM)
	if err := lineChild.Wait(); err != nil {
		t.Errorf("line engine: %v", err)
	}
	if err := plantChild.Wait(); err != nil {
		t.Errorf("plant service: %v", err)
	}
	return pl.String(), ll.String()
}

// plantRollDefects returns the defect IDs of line L1's roll rollID in
// the plant dataset in data, sorted (url: the service's NATS URL, not
// connected to).
func plantRollDefects(t *testing.T, data, url, rollID string) []int64 {
	t.Helper()
	svc, err := plant.NewService(plant.ServiceOptions{URLs: []string{url}, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := svc.Defects()
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, k := range keys {
		if k.Line == "L1" && k.Roll == rollID {
			got = append(got, k.ID)
		}
	}
	slices.Sort(got)
	return got
}

// nothingStarted fails t if refused starts of run left anything in
// rolls, or of plant made its data directory.
func nothingStarted(t *testing.T, rolls, data string) {
	t.Helper()
	if ents, _ := os.ReadDir(rolls); len(ents) != 0 {
		t.Errorf("refused starts left %d entries in --rolls, want none", len(ents))
	}
	if _, err := os.Stat(data); err == nil {
		t.Errorf("refused starts made the plant's data directory %s", data)
	}
}
