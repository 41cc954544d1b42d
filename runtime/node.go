package runtime

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/runtime/sipx"
)

// NodeConfig configures one role instance.
type NodeConfig struct {
	Kind fsm.RoleKind
	// Name names the instance in traces and leg ids ("pfb1").
	Name string
	// URI is its SIP identity: a client's address of record, a PF's or the CF's service URI.
	URI string
	// Host is the IP address SIP and MSRP bind to: an interface's address, or a wildcard
	// (0.0.0.0, ::) for every interface. Default 127.0.0.1.
	Host string
	// Advertise is the IP address peers reach the instance at: it goes in SIP Via and
	// Contact, and in SDP c= and a=path (RFC 4975 §8), and SIPAddr and MSRPAddr return it.
	// It defaults to Host, and is required when Host is a wildcard, which names no
	// address a peer could connect to.
	Advertise string
	// SIPPort and MSRPPort are fixed ports, or 0 to choose free ones.
	SIPPort, MSRPPort int
	Variant           fsm.Variant
	// Proxy is the SIP/IP core (host:port) every request goes through.
	Proxy string
	// Transport is "udp", "tcp" or "tls" for SIP; requests over 1300 bytes use TCP
	// anyway, and sips: URIs TLS. With "tls", Proxy and OriginatingPF are TLS addresses
	// and SIPTLS is required.
	Transport string
	// OriginatingPF is, for a client, the SIP address (host:port, or a host name that
	// Resolver knows) of its PF: the transmitter's INVITE is routed there first (a
	// preloaded Route, as an IMS service route would), and both clients REGISTER there.
	// With Transport "tls" it is the PF's TLS address.
	OriginatingPF string
	// SIPTLS, when set, makes the instance's SIP listen for TLS too (RFC 3261 §26,
	// RFC 5630), on SIPTLSPort, serving Certificates; the TLS connections it opens check
	// the peer's certificate against RootCAs and the peer's host name (or IP, for a peer
	// addressed by IP). See sipx.Config.TLS. It may be the same configuration as TLS.
	SIPTLS *tls.Config `json:"-"`
	// SIPTLSPort is the SIP TLS port, or 0 to choose a free one (never the UDP/TCP one).
	SIPTLSPort int
	// Resolver locates SIP next hops named by host name (RFC 3263: DNS SRV and A/AAAA
	// with sipx.DNSResolver, a table with sipx.StaticResolver); nil: peers must be IPs.
	Resolver sipx.Resolver `json:"-"`
	// Groups are the CF's pre-defined groups.
	Groups map[string]core.Group
	// Answer is a receiver's answering policy.
	Answer core.Answer
	// Setup is a client's a=setup on a negotiated hop (RFC 6135): actpass by default;
	// active, passive or none (no a=setup, a plain RFC 4975 client) fix its role, and the
	// servers follow it. Servers ignore it.
	Setup core.SetupChoice
	// Sender is a transmitter's policy for ending its session (the spec's policy.sender):
	// cpmlink's own sender waits for every outcome; the others stand for foreign clients
	// that hang up after their last 200.
	Sender core.Sender
	// StoreDir is where a receiver writes the messages it receives.
	StoreDir string
	// TLS, when set, makes the instance's MSRP msrps (TCP/TLS/MSRP, RFC 4975 §6): its
	// listener serves TLS with the certificates here, and it dials its peers with it (so
	// RootCAs must accept theirs).
	TLS *tls.Config `json:"-"`
	// Discard makes a receiver hash what it receives without keeping it (benchmarks of
	// large messages to many members); Received still says what arrived.
	Discard bool
	// ChunkSize is the MSRP chunk size this instance sends with (default 64 KiB).
	ChunkSize int
	// MSRPLimits bound what peers may hold of this instance's MSRP side:
	// connections in all and per source address, how long an accepted
	// connection may stay silent, concurrent sessions, header size. Zero fields
	// take runtime/msrp's defaults (see MSRPLimits).
	MSRPLimits MSRPLimits
	// Guard is the unit of the guard timers (default 32 s, RFC 3261 Timer B): a PF-B waits
	// one unit for a member's answer, and every wait that may depend on it longer (see
	// guardFor).
	Guard time.Duration
	// Auth, on a PF, turns on SIP digest authentication (RFC 3261 §22, RFC 8760) against
	// its credentials: every REGISTER is challenged (401), and at a PF-A every INVITE from
	// its clients too (407) — the PF-A then asserts the authenticated identity toward the
	// CF (RFC 3325 §4) and drops whatever PAI the client sent. nil: no authentication.
	Auth *sipx.AuthConfig `json:"-"`
	// AuthUser and AuthPassword are a client's credentials, used to answer its PF's
	// challenges to REGISTER and INVITE. Empty: a challenge fails the request.
	AuthUser     string
	AuthPassword string `json:"-"`
	// TrustedHosts, on a server role, turns on the RFC 3325 trust domain: IPs or CIDR
	// prefixes (the SIP/IP core, the other server roles) whose P-Asserted-Identity is
	// believed. A PAI from anywhere else is removed, and an INVITE without an
	// authenticated or trusted identity is refused 403: the CF's group sender check then
	// only ever sees an asserted identity, never a client's From. nil: off.
	TrustedHosts []string
	// LocationStore, on a PF, is the file (bbolt) its registrations live in, so that a
	// restarted PF serves its users at once; "" keeps them in memory.
	LocationStore string
	// MaxContacts caps a PF's bindings per address of record (default 10, negative: no
	// cap). ContactsPolicy says what a REGISTER over the cap gets: "refuse" (403, the
	// default at a PF-B, whose bindings are its members' reachability) or "overwrite" (the
	// binding refreshed longest ago goes; the default at a PF-A, whose bindings are
	// senders' and end with their send).
	MaxContacts    int
	ContactsPolicy string
	// Trace receives the records of this instance, if not nil.
	Trace *Tracer `json:"-"`
	// Logger is quiet by default. At level Info it gets one record per finished session
	// ("session": group, sender, message id, size, each member's outcome, timings; see
	// observe.go and docs/operations.md).
	Logger *slog.Logger `json:"-"`
	// Metrics, if not nil, are the process's Prometheus metrics this instance adds to.
	Metrics *Metrics `json:"-"`
}

