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

	"github.com/webinspect/webinspect/plant"
)

// cmdNats runs the plant's NATS JetStream server as its own process, so
// that it can be stopped, upgraded or killed apart from the plant service
// and the lines: `webinspect plant --nats URL` and `run --plant URL`
// connect to it and reconnect after it restarts on the same store.
func cmdNats(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("nats", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:4222", "`HOST:PORT` of the client listener (lines and the plant service connect here)")
	store := fs.String("store", "nats-store", "`DIR` where JetStream keeps the plant's streams (the same DIR after a restart: nothing is lost)")
	name := fs.String("name", "webinspect", "the server's `NAME`")
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
	srv, err := startNATS(*listen, *store, *name)
	if ue, ok := err.(usageError); ok {
		return usageError{"--listen " + ue.msg}
	} else if err != nil {
		return err
	}
	log.Info().Str("nats", srv.ClientURL()).Str("store", *store).Msg("NATS JetStream server running; connect with plant --nats " + srv.ClientURL() + " and run --plant " + srv.ClientURL())
	<-ctx.Done()
	srv.Shutdown()
	srv.WaitForShutdown()
	return nil
}

// startNATS starts an embedded JetStream server listening on listen
// (host:port) with its streams in store.
func startNATS(listen, store, name string) (*server.Server, error) {
	h, p, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, usageError{fmt.Sprintf("%q: want host:port", listen)}
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return nil, usageError{fmt.Sprintf("%q: bad port", listen)}
	}
	return plant.StartServer(plant.ServerOptions{Name: name, Host: h, Port: port, StoreDir: filepath.Clean(store)})
}
