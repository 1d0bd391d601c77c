package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webinspect/webinspect/api"
	"github.com/webinspect/webinspect/engine/status"
	"github.com/webinspect/webinspect/plant"
	"github.com/webinspect/webinspect/rollmap"
)

// plantFlags are run's flags for publishing to the plant.
type plantFlags struct {
	url, name, line, tokenFile, ca string
	replicas                       int

	token  string           // read by check
	pub    *plant.Publisher // connected by connect
	status func() status.Status
	runs   bool // start was called: its stop closes pub
}

func addPlantFlags(fs *flag.FlagSet) *plantFlags {
	f := &plantFlags{}
	fs.StringVar(&f.url, "plant", "", "publish the roll map to the plant's NATS `URL`s (comma-separated, e.g. nats://127.0.0.1:4222, or tls://HOST:4222 for TLS); off when empty")
	fs.StringVar(&f.name, "plant-name", "plant", "the plant's `NAME` on the bus (A-Z a-z 0-9 _ -)")
	fs.StringVar(&f.line, "line", "", "this line's `NAME` on the bus (A-Z a-z 0-9 _ -); required with --plant")
	fs.IntVar(&f.replicas, "plant-replicas", 1, "replication factor of the plant streams if this line creates them (3 on a three-node cluster)")
	addNatsTokenFlags(fs, &f.tokenFile)
	addNatsCAFlag(fs, &f.ca)
	return f
}

// addNatsCAFlag adds --nats-ca, the same in plant and run.
func addNatsCAFlag(fs *flag.FlagSet, path *string) {
	fs.StringVar(path, "nats-ca", "", "`FILE`: PEM bundle of the CA(s) that signed the NATS server's certificate: every connection to NATS is then TLS, "+
		"and the server's certificate must verify against it for the host in the URL (default with tls:// URLs: the system's roots)")
}

// checkNatsCA checks --nats-ca as the client will load it, as a
// command-line mistake naming the file and what is wrong.
func checkNatsCA(path string) error {
	if path == "" {
		return nil
	}
	_, err := plant.LoadCA(path, time.Now())
	return tlsFileError("--nats-ca", err)
}

// natsTokenEnv holds the plant's NATS token when --nats-token-file is not
// given.
const natsTokenEnv = "WEBINSPECT_NATS_TOKEN"

// addNatsTokenFlags adds --nats-token-file, the same in nats, plant and
// run, and refuses a token on the command line.
func addNatsTokenFlags(fs *flag.FlagSet, path *string) {
	fs.StringVar(path, "nats-token-file", "", "`FILE` holding the plant's NATS token (16 to 4096 printable ASCII bytes, no spaces), readable by its owner only: "+
		"the NATS server requires it of every client, and lines and the plant service present it (default: $"+natsTokenEnv+")")
	fs.Func("nats-token", "refused: a token on the command line is visible to every user in ps; use --nats-token-file or $"+natsTokenEnv, func(string) error {
		return errors.New("a token on the command line is visible to every user of this machine in ps: put it in a file readable only by you (--nats-token-file F) or in $" + natsTokenEnv)
	})
}

// readNatsToken returns the plant's NATS token from the file path or
// $WEBINSPECT_NATS_TOKEN ("" for none), checked as the API's tokens are.
func readNatsToken(path string) (string, error) {
	tok, err := readSecret("--nats-token-file", natsTokenEnv, path)
	if err != nil {
		return "", err
	}
	if err := api.CheckToken(tok); err != nil {
		from := "--nats-token-file " + path
		if path == "" {
			from = "$" + natsTokenEnv
		}
		return "", usageError{fmt.Sprintf("%s: the token %v", from, err)}
	}
	return tok, nil
}

// natsLinkError adds to plant.ErrAuth where the token comes from, and to
// plant.ErrTLS where the CA does.
func natsLinkError(err error) error {
	switch {
	case errors.Is(err, plant.ErrAuth):
		return fmt.Errorf("%w; give the NATS server's token in --nats-token-file F or $%s", err, natsTokenEnv)
	case errors.Is(err, plant.ErrTLS):
		return fmt.Errorf("%w; --nats-ca F gives the CA that signed the NATS server's certificate, and tls://HOST:PORT names it by a host the certificate is for", err)
	}
	return err
}