// guard is a side's running guard timer.
type guard struct {
	t   *time.Timer
	gen uint64
	// moved is set when the side's link carried part of the message since the timer
	// was armed: the wait is not stuck, and the timer starts over instead of firing.
	moved bool
}

// Node runs one role instance: the generated machine of its role, fed from a single
// goroutine through an inbox. Sockets, timers and sipgo callbacks only post to the inbox;
// the node steps the machine and carries out the actions it returns. The node holds no
// protocol logic: every decision is the machine's.
type Node struct {
	cfg    NodeConfig
	role   fsm.Role
	log    *slog.Logger
	sip    *sipx.Endpoint
	media  *media
	obs    *observer
	in     *inbox
	timers map[fsm.LegID]guard
	// timerGen tells a timer's Timeout from that of an earlier timer of the same side.
	timerGen uint64
	// upHeaders keeps the large-message headers of each session's INVITE, to carry them on
	// the session's downstream INVITEs (Contribution-ID, Conversation-ID ...).
	upHeaders map[fsm.LegID][]sipx.Header
	dialogs   map[fsm.LegID]string
	// hops caches each leg's hop name for the trace (hopOf).
	hops map[fsm.LegID]string
	// okSeen and acked tell a retransmitted 2xx from the first, on down legs.
	okSeen, acked map[fsm.LegID]bool
	// forgets holds, by session key, the timers that forget sessions that are over
	// (see lookBack).
	forgets map[fsm.LegID]*time.Timer
	// onForget, when set (by tests only, export_test.go), is called on the node's
	// goroutine each time it forgets a session.
	onForget func()
	// onExec, when set (by tests only), is called on the node's goroutine with each
	// action as it is carried out.
	onExec func(fsm.Action)

	// Results is where a transmitter's per-member outcomes go (see Send).
	results *resultSet

	// watch guards what the node publishes after each step, for waiters (WaitIdle).
	watch    sync.Mutex
	terminal bool
	changed  chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (c *NodeConfig) defaults() {
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.Advertise == "" {
		c.Advertise = c.Host
	}
	if c.ChunkSize <= 0 {
		c.ChunkSize = 64 << 10
	}
	if c.Guard <= 0 {
		c.Guard = 32 * time.Second
	}
	if c.Transport == "" {
		c.Transport = "udp"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// ErrAddress is returned by StartNode for a Host or Advertise it cannot use.
var ErrAddress = errors.New("runtime: bad address")

// StartNode binds the instance's SIP and MSRP ports on Host and starts its goroutine.
func StartNode(ctx context.Context, cfg NodeConfig) (*Node, error) {
	cfg.defaults()
	if ip := net.ParseIP(cfg.Host); ip == nil {
		return nil, fmt.Errorf("%w: %s: host %q is not an IP address", ErrAddress, cfg.Name, cfg.Host)
	}
	if ip := net.ParseIP(cfg.Advertise); ip == nil || ip.IsUnspecified() {
		what := "advertise " + strconv.Quote(cfg.Advertise)
		if cfg.Advertise == cfg.Host {
			what = "host " + cfg.Host + " is a wildcard: advertise"
		}
		return nil, fmt.Errorf("%w: %s: %s must be the IP address peers reach it at", ErrAddress, cfg.Name, what)
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("node", cfg.Name), in: newInbox(), timers: map[fsm.LegID]guard{},
		upHeaders: map[fsm.LegID][]sipx.Header{}, dialogs: map[fsm.LegID]string{}, hops: map[fsm.LegID]string{},
		okSeen: map[fsm.LegID]bool{}, acked: map[fsm.LegID]bool{}, forgets: map[fsm.LegID]*time.Timer{}, results: newResultSet(),
		terminal: true, changed: make(chan struct{})}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	var err error
	n.media, err = startMedia(n, net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.MSRPPort)))
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(n.media.addr())
	mport, _ := strconv.Atoi(port)
	// The SDP carries the advertised host with the bound port: what a peer connects to.
	fcfg := core.Config{Name: cfg.Name, URI: cfg.URI, MSRPHost: cfg.Advertise, MSRPPort: mport,
		// The session ids of our MSRP URIs come from this secret: random here, so that
		// they cannot be guessed (RFC 4975 §14.1).
		Secret: randomHex(16), Groups: cfg.Groups, Answer: cfg.Answer, Sender: cfg.Sender, TLS: cfg.TLS != nil}
	if cfg.Kind == fsm.RoleClientA || cfg.Kind == fsm.RoleClientB {
		fcfg.Setup = cfg.Setup
	}
	if err := cfg.Variant.Check(); err != nil {
		n.media.close()
		return nil, err
	}
	n.role = fsm.New(cfg.Kind, fcfg, cfg.Variant)
	params := "+g.oma.sip-im.large-message;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.largemsg\""
	scfg, err := cfg.sipConfig()
	if err != nil {
		n.media.close()
		return nil, err
	}
	scfg.ContactParams = params
	n.sip, err = sipx.Start(ctx, scfg, n.sipHandler())
	if err != nil {
		n.media.close()
		return nil, err
	}
	n.obs = newObserver(n)
	n.wg.Add(1)
	go n.run()
	return n, nil
}

// sipConfig is the SIP endpoint of the instance.
func (c *NodeConfig) sipConfig() (sipx.Config, error) {
	pf := c.Kind == fsm.RolePFA || c.Kind == fsm.RolePFB
	sc := sipx.Config{Name: c.Name, Host: c.Host, Advertise: c.Advertise, UDPPort: c.SIPPort, TCPPort: c.SIPPort,
		Identity: c.URI, Proxy: c.Proxy, Transport: c.Transport, Registrar: pf, Logger: c.Logger,
		AuthUser: c.AuthUser, AuthPassword: c.AuthPassword,
		TLS: c.SIPTLS, TLSPort: c.SIPTLSPort, Resolver: c.Resolver, TrustedHosts: c.TrustedHosts, MaxContacts: c.MaxContacts}
	if c.Auth != nil {
		if !pf {
			return sc, fmt.Errorf("runtime: %s: authentication is a PF's (a %s has no users)", c.Name, c.Kind)
		}
		a := *c.Auth
		// A PF-A's INVITEs all come from its clients: it is where their identity is
		// established.
		a.Invites = c.Kind == fsm.RolePFA
		sc.Auth = &a
	}
	if c.Kind == fsm.RolePFA && c.TrustedHosts != nil && c.Auth == nil {
		// Its clients' INVITEs carry no identity it may believe (RFC 3325 §4: the first
		// node of the trust domain asserts what it authenticated): every one would be
		// refused 403.
		return sc, fmt.Errorf("runtime: %s: a PF-A in a trust domain must authenticate its clients (Auth)", c.Name)
	}
	if c.LocationStore != "" {
		if !pf {
			return sc, fmt.Errorf("runtime: %s: a location store is a PF's", c.Name)
		}
		sc.LocationStore = c.LocationStore
	}
	switch c.ContactsPolicy {
	case "":
		sc.OverwriteContacts = c.Kind == fsm.RolePFA
	case "refuse":
	case "overwrite":
		sc.OverwriteContacts = true
	default:
		return sc, fmt.Errorf("runtime: %s: contacts policy %q (want refuse or overwrite)", c.Name, c.ContactsPolicy)
	}
	return sc, nil
}

// Name is the instance name.
func (n *Node) Name() string { return n.cfg.Name }

// Kind is the instance's role.
func (n *Node) Kind() fsm.RoleKind { return n.cfg.Kind }

// SIPAddr is where peers reach the instance over SIP: the advertised host and the bound
// port (UDP and TCP share the port when it was chosen for both).
func (n *Node) SIPAddr() string { return n.sip.UDPAddr() }

// SIPAddrTCP is its TCP SIP address.
func (n *Node) SIPAddrTCP() string { return n.sip.TCPAddr() }

// SIPAddrTLS is its SIP over TLS address, "" without NodeConfig.SIPTLS.
func (n *Node) SIPAddrTLS() string { return n.sip.TLSAddr() }

// pfURI is the SIP URI of a client's PF: its address, over TLS when the client's SIP is
// TLS (the TLS port is not the UDP/TCP one, so the URI must say so, RFC 3263 §4.1).
func (n *Node) pfURI() string {
	u := "sip:" + n.cfg.OriginatingPF
	if strings.EqualFold(n.cfg.Transport, "tls") {
		u += ";transport=tls"
	}
	return u
}

// MSRPAddr is where peers open MSRP connections to it: the advertised host and the bound
// port.
func (n *Node) MSRPAddr() string {
	_, port, _ := net.SplitHostPort(n.media.addr())
	return net.JoinHostPort(n.cfg.Advertise, port)
}

// Register registers the instance's URI with its PF (clients).
func (n *Node) Register(ctx context.Context, expires time.Duration) error {
	if n.cfg.OriginatingPF == "" {
		return fmt.Errorf("runtime: %s has no PF to register with", n.cfg.Name)
	}
	return n.sip.Register(ctx, n.pfURI(), n.cfg.URI, expires)
}

// Lookup returns the contact a client registered with this PF.
func (n *Node) Lookup(aor string) (string, bool) { return n.sip.Lookup(aor) }

// Close stops the node: no more events are taken, timers stop, sockets close.
func (n *Node) Close() error {
	n.in.close()
	n.cancel()
	n.wg.Wait()
	errs := []error{n.sip.Close(), n.media.close()}
	n.obs.close()
	return errors.Join(errs...)
}

// post runs f on the node's goroutine.
func (n *Node) post(f func()) { n.in.post(f) }

// event posts an event for the machine.
func (n *Node) event(ev fsm.Event) { n.post(func() { n.step(ev) }) }

func (n *Node) run() {
	defer n.wg.Done()
	defer func() {
		for _, g := range n.timers {
			g.t.Stop()
		}
		for _, t := range n.forgets {
			t.Stop()
		}
	}()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.in.wake:
			for _, f := range n.in.take() {
				f()
			}
		}
	}
}

