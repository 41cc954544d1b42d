package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/runtime"
	"github.com/cpmlink/cpmlink/runtime/sipx"
)

// ErrUnknownInstance is returned by Serve for a name the configuration does not define.
var ErrUnknownInstance = errors.New("deploy: no such instance")

// Instance describes one started instance of a deployment, for its operator.
type Instance struct {
	Name string
	// Role is "core" or the role's kind (PFA, CF, PFB, ClientA, ClientB).
	Role string
	URI  string
	// SIP and MSRP are where peers reach it (the advertised address, names resolved, and
	// the bound port): SIP over UDP and TCP; MSRP is empty for the core.
	SIP, MSRP string
	// SIPTLS is where peers reach it over SIP over TLS, "" when it takes none.
	SIPTLS string
	// TLS says that its MSRP is msrps.
	TLS bool
	// Routes are the core's routes: domain to the role's SIP address (over UDP and TCP, and
	// "tls:" host:port over TLS, comma-separated); a name stays a name, located when a
	// request is forwarded.
	Routes map[string]string
}

// ServeOptions are what a process adds to a configuration.
type ServeOptions struct {
	// Trace receives the records of every instance started, if not nil.
	Trace *runtime.Tracer
	// Logger is quiet by default.
	Logger *slog.Logger
	// Metrics, if not nil, are the process's metrics every role instance adds to
	// (Ops.Metrics).
	Metrics *runtime.Metrics
	// configured, when set (tests), sees each role's NodeConfig before it starts.
	configured func(runtime.NodeConfig)
}

// Served is the part of a deployment one process runs.
type Served struct {
	core      *sipx.Proxy
	nodes     []*runtime.Node
	instances []Instance
}

