package deploy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/cpmlink/cpmlink/fsm"
)

// sipDomain returns the lower-cased host of a sip: or sips: URI with a user part.
func sipDomain(uri string) (string, error) {
	rest, ok := strings.CutPrefix(uri, "sip:")
	if !ok {
		rest, ok = strings.CutPrefix(uri, "sips:")
	}
	user, host, at := strings.Cut(rest, "@")
	if i := strings.IndexAny(host, ";?"); i >= 0 {
		host = host[:i]
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if !ok || !at || user == "" || host == "" || strings.ContainsAny(uri, " <>\"") {
		return "", fmt.Errorf("%q is not a sip:user@domain URI", uri)
	}
	return strings.ToLower(host), nil
}

var instanceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func roleKind(name string) (fsm.RoleKind, bool) {
	switch strings.ToLower(strings.ReplaceAll(name, "-", "")) {
	case "pfa":
		return fsm.RolePFA, true
	case "cf":
		return fsm.RoleCF, true
	case "pfb":
		return fsm.RolePFB, true
	}
	return 0, false
}

func variantNames() string {
	var names []string
	for _, v := range fsm.Variants {
		names = append(names, v.Name)
	}
	return strings.Join(names, ", ")
}

// check validates the configuration and fills in its defaults; it may run more than once.
func (c *ServeConfig) check() error {
	p := &problems{c: c}
	switch _, ok := fsm.VariantByName(c.Variant); {
	case c.Variant == "":
		p.at("variant", "variant is required: one of %s (docs/variants.md)", variantNames())
	case !ok:
		p.at("variant", "variant %q is not a named variant of the spec: one of %s (docs/variants.md)", c.Variant, variantNames())
	}
	switch c.Transport {
	case "", "udp", "tcp":
	case "tls":
		if c.TLS == nil {
			p.at("transport", "transport tls: the tls section is required (cert, key, ca): SIP over TLS serves and verifies with it, as msrps does")
		}
	default:
		p.at("transport", "transport %q: udp, tcp or tls", c.Transport)
	}
	if _, err := c.chunkSize(); err != nil {
		p.at("chunk-size", "%v", err)
	}
	if _, err := c.guard(); err != nil {
		p.at("guard", "%v", err)
	}
	c.tls = nil
	if c.TLS != nil {
		c.tls = c.loadTLS(p)
	}

	c.checkHosts(p)
	c.checkMetrics(p)

	// Fixed addresses must not collide: peers must tell each instance apart by the address
	// it advertises (on one host, that is also the address it binds).
	reached := map[string]string{}
	fixed := func(path, what, host string, port int) {
		if host == "" || port == 0 {
			return
		}
		if ip, ok := c.staticIP(host); ok {
			// A name of the hosts table and its address are one place.
			host = ip.String()
		}
		key := net.JoinHostPort(host, strconv.Itoa(port))
		if prev, ok := reached[key]; ok {
			p.at(path, "%s %s is already used by %s", what, key, prev)
			return
		}
		reached[key] = what
	}
	// listen checks a bind address; servers need fixed ports.
	listen := func(path, what, addr string, server bool) (net.IP, int, bool) {
		if addr == "" {
			p.at(path, "%s: an address is required", what)
			return nil, 0, false
		}
		ip, port, err := bindAddr(addr)
		if err != nil {
			p.at(path, "%s: %v", what, err)
			return nil, 0, false
		}
		if server && port == 0 {
			p.at(path, "%s %s: a fixed port is required, since others must find it", what, addr)
		}
		return ip, port, true
	}
	// advertised checks an instance's advertise against the IP it binds and returns the
	// host peers reach it at ("" when there is none).
	advertised := func(path, what, advertise string, bindPath, bindAddr string, bind net.IP) string {
		if advertise != "" {
			if err := peerHost(advertise); err != nil {
				p.at(path+".advertise", "%s: advertise: %v", what, err)
				return ""
			}
			c.known(p, path+".advertise", what+": advertise", advertise)
		} else if bind != nil && bind.IsUnspecified() {
			p.at(bindPath, "%s: %s binds every interface, which names no address a peer could use: set %s.advertise to the IP or host name peers should reach it at", what, bindAddr, path)
			return ""
		}
		return reach(bind, advertise)
	}

	if c.Core != nil {
		ip, port, ok := listen("core.listen", "core.listen", c.Core.Listen, true)
		host := advertised("core", "core", c.Core.Advertise, "core.listen", "listen "+c.Core.Listen, ip)
		fixed("core.listen", "core.listen", host, port)
		for i, n := range c.Core.Names {
			if net.ParseIP(n) != nil || !dnsName.MatchString(n) {
				p.at(fmt.Sprintf("core.names[%d]", i), "core.names: %q is not a host name (the core's IPs are known already)", n)
			}
		}
		// Where the instances send SIP: the core's listener of the deployment's transport.
		listenAt, where := c.Core.Listen, "core.listen"
		switch {
		case c.Core.ListenTLS != "":
			if c.TLS == nil {
				p.at("core.listen-tls", "core.listen-tls needs the tls section (cert, key, ca) to serve SIP over TLS with")
			}
			tip, tport, tok := listen("core.listen-tls", "core.listen-tls", c.Core.ListenTLS, true)
			if tok && ip != nil && !tip.Equal(ip) {
				p.at("core.listen-tls", "core.listen-tls must bind the IP of core.listen (%s, %s)", ip, tip)
			}
			fixed("core.listen-tls", "core.listen-tls", host, tport)
			if ok && host != "" {
				if ip, ok := c.staticIP(host); ok && c.tls != nil {
					if err := c.tls.Certificates[0].Leaf.VerifyHostname(ip.String()); err != nil {
						p.at("core.listen-tls", "core: tls.cert does not name its SIP over TLS address: %v", err)
					}
				}
				c.certNames(p, "core.listen-tls", "core", host)
			}
			if c.Transport == "tls" {
				listenAt, where, port, ok = c.Core.ListenTLS, "core.listen-tls", tport, ok && tok
			}
		case c.Transport == "tls":
			p.at("core", "core: listen-tls is required with transport tls (the host:port the core takes SIP over TLS at)")
			ok = false
		}
		self := func(hp string) bool {
			h, pt, err := net.SplitHostPort(hp)
			if err != nil || pt != strconv.Itoa(port) {
				return false
			}
			return slices.ContainsFunc(c.Core.Names, func(n string) bool { return strings.EqualFold(n, h) })
		}
		switch {
		case !ok || host == "":
		case c.SIPCore == "":
			c.SIPCore = net.JoinHostPort(host, strconv.Itoa(port))
		case c.SIPCore != listenAt && c.SIPCore != net.JoinHostPort(host, strconv.Itoa(port)) && !self(c.SIPCore):
			p.at("sip-core", "sip-core %s differs from %s %s: with a core section, leave sip-core out", c.SIPCore, where, listenAt)
		}
	} else if c.SIPCore == "" {
		p.at("sip-core", "sip-core is required when there is no core section (the external SIP/IP core's host:port)")
	} else if h, port, err := net.SplitHostPort(c.SIPCore); err != nil {
		p.at("sip-core", "sip-core: %q is not host:port", c.SIPCore)
	} else if err := peerHost(h); err != nil {
		p.at("sip-core", "sip-core: %v", err)
	} else {
		c.known(p, "sip-core", "sip-core", h)
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			p.at("sip-core", "sip-core %s: a fixed port is required", c.SIPCore)
		}
	}

	names := map[string]string{"core": "the SIP/IP core"}
	uris := map[string]string{}
	name := func(path, n, what string) {
		switch {
		case !instanceName.MatchString(n):
			p.at(path, "%s: name %q: letters, digits, '.', '-' and '_' only", what, n)
		case names[n] != "":
			p.at(path, "%s: name %q is already taken by %s (set another name)", what, n, names[n])
		default:
			names[n] = what
		}
	}
	uri := func(path, u, what string) {
		if _, err := sipDomain(u); err != nil {
			p.at(path, "%s: uri %v", what, err)
		} else if prev, ok := uris[u]; ok {
			p.at(path, "%s: uri %s is already used by %s", what, u, prev)
		} else {
			uris[u] = what
		}
	}
	// instance checks the addresses of a role or a client.
	instance := func(path, what, sip, msrp, siptls, advertise string, server bool) {
		sh, sp, sok := listen(path+".sip", what+": sip", sip, server)
		mh, mp, mok := listen(path+".msrp", what+": msrp", msrp, server)
		if !sok || !mok {
			return
		}
		// One NodeConfig.Host carries both: a split would silently bind the other host.
		if !sh.Equal(mh) {
			p.at(path, "%s: sip and msrp must bind the same IP (%s, %s)", what, sh, mh)
			return
		}
		host := advertised(path, what, advertise, path+".sip", "sip "+sip, sh)
		fixed(path+".sip", what+": sip", host, sp)
		fixed(path+".msrp", what+": msrp", host, mp)
		where := path + ".msrp"
		if advertise != "" {
			where = path + ".advertise"
		}
		c.certCovers(p, where, what, host)
		switch {
		case siptls != "":
			if c.TLS == nil {
				p.at(path+".sip-tls", "%s: sip-tls needs the tls section (cert, key, ca) to serve SIP over TLS with", what)
			}
			th, tp, ok := listen(path+".sip-tls", what+": sip-tls", siptls, server)
			if !ok {
				return
			}
			if !th.Equal(sh) {
				p.at(path+".sip-tls", "%s: sip and sip-tls must bind the same IP (%s, %s)", what, sh, th)
				return
			}
			fixed(path+".sip-tls", what+": sip-tls", host, tp)
			if server {
				// The core and the clients locate a role by the name it advertises
				// (core.routes, a client's pf), and verify that name (RFC 5922 §4.1).
				c.certNames(p, where, what, host)
			}
		case server && c.Transport == "tls":
			p.at(path, "%s: sip-tls is required with transport tls (the host:port it takes SIP over TLS at)", what)
		}
	}

	roles := map[string]*RoleConfig{}
	for i := range c.Roles {
		r := &c.Roles[i]
		path := fmt.Sprintf("roles[%d]", i)
		what := path
		if r.Name != "" {
			what = fmt.Sprintf("%s (%s)", path, r.Name)
		}
		if r.Name == "" {
			p.at(path, "%s: name is required", what)
		} else {
			name(path+".name", r.Name, "role "+r.Name)
			roles[r.Name] = r
		}
		kind, ok := roleKind(r.Role)
		if !ok {
			p.at(path+".role", "%s: role %q: pfa, cf or pfb (clients go under clients)", what, r.Role)
		}
		if r.URI == "" {
			p.at(path+".uri", "%s: uri is required", what)
		} else {
			uri(path+".uri", r.URI, "role "+r.Name)
		}
		instance(path, what, r.SIP, r.MSRP, r.SIPTLS, r.Advertise, true)
		if len(r.Groups) > 0 && ok && kind != fsm.RoleCF {
			p.at(path+".groups", "%s: only a cf has groups", what)
		}
	}

	clients := map[string]*ClientConfig{}
	for i := range c.Clients {
		cl := &c.Clients[i]
		path := fmt.Sprintf("clients[%d]", i)
		what := fmt.Sprintf("%s (%s)", path, cl.URI)
		if cl.URI == "" {
			p.at(path, "%s: uri is required", path)
			continue
		}
		uri(path+".uri", cl.URI, "client "+cl.URI)
		clients[cl.URI] = cl
		if cl.Name == "" {
			if user, _, ok := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(cl.URI, "sips:"), "sip:"), "@"); ok {
				cl.Name = user
			}
		}
		name(path, cl.Name, "client "+cl.URI)
		pf, ok := roles[cl.PF]
		switch k, _ := roleKind(pf.roleOrEmpty()); {
		case cl.PF == "":
			p.at(path, "%s: pf is required (the name of the PF-A or PF-B it registers with)", what)
		case !ok:
			p.at(path+".pf", "%s: pf %q is not a role of this deployment", what, cl.PF)
		case k != fsm.RolePFA && k != fsm.RolePFB:
			p.at(path+".pf", "%s: pf %q is a %s, not a pfa or pfb", what, cl.PF, pf.Role)
		}
		if ok && cl.SIP == "" && cl.MSRP == "" && cl.Advertise == "" {
			// A client runs on its PF's host unless told otherwise.
			cl.Advertise = pf.Advertise
		}
		if ok {
			host, _, _ := net.SplitHostPort(pf.SIP)
			if cl.SIP == "" {
				cl.SIP = net.JoinHostPort(host, "0")
			}
			if cl.MSRP == "" {
				cl.MSRP = net.JoinHostPort(host, "0")
			}
		}
		if cl.SIPTLS == "" && c.Transport == "tls" {
			// Its SIP over TLS beside its SIP, at a port of its own.
			if host, _, err := net.SplitHostPort(cl.SIP); err == nil {
				cl.SIPTLS = net.JoinHostPort(host, "0")
			}
		}
		if ok || cl.SIP != "" || cl.MSRP != "" {
			instance(path, what, cl.SIP, cl.MSRP, cl.SIPTLS, cl.Advertise, false)
		}
	}
	// clientOf returns the kind of client a URI is: ClientA behind a PF-A, ClientB behind
	// a PF-B.
	clientOf := func(u string) (fsm.RoleKind, bool) {
		cl, ok := clients[u]
		if !ok || roles[cl.PF] == nil {
			return 0, false
		}
		k, ok := roleKind(roles[cl.PF].Role)
		if !ok {
			return 0, false
		}
		if k == fsm.RolePFA {
			return fsm.RoleClientA, true
		}
		return fsm.RoleClientB, true
	}

	for i, r := range c.Roles {
		for _, g := range sortedKeys(r.Groups) {
			e := r.Groups[g]
			path := fmt.Sprintf("roles[%d].groups.%s", i, g)
			what := fmt.Sprintf("group %s", g)
			if _, err := sipDomain(g); err != nil {
				p.at(path, "%s: %v", what, err)
			}
			if len(e.Members) == 0 {
				p.at(path, "%s: members: at least one is required", what)
			}
			for j, m := range e.Members {
				if k, ok := clientOf(m); !ok || k != fsm.RoleClientB {
					p.at(fmt.Sprintf("%s.members[%d]", path, j), "%s: member %s is not a client registered with a pfb", what, m)
				}
			}
			for j, s := range e.Senders {
				if k, ok := clientOf(s); !ok || k != fsm.RoleClientA {
					p.at(fmt.Sprintf("%s.senders[%d]", path, j), "%s: sender %s is not a client registered with a pfa", what, s)
				}
			}
		}
	}

	if c.Core != nil {
		c.checkRoutes(p, roles, clientOf)
	}
	c.checkIdentity(p, roles)
	return p.err()
}

