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
	// Host is the loopback address SIP and MSRP bind to (127.0.0.1 or ::1).
	Host string
	// SIPPort and MSRPPort are fixed ports, or 0 to choose free ones.
	SIPPort, MSRPPort int
	Variant           fsm.Variant
	// Proxy is the SIP/IP core (host:port) every request goes through.
	Proxy string
	// Transport is "udp" or "tcp" for SIP; requests over 1300 bytes use TCP anyway.
	Transport string
	// OriginatingPF is, for a client, the SIP address (host:port) of its PF: the
	// transmitter's INVITE is routed there first (a preloaded Route, as an IMS service
	// route would), and both clients REGISTER there.
	OriginatingPF string
	// Groups are the CF's pre-defined groups.
	Groups map[string]core.Group
	// Answer is a receiver's answering policy.
	Answer core.Answer
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
	// Guard is the unit of the guard timers (default 32 s, RFC 3261 Timer B): a PF-B waits
	// one unit for a member's answer, and every wait that may depend on it longer (see
	// guardFor).
	Guard time.Duration
	// Trace receives the records of this instance, if not nil.
	Trace *Tracer `json:"-"`
	// Logger is quiet by default.
	Logger *slog.Logger `json:"-"`
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
	in     *inbox
	timers map[fsm.LegID]guard
	// timerGen tells a timer's Timeout from that of an earlier timer of the same side.
	timerGen uint64
	// upHeaders keeps the large-message headers of each session's INVITE, to carry them on
	// the session's downstream INVITEs (Contribution-ID, Conversation-ID ...).
	upHeaders map[fsm.LegID][]sipx.Header
	dialogs   map[fsm.LegID]string
	// okSeen and acked tell a retransmitted 2xx from the first, on down legs.
	okSeen, acked map[fsm.LegID]bool

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

// StartNode binds the instance's SIP and MSRP ports on loopback and starts its goroutine.
func StartNode(ctx context.Context, cfg NodeConfig) (*Node, error) {
	cfg.defaults()
	if ip := net.ParseIP(cfg.Host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("runtime: %s: host %q is not a loopback address", cfg.Name, cfg.Host)
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("node", cfg.Name), in: newInbox(), timers: map[fsm.LegID]guard{},
		upHeaders: map[fsm.LegID][]sipx.Header{}, dialogs: map[fsm.LegID]string{},
		okSeen: map[fsm.LegID]bool{}, acked: map[fsm.LegID]bool{}, results: newResultSet(),
		terminal: true, changed: make(chan struct{})}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	var err error
	n.media, err = startMedia(n, net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.MSRPPort)))
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(n.media.addr())
	var mport int
	fmt.Sscan(port, &mport)
	fcfg := core.Config{Name: cfg.Name, URI: cfg.URI, MSRPHost: host, MSRPPort: mport,
		// The session ids of our MSRP URIs come from this secret: random here, so that
		// they cannot be guessed (RFC 4975 §14.1).
		Secret: randomHex(16), Groups: cfg.Groups, Answer: cfg.Answer, TLS: cfg.TLS != nil}
	if err := cfg.Variant.Check(); err != nil {
		n.media.close()
		return nil, err
	}
	n.role = fsm.New(cfg.Kind, fcfg, cfg.Variant)
	params := "+g.oma.sip-im.large-message;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.largemsg\""
	n.sip, err = sipx.Start(ctx, sipx.Config{Name: cfg.Name, Host: cfg.Host, UDPPort: cfg.SIPPort, TCPPort: cfg.SIPPort,
		Identity: cfg.URI, ContactParams: params, Proxy: cfg.Proxy, Transport: cfg.Transport,
		Registrar: cfg.Kind == fsm.RolePFA || cfg.Kind == fsm.RolePFB, Logger: cfg.Logger}, n.sipHandler())
	if err != nil {
		n.media.close()
		return nil, err
	}
	n.wg.Add(1)
	go n.run()
	return n, nil
}

