package deploy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ServeConfig describes a whole deployment in one file: the SIP/IP core, the server roles
// (PF-A, CF, PF-B) that `cpmlink serve` runs, and the clients that `cpmlink send` and
// `cpmlink recv` run, each at the address it binds and the one it advertises, all on one
// variant of the spec. See docs/deploy.md and docs/deploy.yaml.
type ServeConfig struct {
	// Variant is a named variant of the spec (fsm.Variants); every instance runs it.
	Variant string `yaml:"variant"`
	// Transport is the SIP transport of requests: udp (default), tcp or tls. With tls
	// (RFC 5630: sip: URIs over TLS, RFC 3261 §26) the tls section is required, every role
	// listens for SIP over TLS at its sip-tls, the core at listen-tls, and sip-core is a
	// TLS address.
	Transport string `yaml:"transport"`
	// SIPCore is where every instance sends SIP, as host:port; the host may be a name
	// (hosts, then DNS). With a core section it defaults to the core's advertised address
	// (and may only repeat it or core.listen); without one it names an external proxy.
	SIPCore string `yaml:"sip-core"`
	// Hosts is a static table of host names to IP addresses, consulted before DNS for
	// every name in advertise and sip-core; the first address of an entry is what an
	// instance advertises, and SIP next hops take them all in order (RFC 3263 §4.3).
	Hosts map[string][]string `yaml:"hosts"`
	// DNS lets the names hosts lacks resolve through DNS (A/AAAA, and SRV for SIP, RFC
	// 3263). Off by default: a deployment on IPs and its hosts table sends no DNS query,
	// and a name outside the table is an error of the file.
	DNS bool `yaml:"dns"`
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
	// without a TLS configuration. It is also what SIP over TLS serves and verifies with
	// (sip-tls, core.listen-tls, transport tls).
	TLS *TLSFiles `yaml:"tls"`
	// TrustedHosts are the IPs and CIDR prefixes of the RFC 3325 trust domain: the nodes
	// whose P-Asserted-Identity the core and the server roles believe. Left out, it is the
	// addresses of the core (or sip-core) and of every server role, bound and advertised,
	// so that a deployment forms a trust domain by default; an empty list turns it off
	// (every identity is then taken on trust). See trustedHosts.
	TrustedHosts []string `yaml:"trusted-hosts"`
	// StateDir holds each PF's location store, <state-dir>/<role name>.db, so that
	// registrations survive a restart; relative to the configuration file's directory.
	// Default: <config file without its extension>.state next to it.
	StateDir string `yaml:"state-dir"`
	// MSRPLimits bound what peers may hold of every instance's MSRP side; a role's own
	// msrp-limits override it field by field.
	MSRPLimits *MSRPLimitsConfig `yaml:"msrp-limits"`

	// file names the source in errors; lines maps a path ("roles[2].sip") to its line.
	file  string
	lines map[string]int
	// tls is TLS loaded (by check).
	tls *tls.Config
	// trustOff says that trusted-hosts is an empty list: no trust domain (by check).
	trustOff bool
	// lookup resolves a name the hosts table lacks; nil is the system's DNS resolver.
	lookup func(ctx context.Context, host string) ([]net.IPAddr, error)
}

// TLSFiles are the PEM files of a deployment's msrps, relative to the configuration
// file's directory unless absolute.
type TLSFiles struct {
	// Cert and Key are the certificate chain and private key every instance serves
	// msrps and SIP over TLS with; the certificate must name, as an IP address, every
	// address an instance advertises, since peers dial and verify the IP in a=path and
	// Contact, and, with SIP over TLS, as a DNS name every name the core and the roles
	// advertise, since SIP peers located by name verify the name (RFC 5922 §4.1).
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// CA holds the certificates an instance trusts when it dials a peer.
	CA string `yaml:"ca"`
}