// loadTLS reads the TLS files, and checks that the CA accepts the certificate: otherwise
// every handshake would fail, and only once a message is sent.
func (c *ServeConfig) loadTLS(p *problems) *tls.Config {
	path := c.relPath
	t := c.TLS
	for _, f := range []struct{ key, v string }{{"cert", t.Cert}, {"key", t.Key}, {"ca", t.CA}} {
		if f.v == "" {
			p.at("tls."+f.key, "tls.%s is required (a PEM file)", f.key)
		}
	}
	if t.Cert == "" || t.Key == "" || t.CA == "" {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(path(t.Cert), path(t.Key))
	if err != nil {
		p.at("tls.cert", "tls: %v", err)
		return nil
	}
	pem, err := os.ReadFile(path(t.CA))
	if err != nil {
		p.at("tls.ca", "tls.ca: %v", err)
		return nil
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		p.at("tls.ca", "tls.ca: %s holds no PEM certificate", t.CA)
		return nil
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		p.at("tls.cert", "tls.cert: %v", err)
		return nil
	}
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		if ic, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(ic)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err != nil {
		p.at("tls.ca", "tls.ca does not accept tls.cert: %v", err)
		return nil
	}
	cert.Leaf = leaf
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots, MinVersion: tls.VersionTLS12}
}