// Serve starts what a configuration describes: every server role and the core, or only
// the named ones ("core" is the SIP/IP core). Clients are not served: `cpmlink send` and
// `cpmlink recv` run them (StartClient). The listeners live until Close or until ctx
// ends, so a caller that drains sessions on a signal passes a ctx the signal does not end.
func Serve(ctx context.Context, c *ServeConfig, only []string, opts ServeOptions) (_ *Served, err error) {
	if err := c.check(); err != nil {
		// The credentials files' problems too, so that every problem is reported at once.
		names := map[string]bool{}
		for _, o := range only {
			names[o] = true
		}
		_, aerr := c.loadAuth(names)
		return nil, errors.Join(err, aerr)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	want := map[string]bool{}
	for _, o := range only {
		switch {
		case o == "core" && c.Core == nil:
			return nil, fmt.Errorf("%w: core: the configuration has no core section (sip-core is %s)", ErrUnknownInstance, c.SIPCore)
		case o == "core" || c.roleAt(o) != nil && c.roleAt(o).Name == o:
			want[o] = true
		case c.client(o) != nil:
			return nil, fmt.Errorf("%w: %s is a client: run it with cpmlink send --from or cpmlink recv --as %s", ErrUnknownInstance, o, c.client(o).URI)
		default:
			return nil, fmt.Errorf("%w: %q (the configuration has %s)", ErrUnknownInstance, o, strings.Join(c.serverNames(), ", "))
		}
	}
	all := len(want) == 0
	// The PFs' secrets are read here, by the process that serves them, and only theirs.
	auth, err := c.loadAuth(want)
	if err != nil {
		return nil, err
	}
	v, _ := fsm.VariantByName(c.Variant)
	chunk, _ := c.chunkSize()
	guard, _ := c.guard()
	started := &Served{}
	defer func() {
		if err != nil {
			started.Close()
		}
	}()
	s := started
	// sip-core as the instances name it (nextHop): a name is located when they send.
	proxy, err := c.nextHop(ctx, c.SIPCore)
	if err != nil {
		return nil, fmt.Errorf("deploy: sip-core: %w", err)
	}
	resolver := c.sipResolver()
	trusted, err := c.trustedHosts(ctx)
	if err != nil {
		return nil, fmt.Errorf("deploy: trusted-hosts: %w", err)
	}
	if c.Core != nil && (all || want["core"]) {
		ip, port, _ := bindAddr(c.Core.Listen)
		adv, err := c.resolve(ctx, reach(ip, c.Core.Advertise))
		if err != nil {
			return nil, fmt.Errorf("deploy: core: %w", err)
		}
		pc := sipx.ProxyConfig{Host: ip.String(), Advertise: adv, UDPPort: port, TCPPort: port, Resolver: resolver,
			Names: c.coreNames(), TrustedHosts: trusted, Logger: opts.Logger}
		if c.Core.ListenTLS != "" {
			_, pc.TLSPort, _ = bindAddr(c.Core.ListenTLS)
			pc.TLS = c.tls
			// Its peers dial and verify the IP a name resolved to (only DNS could say).
			if err := c.tls.Certificates[0].Leaf.VerifyHostname(adv); err != nil {
				return nil, fmt.Errorf("deploy: core: %w: tls.cert does not name its SIP over TLS address: %w", ErrConfig, err)
			}
		}
		// A route to a role at an IP is a fixed list of targets; to a role that
		// advertises a name, its URIs, located when a request is forwarded.
		routes, fixed, named := map[string]string{}, map[string][]sipx.Target{}, map[string][]string{}
		for d, to := range c.Core.Routes {
			d = strings.ToLower(d)
			uris, shown := c.routeURIs(c.roleAt(to))
			routes[d] = shown
			if ts, ok := ipTargets(uris); ok {
				fixed[d] = ts
			} else {
				named[d] = uris
				for _, u := range uris {
					if _, err := c.resolve(ctx, uriHost(u)); err != nil {
						return nil, fmt.Errorf("deploy: core.routes.%s: %w", d, err)
					}
				}
			}
		}
		if len(named) > 0 {
			pc.Resolver = &routeResolver{routes: named, next: resolver}
		}
		s.core, err = sipx.StartProxy(ctx, pc)
		if err != nil {
			return nil, fmt.Errorf("deploy: starting the core: %w", err)
		}
		for d, ts := range fixed {
			if err := s.core.SetTargets(d, ts); err != nil {
				return nil, fmt.Errorf("deploy: core.routes.%s: %w", d, err)
			}
		}
		s.instances = append(s.instances, Instance{Name: "core", Role: "core", SIP: s.core.UDPAddr(), SIPTLS: s.core.TLSAddr(), Routes: routes})
	}
	for _, r := range c.Roles {
		if !all && !want[r.Name] {
			continue
		}
		kind, _ := roleKind(r.Role)
		a, err := c.addrsOf(ctx, r.SIP, r.MSRP, r.Advertise)
		if err != nil {
			return nil, fmt.Errorf("deploy: %s: %w", r.Name, err)
		}
		groups := map[string]core.Group{}
		for uri, g := range r.Groups {
			groups[uri] = core.Group{Members: g.Members, Senders: g.Senders}
		}
		nc := runtime.NodeConfig{Kind: kind, Name: r.Name, URI: r.URI, Host: a.host, Advertise: a.advertise,
			SIPPort: a.sipPort, MSRPPort: a.msrpPort, Variant: v, Proxy: proxy, Transport: c.Transport, Groups: groups, ChunkSize: chunk, Guard: guard,
			TLS: c.tls, TrustedHosts: trusted, MSRPLimits: c.msrpLimits(r.MSRPLimits), Trace: opts.Trace, Logger: opts.Logger, Resolver: resolver, Metrics: opts.Metrics}
		if r.SIPTLS != "" {
			_, nc.SIPTLSPort, _ = bindAddr(r.SIPTLS)
			nc.SIPTLS = c.tls
		}
		if err := c.pfOptions(r, auth, &nc); err != nil {
			return nil, fmt.Errorf("deploy: %s: %w", r.Name, err)
		}
		if opts.configured != nil {
			opts.configured(nc)
		}
		n, err := runtime.StartNode(ctx, nc)
		if err != nil {
			return nil, fmt.Errorf("deploy: starting %s: %w", r.Name, err)
		}
		s.nodes = append(s.nodes, n)
		s.instances = append(s.instances, Instance{Name: r.Name, Role: kind.String(), URI: r.URI, SIP: n.SIPAddr(), SIPTLS: n.SIPAddrTLS(), MSRP: n.MSRPAddr(), TLS: c.tls != nil})
	}
	if len(s.instances) == 0 {
		return nil, fmt.Errorf("%w: the configuration has no server roles", ErrUnknownInstance)
	}
	return s, nil
}

// Instances lists what was started, in start order.
func (s *Served) Instances() []Instance { return s.instances }

// WaitIdle waits until every session of every node is over, bounded by ctx.
func (s *Served) WaitIdle(ctx context.Context) error {
	for _, n := range s.nodes {
		if err := n.WaitIdle(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Close stops every node, then the core.
func (s *Served) Close() error {
	var errs []error
	for i := len(s.nodes) - 1; i >= 0; i-- {
		errs = append(errs, s.nodes[i].Close())
	}
	if s.core != nil {
		errs = append(errs, s.core.Close())
	}
	return errors.Join(errs...)
}

func (c *ServeConfig) serverNames() []string {
	var names []string
	if c.Core != nil {
		names = append(names, "core")
	}
	for _, r := range c.Roles {
		names = append(names, r.Name)
	}
	return names
}

func (c *ServeConfig) client(nameOrURI string) *ClientConfig {
	for i := range c.Clients {
		if c.Clients[i].URI == nameOrURI || c.Clients[i].Name == nameOrURI {
			return &c.Clients[i]
		}
	}
	return nil
}

// addrs are an instance's addresses, names resolved.
type addrs struct {
	host, advertise   string
	sipPort, msrpPort int
}

// addrsOf resolves what an instance binds and what it advertises (checked by check), and
// checks that the TLS certificate names the advertised IP.
func (c *ServeConfig) addrsOf(ctx context.Context, sip, msrp, advertise string) (addrs, error) {
	ip, sport, _ := bindAddr(sip)
	_, mport, _ := bindAddr(msrp)
	adv, err := c.resolve(ctx, reach(ip, advertise))
	if err != nil {
		return addrs{}, err
	}
	if err := c.coveredIP(adv); err != nil {
		return addrs{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return addrs{host: ip.String(), advertise: adv, sipPort: sport, msrpPort: mport}, nil
}

// coreNames are the host names the core is known by: core.names, its advertise and the
// host of sip-core when they are names. A Route naming one of them is the core's own
// (RFC 3261 §16.4); without it the core would forward to itself.
func (c *ServeConfig) coreNames() []string {
	var names []string
	add := func(h string) {
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		if h != "" && net.ParseIP(h) == nil && !slices.Contains(names, h) {
			names = append(names, h)
		}
	}
	for _, n := range c.Core.Names {
		add(n)
	}
	add(c.Core.Advertise)
	if h, _, err := net.SplitHostPort(c.SIPCore); err == nil {
		add(h)
	}
	return names
}

// routeURIs are the SIP URIs the core forwards a role's requests to, in order, and how
// serve shows them. With transport tls only TLS: a request that came in over TLS must not
// leave in the clear because a TLS connection failed. Otherwise UDP and TCP at sip, then
// TLS at sip-tls when the role has it (a sips: request takes only that one).
func (c *ServeConfig) routeURIs(r *RoleConfig) (uris []string, shown string) {
	ip, port, _ := bindAddr(r.SIP)
	host := reach(ip, r.Advertise)
	var tlsAt string
	if r.SIPTLS != "" && c.tls != nil && c.Core.ListenTLS != "" {
		_, tport, _ := bindAddr(r.SIPTLS)
		tlsAt = net.JoinHostPort(host, strconv.Itoa(tport))
	}
	sipAt := net.JoinHostPort(host, strconv.Itoa(port))
	if c.Transport == "tls" && tlsAt != "" {
		return []string{"sip:" + tlsAt + ";transport=tls"}, "tls:" + tlsAt
	}
	uris = []string{"sip:" + sipAt + ";transport=udp", "sip:" + sipAt + ";transport=tcp"}
	shown = sipAt
	if tlsAt != "" {
		uris = append(uris, "sip:"+tlsAt+";transport=tls")
		shown += ",tls:" + tlsAt
	}
	return uris, shown
}

// ipTargets are the targets of URIs whose hosts are all IPs (RFC 3263 §4.2: used as
// they are), false when one is a name.
func ipTargets(uris []string) ([]sipx.Target, bool) {
	var ts []sipx.Target
	for _, u := range uris {
		hp, params, _ := strings.Cut(strings.TrimPrefix(u, "sip:"), ";")
		h, _, _ := net.SplitHostPort(hp)
		if net.ParseIP(h) == nil {
			return nil, false
		}
		ts = append(ts, sipx.Target{Transport: strings.ToUpper(strings.TrimPrefix(params, "transport=")), Addr: hp})
	}
	return ts, true
}