// step feeds one event to the machine and carries out its actions.
func (n *Node) step(ev fsm.Event) {
	acts, err := n.role.Step(ev)
	n.record("in", ev, err)
	if err != nil {
		// The machine met an event its spec has no cell for: a gap, or a peer outside the
		// spec. The actions are for diagnosis only; none is carried out.
		n.log.Warn("event refused by the machine", "event", ev.Kind(), "leg", ev.EventLeg(), "err", err)
		return
	}
	n.obs.event(ev)
	// The spec's step is atomic: no peer acts on what it sends before the rest of it is
	// done. On the wire the 200 or INVITE whose SDP says we listen is read the moment it
	// leaves, and a peer that dials and sends at once must find its session, so the step's
	// listeners are made ready before anything else is carried out (its first SEND was
	// answered 481 otherwise, once the unknown-session hold overflowed). The trace keeps
	// the spec's order.
	for _, a := range acts {
		if _, ok := a.(fsm.AcceptLink); ok {
			n.exec(a)
		}
	}
	for _, a := range acts {
		n.obs.action(ev, a)
		if _, ok := a.(fsm.AcceptLink); !ok {
			n.exec(a)
		}
		// Recorded after it is carried out, so that the record names the dialog a new
		// INVITE made.
		n.record("out", a, nil)
	}
	if x, ok := ev.(fsm.SendReceived); ok {
		// A chunk that arrives is progress on the leg it came by (a relay's up leg, a
		// member's): the guard waiting for the rest of the message bounds a silence, not
		// the transfer.
		n.progress(x.Leg)
	}
	n.obs.stepped()
	n.lookBack(ev.EventLeg())
	n.publish()
}

