package runtime

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/runtime/sipx"
	"go.yaml.in/yaml/v3"
)

// ServeConfig describes a whole deployment in one file: the SIP/IP core, the server roles
// (PF-A, CF, PF-B) that `cpmlink serve` runs, and the clients that `cpmlink send` and
// `cpmlink recv` run, each at loopback addresses, all on one variant of the spec. See
// docs/deploy.md and docs/deploy.yaml.
type ServeConfig struct {
	// Variant is a named variant of the spec (fsm.Variants); every instance runs it.
	Variant string `yaml:"variant"`
	// Transport is the SIP transport of requests: udp (default) or tcp.
	Transport string `yaml:"transport"`
	// SIPCore is where every instance sends SIP. With a core section it defaults to
	// core.listen (and may only repeat it); without one it names an external proxy.
	SIPCore string `yaml:"sip-core"`
	// Core, when set, is the embedded SIP/IP core that `serve --role core` runs.
	Core *CoreConfig `yaml:"core"`
	// Roles are the server instances: PF-A, CF and PF-B.
	Roles []RoleConfig `yaml:"roles"`
	// Clients are the transmitters (registered with a PF-A) and receivers (registered
	// with a PF-B) of the deployment.
	Clients []ClientConfig `yaml:"clients"`
	// ChunkSize is the MSRP chunk size, as "64KiB" or a number of bytes (default 64 KiB).
	ChunkSize string `yaml:"chunk-size"`
	// Guard is the unit of the guard timers, as "32s" (default 32 s, RFC 3261 Timer B).
	Guard string `yaml:"guard"`
	// TLS, when set, makes every MSRP link of the deployment msrps (TCP/TLS/MSRP, RFC 4975
	// §6). It is all or nothing: an instance that offers msrps cannot be reached by one
	// without a TLS configuration.
	TLS *TLSFiles `yaml:"tls"`

	// file names the source in errors; lines maps a path ("roles[2].sip") to its line.
	file  string
	lines map[string]int
	// tls is TLS loaded (by check).
	tls *tls.Config
}

// TLSFiles are the PEM files of a deployment's msrps, relative to the configuration
// file's directory unless absolute.
type TLSFiles struct {
	// Cert and Key are the certificate chain and private key every instance serves
	// msrps with; the certificate must name every loopback IP the instances listen on.
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// CA holds the certificates an instance trusts when it dials a peer.
	CA string `yaml:"ca"`
}

// CoreConfig is the embedded SIP/IP core: where it listens and its routing table.
type CoreConfig struct {
	// Listen is the core's UDP and TCP address; the port must be fixed.
	Listen string `yaml:"listen"`
	// Routes maps a Request-URI domain to the server role serving it, named by its name
	// or by its sip address.
	Routes map[string]string `yaml:"routes"`
}

// RoleConfig is one server instance of a deployment.
type RoleConfig struct {
	// Name names the instance in traces, in `serve --role` and in the clients' pf.
	Name string `yaml:"name"`
	// Role is pfa, cf or pfb.
	Role string `yaml:"role"`
	// URI is the instance's SIP identity ("sip:cf@cf.example").
	URI string `yaml:"uri"`
	// SIP and MSRP are its listen addresses: one loopback host, fixed ports, since the
	// core and the clients must find them.
	SIP  string `yaml:"sip"`
	MSRP string `yaml:"msrp"`
	// Groups are a CF's pre-defined groups, by group URI; only a CF has them.
	Groups map[string]GroupEntry `yaml:"groups"`
}

// GroupEntry is a pre-defined group at the CF.
type GroupEntry struct {
	// Members are the receivers' URIs: clients of this deployment registered with a PF-B.
	Members []string `yaml:"members"`
	// Senders, if any, are the only transmitters the CF accepts for the group (403 for
	// others); each is a client registered with a PF-A.
	Senders []string `yaml:"senders"`
}

