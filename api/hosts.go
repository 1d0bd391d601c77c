package api

import (
	"net"
	"os"
	"sort"
	"strings"
)

// hostSet is the set of names a request's Host header may carry
// (Options.AllowedHosts and the names the server adds itself). Names are
// compared without their port, case-insensitively; loopback names always
// pass.
type hostSet struct {
	any   bool
	names map[string]bool
}

// allowedHosts builds the Host allow-list of o: AllowedHosts, the Listen
// host, and, when Listen is on every interface, the machine's host name
// and interface addresses.
func allowedHosts(o Options) hostSet {
	hs := hostSet{names: map[string]bool{}}
	add := func(h string) {
		if h = strings.ToLower(strings.Trim(h, "[]")); h != "" {
			hs.names[h] = true
		}
	}
	for _, h := range o.AllowedHosts {
		if h == "*" {
			hs.any = true
		}
		add(h)
	}
	host, _, err := net.SplitHostPort(o.Listen)
	if err != nil {
		host = o.Listen
	}
	ip := net.ParseIP(host)
	if host != "" && (ip == nil || !ip.IsUnspecified()) {
		add(host)
		return hs
	}
	if name, err := os.Hostname(); err == nil {
		add(name)
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				add(n.IP.String())
			}
		}
	}
	return hs
}

// allows reports whether a request whose Host header is hostport may be
// served.
func (hs hostSet) allows(hostport string) bool {
	h := strings.ToLower(hostOnly(hostport))
	return hs.any || LoopbackHost(h) || hs.names[h]
}

// String lists the allowed names for an error message.
func (hs hostSet) String() string {
	if hs.any {
		return "any"
	}
	l := []string{"localhost", "loopback addresses"}
	names := make([]string, 0, len(hs.names))
	for n := range hs.names {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) > 8 {
		names = append(names[:8], "…")
	}
	return strings.Join(append(l, names...), ", ")
}
