package runtime

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
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
	Variant fsm.Variant
	Members int
	PFBs    int
	// Transport is "udp", "tcp" or "tls" for SIP. With "tls" every instance and the
	// embedded core also take SIP over TLS with the TLS configuration (which must be set),
	// and every hop of every request is TLS.
	Transport string
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
	// StartCF, if set, starts the CF outside this process from the NodeConfig the group
	// made for it (deploy.CFProcess runs it in a child process, so that its memory can be
	// measured alone); the CF's trace then stays there. Group.CF is nil and Group.RemoteCF
	// holds it.
	StartCF func(ctx context.Context, cfg NodeConfig) (RemoteRole, error)
	// StartPFA and StartPFB, if set, start the PF-A and each PF-B outside this process
	// as StartCF does the CF (deploy.RoleProcesses: one child process each), so that the
	// servers' work does not share a Go runtime with the clients'. Group.PFA is then nil
	// and Group.RemotePFA holds it; Group.PFBs is empty and Group.RemotePFBs holds them.
	StartPFA func(ctx context.Context, cfg NodeConfig) (RemoteRole, error)
	StartPFB func(ctx context.Context, cfg NodeConfig) (RemoteRole, error)
	// StartCore, if set (and SIPCore not), starts the SIP/IP core outside this process
	// (deploy.CoreProcess: a child process) from the ProxyConfig the group made for it;
	// the group sets its routes once the roles run, and Group.RemoteCore holds it. Not
	// with SIP over TLS.
	StartCore func(ctx context.Context, cfg sipx.ProxyConfig) (RemoteCore, error)
	// TLS makes every link msrps with this configuration (see LoopbackTLS). It cannot
	// be combined with StartCF, StartPFA or StartPFB.
	TLS *tls.Config
	// Discard makes the members hash what they receive without storing it.
	Discard bool
	// Answers gives members a policy other than accepting (by member index).
	Answers map[int]core.Answer
	// SenderSetup is the transmitter's a=setup on a negotiated hop1, Setups the members'
	// on hop4 (by member index); the default, actpass, leaves the choice to the servers
	// (RFC 6135). Others stand for standard clients that fix their role.
	SenderSetup core.SetupChoice
	Setups      map[int]core.SetupChoice
	// Foreign lists members (by index) that the caller plays with a client outside
	// cpmlink: they are not started, and the caller registers them with their PF-B
	// (PFBs[i%PFBs]). Group.Members holds the members that were started.
	Foreign map[int]bool
	// Sender is how the transmitter ends its session (default: it waits for every
	// outcome); the others play a foreign client that hangs up after its last 200.
	Sender   core.Sender
	StoreDir string
	// Auth turns on trusted identity: every client gets digest credentials (a random
	// password, realm its PF's domain), its PF challenges its REGISTER and, at the PF-A,
	// its INVITE; the core and the server roles form an RFC 3325 trust domain of Host,
	// and the clients bind ClientHost, outside it.
	Auth bool
	// ClientHost is the loopback address the clients bind: Host by default, 127.0.0.2
	// with Auth (so that they are outside the trust domain).
	ClientHost string
	// Users are credentials added to the clients' own (probes of a test), with Auth.
	Users []sipx.Credential
	// LocationDir, if set, gives each PF a location store there (<name>.db), so that a
	// restarted PF (RestartPFB) serves its members at once.
	LocationDir     string
	ChunkSize       int
	Guard           time.Duration
	Host, Advertise string
	Trace           *Tracer
	Logger          *slog.Logger

	// MSRPLimits applies to every role instance of the group (NodeConfig.MSRPLimits).
	MSRPLimits MSRPLimits
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
	// RemoteCF is the CF that GroupConfig.StartCF started, or nil.
	RemoteCF RemoteRole
	// RemotePFA and RemotePFBs are what GroupConfig.StartPFA and StartPFB started.
	RemotePFA  RemoteRole
	RemotePFBs []RemoteRole
	// RemoteCore is the SIP/IP core that GroupConfig.StartCore started, or nil.
	RemoteCore RemoteCore
	// configs are what each node was started with, for a restart.
	configs map[string]NodeConfig
	ctx     context.Context
}