// ClientConfig is one client of a deployment. Whether it transmits (ClientA) or receives
// (ClientB) follows from its PF: a PF-A's clients transmit, a PF-B's receive.
type ClientConfig struct {
	// Name names the instance in traces; it defaults to the user part of the URI.
	Name string `yaml:"name"`
	// URI is the client's address of record.
	URI string `yaml:"uri"`
	// PF is the name of the role the client registers with, and for a transmitter the
	// role its INVITE is routed through first.
	PF string `yaml:"pf"`
	// SIP and MSRP are its listen addresses; port 0 chooses a free port, and both default
	// to its PF's host with port 0.
	SIP  string `yaml:"sip"`
	MSRP string `yaml:"msrp"`
}

// ErrConfig is wrapped by every error about the content of a configuration.
var ErrConfig = errors.New("runtime: bad configuration")

// ConfigError is one problem of a configuration, where it is.
type ConfigError struct {
	File string
	// Line is the line of the offending key or entry, 0 when the problem has no place.
	Line int
	Msg  string
}

func (e *ConfigError) Error() string {
	switch {
	case e.File == "":
		return e.Msg
	case e.Line == 0:
		return e.File + ": " + e.Msg
	}
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
}

func (e *ConfigError) Unwrap() error { return ErrConfig }

// LoadServeConfig reads and checks a configuration file strictly: unknown keys, missing
// keys and dangling references are errors, each with its line.
func LoadServeConfig(path string) (*ServeConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("runtime: reading the configuration: %w", err)
	}
	return ParseServeConfig(path, b)
}

// ParseServeConfig is LoadServeConfig on data already read; name is used in errors.
func ParseServeConfig(name string, data []byte) (*ServeConfig, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlErrors(name, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &ConfigError{File: name, Msg: "the configuration is empty"}
	}
	var c ServeConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlErrors(name, err)
	}
	c.file, c.lines = name, nodeLines(&doc)
	if err := c.check(); err != nil {
		return nil, err
	}
	return &c, nil
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlTypes names the decoder's Go types as the file's sections, for its messages.
var yamlTypes = strings.NewReplacer(
	"runtime.ServeConfig", "the top level",
	"runtime.CoreConfig", "core",
	"[]runtime.RoleConfig", "a list of roles",
	"runtime.RoleConfig", "a role",
	"[]runtime.ClientConfig", "a list of clients",
	"runtime.ClientConfig", "a client",
	"map[string]runtime.GroupEntry", "a map of groups",
	"runtime.GroupEntry", "a group",
	"runtime.TLSFiles", "tls",
	"map[string]string", "a map",
	"[]string", "a list",
)

var unknownField = regexp.MustCompile(`^field (\S+) not found in type (.*)$`)

// yamlErrors turns the YAML decoder's errors into ConfigErrors with their lines.
func yamlErrors(file string, err error) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var out []error
	for _, m := range msgs {
		e := &ConfigError{File: file, Msg: m}
		if g := yamlLine.FindStringSubmatch(m); g != nil {
			e.Line, _ = strconv.Atoi(g[1])
			e.Msg = g[2]
		}
		if g := unknownField.FindStringSubmatch(e.Msg); g != nil {
			e.Msg = fmt.Sprintf("unknown key %q in %s", g[1], g[2])
		}
		e.Msg = yamlTypes.Replace(e.Msg)
		out = append(out, e)
	}
	return errors.Join(out...)
}

// nodeLines maps the path of every key and list entry ("core.routes.b1.example",
// "roles[2]", "roles[2].sip") to its line.
func nodeLines(doc *yaml.Node) map[string]int {
	lines := map[string]int{}
	var walk func(path string, n *yaml.Node)
	walk = func(path string, n *yaml.Node) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(path, c)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := n.Content[i].Value
				if path != "" {
					p = path + "." + p
				}
				lines[p] = n.Content[i].Line
				walk(p, n.Content[i+1])
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := path + "[" + strconv.Itoa(i) + "]"
				lines[p] = c.Line
				walk(p, c)
			}
		}
	}
	walk("", doc)
	return lines
}

// problems collects a check's errors, each at the line of the path it concerns.
type problems struct {
	c    *ServeConfig
	errs []*ConfigError
}

func (p *problems) at(path, format string, args ...any) {
	line := 0
	for q := path; q != "" && line == 0; {
		if l, ok := p.c.lines[q]; ok {
			line = l
			break
		}
		// Not in the file (a missing key): try the entry that holds it.
		i := strings.LastIndexAny(q, ".[")
		if i < 0 {
			break
		}
		q = q[:i]
	}
	p.errs = append(p.errs, &ConfigError{File: p.c.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].Line < p.errs[j].Line })
	out := make([]error, len(p.errs))
	for i, e := range p.errs {
		out[i] = e
	}
	return errors.Join(out...)
}