// lookBack arms, once the session of leg is over, the timer that forgets it: the machine
// drops it, and the driver what it kept for its legs. A server runs for months: it must
// not hold every session it ever had, nor walk them all at each step (issue 8's soak
// found the CF's heap growing by every message). The session is kept one guard unit
// (32 s by default: RFC 3261's 64*T1, the longest a transaction of it may still
// retransmit, Timers B, F, H and J) after its last machine ended, so that what
// straggles in meets its terminal states, as it did before.
func (n *Node) lookBack(leg fsm.LegID) {
	s := fsm.SessionOf(n.role, leg)
	if s == nil {
		return
	}
	key := s.Key
	t, armed := n.forgets[key]
	if !s.Over() {
		// Taken out of its end by a straggler (terminal states need not be final in the
		// spec): it is not over after all.
		if armed {
			t.Stop()
			delete(n.forgets, key)
		}
		return
	}
	if armed {
		return
	}
	// The key too: a transmitter's session has no up leg, and its down legs are
	// derived from the key (media.downs holds them under it).
	legs := []fsm.LegID{key}
	if s.Up != nil && s.Up.Leg != key {
		legs = append(legs, s.Up.Leg)
	}
	for _, d := range s.Downs {
		legs = append(legs, d.Leg)
	}
	n.forgets[key] = time.AfterFunc(n.cfg.Guard, func() {
		n.post(func() { n.forget(key, legs) })
	})
}

