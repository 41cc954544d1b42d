package deploy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/runtime"
	"github.com/cpmlink/cpmlink/runtime/sipx"
)

// Trusted identity and registrations that survive a restart, as the file spells them
// (docs/deploy.md, "Identity, registrations and limits"; the limits are in limits.go):
// check validates what can be validated without secrets; Serve loads a PF's credentials
// file only in the process that serves the PF, so that a client's host never needs the
// PF's secrets.

// ErrNoPassword is returned by StartClient for a client whose PF authenticates its
// clients when no password was given.
var ErrNoPassword = errors.New("deploy: a password is required")

// parseTrusted reads a trusted-hosts entry: an IP or a CIDR prefix.
func parseTrusted(s string) (netip.Prefix, error) {
	t := strings.Trim(strings.TrimSpace(s), "[]")
	if p, err := netip.ParsePrefix(t); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(t)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or a CIDR prefix (names are not allowed: a trust domain is where packets come from)", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// trustDomain says whether the deployment has an RFC 3325 trust domain: on unless
// trusted-hosts is an empty list.
func (c *ServeConfig) trustDomain() bool { return !c.trustOff }

// checkIdentity checks trusted-hosts, every role's auth, max-contacts, contacts-policy and
// msrp-limits, and every client's user.
func (c *ServeConfig) checkIdentity(p *problems, roles map[string]*RoleConfig) {
	_, set := c.lines["trusted-hosts"]
	c.trustOff = set && len(c.TrustedHosts) == 0
	for i, h := range c.TrustedHosts {
		if _, err := parseTrusted(h); err != nil {
			p.at(fmt.Sprintf("trusted-hosts[%d]", i), "trusted-hosts: %v", err)
		}
	}
	c.checkLimits(p, "msrp-limits", c.MSRPLimits)
	for i := range c.Roles {
		r := &c.Roles[i]
		path := fmt.Sprintf("roles[%d]", i)
		what := fmt.Sprintf("%s (%s)", path, r.Name)
		kind, ok := roleKind(r.Role)
		pf := kind == fsm.RolePFA || kind == fsm.RolePFB
		c.checkLimits(p, path+".msrp-limits", r.MSRPLimits)
		if ok && !pf {
			for _, k := range []struct {
				key string
				set bool
			}{{"auth", r.Auth != nil}, {"max-contacts", r.MaxContacts != 0}, {"contacts-policy", r.ContactsPolicy != ""}} {
				if k.set {
					p.at(path+"."+k.key, "%s: %s is a PF's: a %s has no users and no registrations", what, k.key, r.Role)
				}
			}
			continue
		}
		if r.MaxContacts < -1 {
			p.at(path+".max-contacts", "%s: max-contacts %d: a positive number, or -1 for no cap", what, r.MaxContacts)
		}
		switch r.ContactsPolicy {
		case "", "refuse", "overwrite":
		default:
			p.at(path+".contacts-policy", "%s: contacts-policy %q: refuse or overwrite", what, r.ContactsPolicy)
		}
		if a := r.Auth; a != nil {
			if a.Credentials == "" {
				p.at(path+".auth", "%s: auth.credentials is required (the credentials file, one user a line: see docs/deploy.md)", what)
			}
			if a.Realm == "" {
				// RFC 3261 §22.1: the realm is usually the domain the server serves.
				a.Realm, _ = sipDomain(r.URI)
			} else if strings.ContainsAny(a.Realm, "\"\\ \t:") {
				p.at(path+".auth.realm", "%s: auth.realm %q: no quotes, backslashes, ':' or white space", what, a.Realm)
			}
			if a.NonceTTL != "" {
				if d, err := time.ParseDuration(a.NonceTTL); err != nil || d <= 0 {
					p.at(path+".auth.nonce-ttl", "%s: auth.nonce-ttl %q: a positive duration such as 5m", what, a.NonceTTL)
				}
			}
			seen := map[string]bool{}
			for _, alg := range a.Algorithms {
				// RFC 8760 §2.1: the algorithms SIP digest defines; each offered once.
				u := strings.ToUpper(alg)
				if (u != sipx.AlgSHA256 && u != sipx.AlgMD5) || seen[u] {
					p.at(path+".auth.algorithms", "%s: auth.algorithms %q: SHA-256 and MD5, each at most once, preferred first", what, a.Algorithms)
					break
				}
				seen[u] = true
			}
		} else if ok && kind == fsm.RolePFA && c.trustDomain() {
			// RFC 3325 §4: the first node of the trust domain asserts the identity it
			// authenticated; a PF-A that authenticates nobody can assert nothing, and
			// every INVITE of its clients would be refused 403 further on.
			p.at(path, "%s: a PF-A in a trust domain must authenticate its clients: add auth (credentials: FILE), or set trusted-hosts: [] to run without a trust domain (every client's identity is then taken on trust)", what)
		}
	}
	for i := range c.Clients {
		cl := &c.Clients[i]
		if cl.User == "" {
			continue
		}
		path := fmt.Sprintf("clients[%d]", i)
		if strings.ContainsAny(cl.User, ": \t\"") {
			p.at(path+".user", "%s (%s): user %q: no ':', '\"' or white space", path, cl.URI, cl.User)
		}
		if pf := roles[cl.PF]; pf != nil && pf.Auth == nil {
			p.at(path+".user", "%s (%s): user names an entry of its PF's credentials, and %s has no auth", path, cl.URI, pf.Name)
		}
	}
}

// relPath makes a path of the file relative to the configuration file's directory.
func (c *ServeConfig) relPath(f string) string {
	if f == "" || filepath.IsAbs(f) || c.file == "" {
		return f
	}
	return filepath.Join(filepath.Dir(c.file), f)
}

// stateDir is where the PFs keep their location stores: state-dir, or the configuration
// file's name without its extension and with ".state", next to it. Keyed to the file, so
// that two deployments on one machine never share a store, and found again by the next
// process that serves the same file.
func (c *ServeConfig) stateDir() string {
	if c.StateDir != "" {
		return c.relPath(c.StateDir)
	}
	base := filepath.Base(c.file)
	if base == "." || base == string(filepath.Separator) || base == "" {
		base = "cpmlink.yaml"
	}
	return filepath.Join(filepath.Dir(c.file), strings.TrimSuffix(base, filepath.Ext(base))+".state")
}

// credentialsLine finds the line sipx.ParseCredentials names in its errors.
var credentialsLine = regexp.MustCompile(`credentials line (\d+): `)

// loadAuth reads the credentials file of every PF named in want (all of them when want
// is empty) and checks every client of those PFs against it: a user entry in the realm
// whose AOR is the client's URI. All problems are reported at once, each at its line.
func (c *ServeConfig) loadAuth(want map[string]bool) (map[string]*sipx.AuthConfig, error) {
	p := &problems{c: c}
	out := map[string]*sipx.AuthConfig{}
	for i := range c.Roles {
		r := &c.Roles[i]
		if r.Auth == nil || len(want) > 0 && !want[r.Name] {
			continue
		}
		path := fmt.Sprintf("roles[%d].auth.credentials", i)
		what := fmt.Sprintf("roles[%d] (%s)", i, r.Name)
		f := c.relPath(r.Auth.Credentials)
		b, err := os.ReadFile(f)
		if err != nil {
			p.at(path, "%s: auth.credentials: %v", what, err)
			continue
		}
		creds, err := sipx.ParseCredentials(strings.NewReader(string(b)))
		if err != nil {
			msg := err.Error()
			where := r.Auth.Credentials
			if g := credentialsLine.FindStringSubmatchIndex(msg); g != nil {
				where += ":" + msg[g[2]:g[3]]
				msg = msg[:g[0]] + msg[g[1]:]
			}
			msg = strings.TrimPrefix(strings.ReplaceAll(msg, sipx.ErrConfig.Error()+": ", ""), ": ")
			p.at(path, "%s: auth.credentials: %s: %s", what, where, msg)
			continue
		}
		ttl, _ := time.ParseDuration(r.Auth.NonceTTL)
		algs := append([]string(nil), r.Auth.Algorithms...) // sipx normalises in place
		out[r.Name] = &sipx.AuthConfig{Realm: r.Auth.Realm, Credentials: creds, NonceTTL: ttl, Algorithms: algs}
		for j, cl := range c.Clients {
			if cl.PF != r.Name {
				continue
			}
			user, cpath := clientUser(cl), fmt.Sprintf("clients[%d]", j)
			if cl.User != "" {
				cpath += ".user"
			}
			switch known, ok := creds.Permits(user, r.Auth.Realm, cl.URI); {
			case !known:
				p.at(cpath, "clients[%d] (%s): %s has no user %q in realm %s (add one, or name its entry with clients[%d].user)", j, cl.URI, r.Auth.Credentials, user, r.Auth.Realm, j)
			case !ok:
				p.at(cpath, "clients[%d] (%s): user %q of %s may not act as %s (its aor= differs): %s would refuse it 403", j, cl.URI, user, r.Auth.Credentials, cl.URI, r.Name)
			}
		}
	}
	return out, p.err()
}

// clientUser is a client's username: its user, else the user part of its URI.
func clientUser(cl ClientConfig) string {
	if cl.User != "" {
		return cl.User
	}
	u, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(cl.URI, "sips:"), "sip:"), "@")
	return u
}