// certCovers checks that the TLS certificate names the IP an instance advertises, which
// its peers dial and verify (a=path). A name that only DNS resolves is checked when the
// instance starts (coveredIP).
func (c *ServeConfig) certCovers(p *problems, path, what, host string) {
	if c.tls == nil || host == "" {
		return
	}
	ip, ok := c.staticIP(host)
	if !ok {
		return
	}
	if err := c.coveredIP(ip.String()); err != nil {
		p.at(path, "%s: %v", what, err)
	}
}

// certNames checks, with SIP over TLS, that the TLS certificate names host when host is
// a name: SIP peers that locate an instance by a name verify that name, not the IP it
// resolves to (RFC 5922 §4.1, sipx.Target.Name).
func (c *ServeConfig) certNames(p *problems, path, what, host string) {
	if c.tls == nil || host == "" || net.ParseIP(host) != nil {
		return
	}
	if err := c.tls.Certificates[0].Leaf.VerifyHostname(host); err != nil {
		p.at(path, "%s: tls.cert does not name %s, which SIP over TLS peers verify: %v", what, host, err)
	}
}

// known checks that a host name resolves without DNS when DNS is off: a deployment on IPs
// and its hosts table sends no query.
func (c *ServeConfig) known(p *problems, path, what, host string) {
	if c.DNS {
		return
	}
	if _, ok := c.staticIP(host); !ok {
		p.at(path, "%s: %s is not in hosts, and dns is off: add it to hosts, or set dns: true", what, host)
	}
}