// allOver is the machine's Terminal (every session over) without walking the machines
// of the sessions lookBack found over: their machines change only on events of their own
// legs, each of which lookBack sees. Walking them all at every step was a third of the
// CF's time in a soak, with the sessions kept for their guard unit.
func (n *Node) allOver() bool {
	for _, s := range n.role.Sessions() {
		if _, over := n.forgets[s.Key]; !over && !s.Over() {
			return false
		}
	}
	return true
}

// forget drops a session that lookBack found over, and what the driver kept for its legs.
func (n *Node) forget(key fsm.LegID, legs []fsm.LegID) {
	delete(n.forgets, key)
	if !fsm.Forget(n.role, key) {
		return
	}
	for _, leg := range legs {
		n.disarm(leg)
		delete(n.upHeaders, leg)
		delete(n.dialogs, leg)
		delete(n.hops, leg)
		delete(n.okSeen, leg)
		delete(n.acked, leg)
		n.media.forget(leg)
	}
	if n.onForget != nil {
		n.onForget()
	}
}

// publish makes the machine's state after a step visible to waiters on other goroutines.
func (n *Node) publish() {
	terminal := n.allOver()
	n.watch.Lock()
	n.terminal = terminal
	close(n.changed)
	n.changed = make(chan struct{})
	n.watch.Unlock()
}

