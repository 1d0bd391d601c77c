package plant

import (
	"fmt"
	"net/url"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ServerOptions configures an embedded NATS server with JetStream.
type ServerOptions struct {
	// Name is the server's name (unique in a cluster). Default "webinspect".
	Name string
	// Host and Port of the client listener. Default 127.0.0.1 and 4222;
	// Port -1 picks a free port.
	Host string
	Port int
	// StoreDir is where JetStream keeps its streams. Required.
	StoreDir string
	// Cluster, when ClusterName is set, joins a cluster: ClusterPort is
	// this node's route listener (on Host) and Routes the other nodes'
	// (nats-route://host:port).
	ClusterName string
	ClusterPort int
	Routes      []string
}

// StartServer starts an embedded NATS server with JetStream on local disk
// and waits until it takes connections.
func StartServer(o ServerOptions) (*server.Server, error) {
	if o.StoreDir == "" {
		return nil, fmt.Errorf("%w: StoreDir: empty", ErrInvalidOptions)
	}
	if o.Name == "" {
		o.Name = "webinspect"
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = 4222
	}
	so := &server.Options{
		ServerName: o.Name, Host: o.Host, Port: o.Port, JetStream: true, StoreDir: o.StoreDir,
		NoSigs: true, NoLog: true, MaxPayload: 1 << 20,
	}
	if o.ClusterName != "" {
		so.Cluster = server.ClusterOpts{Name: o.ClusterName, Host: o.Host, Port: o.ClusterPort}
		for _, r := range o.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("%w: route %q: %v", ErrInvalidOptions, r, err)
			}
			so.Routes = append(so.Routes, u)
		}
	}
	s, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("plant: nats server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("plant: nats server %s:%d not ready within 30 s", o.Host, o.Port)
	}
	return s, nil
}