// trustedHosts is the trust domain the core and the server roles are given: nil when
// off, trusted-hosts when set, else every server-side address of the deployment — the
// core's (or the external sip-core's) and every role's, advertised (names resolved) and
// bound (unless a wildcard), since a packet from a role comes from the one or the other
// depending on NAT. Clients are not in it unless they share a server's address.
func (c *ServeConfig) trustedHosts(ctx context.Context) ([]string, error) {
	if !c.trustDomain() {
		return nil, nil
	}
	if len(c.TrustedHosts) > 0 {
		return c.TrustedHosts, nil
	}
	seen := map[string]bool{}
	var out []string
	add := func(ip string) {
		if ip != "" && !seen[ip] {
			seen[ip] = true
			out = append(out, ip)
		}
	}
	host := func(bind net.IP, advertise string) error {
		if bind != nil && !bind.IsUnspecified() {
			add(bind.String())
		}
		if h := reach(bind, advertise); h != "" {
			ip, err := c.resolve(ctx, h)
			if err != nil {
				return err
			}
			add(ip)
		}
		return nil
	}
	if c.Core != nil {
		ip, _, _ := bindAddr(c.Core.Listen)
		if err := host(ip, c.Core.Advertise); err != nil {
			return nil, fmt.Errorf("core: %w", err)
		}
	}
	if h, _, err := net.SplitHostPort(c.SIPCore); err == nil {
		ip, err := c.resolve(ctx, h)
		if err != nil {
			return nil, fmt.Errorf("sip-core: %w", err)
		}
		add(ip)
	}
	for _, r := range c.Roles {
		ip, _, _ := bindAddr(r.SIP)
		if err := host(ip, r.Advertise); err != nil {
			return nil, fmt.Errorf("%s: %w", r.Name, err)
		}
	}
	return out, nil
}

// locationStore is a PF's location store file.
func (c *ServeConfig) locationStore(name string) string {
	return filepath.Join(c.stateDir(), name+".db")
}

// pfOptions are the NodeConfig fields of a PF's registrar and identity.
func (c *ServeConfig) pfOptions(r RoleConfig, auth map[string]*sipx.AuthConfig, nc *runtime.NodeConfig) error {
	kind, _ := roleKind(r.Role)
	if kind != fsm.RolePFA && kind != fsm.RolePFB {
		return nil
	}
	nc.Auth = auth[r.Name]
	nc.MaxContacts, nc.ContactsPolicy = r.MaxContacts, r.ContactsPolicy
	dir := c.stateDir()
	// Private: the store holds who is registered where.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state-dir: %w", err)
	}
	nc.LocationStore = c.locationStore(r.Name)
	return nil
}

// ClientAuth says whether the client's PF authenticates its clients, and the username
// the client answers its challenges with.
func (c *ServeConfig) ClientAuth(uri string) (user string, on bool) {
	cl := c.client(uri)
	if cl == nil || cl.URI != uri {
		return "", false
	}
	pf := c.roleAt(cl.PF)
	return clientUser(*cl), pf != nil && pf.Auth != nil
}