// state returns whether every session of the machine is over, and a channel closed at the
// next step.
func (n *Node) state() (bool, <-chan struct{}) {
	n.watch.Lock()
	defer n.watch.Unlock()
	return n.terminal, n.changed
}

func (n *Node) hopOf(leg fsm.LegID) string {
	// A leg's hop never changes; the walk over every session is the cost of the first
	// lookup only (a PF-B with 100 members walked them for every record of a full trace).
	if h, ok := n.hops[leg]; ok {
		return h
	}
	for _, s := range n.role.Sessions() {
		if s.Up != nil && s.Up.Leg == leg {
			n.hops[leg] = fsm.Hop(s.Up.Hop).String()
			return n.hops[leg]
		}
		for _, d := range s.Downs {
			if d.Leg == leg {
				n.hops[leg] = fsm.Hop(d.Hop).String()
				return n.hops[leg]
			}
		}
	}
	return ""
}

func (n *Node) record(dir string, v any, err error) {
	if n.cfg.Trace == nil || n.cfg.Trace.Summary && perChunk(v) {
		return
	}
	type kinded interface{ Kind() string }
	typ := v.(kinded).Kind()
	if !n.cfg.Trace.wants(typ) {
		return
	}
	r := Record{Node: n.cfg.Name, Role: n.cfg.Kind.String(), Dir: dir, Type: typ, SIP: sipOf(v), MSRP: msrpOf(v), Fields: fieldsOf(v)}
	switch x := v.(type) {
	case fsm.Event:
		r.Leg = string(x.EventLeg())
	case fsm.Action:
		r.Leg = string(x.ActionLeg())
	}
	if r.Leg != "" {
		r.Hop = n.hopOf(fsm.LegID(r.Leg))
		r.Dialog = n.dialogOf(fsm.LegID(r.Leg))
	}
	if err != nil {
		r.Err = err.Error()
	}
	n.cfg.Trace.add(r)
}

// note records something the driver observed, for the trace.
func (n *Node) note(leg fsm.LegID, typ, msrpWhat, text string) {
	n.obs.note(leg, typ)
	if !n.cfg.Trace.wants(typ) {
		return
	}
	n.cfg.Trace.add(Record{Node: n.cfg.Name, Role: n.cfg.Kind.String(), Dir: "note", Type: typ, Leg: string(leg),
		Hop: n.hopOf(leg), Dialog: n.dialogOf(leg), MSRP: msrpWhat, Note: text})
}

func (n *Node) dialogOf(leg fsm.LegID) string {
	if d, ok := n.dialogs[leg]; ok {
		return d
	}
	if d := n.sip.CallID(string(leg)); d != "" {
		n.dialogs[leg] = d
		return d
	}
	return ""
}

// exec carries out one action.
func (n *Node) exec(a fsm.Action) {
	if n.onExec != nil {
		n.onExec(a)
	}
	leg := a.ActionLeg()
	var err error
	switch x := a.(type) {
	case fsm.SendInvite:
		n.media.invited(x.Leg)
		err = n.sendInvite(x)
	case fsm.SendOK:
		err = n.answer(leg, x.Answer)
	case fsm.SendReject:
		err = n.sip.Reject(string(leg), x.Status, "", outcomeHeaders(x.Outcomes))
	case fsm.SendAck:
		n.acked[leg] = true
		err = n.sip.Ack(string(leg))
	case fsm.SendCancel:
		err = n.sip.Cancel(string(leg))
	case fsm.SendBye:
		err = n.sip.Bye(string(leg))
	case fsm.AcceptLink:
		err = n.media.accept(leg, x.Local)
	case fsm.OpenLink:
		err = n.media.open(leg, x.Local, x.Peer, x.Conn, false)
	case fsm.ReuseLink:
		err = n.media.open(leg, x.Local, x.Peer, x.Conn, true)
	case fsm.CloseLink:
		n.media.close1(leg, false)
	case fsm.AbortLink:
		n.media.close1(leg, true)
	case fsm.SendMessage:
		err = n.media.sendMessage(leg)
	case fsm.RelayChunk:
		err = n.media.relay(x)
		n.progress(leg)
	case fsm.Deliver:
		err = n.media.deliver(x)
	case fsm.SendReport:
		err = n.media.report(x)
	case fsm.ReportStatus:
		err = n.media.reportStatus(x)
	case fsm.StartTimer:
		n.arm(leg)
	case fsm.StopTimer:
		n.disarm(leg)
	case fsm.Result:
		n.results.record(x.Member, x.Outcome)
	case fsm.Fail:
		n.results.failRest(x.Status)
	case fsm.SetupOverridden:
		// Negotiation overrode the variant's opener on this leg: the trace has the record.
		n.log.Debug("a=setup overrode the variant's opener", "leg", leg, "opens", x.Opens)
	case core.Refuse:
		n.log.Warn("peer broke the protocol", "leg", x.Leg, "event", x.Event, "state", x.State, "reason", x.Reason)
	}
	if err != nil {
		n.log.Warn("action failed", "action", a.Kind(), "leg", leg, "err", err)
		n.note(leg, "error", "", a.Kind()+": "+err.Error())
	}
}

