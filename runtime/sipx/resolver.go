package sipx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"
)

// Transports sipx speaks, as they appear in Via and in Target.Transport.
const (
	transportUDP = "UDP"
	transportTCP = "TCP"
	transportTLS = "TLS"
)

// Target is one place a request can be sent to: what RFC 3263 §4 turns a SIP
// URI into.
type Target struct {
	// Transport is "UDP", "TCP" or "TLS".
	Transport string
	// Addr is IP:port (an IPv6 IP without brackets inside, as
	// net.JoinHostPort writes it).
	Addr string
	// Name is the host name a TLS peer's certificate must cover: the host of
	// the URI that was resolved (RFC 5922 §4.1 — the domain, not the SRV
	// target). Empty: the certificate must cover the IP of Addr, which is
	// what an address pinned by the operator (a static route) is checked
	// against.
	Name string
}

func (t Target) String() string { return t.Transport + " " + t.Addr }

// Resolver locates the SIP servers for a URI (RFC 3263 §4): an ordered list of
// targets, to be tried in order; a request moves to the next one when the
// previous fails at the transport (§4.3).
type Resolver interface {
	// Resolve returns the targets for uri, best first, or an error wrapping
	// ErrNoRoute when there are none. transport ("UDP", "TCP", "TLS" or "")
	// is the sender's choice where the URI leaves it open (no transport
	// parameter, not a sips: URI): the transport of a numeric host or an
	// explicit port, the SRV service queried first, and the transport of an
	// A/AAAA fallback. "" applies RFC 3263 §4.1's defaults: UDP for sip:,
	// TLS for sips:, and SRV for UDP, then TCP, then TLS.
	Resolve(ctx context.Context, uri string, transport string) ([]Target, error)
}

// ErrNoTarget: a resolver found no server for a URI. errors.Is(err, ErrNoRoute)
// also holds.
var ErrNoTarget = fmt.Errorf("%w: no server found", ErrNoRoute)

// request is what RFC 3263 §4.1 and §4.2 decide before any lookup.
type request struct {
	host     string   // without brackets, lower case
	port     int      // explicit port, 0 if none
	ip       net.IP   // host, if numeric
	fixed    string   // transport fixed by the URI (parameter or sips:), "" if open
	sips     bool     // sips: URI: TLS on every hop (RFC 3261 §26.2.2)
	order    []string // transports to consider, preferred first
	fallback string   // transport of an A/AAAA fallback without SRV
}

// plan applies RFC 3263 §4.1 to u for a sender that prefers transport.
func plan(u sip.Uri, transport string) (request, error) {
	r := request{host: strings.ToLower(strings.Trim(u.Host, "[]")), port: u.Port, sips: u.Scheme == "sips"}
	if r.host == "" {
		return r, fmt.Errorf("%w: %q has no host", ErrBadURI, u.String())
	}
	r.ip = net.ParseIP(r.host)
	tp := uriTransport(u)
	switch {
	case r.sips:
		// A sips: URI is TLS on every hop (RFC 3261 §26.2.2); transport=tcp in
		// it still means TLS over TCP (RFC 3263 §4.1).
		if tp != "" && tp != transportTCP && tp != transportTLS {
			return r, fmt.Errorf("%w: %s with transport=%s", ErrBadURI, u.String(), strings.ToLower(tp))
		}
		r.fixed = transportTLS
	case tp != "":
		if tp != transportUDP && tp != transportTCP && tp != transportTLS {
			return r, fmt.Errorf("%w: transport=%s in %s (sipx speaks udp, tcp and tls)", ErrNoRoute, strings.ToLower(tp), u.String())
		}
		r.fixed = tp
	}
	switch {
	case r.fixed != "":
		r.order, r.fallback = []string{r.fixed}, r.fixed
	case transport != "":
		r.order = []string{transport}
		for _, t := range []string{transportUDP, transportTCP, transportTLS} {
			if t != transport {
				r.order = append(r.order, t)
			}
		}
		r.fallback = transport
	default:
		r.order, r.fallback = []string{transportUDP, transportTCP, transportTLS}, transportUDP
	}
	return r, nil
}