// coveredIP says whether the TLS certificate names ip.
func (c *ServeConfig) coveredIP(ip string) error {
	if c.tls == nil {
		return nil
	}
	if err := c.tls.Certificates[0].Leaf.VerifyHostname(ip); err != nil {
		return fmt.Errorf("tls.cert does not name its msrp host: %w", err)
	}
	return nil
}

func (r *RoleConfig) roleOrEmpty() string {
	if r == nil {
		return ""
	}
	return r.Role
}

// checkRoutes checks that the core's routing table sends each request where the spec
// needs it: a group's INVITE to its CF, a member's INVITE to the PF-B it registered with.
func (c *ServeConfig) checkRoutes(p *problems, roles map[string]*RoleConfig, clientOf func(string) (fsm.RoleKind, bool)) {
	route := map[string]*RoleConfig{}
	for _, d := range sortedKeys(c.Core.Routes) {
		path := "core.routes." + d
		if d == "" || strings.ContainsAny(d, "@:/ ") {
			p.at(path, "core.routes: %q is not a domain", d)
			continue
		}
		if r := c.roleAt(c.Core.Routes[d]); r != nil {
			route[strings.ToLower(d)] = r
		} else {
			p.at(path, "core.routes: %s -> %q is neither the name nor the sip address of a role", d, c.Core.Routes[d])
		}
	}
	want := func(path, what, uri string, r *RoleConfig) {
		d, err := sipDomain(uri)
		if err != nil {
			return // reported already
		}
		switch got := route[d]; {
		case got == nil:
			p.at(path, "%s: core.routes has no route for %s (it should go to %s)", what, d, r.Name)
		case got != r:
			p.at(path, "%s: core.routes sends %s to %s, not to %s", what, d, got.Name, r.Name)
		}
	}
	for i := range c.Roles {
		r := &c.Roles[i]
		if k, _ := roleKind(r.Role); k != fsm.RoleCF {
			continue
		}
		// The CF's own URI is where an ad-hoc group goes.
		want(fmt.Sprintf("roles[%d].uri", i), "cf "+r.Name, r.URI, r)
		for _, g := range sortedKeys(r.Groups) {
			want(fmt.Sprintf("roles[%d].groups.%s", i, g), "group "+g, g, r)
		}
	}
	for i, cl := range c.Clients {
		if k, ok := clientOf(cl.URI); ok && k == fsm.RoleClientB {
			want(fmt.Sprintf("clients[%d].pf", i), "client "+cl.URI, cl.URI, roles[cl.PF])
		}
	}
}

// roleAt finds a role by name or by sip address, bound or advertised.
func (c *ServeConfig) roleAt(v string) *RoleConfig {
	for i := range c.Roles {
		if r := &c.Roles[i]; r.Name == v || r.SIP == v || v != "" && r.sipReach() == v {
			return r
		}
	}
	return nil
}

// sipReach is the host:port peers send a role SIP at, before names are resolved.
func (r *RoleConfig) sipReach() string {
	ip, port, err := bindAddr(r.SIP)
	host := reach(ip, r.Advertise)
	if err != nil || host == "" {
		return ""
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