// answer sends the 200 of an incoming leg without waiting for it to be written: the
// dialog exists when the call returns, and the stack's holding goroutine writes the
// response. A PF-B answers each of its members' legs this way, and waiting inline for each
// write made its members' 200s go upstream one after another (docs/performance.md). A
// CANCEL that won the race is handled on the node's goroutine as before, when the result
// comes back; a 200 that could not be handed to the transport is recorded (the caller's
// retransmitted INVITE, or the guard timers, cover its loss, as for any lost 200).
func (n *Node) answer(leg fsm.LegID, sdp fsm.SDP) error {
	done, err := n.sip.AnswerAsync(string(leg), []sipx.Part{sdpPart(sdp, "recvonly")}, nil)
	if errors.Is(err, sipx.ErrCancelled) {
		n.cancelCrossedOK(leg)
		return nil
	}
	if err != nil {
		return err
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		var err error
		select {
		case err = <-done:
		case <-n.ctx.Done():
			return
		}
		if err == nil {
			return
		}
		n.post(func() {
			if errors.Is(err, sipx.ErrCancelled) {
				n.cancelCrossedOK(leg)
				return
			}
			n.log.Warn("action failed", "action", "SendOK", "leg", leg, "err", err)
			n.note(leg, "error", "", "SendOK: "+err.Error())
		})
	}()
	return nil
}

// cancelCrossedOK handles a CANCEL that reached the stack before our 200 did: the stack
// answered 487, so the caller has no dialog, while the machine, which sent SendOK, is in
// answered and ignores the CANCEL as one that came too late (RFC 3261 §9.2). The model's
// version of this race is a 200 that crosses the CANCEL, which the caller then ACKs and
// ends with a BYE; the machine is given that BYE, so that it ends its session now instead
// of waiting for an ACK that never comes. The stack's leg is released with the 487 it
// already sent.
func (n *Node) cancelCrossedOK(leg fsm.LegID) {
	_ = n.sip.Reject(string(leg), 487, "", nil)
	n.note(leg, "cancel-crossed-200", "", "the CANCEL arrived first: the stack answered 487, the session ends")
	n.post(func() { n.step(fsm.ByeReceived{Leg: leg}) })
}

// arm starts (or restarts) the guard timer of a side; when it fires, the machine gets
// Timeout. Time enters the machine only this way. A timer that fires after it was
// stopped or restarted (its Timeout still on the way to the inbox) is dropped: the
// machine only ever sees the timeout of the wait it is in. A timer whose side made
// progress meanwhile starts over: the guard bounds a silence, not a transfer, so a
// message of any size may take as long as it needs while its chunks keep moving.
func (n *Node) arm(leg fsm.LegID) {
	n.disarm(leg)
	n.timerGen++
	gen := n.timerGen
	t := time.AfterFunc(n.guardFor(leg), func() {
		n.post(func() {
			g, ok := n.timers[leg]
			if !ok || g.gen != gen {
				return
			}
			if g.moved {
				n.arm(leg)
				return
			}
			n.fire(leg)
		})
	})
	n.timers[leg] = guard{t: t, gen: gen}
}