// CoreConfig is the embedded SIP/IP core: where it listens and its routing table.
type CoreConfig struct {
	// Listen is the core's UDP and TCP bind address (an IP, or a wildcard); the port must
	// be fixed.
	Listen string `yaml:"listen"`
	// Advertise is the host (IP or name) put in the core's Via and Record-Route and that
	// the instances send to; default the listen IP, required when that is a wildcard.
	Advertise string `yaml:"advertise"`
	// ListenTLS is the core's SIP over TLS bind address (same IP as listen, a port of
	// its own); required with transport tls.
	ListenTLS string `yaml:"listen-tls"`
	// Names are more host names the core is known by (its advertise, when a name, is one
	// already): a Route naming one of them names the core itself (RFC 3261 §16.4).
	Names []string `yaml:"names"`
	// Routes maps a Request-URI domain to the server role serving it, named by its name
	// or by its sip address (bound or advertised).
	Routes map[string]string `yaml:"routes"`
	// MetricsListen is where a process serving the core offers /metrics, /healthz and
	// /readyz (docs/operations.md), as IP:port; "" for nowhere (unless --metrics-listen).
	MetricsListen string `yaml:"metrics-listen"`
}

// RoleConfig is one server instance of a deployment.
type RoleConfig struct {
	// Name names the instance in traces, in `serve --role` and in the clients' pf.
	Name string `yaml:"name"`
	// Role is pfa, cf or pfb.
	Role string `yaml:"role"`
	// URI is the instance's SIP identity ("sip:cf@cf.example").
	URI string `yaml:"uri"`
	// SIP and MSRP are its bind addresses: one IP (or a wildcard) for both, fixed ports,
	// since the core and the clients must find them.
	SIP  string `yaml:"sip"`
	MSRP string `yaml:"msrp"`
	// SIPTLS is its SIP over TLS bind address (the IP of sip, a port of its own): required
	// with transport tls, allowed with a tls section.
	SIPTLS string `yaml:"sip-tls"`
	// Advertise is the host (IP or name) peers reach it at: in its SIP Via and Contact
	// and its SDP c= and a=path. It defaults to the bound IP, and is required when that
	// is a wildcard.
	Advertise string `yaml:"advertise"`
	// Groups are a CF's pre-defined groups, by group URI; only a CF has them.
	Groups map[string]GroupEntry `yaml:"groups"`
	// Auth, on a PF, turns on SIP digest authentication of its clients (REGISTER, and at
	// a PF-A every INVITE).
	Auth *AuthEntry `yaml:"auth"`
	// MaxContacts caps a PF's bindings per address of record (default 10, -1: no cap);
	// ContactsPolicy says what a REGISTER over it gets: refuse (403, a PF-B's default) or
	// overwrite (the oldest binding goes, a PF-A's default).
	MaxContacts    int    `yaml:"max-contacts"`
	ContactsPolicy string `yaml:"contacts-policy"`
	// MSRPLimits overrides the deployment's msrp-limits for this role, field by field.
	MSRPLimits *MSRPLimitsConfig `yaml:"msrp-limits"`
	// MetricsListen is where a process serving this role offers /metrics, /healthz and
	// /readyz, as IP:port; the instances one process serves must agree on it.
	MetricsListen string `yaml:"metrics-listen"`
}

// AuthEntry is a PF's digest authentication (RFC 3261 §22, RFC 8760).
type AuthEntry struct {
	// Realm is the protection domain of its challenges; default the domain of its uri.
	Realm string `yaml:"realm"`
	// Credentials is the credentials file (sipx.ParseCredentials: one user a line),
	// relative to the configuration file's directory. Only the processes that serve the
	// PF read it: a client's host does not need the PF's secrets.
	Credentials string `yaml:"credentials"`
	// NonceTTL is how long a nonce stays good, as "5m" (default 5 minutes).
	NonceTTL string `yaml:"nonce-ttl"`
	// Algorithms are the digest algorithms challenged with, one challenge each, preferred
	// first (RFC 8760 §2.4); default [SHA-256, MD5]. [MD5] serves clients that read only
	// the first challenge and know only MD5 (SIPp 3.6, older phones).
	Algorithms []string `yaml:"algorithms"`
}

