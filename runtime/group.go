package runtime

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/runtime/sipx"
)

// GroupURI is the pre-defined group of a Group.
const GroupURI = "sip:group@cf.example"

// AdHocURI is where a Group's transmitter sends an ad-hoc group: the CF's conference
// factory (the INVITE carries the member list, RFC 5366).
const AdHocURI = "sip:adhoc@cf.example"

// SenderURI is the transmitter's identity in a Group.
const SenderURI = "sip:alice@a.example"

// GroupConfig describes a whole deployment in one process: every role on loopback, as
// `cpmlink demo` and the tests run it. Names and topology follow the simulator's (member i
// behind PF-B (i mod PFBs)+1), so that a run's trace can be replayed against the spec.
type GroupConfig struct {
	Variant   fsm.Variant
	Members   int
	PFBs      int
	Transport string // "udp" or "tcp"
	// SIPCore is an external SIP/IP core (host:port); empty starts the embedded one.
	SIPCore string
	// BasePort, when not 0, gives every role instance fixed ports, so that an external
	// SIP/IP core can be configured before the group starts (FixedRoutes): the i-th
	// instance of Layout takes SIP port BasePort+i (UDP and TCP) and MSRP port
	// BasePort+n+i, n being the number of instances. Without it the ports are chosen at
	// start. The embedded core's own port is always chosen at start.
	BasePort int
	// Senders are who may send to the pre-defined group (default: SenderURI only).
	Senders []string
	// CFProcess, if set, runs the CF in a child process made by this function (a program
	// that calls RunRoleProcess), so that its memory can be measured alone; the CF's
	// trace then stays in the child. Group.CF is nil.
	CFProcess func() *exec.Cmd
	// TLS makes every link msrps with this configuration (see LoopbackTLS). It cannot
	// be combined with CFProcess.
	TLS *tls.Config
	// Discard makes the members hash what they receive without storing it.
	Discard bool
	// Answers gives members a policy other than accepting (by member index).
	Answers   map[int]core.Answer
	StoreDir  string
	ChunkSize int
	Guard     time.Duration
	Host      string
	Trace     *Tracer
	Logger    *slog.Logger
}

// Group is a running deployment.
type Group struct {
	cfg     GroupConfig
	core    *sipx.Proxy
	ClientA *Node
	PFA     *Node
	CF      *Node
	PFBs    []*Node
	Members []*Node
	cfProc  *RoleProcess
}

// StopCF stops a CF that runs in a child process and returns what it measured; it is
// idempotent, and Close calls it.
func (g *Group) StopCF() (RoleStats, error) {
	if g.cfProc == nil {
		return RoleStats{}, errors.New("runtime: the CF does not run in a process of its own")
	}
	return g.cfProc.Stop()
}

// MemberURI is the SIP URI of member i (from 0).
func MemberURI(i, pfbs int) string { return fmt.Sprintf("sip:m%d@b%d.example", i+1, i%pfbs+1) }

// Nodes lists every node.
func (g *Group) Nodes() []*Node {
	var out []*Node
	for _, n := range []*Node{g.ClientA, g.PFA, g.CF} {
		if n != nil {
			out = append(out, n)
		}
	}
	out = append(out, g.PFBs...)
	return append(out, g.Members...)
}

// CoreAddr is where the SIP/IP core listens.
func (g *Group) CoreAddr() string {
	if g.core != nil {
		return g.core.UDPAddr()
	}
	return g.cfg.SIPCore
}