// direct is the target of a numeric host (RFC 3263 §4.2: used as is, with the
// port given or the transport's default).
func (r request) direct() []Target {
	return []Target{{Transport: r.fallback, Addr: net.JoinHostPort(r.ip.String(), strconv.Itoa(r.portFor(r.fallback)))}}
}

// locate parses uri and plans its lookup (RFC 3263 §4.1, §4.2). A numeric host
// needs no lookup: its targets come back as direct, and the resolver is done.
func locate(uri, transport string) (request, []Target, error) {
	u, err := parseURI(uri)
	if err != nil {
		return request{}, nil, err
	}
	r, err := plan(u, transport)
	if err != nil {
		return request{}, nil, err
	}
	if r.ip != nil {
		return r, r.direct(), nil
	}
	return r, nil, nil
}

func (r request) portFor(transport string) int {
	if r.port > 0 {
		return r.port
	}
	return sip.DefaultPort(transport)
}

// srvService is the SRV service and protocol for a transport (RFC 3263 §4.1:
// _sips._tcp for TLS).
func srvService(transport string) (string, string) {
	switch transport {
	case transportUDP:
		return "sip", "udp"
	case transportTCP:
		return "sip", "tcp"
	}
	return "sips", "tcp"
}

// DNSResolver resolves through DNS: SRV records (_sip._udp, _sip._tcp,
// _sips._tcp, RFC 3263 §4.1–4.2), ordered by priority and, within a priority,
// by a weighted random choice (RFC 2782, done by net.Resolver.LookupSRV), then
// A and AAAA records. A numeric host or an explicit port skips SRV (§4.2).
//
// NAPTR (the first step of §4.1) is skipped: the standard library cannot query
// it, the cpmlink deployments it serves publish SRV records, and §4.1 lets a
// client go straight to SRV queries for the transports it supports when there
// is no NAPTR; a deployment that publishes only NAPTR is reached at its A/AAAA
// records instead.
type DNSResolver struct {
	// Resolver does the lookups; nil uses net.DefaultResolver. Tests point a
	// net.Resolver's Dial at a DNS server of their own.
	Resolver *net.Resolver
}

// Resolve implements Resolver.
func (d *DNSResolver) Resolve(ctx context.Context, uri string, transport string) ([]Target, error) {
	r, direct, err := locate(uri, transport)
	if err != nil || direct != nil {
		return direct, err
	}
	res := d.Resolver
	if res == nil {
		res = net.DefaultResolver
	}
	var out []Target
	if r.port == 0 {
		// §4.2: SRV for each transport in the order chosen; the targets of the
		// preferred one first.
		for _, tp := range r.order {
			svc, proto := srvService(tp)
			_, srvs, err := res.LookupSRV(ctx, svc, proto, r.host)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err != nil {
				continue // no records for this transport (or no answer): the next
			}
			for _, s := range srvs {
				if s.Target == "." {
					continue // RFC 2782: "the service is decidedly not available"
				}
				ips, err := res.LookupIPAddr(ctx, strings.TrimSuffix(s.Target, "."))
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				if err != nil {
					continue
				}
				for _, ip := range ips {
					out = append(out, Target{Transport: tp, Addr: net.JoinHostPort(ip.IP.String(), strconv.Itoa(int(s.Port))), Name: r.host})
				}
			}
		}
		if len(out) > 0 {
			return dedupTargets(out), nil
		}
	}
	// §4.2: an explicit port, or no SRV records: the A and AAAA records of the
	// host, with the port given or the transport's default.
	ips, err := res.LookupIPAddr(ctx, r.host)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrNoTarget, r.host, err)
	}
	for _, ip := range ips {
		out = append(out, Target{Transport: r.fallback, Addr: net.JoinHostPort(ip.IP.String(), strconv.Itoa(r.portFor(r.fallback))), Name: r.host})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s has no address", ErrNoTarget, r.host)
	}
	return out, nil
}