// progress notes that a side's link carried part of the message (a chunk relayed onto
// it, arrived on it, or read for it by the transmitter).
func (n *Node) progress(leg fsm.LegID) {
	if g, ok := n.timers[leg]; ok && !g.moved {
		g.moved = true
		n.timers[leg] = g
	}
}

// fire ends a side's wait now: its timer is disarmed and the machine gets Timeout.
func (n *Node) fire(leg fsm.LegID) {
	n.disarm(leg)
	n.step(fsm.Timeout{Leg: leg})
}

func (n *Node) disarm(leg fsm.LegID) {
	if g, ok := n.timers[leg]; ok {
		g.t.Stop()
		delete(n.timers, leg)
	}
}

// guardFor is how long a side waits. The spec's model lets a guard fire only when nothing
// else can happen, so each wait must outlast every wait it may depend on: a side waiting
// on its downstream outlasts the downstream's own waits (PF-B 1, CF 2, PF-A 3, ClientA 4
// units), and a side waiting on its upstream (an answered leg whose link or message has
// not come) outlasts them all (5 units), since the upstream may itself be waiting on
// another member's failure.
func (n *Node) guardFor(leg fsm.LegID) time.Duration {
	g := n.cfg.Guard
	for _, s := range n.role.Sessions() {
		if s.Up != nil && s.Up.Leg == leg {
			return 5 * g
		}
	}
	switch n.cfg.Kind {
	case fsm.RolePFB:
		return g
	case fsm.RoleCF:
		return 2 * g
	case fsm.RolePFA:
		return 3 * g
	case fsm.RoleClientA:
		return 4 * g
	}
	return 5 * g
}

// parentLeg is the up leg a down leg was derived from ("in:x/2" -> "in:x").
func parentLeg(leg fsm.LegID) fsm.LegID {
	s := string(leg)
	if i := strings.LastIndexByte(s, '/'); i > 0 {
		return fsm.LegID(s[:i])
	}
	return ""
}

// The headers of large message mode (OMA CPM; DESIGN §6).
const (
	featureTag = "+g.oma.sip-im.large-message"
	icsi       = "urn:urn-7:3gpp-service.ims.icsi.oma.cpm.largemsg"
)

func (n *Node) sendInvite(x fsm.SendInvite) error {
	parts := []sipx.Part{sdpPart(x.Offer, "sendonly")}
	if len(x.Members) > 0 {
		parts = append(parts, resourceListPart(x.Members))
	}
	// A B2BUA carries the session's Contribution-ID and Conversation-ID on; the transmitter
	// makes them.
	extra := n.upHeaders[parentLeg(x.Leg)]
	if extra == nil {
		extra = []sipx.Header{{Name: "Contribution-ID", Value: randomHex(16)}, {Name: "Conversation-ID", Value: randomHex(16)}}
	}
	extra = append([]sipx.Header{
		{Name: "Accept-Contact", Value: "*;" + featureTag},
		{Name: "P-Preferred-Service", Value: icsi},
	}, extra...)
	target := x.Target
	from := x.From
	switch n.cfg.Kind {
	case fsm.RoleClientA:
		// A client asserts nothing: P-Asserted-Identity is for the trust domain's own
		// nodes (RFC 3325 §9.1), and its PF takes the identity from its authentication
		// (or, without it, from the From, which is this URI).
		from = ""
		if n.cfg.OriginatingPF != "" {
			extra = append(extra, sipx.Header{Name: "Route", Value: "<" + n.pfURI() + ";lr>"})
		}
	case fsm.RolePFB:
		// The terminating PF finds the member where it registered (its location service).
		contact, ok := n.sip.Lookup(x.Target)
		if !ok {
			leg := x.Leg
			n.note(leg, "unregistered", "", x.Target+" is not registered")
			n.event(fsm.RejectReceived{Leg: leg, Status: 480})
			return nil
		}
		target = contact
	}
	return n.sip.Invite(string(x.Leg), target, from, parts, extra)
}