// check refuses inconsistent plant flags and a bad token file, as a
// command-line mistake, before anything starts.
func (f *plantFlags) check() error {
	if f.url == "" {
		if f.line != "" {
			return usageError{"--line needs --plant URL"}
		}
		if f.tokenFile != "" {
			return usageError{"--nats-token-file needs --plant URL"}
		}
		if f.ca != "" {
			return usageError{"--nats-ca needs --plant URL"}
		}
		return nil
	}
	if f.line == "" {
		return usageError{"--plant needs --line NAME"}
	}
	for _, v := range []struct{ flag, what, s string }{{"--plant-name", "plant", f.name}, {"--line", "line", f.line}} {
		if err := plant.ValidName(v.what, v.s); err != nil {
			return usageError{v.flag + ": " + strings.TrimPrefix(err.Error(), plant.ErrInvalidOptions.Error()+": ")}
		}
	}
	if f.replicas < 1 || f.replicas > 5 {
		return usageError{fmt.Sprintf("--plant-replicas %d: want 1 to 5", f.replicas)}
	}
	if _, err := natsURLs("--plant", f.url); err != nil {
		return err
	}
	tok, err := readNatsToken(f.tokenFile)
	if err != nil {
		return err
	}
	f.token = tok
	return checkNatsCA(f.ca)
}

// connect connects the publisher when --plant is set, before the engine
// opens a roll: a NATS server that is up and refuses the token stops the
// start as any configuration error does, with nothing opened. No server
// up yet is no error (the publisher connects when one is).
func (f *plantFlags) connect(store *rollmap.Store, reg prometheus.Registerer) error {
	if f.url == "" {
		return nil
	}
	p, err := plant.NewPublisher(plant.PublisherOptions{URLs: splitURLs(f.url), Token: f.token, TLSCA: f.ca, Plant: f.name, Line: f.line, Store: store,
		Replicas: f.replicas, Logger: log, Registerer: reg,
		Status: func() plant.LineStatus {
			s := f.status() // set by start, before Run calls this
			out := plant.LineStatus{Time: time.Now().UTC(), State: s.State, RollID: s.RollID, SpeedMPerMin: s.SpeedMPerMin, MDM: s.MDM}
			if info, err := store.Roll(s.RollID); err == nil {
				out.Defects, out.UninspectedM = info.Defects, info.UninspectedM
			}
			return out
		}})
	if errors.Is(err, plant.ErrAuth) || errors.Is(err, plant.ErrTLS) {
		return natsLinkError(err)
	}
	if err != nil {
		return usageError{err.Error()}
	}
	f.pub = p
	return nil
}

// close closes a publisher that connect opened and start never ran.
func (f *plantFlags) close() {
	if f.pub != nil && !f.runs {
		f.pub.Close()
	}
}

// start starts the publisher that connect opened, if any, with the
// engine's status; the returned stop waits for it.
func (f *plantFlags) start(st func() status.Status) (stop func()) {
	if f.pub == nil {
		return func() {}
	}
	p := f.pub
	f.status, f.runs = st, true
	// Not ctx: on Ctrl-C the engine closes its roll first; stop then
	// publishes what that added (the roll's end) before leaving.
	pctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(pctx)
	}()
	log.Info().Str("plant", f.name).Str("line", f.line).Str("nats", f.url).Bool("token", f.token != "").Str("nats_ca", f.ca).Msg("publishing the roll map to the plant")
	return func() {
		cancel()
		<-done
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
		p.Drain(dctx) // NATS down: the next start publishes it
		dcancel()
		p.Close()
	}
}

// natsURLs splits flag's comma-separated URLs, refusing one with
// credentials in it (user@host), which ps and the logs would show.
func natsURLs(flag, s string) ([]string, error) {
	urls := splitURLs(s)
	for i, u := range urls {
		if strings.Contains(u, "@") {
			return nil, usageError{fmt.Sprintf("%s: URL %d carries credentials (…@host), which ps and the logs would show: put the token in --nats-token-file F or $%s",
				flag, i+1, natsTokenEnv)}
		}
	}
	return urls, nil
}

