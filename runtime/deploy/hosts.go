package deploy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/cpmlink/cpmlink/runtime/sipx"
)

// Addresses in a deployment have two sides. An instance binds an IP address of its own
// host, or a wildcard (0.0.0.0, ::) for every interface: sip, msrp, core.listen. Its peers
// reach it at the address it advertises — in SIP Via and Contact, in SDP c= and a=path —
// which is advertise, or the bound IP when that is not a wildcard. advertise and sip-core
// may name a host instead of an IP: the name is resolved when the instance starts, through
// the configuration's hosts table first and DNS (A/AAAA) after, and the IP it resolves to
// is what goes on the wire, since sipx and our MSRP peers dial IPs from SIP and SDP.

// ErrResolve is wrapped by the errors of resolving a host name when an instance starts.
var ErrResolve = errors.New("deploy: cannot resolve a host name")

// dnsName is a host name of RFC 1123 labels, with an optional final dot.
var dnsName = regexp.MustCompile(`^(?i:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.(?i:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?))*\.?$`)

// bindAddr splits a listen address: an IP of this host, or a wildcard, and a port.
func bindAddr(addr string) (net.IP, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, 0, fmt.Errorf("%q is not host:port", addr)
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return nil, 0, fmt.Errorf("%q: an instance binds an IP address (0.0.0.0 or :: for every interface); a name goes in advertise", addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return nil, 0, fmt.Errorf("%q: bad port", addr)
	}
	return ip, p, nil
}

// peerHost checks a host that peers connect to: an IP that is not a wildcard, or a name.
func peerHost(h string) error {
	if ip := net.ParseIP(h); ip != nil {
		if ip.IsUnspecified() {
			return fmt.Errorf("%s is a wildcard: name the address peers should use", h)
		}
		return nil
	}
	if !dnsName.MatchString(h) {
		return fmt.Errorf("%q is neither an IP address nor a host name", h)
	}
	return nil
}

// reach is the host peers reach an instance at: its advertise, else the IP it binds when
// that is not a wildcard ("" when there is none).
func reach(bind net.IP, advertise string) string {
	if advertise != "" {
		if ip := net.ParseIP(advertise); ip != nil {
			return ip.String()
		}
		return strings.ToLower(strings.TrimSuffix(advertise, "."))
	}
	if bind == nil || bind.IsUnspecified() {
		return ""
	}
	return bind.String()
}

// staticIP resolves host without DNS: an IP literal, or the first address of the hosts
// table's entry.
func (c *ServeConfig) staticIP(host string) (net.IP, bool) {
	if ip := net.ParseIP(host); ip != nil {
		return ip, true
	}
	for name, addrs := range c.Hosts {
		if strings.EqualFold(strings.TrimSuffix(name, "."), strings.TrimSuffix(host, ".")) && len(addrs) > 0 {
			ip := net.ParseIP(addrs[0])
			return ip, ip != nil
		}
	}
	return nil, false
}

// resolve turns a host into the IP that goes on the wire: an IP literal as it is, a name
// through the hosts table, else DNS (the first address the resolver gives).
func (c *ServeConfig) resolve(ctx context.Context, host string) (string, error) {
	if ip, ok := c.staticIP(host); ok {
		return ip.String(), nil
	}
	if !c.DNS {
		return "", fmt.Errorf("%w: %s is not in the hosts table, and dns is off", ErrResolve, host)
	}
	lookup := c.lookup
	if lookup == nil {
		lookup = net.DefaultResolver.LookupIPAddr
	}
	addrs, err := lookup(ctx, host)
	if err != nil {
		return "", fmt.Errorf("%w: %s (it is not in the hosts table either): %w", ErrResolve, host, err)
	}
	for _, a := range addrs {
		if !a.IP.IsUnspecified() {
			return a.IP.String(), nil
		}
	}
	return "", fmt.Errorf("%w: %s has no address", ErrResolve, host)
}

// resolveHostPort is resolve for host:port.
func (c *ServeConfig) resolveHostPort(ctx context.Context, hostport string) (string, error) {
	h, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", fmt.Errorf("deploy: %q is not host:port", hostport)
	}
	ip, err := c.resolve(ctx, h)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(ip, port), nil
}

