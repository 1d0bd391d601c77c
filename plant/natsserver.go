package plant

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
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
	// Token, when set, is the plant's shared NATS token: every client
	// must present it (nats.Token; PublisherOptions.Token,
	// ServiceOptions.Token), and in a cluster every route too (user
	// RouteUser, the token as password). Empty: any client is taken,
	// which StartServer allows only on a loopback Host or with Insecure.
	Token string
	// Insecure lets a server that other machines can reach (Host not
	// loopback) run without a Token: anyone who reaches its port can
	// publish into the plant's record or delete its streams.
	Insecure bool
	// TLSCert and TLSKey, when set, are the server's certificate (PEM,
	// intermediates after it) and private key (PEM), checked by LoadCert:
	// every client connection is then TLS (clients that do not speak it
	// are refused), so that the token and the records do not travel in
	// clear. Both or neither.
	TLSCert, TLSKey string
	// TLSCA is the PEM bundle of the CA that signed every node's
	// certificate: required with TLS in a cluster, whose routes are then
	// TLS both ways (each node verifies the other's certificate, and the
	// host name of the route it dialled). Each node's certificate must
	// allow clientAuth as well as serverAuth if it lists extended key
	// usages. Unused without a cluster.
	TLSCA string
}

// RouteUser is the user name the routes of a cluster with a Token
// authenticate with (the token is the password).
const RouteUser = "webinspect-route"

// loopbackHost reports whether host names only the loopback interface
// ("" means every interface).
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// StartServer starts an embedded NATS server with JetStream on local disk
// and waits until it takes connections. A Host other machines can reach
// needs a Token or Insecure (ErrNoCredentials). With TLSCert and TLSKey
// every client connection is TLS (and every route, with TLSCA, in a
// cluster); files that cannot be used are refused before anything starts
// (ErrTLSFile, ErrInvalidOptions).
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
	if o.Token == "" && !o.Insecure && !loopbackHost(o.Host) {
		return nil, fmt.Errorf("%w: %s can be reached from other machines", ErrNoCredentials, net.JoinHostPort(o.Host, strconv.Itoa(o.Port)))
	}
	so := &server.Options{
		ServerName: o.Name, Host: o.Host, Port: o.Port, JetStream: true, StoreDir: o.StoreDir,
		NoSigs: true, NoLog: true, MaxPayload: 1 << 20, Authorization: o.Token,
	}
	clients, routes, err := o.tlsConfigs(time.Now())
	if err != nil {
		return nil, err
	}
	if clients != nil {
		so.TLSConfig, so.TLSTimeout = clients, tlsTimeout.Seconds()
	}
	if o.ClusterName != "" {
		so.Cluster = server.ClusterOpts{Name: o.ClusterName, Host: o.Host, Port: o.ClusterPort}
		if routes != nil {
			so.Cluster.TLSConfig, so.Cluster.TLSTimeout = routes, tlsTimeout.Seconds()
		}
		if o.Token != "" {
			so.Cluster.Username, so.Cluster.Password = RouteUser, o.Token
		}
		for _, r := range o.Routes {
			u, err := url.Parse(r)
			if err != nil || u.User != nil {
				// Neither the route nor url's error: either may hold a secret.
				return nil, fmt.Errorf("%w: route %d: want nats-route://host:port without credentials", ErrInvalidOptions, len(so.Routes)+1)
			}
			if o.Token != "" {
				u.User = url.UserPassword(RouteUser, o.Token)
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

// tlsConfigs are the TLS configurations of the client listener and of
// the cluster's routes (nil: plain), from the files of o.
func (o ServerOptions) tlsConfigs(now time.Time) (clients, routes *tls.Config, err error) {
	if o.TLSCert == "" && o.TLSKey == "" {
		if o.TLSCA != "" {
			return nil, nil, fmt.Errorf("%w: TLSCA without TLSCert and TLSKey", ErrInvalidOptions)
		}
		return nil, nil, nil
	}
	cert, err := LoadCert(o.TLSCert, o.TLSKey, now)
	if err != nil {
		return nil, nil, err
	}
	clients = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if o.ClusterName == "" {
		return clients, nil, nil
	}
	if o.TLSCA == "" {
		return nil, nil, fmt.Errorf("%w: TLSCA: a cluster with TLS needs the CA that signed every node's certificate, to verify its routes", ErrInvalidOptions)
	}
	if eku := cert.Leaf.ExtKeyUsage; len(eku) > 0 && !slices.Contains(eku, x509.ExtKeyUsageClientAuth) && !slices.Contains(eku, x509.ExtKeyUsageAny) {
		return nil, nil, fmt.Errorf("%w: certificate file %s: its extended key usage lacks clientAuth, which the routes of a cluster need (each node is a client of the others)",
			ErrTLSFile, o.TLSCert)
	}
	pool, err := LoadCA(o.TLSCA, now)
	if err != nil {
		return nil, nil, err
	}
	// Mutual TLS, as nats-server's own configuration makes it for routes:
	// each node presents its certificate and verifies the other's.
	routes = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert},
		RootCAs: pool, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	return clients, routes, nil
}
