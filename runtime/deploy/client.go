package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/runtime"
)

// ClientOptions are what a process adds to a client's configuration entry.
type ClientOptions struct {
	// StoreDir is where a receiver writes what it receives.
	StoreDir string
	// Password answers the PF's digest challenges when its PF has auth (the username is
	// the client's user, by default its URI's user part). Never from the configuration
	// file: cpmlink send and recv read it from --password-file or CPMLINK_PASSWORD.
	Password string
	Trace    *runtime.Tracer
	Logger   *slog.Logger
}

// ErrNotClient is returned by StartClient for a URI that is not a client of the
// configuration.
var ErrNotClient = errors.New("deploy: not a client of the configuration")

// StartClient starts the client with that URI: a transmitter (ClientA) if it registers
// with a PF-A, a receiver (ClientB) if with a PF-B. It does not register; the caller does
// (Node.Register), and keeps the registration fresh.
func (c *ServeConfig) StartClient(ctx context.Context, uri string, opts ClientOptions) (*runtime.Node, error) {
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
	user, authOn := c.ClientAuth(uri)
	if authOn && opts.Password == "" {
		return nil, fmt.Errorf("%w: %s: its pf %s authenticates its clients (auth), as user %q", ErrNoPassword, uri, pf.Name, user)
	}
	password := opts.Password
	if !authOn {
		// Nothing to answer: a PF without auth never challenges.
		user, password = "", ""
	}
	v, _ := fsm.VariantByName(c.Variant)
	chunk, _ := c.chunkSize()
	guard, _ := c.guard()
	a, err := c.addrsOf(ctx, cl.SIP, cl.MSRP, cl.Advertise)
	if err != nil {
		return nil, fmt.Errorf("deploy: %s: %w", cl.URI, err)
	}
	// sip-core and the PF as the client names them (nextHop): a name is located when a
	// request is sent (RFC 3263).
	proxy, err := c.nextHop(ctx, c.SIPCore)
	if err != nil {
		return nil, fmt.Errorf("deploy: sip-core: %w", err)
	}
	pfAt, err := c.nextHop(ctx, pf.sipAt(c.Transport))
	if err != nil {
		return nil, fmt.Errorf("deploy: %s's pf %s: %w", cl.URI, pf.Name, err)
	}
	nc := runtime.NodeConfig{Kind: kind, Name: cl.Name, URI: cl.URI, Host: a.host, Advertise: a.advertise,
		SIPPort: a.sipPort, MSRPPort: a.msrpPort, Variant: v, Proxy: proxy, Transport: c.Transport, OriginatingPF: pfAt, StoreDir: opts.StoreDir,
		ChunkSize: chunk, Guard: guard, TLS: c.tls, AuthUser: user, AuthPassword: password, MSRPLimits: c.msrpLimits(nil),
		Resolver: c.sipResolver(), Trace: opts.Trace, Logger: opts.Logger}
	if cl.SIPTLS != "" {
		_, nc.SIPTLSPort, _ = bindAddr(cl.SIPTLS)
		nc.SIPTLS = c.tls
	}
	return runtime.StartNode(ctx, nc)
}

// sipAt is the host:port a client sends its PF SIP at, before names are resolved: its
// sip-tls with transport tls, its sip otherwise.
func (r *RoleConfig) sipAt(transport string) string {
	if transport == "tls" && r.SIPTLS != "" {
		ip, _, _ := bindAddr(r.SIP)
		_, port, err := bindAddr(r.SIPTLS)
		if host := reach(ip, r.Advertise); err == nil && host != "" {
			return net.JoinHostPort(host, strconv.Itoa(port))
		}
	}
	return r.sipReach()
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
		return "", fmt.Errorf("deploy: an ad-hoc group goes to the deployment's CF, and it has %d", len(cfs))
	}
	return cfs[0], nil
}

// RegisterPath says where a client's REGISTER goes, resolved to host:port: first to the
// SIP/IP core (core, empty without one: RFC 3261 §10.2, the REGISTER takes the outbound
// proxy), and from there to the client's PF (pf). transport is the deployment's SIP
// transport (udp, tcp or tls; with tls both addresses are TLS ones).
func (c *ServeConfig) RegisterPath(ctx context.Context, uri string) (core, pf, transport string, err error) {
	cl := c.client(uri)
	if cl == nil || cl.URI != uri {
		return "", "", "", fmt.Errorf("%w: %s", ErrNotClient, uri)
	}
	role := c.roleAt(cl.PF)
	if role == nil {
		return "", "", "", fmt.Errorf("deploy: %s's pf %s is not a role of the configuration", uri, cl.PF)
	}
	if c.SIPCore != "" {
		if core, err = c.resolveHostPort(ctx, c.SIPCore); err != nil {
			return "", "", "", fmt.Errorf("deploy: sip-core: %w", err)
		}
	}
	if pf, err = c.resolveHostPort(ctx, role.sipAt(c.Transport)); err != nil {
		return "", "", "", fmt.Errorf("deploy: %s's pf %s: %w", cl.URI, role.Name, err)
	}
	transport = c.Transport
	if transport == "" {
		transport = "udp"
	}
	return core, pf, transport, nil
}