// RemoteRole is a role instance that a Group runs outside its own process.
type RemoteRole interface {
	// SIPAddr is where the instance takes SIP.
	SIPAddr() string
	// Close stops the instance; it is idempotent.
	Close() error
}

// RemoteCore is a SIP/IP core that runs elsewhere (deploy.CoreProcess: a child
// process), told its routes once the roles' ports are known.
type RemoteCore interface {
	// SIPAddr is where the core takes SIP.
	SIPAddr() string
	// SetRoutes sets its static routes, domain to host:port (sipx.Proxy.SetRoutes).
	SetRoutes(map[string]string) error
	// Close stops it; it is idempotent.
	Close() error
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
	if g.RemoteCore != nil {
		return g.RemoteCore.SIPAddr()
	}
	return g.cfg.SIPCore
}

// StartGroup starts the SIP/IP core and every role instance, and registers the clients
// with their PFs.
func StartGroup(ctx context.Context, cfg GroupConfig) (g *Group, err error) {
	if cfg.Members < 1 || cfg.PFBs < 1 {
		return nil, errors.New("runtime: a group needs at least one member and one PF-B")
	}
	if cfg.TLS != nil && (cfg.StartCF != nil || cfg.StartPFA != nil || cfg.StartPFB != nil) {
		return nil, errors.New("runtime: a role in its own process cannot take the group's TLS configuration")
	}
	sipTLS := strings.EqualFold(cfg.Transport, "tls")
	if sipTLS && (cfg.TLS == nil || cfg.SIPCore != "") {
		return nil, errors.New("runtime: SIP over TLS needs the group's TLS configuration and the embedded core")
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
	if cfg.ClientHost == "" {
		cfg.ClientHost = cfg.Host
		if cfg.Auth {
			cfg.ClientHost = "127.0.0.2"
		}
	}
	var trusted []string
	var creds *sipx.Credentials
	passwords := map[string]string{}
	if cfg.Auth {
		trusted = []string{cfg.Host}
		users := append([]sipx.Credential(nil), cfg.Users...)
		for _, p := range cfg.Layout() {
			if p.Domain != "" {
				continue
			}
			uri := SenderURI
			realm := "a.example"
			if p.Name != "clientA" {
				i, _ := strconv.Atoi(p.Name[1:])
				uri = MemberURI(i-1, cfg.PFBs)
				realm = fmt.Sprintf("b%d.example", (i-1)%cfg.PFBs+1)
			}
			passwords[p.Name] = randomHex(12)
			users = append(users, sipx.Credential{Username: p.Name, Realm: realm, AOR: uri, Password: passwords[p.Name]})
		}
		if creds, err = sipx.NewCredentials(users); err != nil {
			return nil, err
		}
	}
	g = &Group{cfg: cfg, configs: map[string]NodeConfig{}, ctx: ctx}
	// A failure returns a nil group: what was started is stopped through its own name.
	started := g
	defer func() {
		if err != nil {
			started.Close()
		}
	}()
	proxy := cfg.SIPCore
	if proxy == "" && cfg.StartCore != nil {
		if sipTLS {
			return nil, errors.New("runtime: StartCore runs no SIP over TLS: the core's key would leave this process")
		}
		if g.RemoteCore, err = cfg.StartCore(ctx, sipx.ProxyConfig{Host: cfg.Host, Advertise: cfg.Advertise, TrustedHosts: trusted}); err != nil {
			return nil, err
		}
		proxy = g.RemoteCore.SIPAddr()
	}
	if proxy == "" {
		// The embedded core is started first with no routes; they are added once the
		// roles' ports are known.
		pc := sipx.ProxyConfig{Host: cfg.Host, Advertise: cfg.Advertise, Routes: map[string]string{}, Logger: cfg.Logger, TrustedHosts: trusted}
		if sipTLS {
			pc.TLS = cfg.TLS
		}
		g.core, err = sipx.StartProxy(ctx, pc)
		if err != nil {
			return nil, err
		}
		proxy = g.core.UDPAddr()
		if sipTLS {
			proxy = g.core.TLSAddr()
		}
	}
	config := func(kind fsm.RoleKind, name, uri string, extra func(*NodeConfig)) NodeConfig {
		nc := NodeConfig{Kind: kind, Name: name, URI: uri, Host: cfg.Host, Advertise: cfg.Advertise, Variant: cfg.Variant, Proxy: proxy,
			Transport: cfg.Transport, ChunkSize: cfg.ChunkSize, Guard: cfg.Guard, Trace: cfg.Trace, Logger: cfg.Logger,
			SIPPort: layout[name].SIPPort, MSRPPort: layout[name].MSRPPort, TLS: cfg.TLS, MSRPLimits: cfg.MSRPLimits}
		switch kind {
		case fsm.RoleClientA, fsm.RoleClientB:
			if cfg.ClientHost != cfg.Host {
				// A client outside the trust domain is reached at its own address.
				nc.Host, nc.Advertise = cfg.ClientHost, ""
			}
			if cfg.Auth {
				nc.AuthUser, nc.AuthPassword = name, passwords[name]
			}
		default:
			nc.TrustedHosts = trusted
			if kind != fsm.RoleCF {
				if cfg.Auth {
					nc.Auth = &sipx.AuthConfig{Realm: layout[name].Domain, Credentials: creds}
				}
				if cfg.LocationDir != "" {
					nc.LocationStore = filepath.Join(cfg.LocationDir, name+".db")
				}
			}
		}
		if sipTLS {
			nc.SIPTLS = cfg.TLS
		}
		if extra != nil {
			extra(&nc)
		}
		return nc
	}
	node := func(kind fsm.RoleKind, name, uri string, extra func(*NodeConfig)) (*Node, error) {
		nc := config(kind, name, uri, extra)
		n, err := StartNode(ctx, nc)
		if err == nil {
			g.configs[name] = nc
		}
		return n, err
	}
	var members []string
	for i := 0; i < cfg.Members; i++ {
		members = append(members, MemberURI(i, cfg.PFBs))
	}
	if cfg.StartPFA != nil {
		var pfa RemoteRole
		if pfa, err = cfg.StartPFA(ctx, config(fsm.RolePFA, "pfa", "sip:pf@a.example", nil)); err == nil {
			g.RemotePFA = pfa
		}
	} else {
		g.PFA, err = node(fsm.RolePFA, "pfa", "sip:pf@a.example", nil)
	}
	if err != nil {
		return nil, err
	}
	cfCfg := config(fsm.RoleCF, "cf", "sip:cf@cf.example", func(c *NodeConfig) {
		senders := cfg.Senders
		if senders == nil {
			senders = []string{SenderURI}
		}
		c.Groups = map[string]core.Group{GroupURI: {Members: members, Senders: senders}}
	})
	if cfg.StartCF != nil {
		var cf RemoteRole
		if cf, err = cfg.StartCF(ctx, cfCfg); err == nil {
			g.RemoteCF = cf
		}
	} else {
		g.CF, err = StartNode(ctx, cfCfg)
	}
	if err != nil {
		return nil, err
	}
	for j := 0; j < cfg.PFBs; j++ {
		name, uri := "pfb"+strconv.Itoa(j+1), fmt.Sprintf("sip:pf@b%d.example", j+1)
		if cfg.StartPFB != nil {
			r, err := cfg.StartPFB(ctx, config(fsm.RolePFB, name, uri, nil))
			if err != nil {
				return nil, err
			}
			g.RemotePFBs = append(g.RemotePFBs, r)
			continue
		}
		n, err := node(fsm.RolePFB, name, uri, nil)
		if err != nil {
			return nil, err
		}
		g.PFBs = append(g.PFBs, n)
	}
	if g.RemoteCore != nil {
		if err := g.RemoteCore.SetRoutes(g.Routes()); err != nil {
			return nil, err
		}
	}
	if g.core != nil {
		if err := g.core.SetRoutes(g.Routes()); err != nil {
			return nil, err
		}
		if sipTLS {
			// TLS only: the core cannot fall back to UDP or TCP on its way to a role.
			for d, n := range g.routed() {
				if err := g.core.SetTargets(d, []sipx.Target{{Transport: "TLS", Addr: n.SIPAddrTLS()}}); err != nil {
					return nil, err
				}
			}
		}
	}
	for i := 0; i < cfg.Members; i++ {
		if cfg.Foreign[i] {
			continue
		}
		n, err := node(fsm.RoleClientB, "m"+strconv.Itoa(i+1), members[i], func(c *NodeConfig) {
			c.OriginatingPF = g.pfbAddr(i % cfg.PFBs)
			if sipTLS {
				c.OriginatingPF = g.PFBs[i%cfg.PFBs].SIPAddrTLS()
			}
			c.Answer = cfg.Answers[i]
			c.Setup = cfg.Setups[i]
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
	if g.ClientA, err = node(fsm.RoleClientA, "clientA", SenderURI, func(c *NodeConfig) {
		c.OriginatingPF = g.pfaAddr()
		c.Setup = cfg.SenderSetup
		c.Sender = cfg.Sender
		if sipTLS {
			c.OriginatingPF = g.PFA.SIPAddrTLS()
		}
	}); err != nil {
		return nil, err
	}
	for _, n := range append([]*Node{g.ClientA}, g.Members...) {
		if err := n.Register(ctx, time.Hour); err != nil {
			return nil, fmt.Errorf("runtime: %s registering: %w", n.Name(), err)
		}
	}
	return g, nil
}

// RestartPFB stops PF-B j (from 0) and starts it again on the same ports with the same
// configuration: with LocationDir its members are served at once, without registering
// again (issue 11: a restart loses no registration).
func (g *Group) RestartPFB(j int) error {
	if g.RemotePFBs != nil {
		return errors.New("runtime: a PF-B in its own process is not restarted by the group")
	}
	old := g.PFBs[j]
	nc := g.configs[old.Name()]
	_, sport, _ := net.SplitHostPort(old.SIPAddr())
	_, mport, _ := net.SplitHostPort(old.MSRPAddr())
	nc.SIPPort, _ = strconv.Atoi(sport)
	nc.MSRPPort, _ = strconv.Atoi(mport)
	if err := old.Close(); err != nil {
		return err
	}
	n, err := StartNode(g.ctx, nc)
	if err != nil {
		return err
	}
	g.PFBs[j] = n
	return nil
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
	host := c.Advertise
	if host == "" {
		host = c.Host
	}
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
	} else if g.RemoteCF != nil {
		cf = g.RemoteCF.SIPAddr()
	}
	r := map[string]string{"a.example": g.pfaAddr(), "cf.example": cf}
	for j := range max(len(g.PFBs), len(g.RemotePFBs)) {
		r[fmt.Sprintf("b%d.example", j+1)] = g.pfbAddr(j)
	}
	return r
}

// pfaAddr is the PF-A's SIP address, in this process or not.
func (g *Group) pfaAddr() string {
	if g.RemotePFA != nil {
		return g.RemotePFA.SIPAddr()
	}
	return g.PFA.SIPAddr()
}

// pfbAddr is PF-B j's (from 0) SIP address, in this process or not.
func (g *Group) pfbAddr(j int) string {
	if g.RemotePFBs != nil {
		return g.RemotePFBs[j].SIPAddr()
	}
	return g.PFBs[j].SIPAddr()
}

// routed are the instances a SIP/IP core routes to, by domain (the CF only when it runs
// in this process).
func (g *Group) routed() map[string]*Node {
	r := map[string]*Node{}
	if g.PFA != nil {
		r["a.example"] = g.PFA
	}
	if g.CF != nil {
		r["cf.example"] = g.CF
	}
	for j, n := range g.PFBs {
		r[fmt.Sprintf("b%d.example", j+1)] = n
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
	for _, r := range append([]RemoteRole{g.RemotePFA, g.RemoteCF}, g.RemotePFBs...) {
		if r != nil {
			errs = append(errs, r.Close())
		}
	}
	if g.core != nil {
		errs = append(errs, g.core.Close())
	}
	if g.RemoteCore != nil {
		errs = append(errs, g.RemoteCore.Close())
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