// StaticResolver resolves from a table configured by the operator: a host name
// (compared without case) to its targets, in order. It is the DNS of a
// deployment without DNS, and the embedded core's routing table.
//
// For a name in the table: targets whose transport the URI rules out are
// dropped (a sips: URI keeps TLS targets only, transport=tcp keeps TCP ones);
// the rest keep their order, with the sender's preferred transport moved first.
// An explicit port in the URI replaces the table's ports (RFC 3263 §4.2: the
// port given, the addresses of the host). A numeric host is used as is. A name
// not in the table goes to Next, or is not found.
type StaticResolver struct {
	// Next resolves names the table does not hold; nil: none.
	Next Resolver

	mu    sync.Mutex
	table map[string][]Target
}

// NewStaticResolver makes a StaticResolver with the given table (which it
// copies); next resolves what the table does not hold, and may be nil.
func NewStaticResolver(table map[string][]Target, next Resolver) (*StaticResolver, error) {
	s := &StaticResolver{Next: next, table: map[string][]Target{}}
	for name, ts := range table {
		if err := s.Set(name, ts); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Set adds or replaces the targets of name; an empty list removes it.
func (s *StaticResolver) Set(name string, targets []Target) error {
	key := strings.ToLower(strings.Trim(name, "[]"))
	if key == "" {
		return fmt.Errorf("%w: static resolver: empty name", ErrConfig)
	}
	clean := make([]Target, 0, len(targets))
	for _, t := range targets {
		c, err := checkTarget(t)
		if err != nil {
			return fmt.Errorf("%w: static resolver: %s: %w", ErrConfig, name, err)
		}
		clean = append(clean, c)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.table == nil {
		s.table = map[string][]Target{}
	}
	if len(clean) == 0 {
		delete(s.table, key)
	} else {
		s.table[key] = clean
	}
	return nil
}

// Lookup returns the table's targets for name, as configured.
func (s *StaticResolver) Lookup(name string) ([]Target, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts, ok := s.table[strings.ToLower(strings.Trim(name, "[]"))]
	return slices.Clone(ts), ok
}

// Resolve implements Resolver.
func (s *StaticResolver) Resolve(ctx context.Context, uri string, transport string) ([]Target, error) {
	r, direct, err := locate(uri, transport)
	if err != nil || direct != nil {
		return direct, err
	}
	ts, ok := s.Lookup(r.host)
	if !ok {
		if s.Next != nil {
			return s.Next.Resolve(ctx, uri, transport)
		}
		return nil, fmt.Errorf("%w: %s is not in the static table", ErrNoTarget, r.host)
	}
	var out []Target
	for _, tp := range r.order {
		for _, t := range ts {
			if t.Transport != tp {
				continue
			}
			if r.port > 0 {
				h, _, _ := net.SplitHostPort(t.Addr)
				t.Addr = net.JoinHostPort(h, strconv.Itoa(r.port))
			}
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s has no %s target in the static table", ErrNoTarget, r.host, strings.Join(r.order, "/"))
	}
	return dedupTargets(out), nil
}

// HostsResolver resolves host names from a hosts table (name → IP addresses,
// as /etc/hosts or a deployment's `hosts:` section would give them): the
// A/AAAA step of RFC 3263 §4.2 without DNS and without SRV. Each address is a
// target with the transport §4.1 picks (the URI's, sips: → TLS, else the
// sender's, else UDP) and the port given or that transport's default, and
// Name = the host, so that a TLS peer must hold a certificate for the name.
// A numeric host is used as is; a name not in the table goes to Next, or is
// not found.
type HostsResolver struct {
	// Hosts maps a name (compared without case) to its addresses, in order.
	Hosts map[string][]net.IP
	// Next resolves names the table does not hold; nil: none.
	Next Resolver
}

// Resolve implements Resolver.
func (h *HostsResolver) Resolve(ctx context.Context, uri string, transport string) ([]Target, error) {
	r, direct, err := locate(uri, transport)
	if err != nil || direct != nil {
		return direct, err
	}
	var ips []net.IP
	found := false
	for name, addrs := range h.Hosts {
		if strings.EqualFold(strings.TrimSuffix(name, "."), r.host) {
			ips, found = addrs, true
			break
		}
	}
	if !found {
		if h.Next != nil {
			return h.Next.Resolve(ctx, uri, transport)
		}
		return nil, fmt.Errorf("%w: %s is not in the hosts table", ErrNoTarget, r.host)
	}
	var out []Target
	for _, ip := range ips {
		if ip == nil {
			continue
		}
		out = append(out, Target{Transport: r.fallback, Addr: net.JoinHostPort(ip.String(), strconv.Itoa(r.portFor(r.fallback))), Name: r.host})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s has no address in the hosts table", ErrNoTarget, r.host)
	}
	return out, nil
}

// checkTarget normalizes a configured target: a transport sipx speaks and an
// IP:port address.
func checkTarget(t Target) (Target, error) {
	t.Transport = strings.ToUpper(t.Transport)
	switch t.Transport {
	case transportUDP, transportTCP, transportTLS:
	default:
		return t, fmt.Errorf("transport %q (want UDP, TCP or TLS)", t.Transport)
	}
	h, p, err := net.SplitHostPort(t.Addr)
	if err != nil {
		return t, fmt.Errorf("address %q is not IP:port", t.Addr)
	}
	ip := net.ParseIP(h)
	port, perr := strconv.Atoi(p)
	if ip == nil || perr != nil || port < 1 || port > 65535 {
		return t, fmt.Errorf("address %q is not IP:port", t.Addr)
	}
	t.Addr = net.JoinHostPort(ip.String(), strconv.Itoa(port))
	return t, nil
}

func dedupTargets(ts []Target) []Target {
	seen := map[Target]bool{}
	out := ts[:0]
	for _, t := range ts {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

// resolveWith resolves u for a sender preferring transport: a numeric host
// directly (no resolver needed, RFC 3263 §4.2), a name through res. Targets
// over TLS are dropped when the sender has no TLS (canTLS false); none left is
// ErrNoRoute.
func resolveWith(ctx context.Context, res Resolver, u sip.Uri, transport string, canTLS bool) ([]Target, error) {
	var ts []Target
	if hostIsIP(u) {
		r, err := plan(u, transport)
		if err != nil {
			return nil, err
		}
		ts = r.direct()
	} else {
		if res == nil {
			return nil, fmt.Errorf("%w: %s is a name and no resolver is configured", ErrNoRoute, u.Host)
		}
		var err error
		ts, err = res.Resolve(ctx, u.String(), transport)
		if err != nil {
			if errors.Is(err, ErrNoRoute) || errors.Is(err, ErrBadURI) || ctx.Err() != nil {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %s: %w", ErrNoRoute, u.Host, err)
		}
	}
	if !canTLS {
		ts = slices.DeleteFunc(ts, func(t Target) bool { return t.Transport == transportTLS })
		if len(ts) == 0 {
			return nil, fmt.Errorf("%w: %s needs TLS and no TLS is configured", ErrNoRoute, u.String())
		}
	}
	return ts, nil
}

// sized applies RFC 3261 §18.1.1 to a request of size bytes: over 1300 bytes
// it may not go over UDP. UDP targets are dropped when others remain; when
// only UDP targets exist they become TCP targets at the same address (the
// same port serves both, RFC 3263 §4.2's default).
func sized(ts []Target, size int) []Target {
	if size <= udpMax {
		return ts
	}
	var reliable []Target
	for _, t := range ts {
		if t.Transport != transportUDP {
			reliable = append(reliable, t)
		}
	}
	if len(reliable) > 0 {
		return reliable
	}
	out := make([]Target, len(ts))
	for i, t := range ts {
		t.Transport = transportTCP
		out[i] = t
	}
	return out
}