// loopbackAddr splits a listen address that must be on loopback.
func loopbackAddr(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port", addr)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return "", 0, fmt.Errorf("%q: cpmlink binds loopback addresses only (127.0.0.0/8, ::1)", addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("%q: bad port", addr)
	}
	return host, p, nil
}

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
	if c.Transport != "" && c.Transport != "udp" && c.Transport != "tcp" {
		p.at("transport", "transport %q: udp or tcp", c.Transport)
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

	// Fixed addresses must not collide: each is bound by exactly one instance.
	bound := map[string]string{}
	fixed := func(path, what, addr string) {
		host, port, err := loopbackAddr(addr)
		if err != nil || port == 0 {
			return
		}
		key := net.JoinHostPort(net.ParseIP(host).String(), strconv.Itoa(port))
		if prev, ok := bound[key]; ok {
			p.at(path, "%s %s is already used by %s", what, addr, prev)
			return
		}
		bound[key] = what
	}
	// listen checks a listen address; servers need fixed ports.
	listen := func(path, what, addr string, server bool) (string, bool) {
		if addr == "" {
			p.at(path, "%s: an address is required", what)
			return "", false
		}
		host, port, err := loopbackAddr(addr)
		if err != nil {
			p.at(path, "%s: %v", what, err)
			return "", false
		}
		if server && port == 0 {
			p.at(path, "%s %s: a fixed port is required, since others must find it", what, addr)
		}
		fixed(path, what, addr)
		return host, true
	}

	if c.Core != nil {
		listen("core.listen", "core.listen", c.Core.Listen, true)
		switch {
		case c.SIPCore == "":
			c.SIPCore = c.Core.Listen
		case c.SIPCore != c.Core.Listen:
			p.at("sip-core", "sip-core %s differs from core.listen %s: with a core section, leave sip-core out", c.SIPCore, c.Core.Listen)
		}
	} else if c.SIPCore == "" {
		p.at("sip-core", "sip-core is required when there is no core section (the external SIP/IP core's host:port)")
	} else if _, port, err := loopbackAddr(c.SIPCore); err != nil {
		p.at("sip-core", "sip-core: %v", err)
	} else if port == 0 {
		p.at("sip-core", "sip-core %s: a fixed port is required", c.SIPCore)
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
	hostsAgree := func(path, what, sipHost, msrpHost string) {
		// One NodeConfig.Host carries both: a split would silently bind the other host.
		if sipHost != "" && msrpHost != "" && !net.ParseIP(sipHost).Equal(net.ParseIP(msrpHost)) {
			p.at(path, "%s: sip and msrp must be on the same loopback host (%s, %s)", what, sipHost, msrpHost)
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
		sh, _ := listen(path+".sip", what+": sip", r.SIP, true)
		mh, _ := listen(path+".msrp", what+": msrp", r.MSRP, true)
		hostsAgree(path, what, sh, mh)
		c.certCovers(p, path+".msrp", what, mh)
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
		if ok {
			// A client binds on its PF's host unless told otherwise.
			host, _, _ := net.SplitHostPort(pf.SIP)
			if cl.SIP == "" {
				cl.SIP = net.JoinHostPort(host, "0")
			}
			if cl.MSRP == "" {
				cl.MSRP = net.JoinHostPort(host, "0")
			}
		}
		if ok || cl.SIP != "" || cl.MSRP != "" {
			sh, _ := listen(path+".sip", what+": sip", cl.SIP, false)
			mh, _ := listen(path+".msrp", what+": msrp", cl.MSRP, false)
			hostsAgree(path, what, sh, mh)
			c.certCovers(p, path+".msrp", what, mh)
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
	return p.err()
}

// loadTLS reads the TLS files, and checks that the CA accepts the certificate: otherwise
// every handshake would fail, and only once a message is sent.
func (c *ServeConfig) loadTLS(p *problems) *tls.Config {
	path := func(f string) string {
		if f == "" || filepath.IsAbs(f) || c.file == "" {
			return f
		}
		return filepath.Join(filepath.Dir(c.file), f)
	}
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

// certCovers checks that the TLS certificate names an instance's MSRP host, which its
// peers dial and verify by IP.
func (c *ServeConfig) certCovers(p *problems, path, what, host string) {
	if c.tls == nil || host == "" {
		return
	}
	if err := c.tls.Certificates[0].Leaf.VerifyHostname(host); err != nil {
		p.at(path, "%s: tls.cert does not name its msrp host: %v", what, err)
	}
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

// roleAt finds a role by name or by sip address.
func (c *ServeConfig) roleAt(v string) *RoleConfig {
	for i := range c.Roles {
		if c.Roles[i].Name == v || c.Roles[i].SIP == v {
			return &c.Roles[i]
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ParseSize reads "2MB", "512KiB", "100000": K, M, G are powers of 1024.
func ParseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GIB", 1 << 30}, {"GB", 1 << 30}, {"G", 1 << 30}, {"MIB", 1 << 20}, {"MB", 1 << 20}, {"M", 1 << 20},
		{"KIB", 1 << 10}, {"KB", 1 << 10}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

func (c *ServeConfig) chunkSize() (int, error) {
	if c.ChunkSize == "" {
		return 0, nil
	}
	n, err := ParseSize(c.ChunkSize)
	if err != nil || n < 1 || n > 1<<20 {
		return 0, fmt.Errorf("chunk-size %q: between 1 byte and 1 MiB", c.ChunkSize)
	}
	return int(n), nil
}

func (c *ServeConfig) guard() (time.Duration, error) {
	if c.Guard == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(c.Guard)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("guard %q: a positive duration such as 32s", c.Guard)
	}
	return d, nil
}

// ErrUnknownInstance is returned by Serve for a name the configuration does not define.
var ErrUnknownInstance = errors.New("runtime: no such instance")

// Instance describes one started instance of a deployment, for its operator.
type Instance struct {
	Name string
	// Role is "core" or the role's kind (PFA, CF, PFB, ClientA, ClientB).
	Role string
	URI  string
	// SIP is the SIP address (UDP and TCP); MSRP is empty for the core.
	SIP, MSRP string
	// TLS says that its MSRP is msrps.
	TLS bool
	// Routes are the core's resolved routes: domain to SIP address.
	Routes map[string]string
}

// MSRPScheme is the scheme of the deployment's MSRP URIs: msrps with TLS, msrp without.
func (c *ServeConfig) MSRPScheme() string {
	if c.TLS != nil {
		return "msrps"
	}
	return "msrp"
}

// ServeOptions are what a process adds to a configuration.
type ServeOptions struct {
	// Trace receives the records of every instance started, if not nil.
	Trace *Tracer
	// Logger is quiet by default.
	Logger *slog.Logger
}

// Served is the part of a deployment one process runs.
type Served struct {
	core      *sipx.Proxy
	nodes     []*Node
	instances []Instance
}

// Serve starts what a configuration describes: every server role and the core, or only
// the named ones ("core" is the SIP/IP core). Clients are not served: `cpmlink send` and
// `cpmlink recv` run them (StartClient). The listeners live until Close or until ctx
// ends, so a caller that drains sessions on a signal passes a ctx the signal does not end.
func Serve(ctx context.Context, c *ServeConfig, only []string, opts ServeOptions) (_ *Served, err error) {
	if err := c.check(); err != nil {
		return nil, err
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
	if c.Core != nil && (all || want["core"]) {
		host, port, _ := loopbackAddr(c.Core.Listen)
		routes := map[string]string{}
		for d, to := range c.Core.Routes {
			routes[strings.ToLower(d)] = c.roleAt(to).SIP
		}
		s.core, err = sipx.StartProxy(ctx, sipx.ProxyConfig{Host: host, UDPPort: port, TCPPort: port, Routes: routes, Logger: opts.Logger})
		if err != nil {
			return nil, fmt.Errorf("runtime: starting the core: %w", err)
		}
		s.instances = append(s.instances, Instance{Name: "core", Role: "core", SIP: s.core.UDPAddr(), Routes: routes})
	}
	for _, r := range c.Roles {
		if !all && !want[r.Name] {
			continue
		}
		kind, _ := roleKind(r.Role)
		host, sport, _ := loopbackAddr(r.SIP)
		_, mport, _ := loopbackAddr(r.MSRP)
		groups := map[string]core.Group{}
		for uri, g := range r.Groups {
			groups[uri] = core.Group{Members: g.Members, Senders: g.Senders}
		}
		n, err := StartNode(ctx, NodeConfig{Kind: kind, Name: r.Name, URI: r.URI, Host: host, SIPPort: sport, MSRPPort: mport,
			Variant: v, Proxy: c.SIPCore, Transport: c.Transport, Groups: groups, ChunkSize: chunk, Guard: guard,
			TLS: c.tls, Trace: opts.Trace, Logger: opts.Logger})
		if err != nil {
			return nil, fmt.Errorf("runtime: starting %s: %w", r.Name, err)
		}
		s.nodes = append(s.nodes, n)
		s.instances = append(s.instances, Instance{Name: r.Name, Role: kind.String(), URI: r.URI, SIP: n.SIPAddr(), MSRP: n.MSRPAddr(), TLS: c.tls != nil})
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

// ClientOptions are what a process adds to a client's configuration entry.
type ClientOptions struct {
	// StoreDir is where a receiver writes what it receives.
	StoreDir string
	Trace    *Tracer
	Logger   *slog.Logger
}

// ErrNotClient is returned by StartClient for a URI that is not a client of the
// configuration.
var ErrNotClient = errors.New("runtime: not a client of the configuration")

// StartClient starts the client with that URI: a transmitter (ClientA) if it registers
// with a PF-A, a receiver (ClientB) if with a PF-B. It does not register; the caller does
// (Node.Register), and keeps the registration fresh.
func (c *ServeConfig) StartClient(ctx context.Context, uri string, opts ClientOptions) (*Node, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	cl := c.client(uri)
	if cl == nil || cl.URI != uri {
		var have []string
		for _, x := range c.Clients {
			have = append(have, x.URI)
		}
		return nil, fmt.Errorf("%w: %s (the clients are %s)", ErrNotClient, uri, strings.Join(have, ", "))
	}
	pf := c.roleAt(cl.PF)
	kind := fsm.RoleClientB
	if k, _ := roleKind(pf.Role); k == fsm.RolePFA {
		kind = fsm.RoleClientA
	}
	v, _ := fsm.VariantByName(c.Variant)
	chunk, _ := c.chunkSize()
	guard, _ := c.guard()
	host, sport, _ := loopbackAddr(cl.SIP)
	_, mport, _ := loopbackAddr(cl.MSRP)
	return StartNode(ctx, NodeConfig{Kind: kind, Name: cl.Name, URI: cl.URI, Host: host, SIPPort: sport, MSRPPort: mport,
		Variant: v, Proxy: c.SIPCore, Transport: c.Transport, OriginatingPF: pf.SIP, StoreDir: opts.StoreDir,
		ChunkSize: chunk, Guard: guard, TLS: c.tls, Trace: opts.Trace, Logger: opts.Logger})
}

// ClientPF returns the name of the role a client registers with.
func (c *ServeConfig) ClientPF(uri string) (string, bool) {
	if cl := c.client(uri); cl != nil && cl.URI == uri {
		return cl.PF, true
	}
	return "", false
}

// GroupMembers returns the members of a pre-defined group of the deployment's CFs.
func (c *ServeConfig) GroupMembers(group string) ([]string, bool) {
	for _, r := range c.Roles {
		if g, ok := r.Groups[group]; ok {
			return g.Members, true
		}
	}
	return nil, false
}

// AdHocTarget is where a transmitter sends an ad-hoc group (RFC 5366): the URI of the
// deployment's CF, which needs to be the only one.
func (c *ServeConfig) AdHocTarget() (string, error) {
	var cfs []string
	for _, r := range c.Roles {
		if k, _ := roleKind(r.Role); k == fsm.RoleCF {
			cfs = append(cfs, r.URI)
		}
	}
	if len(cfs) != 1 {
		return "", fmt.Errorf("runtime: an ad-hoc group goes to the deployment's CF, and it has %d", len(cfs))
	}
	return cfs[0], nil
}
