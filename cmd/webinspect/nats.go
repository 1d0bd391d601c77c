package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"

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
	srv, err := startNATS(natsServer{listen: *listen, store: *store, name: *name, token: token, insecure: *insecure, insecureFlag: "--insecure"})
	if ue, ok := err.(usageError); ok {
		return usageError{"--listen " + ue.msg}
	} else if err != nil {
		return err
	}
	log.Info().Str("nats", srv.ClientURL()).Str("store", *store).Bool("token", token != "").
		Msg("NATS JetStream server running; connect with plant --nats " + srv.ClientURL() + " and run --plant " + srv.ClientURL())
	<-ctx.Done()
	srv.Shutdown()
	srv.WaitForShutdown()
	return nil
}

// natsServer is an embedded JetStream server to start: its client
// listener (host:port), its streams' directory, its name, the plant's
// NATS token ("" for none) and whether it may listen where other machines
// reach it without one (insecureFlag names that flag in errors).
type natsServer struct {
	listen, store, name, token string
	insecure                   bool
	insecureFlag               string
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
		Token: n.token, Insecure: n.insecure})
	if err != nil {
		return nil, err
	}
	if n.token == "" && !api.LoopbackHost(h) {
		log.Warn().Str("nats", srv.ClientURL()).Msg("NATS server without a token on an address other machines reach (" + n.insecureFlag +
			"): anyone who reaches it can publish into the plant's record or delete its streams; give it --nats-token-file")
	}
	return srv, nil
}