// StartGroup starts the SIP/IP core and every role instance, and registers the clients
// with their PFs.
func StartGroup(ctx context.Context, cfg GroupConfig) (g *Group, err error) {
	if cfg.Members < 1 || cfg.PFBs < 1 {
		return nil, errors.New("runtime: a group needs at least one member and one PF-B")
	}
	if cfg.TLS != nil && cfg.CFProcess != nil {
		return nil, errors.New("runtime: a CF in its own process cannot take the group's TLS configuration")
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	layout := map[string]Placement{}
	for _, p := range cfg.Layout() {
		layout[p.Name] = p
	}
	if n := len(layout); cfg.BasePort != 0 && (cfg.BasePort < 1 || cfg.BasePort+2*n-1 > 65535) {
		return nil, fmt.Errorf("runtime: base port %d: the group's %d instances need ports %d to %d", cfg.BasePort, n, cfg.BasePort, cfg.BasePort+2*n-1)
	}
	g = &Group{cfg: cfg}
	// A failure returns a nil group: what was started is stopped through its own name.
	started := g
	defer func() {
		if err != nil {
			started.Close()
		}
	}()
	proxy := cfg.SIPCore
	if proxy == "" {
		// The embedded core is started first with no routes; they are added once the
		// roles' ports are known.
		g.core, err = sipx.StartProxy(ctx, sipx.ProxyConfig{Host: cfg.Host, Routes: map[string]string{}, Logger: cfg.Logger})
		if err != nil {
			return nil, err
		}
		proxy = g.core.UDPAddr()
	}
	config := func(kind fsm.RoleKind, name, uri string, extra func(*NodeConfig)) NodeConfig {
		nc := NodeConfig{Kind: kind, Name: name, URI: uri, Host: cfg.Host, Variant: cfg.Variant, Proxy: proxy,
			Transport: cfg.Transport, ChunkSize: cfg.ChunkSize, Guard: cfg.Guard, Trace: cfg.Trace, Logger: cfg.Logger,
			SIPPort: layout[name].SIPPort, MSRPPort: layout[name].MSRPPort, TLS: cfg.TLS}
		if extra != nil {
			extra(&nc)
		}
		return nc
	}
	node := func(kind fsm.RoleKind, name, uri string, extra func(*NodeConfig)) (*Node, error) {
		return StartNode(ctx, config(kind, name, uri, extra))
	}
	var members []string
	for i := 0; i < cfg.Members; i++ {
		members = append(members, MemberURI(i, cfg.PFBs))
	}
	if g.PFA, err = node(fsm.RolePFA, "pfa", "sip:pf@a.example", nil); err != nil {
		return nil, err
	}
	cfCfg := config(fsm.RoleCF, "cf", "sip:cf@cf.example", func(c *NodeConfig) {
		senders := cfg.Senders
		if senders == nil {
			senders = []string{SenderURI}
		}
		c.Groups = map[string]core.Group{GroupURI: {Members: members, Senders: senders}}
	})
	if cfg.CFProcess != nil {
		g.cfProc, err = StartRoleProcess(ctx, cfg.CFProcess(), cfCfg)
	} else {
		g.CF, err = StartNode(ctx, cfCfg)
	}
	if err != nil {
		return nil, err
	}
	for j := 0; j < cfg.PFBs; j++ {
		n, err := node(fsm.RolePFB, "pfb"+strconv.Itoa(j+1), fmt.Sprintf("sip:pf@b%d.example", j+1), nil)
		if err != nil {
			return nil, err
		}
		g.PFBs = append(g.PFBs, n)
	}
	if g.core != nil {
		if err := g.core.SetRoutes(g.Routes()); err != nil {
			return nil, err
		}
	}
	for i := 0; i < cfg.Members; i++ {
		pfb := g.PFBs[i%cfg.PFBs]
		n, err := node(fsm.RoleClientB, "m"+strconv.Itoa(i+1), members[i], func(c *NodeConfig) {
			c.OriginatingPF = pfb.SIPAddr()
			c.Answer = cfg.Answers[i]
			c.Discard = cfg.Discard
			if cfg.StoreDir != "" {
				c.StoreDir = filepath.Join(cfg.StoreDir, "m"+strconv.Itoa(i+1))
			}
		})
		if err != nil {
			return nil, err
		}
		g.Members = append(g.Members, n)
	}
	if g.ClientA, err = node(fsm.RoleClientA, "clientA", SenderURI, func(c *NodeConfig) { c.OriginatingPF = g.PFA.SIPAddr() }); err != nil {
		return nil, err
	}
	for _, n := range append([]*Node{g.ClientA}, g.Members...) {
		if err := n.Register(ctx, time.Hour); err != nil {
			return nil, fmt.Errorf("runtime: %s registering: %w", n.Name(), err)
		}
	}
	return g, nil
}

// Placement is where one role instance of a Group listens.
type Placement struct {
	// Name is the instance's name in traces: pfa, cf, pfb1 ..., clientA, m1 ...
	Name string
	// Domain is the domain a SIP/IP core routes to the instance; empty for a client
	// (a PF-B reaches its members at their registered Contact).
	Domain string
	// SIPPort (UDP and TCP) and MSRPPort are the fixed ports of BasePort, or 0.
	SIPPort, MSRPPort int
}

// Layout lists the role instances of a group in the order BasePort numbers them: PF-A,
// CF, PF-B 1..PFBs, ClientA, members 1..Members. The instances a SIP/IP core routes to come
// first, so that their ports depend on PFBs only, not on the number of members.
func (c GroupConfig) Layout() []Placement {
	out := []Placement{{Name: "pfa", Domain: "a.example"}, {Name: "cf", Domain: "cf.example"}}
	for j := 1; j <= c.PFBs; j++ {
		out = append(out, Placement{Name: "pfb" + strconv.Itoa(j), Domain: fmt.Sprintf("b%d.example", j)})
	}
	out = append(out, Placement{Name: "clientA"})
	for i := 1; i <= c.Members; i++ {
		out = append(out, Placement{Name: "m" + strconv.Itoa(i)})
	}
	if c.BasePort != 0 {
		for i := range out {
			out[i].SIPPort, out[i].MSRPPort = c.BasePort+i, c.BasePort+len(out)+i
		}
	}
	return out
}

// FixedRoutes is the routing table (domain to host:port) a SIP/IP core needs for a group
// with BasePort, known before the group starts: what Group.Routes returns once it runs.
// It is nil without BasePort.
func (c GroupConfig) FixedRoutes() map[string]string {
	if c.BasePort == 0 {
		return nil
	}
	host := c.Host
	if host == "" {
		host = "127.0.0.1"
	}
	r := map[string]string{}
	for _, p := range c.Layout() {
		if p.Domain != "" {
			r[p.Domain] = net.JoinHostPort(host, strconv.Itoa(p.SIPPort))
		}
	}
	return r
}

// Routes returns the static routing table a SIP/IP core needs for this group: domain to
// the SIP address of the role serving it.
func (g *Group) Routes() map[string]string {
	cf := ""
	if g.CF != nil {
		cf = g.CF.SIPAddr()
	} else if g.cfProc != nil {
		cf = g.cfProc.SIPAddr()
	}
	r := map[string]string{"a.example": g.PFA.SIPAddr(), "cf.example": cf}
	for j, n := range g.PFBs {
		r[fmt.Sprintf("b%d.example", j+1)] = n.SIPAddr()
	}
	return r
}

// Close stops every node and the core.
func (g *Group) Close() error {
	var errs []error
	for _, n := range g.Nodes() {
		if n != nil {
			errs = append(errs, n.Close())
		}
	}
	if g.cfProc != nil {
		_, err := g.cfProc.Stop()
		errs = append(errs, err)
	}
	if g.core != nil {
		errs = append(errs, g.core.Close())
	}
	return errors.Join(errs...)
}

// WaitIdle waits until every node's machine has ended all its sessions (BYE done, links
// closed), bounded by ctx.
func (g *Group) WaitIdle(ctx context.Context) error {
	for _, n := range g.Nodes() {
		if err := n.WaitIdle(ctx); err != nil {
			return err
		}
	}
	return nil
}
