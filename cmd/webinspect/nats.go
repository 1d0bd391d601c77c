package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/webinspect/webinspect/api"
	"github.com/webinspect/webinspect/plant"
)

// cmdNats runs the plant's NATS JetStream server as its own process, so
// that it can be stopped, upgraded or killed apart from the plant service
// and the lines: `webinspect plant --nats URL` and `run --plant URL`
// connect to it and reconnect after it restarts on the same store.
func cmdNats(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("nats", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:4222", "`HOST:PORT` of the client listener (lines and the plant service connect here); "+
		"an address other machines reach needs --nats-token-file (or --insecure)")
	store := fs.String("store", "nats-store", "`DIR` where JetStream keeps the plant's streams (the same DIR after a restart: nothing is lost)")
	name := fs.String("name", "webinspect", "the server's `NAME`")
	var tokenFile string
	addNatsTokenFlags(fs, &tokenFile)
	insecure := fs.Bool("insecure", false, "let the server listen on an address other machines reach without a token: "+
		"anyone who reaches it can publish into the plant's record or delete its streams")
	tlsCert := fs.String("tls-cert", "", "`FILE` of the server's certificate (PEM, intermediates after it; its Subject Alternative Names "+
		"the host names and addresses clients connect by): with --tls-key, clients connect over TLS only (tls://HOST:PORT, verified with --nats-ca)")
	tlsKey := fs.String("tls-key", "", "`FILE` of the private key of --tls-cert (unencrypted PEM; not readable by every user: chmod 600, or 640 with the service's group)")
	pos, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", pos[0])}
	}
	if *store == "" {
		return usageError{"--store: empty, want the directory of the JetStream streams"}
	}
	token, err := readNatsToken(tokenFile)
	if err != nil {
		return err
	}
	leaf, err := checkServerTLS(*tlsCert, *tlsKey)
	if err != nil {
		return err
	}
	srv, err := startNATS(natsServer{listen: *listen, store: *store, name: *name, token: token, insecure: *insecure, insecureFlag: "--insecure",
		tlsCert: *tlsCert, tlsKey: *tlsKey, tlsLeaf: leaf, tlsHint: "give it --tls-cert and --tls-key"})
	if ue, ok := err.(usageError); ok {
		return usageError{"--listen " + ue.msg}
	} else if err != nil {
		return err
	}
	log.Info().Str("nats", srv.ClientURL()).Str("store", *store).Bool("token", token != "").Bool("tls", leaf != nil).
		Msg("NATS JetStream server running; connect with plant --nats " + srv.ClientURL() + " and run --plant " + srv.ClientURL())
	<-ctx.Done()
	srv.Shutdown()
	srv.WaitForShutdown()
	return nil
}

// natsServer is an embedded JetStream server to start: its client
// listener (host:port), its streams' directory, its name, the plant's
// NATS token ("" for none), whether it may listen where other machines
// reach it without one (insecureFlag names that flag in errors), and its
// TLS certificate and key files (checkServerTLS: tlsLeaf; none: plain).
type natsServer struct {
	listen, store, name, token string
	insecure                   bool
	insecureFlag               string
	tlsCert, tlsKey            string
	tlsLeaf                    *x509.Certificate
	tlsHint                    string // how to give it TLS, for the warning without
}

// certWarnBefore is how long before its certificate expires a NATS server
// says so at start.
const certWarnBefore = 30 * 24 * time.Hour

// checkServerTLS checks --tls-cert and --tls-key (both or neither) as the
// server will load them, as a command-line mistake naming the file and
// what is wrong; it returns the server's certificate, nil for none.
func checkServerTLS(certFile, keyFile string) (*x509.Certificate, error) {
	switch {
	case certFile == "" && keyFile == "":
		return nil, nil
	case certFile == "":
		return nil, usageError{"--tls-key needs --tls-cert FILE"}
	case keyFile == "":
		return nil, usageError{"--tls-cert needs --tls-key FILE"}
	}
	c, err := plant.LoadCert(certFile, keyFile, time.Now())
	if err != nil {
		return nil, tlsFileError("", err)
	}
	return c.Leaf, nil
}

// tlsFileError is plant.ErrTLSFile as a command-line mistake (after
// flag, if any), other errors as they are.
func tlsFileError(flag string, err error) error {
	if !errors.Is(err, plant.ErrTLSFile) {
		return err
	}
	msg := "TLS " + strings.TrimPrefix(err.Error(), plant.ErrTLSFile.Error()+": ")
	if flag != "" {
		msg = flag + ": " + msg
	}
	return usageError{msg}
}

// check refuses, as a usage error without the flag's name, a listener
// that is not host:port, and one other machines reach without a token
// unless insecure, saying how to give one.
func (n natsServer) check() (host string, port int, err error) {
	h, p, err := net.SplitHostPort(n.listen)
	if err != nil {
		return "", 0, usageError{fmt.Sprintf("%q: want host:port", n.listen)}
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, usageError{fmt.Sprintf("%q: bad port", n.listen)}
	}
	if n.token == "" && !n.insecure && !api.LoopbackHost(h) {
		return "", 0, usageError{fmt.Sprintf("%s can be reached from other machines: give the NATS server a token that every client must present "+
			"(--nats-token-file F or $%s, the same for the lines and the plant service), listen on 127.0.0.1, or run it open to anyone with %s",
			n.listen, natsTokenEnv, n.insecureFlag)}
	}
	return h, port, nil
}

// startNATS starts an embedded JetStream server (check first); insecure
// without a token on an address other machines reach logs a warning.
func startNATS(n natsServer) (*server.Server, error) {
	h, port, err := n.check()
	if err != nil {
		return nil, err
	}
	srv, err := plant.StartServer(plant.ServerOptions{Name: n.name, Host: h, Port: port, StoreDir: filepath.Clean(n.store),
		Token: n.token, Insecure: n.insecure, TLSCert: n.tlsCert, TLSKey: n.tlsKey})
	if err != nil {
		return nil, tlsFileError("", err)
	}
	switch {
	case n.token == "" && !api.LoopbackHost(h):
		log.Warn().Str("nats", srv.ClientURL()).Msg("NATS server without a token on an address other machines reach (" + n.insecureFlag +
			"): anyone who reaches it can publish into the plant's record or delete its streams; give it --nats-token-file")
	case n.tlsLeaf == nil && !api.LoopbackHost(h):
		// Warned, not refused: a plant that ran a token without TLS keeps
		// running after an upgrade (README, "TLS on the bus").
		log.Warn().Str("nats", srv.ClientURL()).Msg("NATS server with a token but without TLS on an address other machines reach: " +
			"the token travels in clear, and so does every record; " + n.tlsHint)
	}
	if c := n.tlsLeaf; c != nil {
		log.Info().Strs("hosts", plant.CertHosts(c)).Str("issuer", c.Issuer.String()).Time("expires", c.NotAfter).
			Msg("NATS server takes clients over TLS only; they verify its certificate with --nats-ca (the CA that signed it) and connect by one of its hosts")
		if time.Until(c.NotAfter) < certWarnBefore {
			log.Warn().Str("cert", n.tlsCert).Time("expires", c.NotAfter).
				Msg("the NATS server's TLS certificate expires within 30 days: renew it (replace the files and restart; clients reconnect)")
		}
	}
	return srv, nil
}
