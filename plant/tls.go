package plant

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// tlsTimeout bounds a TLS handshake on the bus (clients and routes; the
// server's default is 2 s, short for a loaded line computer).
const tlsTimeout = 5 * time.Second

// LoadCert reads a NATS server's certificate (PEM: the server's
// certificate first, then any intermediates) and its private key (PEM),
// and checks them as of now: the key must match the certificate, the
// certificate must be valid now, name at least one host (a Subject
// Alternative Name: clients check the host they dialled against it) and,
// if it lists extended key usages, allow serverAuth. A key file that
// every user may read is refused. Errors wrap ErrTLSFile and name the
// file and what is wrong, never its contents.
func LoadCert(certFile, keyFile string, now time.Time) (tls.Certificate, error) {
	if certFile == "" || keyFile == "" {
		return tls.Certificate{}, fmt.Errorf("%w: a certificate needs both files: certificate %q, key %q", ErrTLSFile, certFile, keyFile)
	}
	certPEM, err := readPEMFile("certificate", certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	certs, err := parseCerts("certificate", certFile, certPEM)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf := certs[0]
	if err := checkValid("certificate", certFile, leaf, now); err != nil {
		return tls.Certificate{}, err
	}
	if len(leaf.DNSNames) == 0 && len(leaf.IPAddresses) == 0 {
		return tls.Certificate{}, fmt.Errorf("%w: certificate file %s: the certificate names no host (no Subject Alternative Name): "+
			"clients check the host they connect to against it; issue it with the server's host names and addresses", ErrTLSFile, certFile)
	}
	if len(leaf.ExtKeyUsage) > 0 && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return tls.Certificate{}, fmt.Errorf("%w: certificate file %s: not for TLS servers (its extended key usage lacks serverAuth)", ErrTLSFile, certFile)
	}
	fi, err := os.Stat(keyFile)
	if err != nil {
		return tls.Certificate{}, fileError("key", keyFile, err)
	}
	if fi.Mode().Perm()&0o004 != 0 {
		return tls.Certificate{}, fmt.Errorf("%w: key file %s: mode %v lets every user read the private key: chmod 600 it (or 640 with the group of the service)",
			ErrTLSFile, keyFile, fi.Mode().Perm())
	}
	keyPEM, err := readPEMFile("key", keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	switch {
	case err == nil:
	case strings.Contains(err.Error(), "does not match"):
		return tls.Certificate{}, fmt.Errorf("%w: key file %s: the private key does not match the certificate in %s", ErrTLSFile, keyFile, certFile)
	default:
		// crypto/tls's reasons name PEM block types, never key bytes.
		return tls.Certificate{}, fmt.Errorf("%w: key file %s: no usable private key (unencrypted PEM: PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY): %v",
			ErrTLSFile, keyFile, err)
	}
	pair.Leaf = leaf
	return pair, nil
}

// LoadCA reads a PEM bundle of CA certificates to verify NATS servers
// (or a cluster's routes) with. A file without a certificate, with one
// that does not parse, or whose every certificate has expired, is
// refused (ErrTLSFile, naming the file).
func LoadCA(caFile string, now time.Time) (*x509.CertPool, error) {
	b, err := readPEMFile("CA", caFile)
	if err != nil {
		return nil, err
	}
	certs, err := parseCerts("CA", caFile, b)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	var valid int
	var newest time.Time
	for _, c := range certs {
		pool.AddCert(c)
		if !now.After(c.NotAfter) {
			valid++
		}
		if c.NotAfter.After(newest) {
			newest = c.NotAfter
		}
	}
	if valid == 0 {
		return nil, fmt.Errorf("%w: CA file %s: every certificate in it has expired (the last on %s)", ErrTLSFile, caFile, newest.UTC().Format(time.RFC3339))
	}
	return pool, nil
}

// readPEMFile reads a file named in errors as a "what" file.
func readPEMFile(what, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fileError(what, path, err)
	}
	return b, nil
}

// fileError is ErrTLSFile for an error of the file system about path
// (its own text without the path a second time).
func fileError(what, path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("%w: %s file %s: %v", ErrTLSFile, what, path, err)
}