// checkHosts checks the hosts table: names to the IP addresses they stand for.
func (c *ServeConfig) checkHosts(p *problems) {
	seen := map[string]string{}
	for _, name := range sortedKeys(c.Hosts) {
		path := "hosts." + name
		key := strings.ToLower(strings.TrimSuffix(name, "."))
		switch {
		case net.ParseIP(name) != nil:
			p.at(path, "hosts: %s is an IP address; the table maps names to addresses", name)
			continue
		case !dnsName.MatchString(name):
			p.at(path, "hosts: %q is not a host name", name)
			continue
		case seen[key] != "":
			p.at(path, "hosts: %s is already listed as %s", name, seen[key])
			continue
		}
		seen[key] = name
		if len(c.Hosts[name]) == 0 {
			p.at(path, "hosts.%s: at least one address is required", name)
		}
		for i, a := range c.Hosts[name] {
			if ip := net.ParseIP(a); ip == nil || ip.IsUnspecified() {
				p.at(fmt.Sprintf("%s[%d]", path, i), "hosts.%s: %q is not an IP address peers can reach", name, a)
			}
		}
	}
}

// nextHop is how an instance names a SIP next hop (sip-core, a client's PF) in what it
// sends: as written, so that a name is located when a request is sent (RFC 3263), where
// every node on the way resolves names as we do — the embedded core, which shares the
// hosts table, or any core once dns is on; resolved to its IP now otherwise, since an
// external core knows nothing of our hosts table and could neither resolve the name nor
// recognise itself in a Route by it. Either way it must resolve now.
func (c *ServeConfig) nextHop(ctx context.Context, hostport string) (string, error) {
	ip, err := c.resolveHostPort(ctx, hostport)
	if err != nil || c.Core != nil || c.DNS {
		return hostport, err
	}
	return ip, nil
}

// sipResolver locates the SIP next hops a configuration names by host name — sip-core, a
// client's pf, a route to a role that advertises a name — when a request is sent, not
// once at start (RFC 3263): the hosts table, then DNS (SRV, A/AAAA) when dns is on.
func (c *ServeConfig) sipResolver() sipx.Resolver {
	hosts := map[string][]net.IP{}
	for name, addrs := range c.Hosts {
		for _, a := range addrs {
			if ip := net.ParseIP(a); ip != nil {
				hosts[name] = append(hosts[name], ip)
			}
		}
	}
	r := &sipx.HostsResolver{Hosts: hosts}
	if c.DNS {
		if c.lookup != nil {
			r.Next = lookupResolver(c.lookup)
		} else {
			r.Next = &sipx.DNSResolver{}
		}
	}
	return r
}

// lookupResolver resolves names with a lookup function, A/AAAA only: the test hook
// (SetLookup) standing for DNS.
type lookupResolver func(ctx context.Context, host string) ([]net.IPAddr, error)

func (l lookupResolver) Resolve(ctx context.Context, uri, transport string) ([]sipx.Target, error) {
	host := uriHost(uri)
	addrs, err := l(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", sipx.ErrNoTarget, host, err)
	}
	ips := make([]net.IP, len(addrs))
	for i, a := range addrs {
		ips[i] = a.IP
	}
	return (&sipx.HostsResolver{Hosts: map[string][]net.IP{host: ips}}).Resolve(ctx, uri, transport)
}

// uriHost is the host of a SIP URI, lower case, without brackets or a final dot.
func uriHost(uri string) string {
	_, rest, _ := strings.Cut(uri, ":")
	if i := strings.IndexAny(rest, ";?"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = rest[i+1:]
	}
	if h, _, err := net.SplitHostPort(rest); err == nil {
		rest = h
	}
	return strings.ToLower(strings.TrimSuffix(strings.Trim(rest, "[]"), "."))
}

// routeResolver is the core's route to a role that advertises a name: the Request-URI
// domain maps to the role's SIP URIs (one per transport, the preferred first), whose name
// is located when a request is forwarded, so that a changed address is followed.
type routeResolver struct {
	routes map[string][]string // domain → SIP URIs of the role, in order
	next   sipx.Resolver
}

func (r *routeResolver) Resolve(ctx context.Context, uri, transport string) ([]sipx.Target, error) {
	uris, ok := r.routes[uriHost(uri)]
	if !ok {
		return r.next.Resolve(ctx, uri, transport)
	}
	var out []sipx.Target
	var errs []error
	for _, u := range uris {
		ts, err := r.next.Resolve(ctx, u, "")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, ts...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s: %w", sipx.ErrNoTarget, uri, errors.Join(errs...))
	}
	// The transport the request came in on first, where the role has it (as the core's
	// own table does).
	slices.SortStableFunc(out, func(a, b sipx.Target) int {
		switch {
		case a.Transport == b.Transport || a.Transport != transport && b.Transport != transport:
			return 0
		case a.Transport == transport:
			return -1
		}
		return 1
	})
	return out, nil
}