// MSRPLimitsConfig is runtime.MSRPLimits as the file spells it; a field left out takes
// runtime/msrp's default, -1 removes a count's bound.
type MSRPLimitsConfig struct {
	MaxConns          int    `yaml:"max-conns"`
	MaxConnsPerHost   int    `yaml:"max-conns-per-host"`
	FirstFrameTimeout string `yaml:"first-frame-timeout"`
	MaxSessions       int    `yaml:"max-sessions"`
	MaxHeaderBytes    string `yaml:"max-header-bytes"`
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
	// SIP and MSRP are its bind addresses; port 0 chooses a free port, and both default
	// to its PF's bind IP with port 0.
	SIP  string `yaml:"sip"`
	MSRP string `yaml:"msrp"`
	// SIPTLS is its SIP over TLS bind address; with transport tls it defaults to the IP
	// of sip with port 0.
	SIPTLS string `yaml:"sip-tls"`
	// Advertise is as a role's; with sip and msrp left to their defaults it defaults to
	// its PF's.
	Advertise string `yaml:"advertise"`
	// User is the client's username in its PF's credentials file; default the user part
	// of its URI. The password is never in this file (cpmlink send/recv --password-file).
	User string `yaml:"user"`
}

// ErrConfig is wrapped by every error about the content of a configuration.
var ErrConfig = errors.New("deploy: bad configuration")

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
		return nil, fmt.Errorf("deploy: reading the configuration: %w", err)
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
	"deploy.ServeConfig", "the top level",
	"deploy.CoreConfig", "core",
	"[]deploy.RoleConfig", "a list of roles",
	"deploy.RoleConfig", "a role",
	"[]deploy.ClientConfig", "a list of clients",
	"deploy.ClientConfig", "a client",
	"map[string]deploy.GroupEntry", "a map of groups",
	"deploy.GroupEntry", "a group",
	"deploy.TLSFiles", "tls",
	"deploy.AuthEntry", "auth",
	"deploy.MSRPLimitsConfig", "msrp-limits",
	"map[string][]string", "a map of names to address lists",
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

// ErrSize is wrapped by ParseSize's errors.
var ErrSize = errors.New("deploy: bad size")

// SizeForms says how a size is written; every refusal of a size quotes it.
const SizeForms = "a number of bytes, or one with a unit: kB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024), e.g. 2MB or 64KiB"

// sizeUnits are the units ParseSize takes, matched without regard to case: the decimal
// ones are SI's, the binary ones IEC 80000-13's. A bare K, M or G is refused, since it
// is read both ways.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}

// ParseSize reads "2MB" (2,000,000 bytes), "64KiB" (65,536 bytes) or "100000" (bytes).
func ParseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n < 0 || n > (1<<63-1)/mult {
		return 0, fmt.Errorf("%w %q: %s", ErrSize, s, SizeForms)
	}
	return n * mult, nil
}

// FormatSize writes n as ParseSize reads it back, in the largest unit that divides it,
// binary units first: 2MiB, 2MB, 64KiB, 1500B.
func FormatSize(n int64) string {
	if n > 0 {
		for _, u := range []struct {
			name string
			mult int64
		}{{"GiB", 1 << 30}, {"GB", 1e9}, {"MiB", 1 << 20}, {"MB", 1e6}, {"KiB", 1 << 10}, {"kB", 1e3}} {
			if n%u.mult == 0 {
				return strconv.FormatInt(n/u.mult, 10) + u.name
			}
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

func (c *ServeConfig) chunkSize() (int, error) {
	if c.ChunkSize == "" {
		return 0, nil
	}
	n, err := ParseSize(c.ChunkSize)
	if err != nil {
		return 0, fmt.Errorf("chunk-size %q: %s", c.ChunkSize, SizeForms)
	}
	if n < 1 || n > 1<<20 {
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

// MSRPScheme is the scheme of the deployment's MSRP URIs: msrps with TLS, msrp without.
func (c *ServeConfig) MSRPScheme() string {
	if c.TLS != nil {
		return "msrps"
	}
	return "msrp"
}