// parseCerts returns the certificates of the PEM in b, in order; other
// PEM blocks (a key in a combined file) are skipped.
func parseCerts(what, path string, b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := b
	for n := 1; ; n++ {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %s file %s: PEM block %d is not an X.509 certificate: %v", ErrTLSFile, what, path, n, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		hint := ""
		if bytes.Contains(b, []byte("PRIVATE KEY")) {
			hint = " (it holds a private key, not a certificate)"
		}
		return nil, fmt.Errorf("%w: %s file %s: holds no PEM certificate (-----BEGIN CERTIFICATE-----)%s", ErrTLSFile, what, path, hint)
	}
	return out, nil
}

// checkValid refuses a certificate that has expired or is not valid yet.
func checkValid(what, path string, c *x509.Certificate, now time.Time) error {
	switch {
	case now.After(c.NotAfter):
		return fmt.Errorf("%w: %s file %s: the certificate expired on %s (now %s)", ErrTLSFile, what, path,
			c.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case now.Before(c.NotBefore):
		return fmt.Errorf("%w: %s file %s: the certificate is not valid before %s (now %s; is this machine's clock right?)", ErrTLSFile, what, path,
			c.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// CertHosts are the hosts a certificate is for (its Subject Alternative
// Names), for logs and errors.
func CertHosts(c *x509.Certificate) []string {
	out := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	return out
}

// clientTLS is the TLS configuration of a client of urls: with caFile,
// TLS verified against that CA bundle, on every URL; without, TLS
// verified against the system's roots when a URL is tls://, and nil
// otherwise (a server that requires TLS is then still spoken to over TLS
// against the system's roots: nats.go follows the server). Never
// InsecureSkipVerify. wantsTLS says whether TLS is required.
func clientTLS(caFile string, urls []string) (cfg *tls.Config, err error) {
	if !wantsTLS(caFile, urls) {
		return nil, nil
	}
	cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		if cfg.RootCAs, err = LoadCA(caFile, time.Now()); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// wantsTLS reports whether a client of urls with caFile requires TLS: a
// CA file, or a tls:// URL (which makes nats.go require it on all).
func wantsTLS(caFile string, urls []string) bool {
	return caFile != "" || slices.ContainsFunc(urls, func(u string) bool { return strings.HasPrefix(strings.ToLower(u), "tls://") })
}

// tlsError is ErrTLS for urls from a failed connection attempt (err),
// saying what did not verify; caFile is the CA bundle the client trusts
// ("" for the system's roots) and asked whether it required TLS (a
// client that did not was taken into TLS by a server that requires it).
// ok is false when err is no TLS failure.
func tlsError(urls []string, caFile string, asked bool, err error) (_ error, ok bool) {
	trust := "the system's root CAs"
	if caFile != "" {
		trust = "the CA file " + caFile
	}
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		why      string
	)
	switch {
	case errors.Is(err, nats.ErrSecureConnWanted):
		why = "the server does not speak TLS, and this client requires it (a tls:// URL or a CA file): give the server a certificate, or connect with nats:// and no CA file"
	case errors.As(err, &hostname):
		why = fmt.Sprintf("the server's certificate is for %s, not for the host %s this client connected to: connect by one of those names, or have the certificate issued for %s",
			strings.Join(CertHosts(hostname.Certificate), ", "), hostname.Host, hostname.Host)
	case errors.As(err, &unknown):
		issuer := "?"
		if unknown.Cert != nil {
			issuer = unknown.Cert.Issuer.String()
		}
		why = fmt.Sprintf("the server's certificate (issued by %q) does not verify against %s", issuer, trust)
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		why = "the server's certificate has expired or is not valid yet: " + invalid.Detail
	case errors.As(err, &invalid):
		why = "the server's certificate does not verify against " + trust + ": " + invalid.Error()
	case errors.Is(err, nats.ErrTLS):
		why = strings.TrimPrefix(err.Error(), nats.ErrTLS.Error()+": ")
	default:
		return nil, false
	}
	if !asked && !errors.Is(err, nats.ErrSecureConnWanted) {
		why = "the server requires TLS, and " + why
	}
	return fmt.Errorf("%w at %s: %s", ErrTLS, strings.Join(urls, ","), why), true
}

// tokenInClear reports whether a token sent to the server at url (as
// nats.go reports it) travels where others can read it: a token, a
// connection without TLS, and a host other than loopback.
func tokenInClear(token, serverURL string, isTLS bool) bool {
	if token == "" || isTLS {
		return false
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		return true
	}
	return !loopbackHost(u.Hostname())
}