func splitURLs(s string) []string {
	var out []string
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

func cmdPlant(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "compact" {
		return cmdPlantCompact(ctx, args[1:], stdout)
	}
	fs := flag.NewFlagSet("plant", flag.ContinueOnError)
	natsFlag := fs.String("nats", "", "NATS server `URL`s of an external server or cluster (comma-separated; tls://HOST:PORT for TLS); empty: start an embedded JetStream server (no TLS)")
	natsListen := fs.String("nats-listen", "127.0.0.1:4222", "`HOST:PORT` of the embedded NATS server (without --nats)")
	data := fs.String("data", "plant-data", "`DIR` of the plant dataset, its roll states and the embedded server's streams")
	listen := fs.String("listen", "127.0.0.1:8090", "`HOST:PORT` of the plant page and its JSON API")
	tokenFile := fs.String("token-file", "", "`FILE` holding the token the plant page and API ask for, readable by its owner only; "+
		"required when --listen is not a loopback address (default: $WEBINSPECT_TOKEN)")
	var allowHosts []string
	fs.Func("allow-host", "a host name or address the plant page may be reached by besides loopback names and the --listen host (repeatable, comma-separated; * for any)", func(v string) error {
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				allowHosts = append(allowHosts, h)
			}
		}
		return nil
	})
	var natsTokenFile, natsCA string
	addNatsTokenFlags(fs, &natsTokenFile)
	addNatsCAFlag(fs, &natsCA)
	natsInsecure := fs.Bool("nats-insecure", false, "let the embedded NATS server listen on an address other machines reach (--nats-listen) without a token: "+
		"anyone who reaches it can publish into the plant's record or delete its streams")
	replicas := fs.Int("replicas", 1, "replication factor of the streams when the plant creates them (3 on a three-node cluster)")
	holdDensity := fs.Float64("hold-per-100m", 5, "hold a roll with more defects per 100 m than this (0: off)")
	holdUnins := fs.Float64("hold-uninspected", 1, "hold a roll with more uninspected metres than this (0: off)")
	holdSev := fs.String("hold-severity", "critical", "hold a roll with any defect of these severities (comma-separated; empty: off)")
	cf := addCompactFlags(fs, true)
	pos, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", pos[0])}
	}
	compact, err := cf.options()
	if err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		return usageError{fmt.Sprintf("--listen %q: want host:port", *listen)}
	}
	token, err := readToken(*tokenFile)
	if err != nil {
		return err
	}
	if err := api.CheckToken(token); err != nil {
		return usageError{fmt.Sprintf("the token %v", err)}
	}
	if token == "" && !api.LoopbackHost(host) {
		return usageError{fmt.Sprintf("--listen %s can be reached from other machines: give the plant a token (--token-file F or $WEBINSPECT_TOKEN) "+
			"that the page and API ask for, or listen on 127.0.0.1", *listen)}
	}
	natsToken, err := readNatsToken(natsTokenFile)
	if err != nil {
		return err
	}
	urls, err := natsURLs("--nats", *natsFlag)
	if err != nil {
		return err
	}
	if len(urls) > 0 && *natsInsecure {
		return usageError{"--nats-insecure is for the embedded NATS server: not with --nats"}
	}
	if len(urls) == 0 && natsCA != "" {
		// The embedded server has no TLS: run webinspect nats --tls-cert
		// as its own process for that (README, "TLS on the bus").
		return usageError{"--nats-ca is for an external NATS server (--nats URL): the embedded server has no TLS; for TLS run webinspect nats --tls-cert F --tls-key F and plant --nats tls://HOST:PORT"}
	}
	if err := checkNatsCA(natsCA); err != nil {
		return err
	}
	embedded := natsServer{listen: *natsListen, store: filepath.Join(*data, "nats"), name: "webinspect",
		token: natsToken, insecure: *natsInsecure, insecureFlag: "--nats-insecure",
		tlsHint: "the embedded server has no TLS: run webinspect nats --tls-cert F --tls-key F as its own process and plant --nats tls://HOST:PORT --nats-ca F"}
	if len(urls) == 0 {
		if _, _, err := embedded.check(); err != nil {
			return usageError{"--nats-listen " + err.(usageError).msg}
		}
	}
	if err := os.MkdirAll(*data, 0o755); err != nil {
		return err
	}
	if len(urls) == 0 {
		srv, err := startNATS(embedded)
		if err != nil {
			return err
		}
		defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
		urls = []string{srv.ClientURL()}
		log.Info().Str("nats", srv.ClientURL()).Str("store", filepath.Join(*data, "nats")).Bool("token", natsToken != "").Msg("embedded NATS JetStream server started; lines connect with run --plant " + srv.ClientURL())
	}
	hold := plant.HoldRules{MaxPer100m: *holdDensity, MaxUninspectedM: *holdUnins}
	for _, s := range strings.Split(*holdSev, ",") {
		if s = strings.TrimSpace(s); s != "" {
			hold.Severities = append(hold.Severities, s)
		}
	}
	reg := prometheus.NewRegistry()
	svc, err := plant.NewService(plant.ServiceOptions{URLs: urls, Token: natsToken, TLSCA: natsCA, Data: *data, Replicas: *replicas, Hold: hold, Compact: compact, Logger: log, Registerer: reg})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	access := plant.Access{Token: token, ListenHost: host, Hosts: allowHosts}
	hs := &http.Server{Handler: plant.Protect(svc.Handler(), access), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	log.Info().Str("page", "http://"+ln.Addr().String()).Str("data", *data).Msg("plant service running")
	err = natsLinkError(svc.Run(ctx))
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hs.Shutdown(sctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