// Name is the instance name.
func (n *Node) Name() string { return n.cfg.Name }

// Kind is the instance's role.
func (n *Node) Kind() fsm.RoleKind { return n.cfg.Kind }

// SIPAddr is where the instance takes SIP (UDP and TCP share the port when it was chosen
// for both).
func (n *Node) SIPAddr() string { return n.sip.UDPAddr() }

// SIPAddrTCP is its TCP SIP address.
func (n *Node) SIPAddrTCP() string { return n.sip.TCPAddr() }

// MSRPAddr is where it accepts MSRP connections.
func (n *Node) MSRPAddr() string { return n.media.addr() }

// Register registers the instance's URI with its PF (clients).
func (n *Node) Register(ctx context.Context, expires time.Duration) error {
	if n.cfg.OriginatingPF == "" {
		return fmt.Errorf("runtime: %s has no PF to register with", n.cfg.Name)
	}
	return n.sip.Register(ctx, n.cfg.OriginatingPF, n.cfg.URI, expires)
}

// Lookup returns the contact a client registered with this PF.
func (n *Node) Lookup(aor string) (string, bool) { return n.sip.Lookup(aor) }

// Close stops the node: no more events are taken, timers stop, sockets close.
func (n *Node) Close() error {
	n.in.close()
	n.cancel()
	n.wg.Wait()
	errs := []error{n.sip.Close(), n.media.close()}
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
	for _, a := range acts {
		n.exec(a)
		// Recorded after it is carried out, so that the record names the dialog a new
		// INVITE made.
		n.record("out", a, nil)
	}
	n.publish()
}

// publish makes the machine's state after a step visible to waiters on other goroutines.
func (n *Node) publish() {
	terminal := n.role.Terminal()
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
	for _, s := range n.role.Sessions() {
		if s.Up != nil && s.Up.Leg == leg {
			return fsm.Hop(s.Up.Hop).String()
		}
		for _, d := range s.Downs {
			if d.Leg == leg {
				return fsm.Hop(d.Hop).String()
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
	r := Record{Node: n.cfg.Name, Role: n.cfg.Kind.String(), Dir: dir, Type: v.(kinded).Kind(), SIP: sipOf(v), MSRP: msrpOf(v), Fields: fieldsOf(v)}
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
	if n.cfg.Trace == nil {
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
	leg := a.ActionLeg()
	var err error
	switch x := a.(type) {
	case fsm.SendInvite:
		n.media.invited(x.Leg)
		err = n.sendInvite(x)
	case fsm.SendOK:
		err = n.sip.Answer(string(leg), []sipx.Part{sdpPart(x.Answer, "recvonly")}, nil)
		if errors.Is(err, sipx.ErrCancelled) {
			n.cancelCrossedOK(leg)
			err = nil
		}
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
		n.progress(leg)
	case fsm.SendReport:
		err = n.media.report(x)
	case fsm.StartTimer:
		n.arm(leg)
	case fsm.StopTimer:
		n.disarm(leg)
	case fsm.Result:
		n.results.record(x.Member, x.Outcome)
	case fsm.Fail:
		n.results.failRest(x.Status)
	case core.Refuse:
		n.log.Warn("peer broke the protocol", "leg", x.Leg, "event", x.Event, "state", x.State, "reason", x.Reason)
	}
	if err != nil {
		n.log.Warn("action failed", "action", a.Kind(), "leg", leg, "err", err)
		n.note(leg, "error", "", a.Kind()+": "+err.Error())
	}
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
// it, delivered from it, or read for it by the transmitter).
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
	switch n.cfg.Kind {
	case fsm.RoleClientA:
		if n.cfg.OriginatingPF != "" {
			extra = append(extra, sipx.Header{Name: "Route", Value: "<sip:" + n.cfg.OriginatingPF + ";lr>"})
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
	return n.sip.Invite(string(x.Leg), target, x.From, parts, extra)
}
