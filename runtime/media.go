package runtime

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/runtime/cpim"
	"github.com/cpmlink/cpmlink/runtime/msrp"
	"github.com/cpmlink/cpmlink/runtime/sipx"
)

// Extension headers of the group REPORTs that carry one member's outcome from server to
// server (and to cpmlink's own sender). A member's own REPORT is standard and has none.
const (
	memberHeader  = "CPM-Member"
	membersHeader = "CPM-Members"
)

// The content types a node's SDP advertises (sdpPart: a=accept-types and
// a=accept-wrapped-types, RFC 4975 §8.6). Each session is told them, so that a
// message the SDP did not allow is refused with 415 and never stored or relayed.
var (
	offeredTypes   = []string{cpimType}
	offeredWrapped = []string{"*"}
)

// MSRPLimits are the limits an operator sets on a role instance's MSRP side.
// Zero fields take runtime/msrp's defaults (msrp.Config documents each);
// negative ones remove the bound where msrp.Config allows it.
type MSRPLimits struct {
	// MaxConns bounds the connections the MSRP listener holds at a time; one
	// more is closed as soon as it is accepted (default 4096).
	MaxConns int
	// MaxConnsPerHost bounds the accepted connections from one source IP
	// address (default 1024). On loopback every role shares one address.
	MaxConnsPerHost int
	// FirstFrameTimeout closes an accepted connection that sends no complete
	// MSRP frame within it (default 10 s).
	FirstFrameTimeout time.Duration
	// MaxSessions bounds the instance's concurrent MSRP sessions (default
	// 8192); a leg beyond it fails its link with 403 (LinkFailed).
	MaxSessions int
	// MaxHeaderBytes bounds an MSRP header section; a request over it is
	// answered 413 (default 16 KiB).
	MaxHeaderBytes int
}

// storeWindow is how many chunks a relay holds at most between its slowest and its
// fastest consumer.
const storeWindow = 16

// deliverer names the receiver's file as a consumer of its chunk store.
const deliverer = "deliver"

// media is a node's MSRP side: one endpoint, one session per leg that has a link.
type media struct {
	n  *Node
	ep *msrp.Endpoint
	ln net.Listener

	// The maps are touched only on the node's goroutine.
	legs  map[fsm.LegID]*legMedia
	peers map[fsm.LegID]fsm.SDP
	// downs lists, per up leg, the down legs the machine sent an INVITE on: the consumers
	// of what arrives on the up leg.
	downs map[fsm.LegID][]fsm.LegID
	dead  map[fsm.LegID]bool
	// up lists the legs whose LinkUp the machine took; held keeps the binds of legs
	// that reuse the connection another leg opened until that leg's own LinkUp: the
	// pool may hand out a connection before the leg that opened it has bound, but for
	// the machine (and the spec) a connection is up first for the leg that opened it.
	up   map[fsm.LegID]bool
	held map[fsm.LegID][]func()

	// source is what a transmitter sends, set by Send before its machine starts.
	source *Message

	mu       sync.Mutex
	received []Received
	// arrived is closed (and replaced) each time a message is stored.
	arrived chan struct{}

	// dialed, when set (by tests only, export_test.go), is called off the node's
	// goroutine each time a leg's connection is dialed, before its bind is posted.
	dialed atomic.Pointer[func(fsm.LegID)]

	wg sync.WaitGroup
}

// legMedia is one leg's link.
type legMedia struct {
	sess *msrp.Session
	// store holds the message arriving on this leg (up legs).
	store *chunkStore
	// out relays a message onto this leg (down legs).
	out *relayOut
	// file receives the message (a receiver's up leg).
	file *delivery
	// sending is set while a message goes out on the leg and its MessageAcked (or
	// failure) has not reached the machine; held keeps the REPORTs that arrived after the
	// last 200 meanwhile. The machine takes a leg's events in wire order, as the spec's
	// model of a link has them, whichever of the two paths (the transaction layer, the
	// REPORT callback) reaches the node first: a REPORT read after the 200s waits for
	// MessageAcked, one read before (a member that declined early) goes through at once.
	sending bool
	held    []fsm.ReportReceived
	// wire is what the leg's MSRP reader may read while a REPORT arrives.
	wire *legWire
	// bound is closed once the leg's bind is written (or could not be), for the legs
	// that reuse its connection (an opener's leg; nil until its LinkUp).
	bound chan struct{}
}

// legWire is shared with the leg's MSRP callbacks, which run on the connection's reader:
// the message going out on the leg, so that a REPORT can tell whether it came after the
// 200s to every SEND of it (the reader takes frames in wire order).
type legWire struct {
	// done is closed once every SEND of the message going out is answered
	// (msrp.Outgoing.Done, or what Send passes to msrp.Message.Started).
	done atomic.Pointer[<-chan struct{}]
}

func (w *legWire) sending(done <-chan struct{}) { w.done.Store(&done) }

// afterAcks reports whether every SEND of the message going out on the leg was answered
// before now.
func (w *legWire) afterAcks() bool {
	done := w.done.Load()
	if done == nil {
		return false
	}
	select {
	case <-*done:
		return true
	default:
		return false
	}
}

// Received describes a message a receiver stored.
type Received struct {
	MessageID string
	From      string
	File      string
	Bytes     int64
	SHA256    string
	At        time.Time
}

func startMedia(n *Node, addr string) (*media, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("runtime: %s: MSRP listener: %w", n.cfg.Name, err)
	}
	m := &media{n: n, ln: ln, legs: map[fsm.LegID]*legMedia{}, peers: map[fsm.LegID]fsm.SDP{},
		downs: map[fsm.LegID][]fsm.LegID{}, dead: map[fsm.LegID]bool{},
		up: map[fsm.LegID]bool{}, held: map[fsm.LegID][]func(){}, arrived: make(chan struct{})}
	lim := n.cfg.MSRPLimits
	m.ep = msrp.NewEndpoint(msrp.Config{ChunkSize: n.cfg.ChunkSize, TLSConfig: n.cfg.TLS, Logger: n.log,
		MaxConns: lim.MaxConns, MaxConnsPerHost: lim.MaxConnsPerHost, FirstFrameTimeout: lim.FirstFrameTimeout,
		MaxSessions: lim.MaxSessions, Limits: msrp.Limits{MaxHeaderBytes: lim.MaxHeaderBytes}})
	served := ln
	if n.cfg.TLS != nil {
		// msrps: the listener accepts TLS only, and every URI of ours says so.
		served = tls.NewListener(ln, n.cfg.TLS)
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.ep.Serve(served)
	}()
	return m, nil
}

func (m *media) addr() string { return m.ln.Addr().String() }

// errClosing ends what a closing node was still receiving.
var errClosing = errors.New("runtime: the node is closing")

// close ends every session and waits for the goroutines media started. The node's
// goroutine has ended, so the leg maps are ours.
func (m *media) close() error {
	err := m.ep.Close()
	for _, lm := range m.legs {
		if lm.file != nil {
			lm.file.src.stop(errClosing)
		}
	}
	m.wg.Wait()
	return err
}

// learned remembers the peer's parameters a leg received in SDP, for a session that
// starts listening before it knows them (RFC 6135 actpass).
func (m *media) learned(leg fsm.LegID, p fsm.SDP) {
	m.peers[leg] = p
	if lm := m.legs[leg]; lm != nil {
		path, err := msrp.ParsePath(p.Path)
		if err == nil {
			err = lm.sess.SetRemote(path)
		}
		if err != nil {
			// Someone other than the peer the SDP names bound the session: give it up.
			m.n.note(leg, "wrong-peer", "abort", err.Error())
			lm.sess.Abort(err)
		}
	}
}

// session returns the leg's session, creating it with our parameters and, if known, the
// peer's. active marks the leg's opener (OpenLink, ReuseLink): its session is bound only
// by its own dial, so that a peer that connects too gets 506 for what it sends on its own
// connection, never a 200 for chunks the machine never sees.
func (m *media) session(leg fsm.LegID, local fsm.SDP, active bool) (*legMedia, error) {
	if lm := m.legs[leg]; lm != nil {
		if active {
			lm.sess.SetActive()
		}
		return lm, nil
	}
	lu, err := msrp.ParseURI(local.Path)
	if err != nil {
		return nil, err
	}
	// The machine decides reuse (OpenLink or ReuseLink) from the variant; the pool follows
	// the same knob, so that both agree on what "an existing link" is.
	policy := msrp.ReuseOff
	if m.n.cfg.Variant.Reuse == fsm.ReuseOn {
		policy = msrp.ReuseAuthority
	}
	wire := &legWire{}
	cfg := msrp.SessionConfig{Local: lu, ChunkSize: m.n.cfg.ChunkSize, DetachedReports: true, Reuse: &policy, Active: active,
		AcceptTypes: offeredTypes, AcceptWrappedTypes: offeredWrapped,
		OnLinkUp: func(l msrp.Link) {
			if !l.Active {
				m.n.event(fsm.LinkUp{Leg: leg, Conn: fsm.ConnID(l.RemoteAddr.String()), Reused: l.Reused})
			}
		},
		OnLinkDown: func(err error) {
			m.n.post(func() { m.linkFailed(leg, "link-down", "failed", err) })
		},
		OnReport: func(f *msrp.Frame) { m.onReport(leg, wire, f) },
		Accept:   func(im *msrp.IncomingMessage) (msrp.Sink, error) { return m.accept1(leg, im) },
	}
	if p, ok := m.peers[leg]; ok {
		if path, err := msrp.ParsePath(p.Path); err == nil {
			cfg.Remote = path
		}
	}
	s, err := m.ep.NewSession(cfg)
	if err != nil {
		return nil, err
	}
	lm := &legMedia{sess: s, wire: wire}
	m.legs[leg] = lm
	return lm, nil
}

func statusOf(err error) int {
	if st := msrp.StatusOf(err); st >= 400 {
		return st
	}
	return 408
}

// accept makes the leg ready for the peer's connection (the passive party).
func (m *media) accept(leg fsm.LegID, local fsm.SDP) error {
	_, err := m.session(leg, local, false)
	return m.overLimit(leg, err)
}

// overLimit turns a session refused by MSRPLimits.MaxSessions into the leg's link
// failure, which the machine handles as any other (403: the operator's policy
// forbids it); other errors are returned.
func (m *media) overLimit(leg fsm.LegID, err error) error {
	if !errors.Is(err, msrp.ErrLimit) {
		return err
	}
	refused := &msrp.StatusError{Code: msrp.StatusForbidden, Comment: "session limit", Err: err}
	m.n.post(func() { m.linkFailed(leg, "limit", "refused", refused) })
	return nil
}

// open opens (or, with reuse, binds to an existing) connection for the leg (the active
// party); the outcome reaches the machine as LinkUp or LinkFailed.
func (m *media) open(leg fsm.LegID, local, peer fsm.SDP, conn fsm.ConnID, reuse bool) error {
	m.peers[leg] = peer
	lm, err := m.session(leg, local, true)
	if err != nil {
		return m.overLimit(leg, err)
	}
	path, err := msrp.ParsePath(peer.Path)
	if err != nil {
		return err
	}
	if err := lm.sess.SetRemote(path); err != nil {
		return err
	}
	// The connection is dialed off the node's goroutine; the bind that tells the peer is
	// sent on it, together with the machine's LinkUp, so that the machine learns of its
	// link before the peer can: the spec's model of an opener (the explorer's too).
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		ctx, cancel := context.WithTimeout(m.n.ctx, m.n.cfg.Guard)
		defer cancel()
		link, err := lm.sess.Dial(ctx)
		if err != nil {
			// Through linkFailed, which marks the leg dead: the legs whose binds wait for
			// this leg's LinkUp (they reuse the connection it was to open) are released to
			// bind on their own, instead of waiting for a LinkUp that never comes.
			m.n.post(func() { m.linkFailed(leg, "connect", "failed", err) })
			return
		}
		if h := m.dialed.Load(); h != nil {
			(*h)(leg)
		}
		m.n.post(func() { m.bind(lm, leg, conn, reuse, link) })
	}()
	return nil
}

// bind hands the machine the LinkUp of a dialed link, then sends the bind that tells
// the peer off the node's goroutine (RFC 4975 §7.1.1: the bodiless SEND); a bind that
// cannot be written, or that the peer refuses, is a link failure later.
//
// The machine learns of its link before the peer can, as the spec's model of an opener
// has it: the bind is written only after the LinkUp step. It is written off the node's
// goroutine because on a connection that other legs share (reuse: on, one connection per
// PF-B for all its members) it waits for the chunks already going out on it: a CF that
// wrote each member's bind inline took its members' 200s one after another, each behind a
// relay chunk (profiled: 12.9 s of its driver's 16 s at 1000 members, docs/performance.md).
// Nothing else is written on the session before the bind is answered: every sender waits
// for the session's link, which only the bind's 200 brings up (msrp.Session.Bind).
func (m *media) bind(lm *legMedia, leg fsm.LegID, conn fsm.ConnID, reuse bool, link msrp.Link) {
	if m.dead[leg] {
		return
	}
	base := fsm.LegID(conn)
	// A base leg the node forgot (its session over) was up long ago: nothing to wait for.
	if reuse && base != leg && !m.up[base] && !m.dead[base] && m.legs[base] != nil {
		m.held[base] = append(m.held[base], func() { m.bind(lm, leg, conn, reuse, link) })
		return
	}
	// A leg that reuses the connection another leg opened writes its bind after that
	// leg's: the peer then sees the connection carry the opener's session first, as the
	// machines on both ends do.
	var after <-chan struct{}
	if reuse && base != leg {
		if b := m.legs[base]; b != nil && b.bound != nil {
			after = b.bound
		}
	}
	lm.bound = make(chan struct{})
	if link.Reused != reuse {
		m.n.note(leg, "pool", "", fmt.Sprintf("the machine asked reuse=%v, the pool reused=%v", reuse, link.Reused))
	}
	m.linkUp(fsm.LinkUp{Leg: leg, Conn: conn, Reused: link.Reused})
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		ctx, cancel := context.WithTimeout(m.n.ctx, m.n.cfg.Guard)
		defer cancel()
		if after != nil {
			select {
			case <-after:
			case <-ctx.Done():
			}
		}
		answered, err := lm.sess.Bind(ctx)
		close(lm.bound)
		if err == nil {
			select {
			case err = <-answered:
			case <-m.n.ctx.Done():
				return
			}
		}
		if err != nil {
			m.n.post(func() { m.linkFailed(leg, "bind", "failed", err) })
		}
	}()
}

// linkUp hands the machine a LinkUp, then those of the legs that waited for it.
func (m *media) linkUp(ev fsm.LinkUp) {
	m.up[ev.Leg] = true
	m.n.step(ev)
	m.release(ev.Leg)
}

// release binds the links held for the connection leg opened.
func (m *media) release(leg fsm.LegID) {
	held := m.held[leg]
	delete(m.held, leg)
	for _, bind := range held {
		bind()
	}
}

// forget drops what media kept for a leg of a session the node forgot (Node.forget):
// its link is closed by then; closing it again is a no-op.
func (m *media) forget(leg fsm.LegID) {
	if lm := m.legs[leg]; lm != nil && lm.sess != nil {
		lm.sess.Close()
	}
	delete(m.legs, leg)
	delete(m.peers, leg)
	delete(m.downs, leg)
	// A leg with no parent (a transmitter's) is listed under "" (invited).
	if up := parentLeg(leg); up == "" {
		m.downs[up] = slices.DeleteFunc(m.downs[up], func(l fsm.LegID) bool { return l == leg })
		if len(m.downs[up]) == 0 {
			delete(m.downs, up)
		}
	}
	delete(m.dead, leg)
	delete(m.up, leg)
	delete(m.held, leg)
}

// close1 ends a leg's link; abort makes the peer see it fail.
func (m *media) close1(leg fsm.LegID, abort bool) {
	cause := errLinkClosed
	if abort {
		cause = errors.New("runtime: link aborted")
	}
	m.kill(leg, cause)
	lm := m.legs[leg]
	if lm == nil {
		return
	}
	if abort {
		lm.sess.Abort(errors.New("runtime: the session failed"))
	} else {
		lm.sess.Close()
	}
}

// errLinkClosed is what a link the machine closed leaves to a message still arriving on
// it. The machine closes a link whose session is over (its dialog ended, or its message
// is done), so a SEND that still comes is answered 481, the session does not exist (RFC
// 4975 §10), as one that arrives after the session left the endpoint is: not 413, which
// would tell the sender that the member refused the message. A member that hangs up
// closes its link as it sends BYE, and its PF-B, which may read the answer before the
// BYE, reports it failed with 481 either way (model/cpmlink.yaml: recv-bye at down).
var errLinkClosed = errors.New("runtime: link closed")

// linkFailed tells the machine that a leg's link failed, once: the connection, the
// message arriving on it, the relay writing to it and the bind each watch the link, and
// whichever sees the failure first reports it; the machine gets one LinkFailed per link,
// as the simulator gives it. A leg we closed ourselves is not reported. It runs on the
// node's goroutine.
func (m *media) linkFailed(leg fsm.LegID, what, verdict string, err error) {
	if m.dead[leg] {
		return
	}
	m.n.note(leg, what, verdict, fmt.Sprint(err))
	m.kill(leg, err)
	m.n.step(fsm.LinkFailed{Leg: leg, Status: statusOf(err)})
}

// kill marks a leg dead: what arrives upstream is no longer kept for it.
func (m *media) kill(leg fsm.LegID, err error) {
	if m.dead[leg] {
		return
	}
	m.dead[leg] = true
	// The legs reusing its connection learn of it on their own (their sessions share
	// the connection); what they were told so far must not wait on a dead leg.
	defer m.release(leg)
	if up := parentLeg(leg); up != "" {
		if lm := m.legs[up]; lm != nil && lm.store != nil {
			lm.store.drop(string(leg))
		}
	}
	if lm := m.legs[leg]; lm != nil {
		if lm.store != nil {
			lm.store.fail(err)
		}
		if lm.out != nil {
			lm.out.stop()
		}
		if lm.file != nil {
			// The store's writer ends with the link: a message that stops arriving is
			// not stored, and nothing waits for the rest of it.
			lm.file.src.stop(err)
		}
	}
}

// invited records a down leg the machine sent an INVITE on.
func (m *media) invited(leg fsm.LegID) {
	up := parentLeg(leg)
	m.downs[up] = append(m.downs[up], leg)
}

// accept1 takes a message arriving on a leg: a relay keeps its chunks for the down legs,
// a receiver for its file. Each chunk is told to the machine, which decides where it goes.
func (m *media) accept1(leg fsm.LegID, im *msrp.IncomingMessage) (msrp.Sink, error) {
	type res struct {
		st   *chunkStore
		file *delivery
		err  error
	}
	ch := make(chan res, 1)
	// The store is set up on the node's goroutine, which owns the maps.
	if !m.n.in.post(func() {
		lm := m.legs[leg]
		if lm == nil || lm.store != nil {
			ch <- res{err: &msrp.StatusError{Code: 403, Comment: "one message per session"}}
			return
		}
		var consumers []string
		for _, d := range m.downs[leg] {
			if !m.dead[d] {
				consumers = append(consumers, string(d))
			}
		}
		if m.n.cfg.Kind == fsm.RoleClientB {
			consumers = []string{deliverer}
			f, err := m.newDelivery(im)
			if err != nil {
				ch <- res{err: &msrp.StatusError{Code: 403, Comment: err.Error()}}
				return
			}
			lm.file = f
		}
		// Bounded memory whatever the message size and the number of members: the
		// consumers share the chunks, and the store holds those between the slowest
		// consumer and the newest chunk, up to a window of storeWindow chunks; past it
		// the MSRP reader waits (TCP back-pressure up the chain).
		limit := int64(storeWindow * m.n.cfg.ChunkSize)
		lm.store = newChunkStore(*im, consumers, limit, m.n.cfg.Guard/2, func(slow string) {
			m.n.post(func() {
				m.n.note(fsm.LegID(slow), "stall", "", "dropped: it held the relay full")
				m.kill(fsm.LegID(slow), errStalled)
				m.n.step(fsm.LinkFailed{Leg: fsm.LegID(slow), Status: 408})
			})
		})
		ch <- res{st: lm.store, file: lm.file}
	}) {
		return nil, &msrp.StatusError{Code: 481, Comment: "closing"}
	}
	var r res
	select {
	case r = <-ch:
	case <-m.n.ctx.Done():
		return nil, &msrp.StatusError{Code: 481, Comment: "closing"}
	}
	if r.err != nil {
		return nil, r.err
	}
	return &storeSink{m: m, leg: leg, st: r.st, file: r.file}, nil
}

// storeSink is the MSRP sink of an up leg: it keeps each chunk and tells the machine.
type storeSink struct {
	m   *media
	leg fsm.LegID
	st  *chunkStore
	// file is a receiver's store, nil at a relay.
	file *delivery
}

func (s *storeSink) WriteChunk(c *msrp.Chunk) error {
	last := c.Flag == msrp.FlagEnd
	k, err := s.st.add(s.m.n.ctx, c)
	if errors.Is(err, errLinkClosed) {
		return &msrp.StatusError{Code: 481, Comment: "session closed"}
	}
	if err != nil {
		return &msrp.StatusError{Code: 413, Comment: err.Error()}
	}
	// What the sender asked for travels with each chunk; the spec decides who reports.
	im := s.st.msg
	ev := fsm.SendReceived{Leg: s.leg, Chunk: k, Last: last,
		SuccessReport: im.SuccessReport, FailureReport: im.FailureReport != msrp.ReportNo}
	if !last {
		s.m.n.event(ev)
		return nil
	}
	// The 200 to the last SEND goes out as the machine takes the chunk, on its goroutine:
	// what the machine sent before (a member's failure REPORT) is then on the wire before
	// it, what it sends on taking it or later comes after, in the order the spec's model
	// of a link has them (the 200 travels ahead of what follows the last chunk), and a
	// sender that closes on that 200 finds the message complete here. A receiver answers
	// only once the message is stored (below).
	taken := make(chan struct{})
	s.m.n.post(func() {
		defer close(taken)
		if s.file == nil {
			c.Answer()
		}
		s.m.n.step(ev)
	})
	select {
	case <-taken:
	case <-s.m.n.ctx.Done():
		return &msrp.StatusError{Code: 481, Comment: "closing"}
	}
	if s.file != nil {
		// A receiver's 200 to the last SEND is what tells PF-B the member has the
		// message (RFC 4975 §7.1.1), so it goes out only once the message is stored; a
		// store that fails is answered with an error instead.
		select {
		case <-s.file.done:
		case <-s.m.n.ctx.Done():
			return &msrp.StatusError{Code: 481, Comment: "closing"}
		}
		if s.file.err != nil {
			return &msrp.StatusError{Code: 403, Comment: "the message could not be stored"}
		}
	}
	return nil
}

func (s *storeSink) Close(err error) error {
	if err != nil {
		s.st.fail(err)
		s.m.n.post(func() { s.m.linkFailed(s.leg, "message-failed", "", err) })
	}
	return nil
}

// The runtime's sinks report through the machine (SendReport), not by themselves.
func (s *storeSink) SelfReporting() bool { return true }

// relayOut writes the chunks the machine relays onto one down leg, in order, from the up
// leg's store.
type relayOut struct {
	m    *media
	leg  fsm.LegID
	st   *chunkStore
	out  *msrp.Outgoing
	mu   sync.Mutex
	want int
	wake chan struct{}
	quit chan struct{}
	once sync.Once
}

func (r *relayOut) stop() { r.once.Do(func() { close(r.quit) }) }

func (r *relayOut) ask(last int) {
	r.mu.Lock()
	if last > r.want {
		r.want = last
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *relayOut) run() {
	defer r.m.wg.Done()
	ctx, cancel := context.WithCancel(r.m.n.ctx)
	defer cancel()
	go func() {
		select {
		case <-r.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	next := 1
	for {
		r.mu.Lock()
		want := r.want
		r.mu.Unlock()
		for ; next <= want; next++ {
			c, err := r.st.get(ctx, next)
			last := false
			if err == nil {
				last = c.last()
				err = r.out.WriteRetained(ctx, c.rc)
				r.st.put(c)
			}
			if err != nil {
				r.fail(err)
				return
			}
			r.st.passed(string(r.leg), next)
			if last {
				res := r.out.Wait(ctx)
				if !res.Delivered() {
					r.fail(res.Err)
					return
				}
				// A relay always asks for Failure-Report: yes (relay, below), so the 200s
				// to every SEND are the peer's MessageAcked (RFC 4975 §7.1.1).
				r.m.n.post(func() { r.m.sent(r.leg, true) })
				return
			}
		}
		select {
		case <-r.wake:
		case <-ctx.Done():
			if r.out != nil {
				abortCtx, c2 := context.WithTimeout(context.Background(), time.Second)
				r.out.Abort(abortCtx)
				c2()
			}
			return
		}
	}
}

func (r *relayOut) fail(err error) {
	r.m.n.post(func() {
		r.m.linkFailed(r.leg, "relay-failed", "", err)
		r.m.sent(r.leg, false)
	})
}

// sent ends a message going out on a leg: with acked, every SEND had its 200 and the
// machine gets MessageAcked (not for a leg we closed meanwhile: its machine is done with
// it); then the REPORTs held back meanwhile. It runs on the node's goroutine.
func (m *media) sent(leg fsm.LegID, acked bool) {
	lm := m.legs[leg]
	if lm == nil {
		return
	}
	lm.sending = false
	if acked && !m.dead[leg] {
		m.n.step(fsm.MessageAcked{Leg: leg})
	}
	held := lm.held
	lm.held = nil
	for _, ev := range held {
		m.n.step(ev)
	}
}

// reportIn hands the machine a REPORT from downstream; one that came after the 200s to
// the message going out on the leg waits for its MessageAcked (see legMedia.sending). It
// runs on the node's goroutine.
func (m *media) reportIn(ev fsm.ReportReceived, afterAcks bool) {
	if lm := m.legs[ev.Leg]; lm != nil && lm.sending && afterAcks {
		lm.held = append(lm.held, ev)
		return
	}
	m.n.step(ev)
}

// relay forwards chunks First..Last of the up leg's message onto a down leg, keeping the
// upstream Message-ID, Byte-Ranges and headers.
func (m *media) relay(x fsm.RelayChunk) error {
	up, down := m.legs[x.From], m.legs[x.Leg]
	if up == nil || up.store == nil || down == nil {
		return fmt.Errorf("relay %s -> %s: no message or no link", x.From, x.Leg)
	}
	if down.out == nil {
		im := up.store.msg
		// The sender's Success-Report goes to the member unchanged (RFC 4975 §7.1.2):
		// whether the member reports success is the sender's choice. The Failure-Report is
		// each hop's own: this role builds the member's outcome from the 200s of its next
		// hop (§7.1.1), so it asks for them whatever its client asked of it (a blind
		// sender's Failure-Report: no); what reaches the client is the spec's to decide
		// (flag.failure-report at PF-A). proptest's relay does the same.
		out, err := down.sess.BeginMessage(msrp.OutgoingHeader{ID: im.MessageID, ContentType: im.ContentType, Total: im.Total,
			FailureReport: msrp.ReportYes, SuccessReport: im.SuccessReport, Headers: im.Headers})
		if err != nil {
			return err
		}
		down.out = &relayOut{m: m, leg: x.Leg, st: up.store, out: out, wake: make(chan struct{}, 1), quit: make(chan struct{})}
		down.sending = true
		down.wire.sending(out.Done())
		m.wg.Add(1)
		go down.out.run()
	}
	down.out.ask(x.Last)
	return nil
}

// Message is what a transmitter sends: a payload streamed from Open, wrapped in CPIM.
type Message struct {
	// Open returns the payload; it is called once.
	Open func() (io.ReadCloser, error)
	Size int64
	// ContentType is the payload's media type; empty means application/octet-stream.
	ContentType string
	// To names the recipient in the CPIM header (the group).
	To string
	// Progress, if set, is called from the sending goroutine with the payload bytes read
	// so far (a progress bar).
	Progress func(sent int64)
}

// countingReader reports how much of the payload was read.
type countingReader struct {
	r    io.Reader
	n    int64
	tell func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if n > 0 {
		c.tell(c.n)
	}
	return n, err
}

// sendMessage streams the transmitter's message over its link.
func (m *media) sendMessage(leg fsm.LegID) error {
	lm := m.legs[leg]
	if lm == nil || m.source == nil {
		return errors.New("no link or nothing to send")
	}
	src := *m.source
	lm.sending = true
	h := cpim.Header{From: "<" + m.n.cfg.URI + ">", To: "<" + src.To + ">", DateTime: time.Now().UTC(),
		ContentType: src.ContentType, ContentLength: src.Size}
	// The Message-ID is chosen here rather than by the MSRP session, so that the
	// transmitter's session record names the one every role relays.
	id, size := randomHex(10), cpim.WrappedSize(h, src.Size)
	m.n.obs.sending(leg, id, size)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		body, err := src.Open()
		if err != nil {
			m.n.post(func() {
				m.n.step(fsm.LinkFailed{Leg: leg, Status: 500})
				m.sent(leg, false)
			})
			return
		}
		defer body.Close()
		// Each chunk's worth read is progress on the link: it keeps the transmitter's
		// guard from taking a long message for a wait that never ends.
		told := int64(0)
		payload := &countingReader{r: body, tell: func(sent int64) {
			if src.Progress != nil {
				src.Progress(sent)
			}
			if sent-told >= int64(m.n.cfg.ChunkSize) {
				told = sent
				m.n.post(func() { m.n.progress(leg) })
			}
		}}
		// cpmlink's own sender asks for success REPORTs to learn every member's
		// outcome; a sender that hangs up after its last 200 asks for none (the spec's
		// policy.sender); a blind one asks for no response either (Failure-Report: no,
		// RFC 4975 §7.1.1), and Send returns once the message is written.
		fr := msrp.ReportYes
		if m.n.cfg.Sender == core.SenderBlind {
			fr = msrp.ReportNo
		}
		res, err := lm.sess.Send(m.n.ctx, &msrp.Message{ID: id, ContentType: cpimType, Body: cpim.Wrap(h, payload),
			Size: size, FailureReport: fr, SuccessReport: m.n.cfg.Sender == core.SenderWaits,
			Started: lm.wire.sending})
		m.n.post(func() {
			m.n.note(leg, "sent", "SEND", fmt.Sprintf("%d bytes, status %d", res.Bytes, res.Status))
			// A leg the machine closed or that failed already is not reported again (as in
			// linkFailed): the last chunk's 200 can still be on its way when every member's
			// REPORT is in and the machine closes the link (the peer writes REPORTs at once
			// and its responses coalesced), and closing fails the send locally.
			if err != nil && !m.dead[leg] {
				m.n.step(fsm.LinkFailed{Leg: leg, Status: statusOf(err)})
			}
			// Only Failure-Report: yes earns the 200s that make MessageAcked; a blind
			// sender's message written out is no news from its peer.
			m.sent(leg, err == nil && fr == msrp.ReportYes)
		})
	}()
	return nil
}

// delivery writes a received message to the receiver's store, unwrapping CPIM on the way,
// and hashes the payload.
type delivery struct {
	// src is what the machine delivered so far, read on the delivery's goroutine.
	src    *storeReader
	done   chan struct{}
	result Received
	err    error
}

func (m *media) newDelivery(im *msrp.IncomingMessage) (*delivery, error) {
	var f messageFile = discardFile{}
	if !m.n.cfg.Discard {
		dir := m.n.cfg.StoreDir
		if dir == "" {
			dir = os.TempDir()
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		// Written under a temporary name, named only when whole (storefile.go).
		file, err := createPartial(dir, safeName(im.MessageID), m.n.log.With("message-id", im.MessageID))
		if err != nil {
			return nil, err
		}
		f = file
	}
	src := newStoreReader(m.n.ctx)
	d := &delivery{src: src, done: make(chan struct{}), result: Received{MessageID: im.MessageID}}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(d.done)
		defer src.close()
		h, payload, err := cpim.Read(src)
		if err != nil {
			f.abort(err)
			d.err = err
			return
		}
		sum := sha256.New()
		n, err := io.Copy(io.MultiWriter(f, sum), payload)
		if err != nil {
			f.abort(err)
			d.err = err
			return
		}
		// A store that cannot be written is not a delivery.
		d.result.File, d.err = f.commit()
		d.result.From, d.result.Bytes, d.result.SHA256, d.result.At = h.From, n, hex.EncodeToString(sum.Sum(nil)), time.Now()
	}()
	return d, nil
}

func safeName(id string) string {
	var b strings.Builder
	for _, r := range id {
		if r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "message"
	}
	return b.String()
}

// deliver writes the chunk the machine hands to the receiver's store.
func (m *media) deliver(x fsm.Deliver) error {
	lm := m.legs[x.Leg]
	if lm == nil || lm.store == nil || lm.file == nil {
		return errors.New("nothing to deliver")
	}
	f := lm.file
	select {
	case <-f.done:
		// The delivery ended before the message did: the CPIM or the file failed.
		if f.err != nil {
			return fmt.Errorf("storing the message: %w", f.err)
		}
		return errors.New("the message went on after its end")
	default:
	}
	f.src.deliver(lm.store, x.Chunk, x.Last)
	if x.Last {
		// The file is complete before the machine goes on to report the delivery: a
		// member counts as delivered only once the message is stored.
		select {
		case <-f.done:
		case <-m.n.ctx.Done():
			return m.n.ctx.Err()
		}
		if f.err != nil {
			return fmt.Errorf("storing the message: %w", f.err)
		}
		m.mu.Lock()
		m.received = append(m.received, f.result)
		close(m.arrived)
		m.arrived = make(chan struct{})
		m.mu.Unlock()
	}
	return nil
}

// report sends one member's outcome upstream as a REPORT (RFC 4975 §7.1.2) with the
// member in an extension header.
func (m *media) report(x fsm.SendReport) error {
	lm := m.legs[x.Leg]
	if lm == nil || lm.store == nil {
		return errors.New("no message to report on")
	}
	im := lm.store.msg
	total := im.Total
	if total < 0 {
		total = 0
	}
	br := msrp.ByteRange{Start: 1, End: total, Total: total}
	code, comment := 200, "OK"
	if x.Outcome.Kind != core.Delivered {
		// The status may be MSRP's (a link that failed) or SIP's (a member that declined).
		code, comment = x.Outcome.Status, msrp.StatusText(x.Outcome.Status)
		if comment == "" {
			comment = sipx.ReasonPhrase(code)
		}
	}
	hdrs := []msrp.Field{{Name: memberHeader, Value: x.Member}, {Name: membersHeader, Value: strconv.Itoa(x.Of)}}
	ctx, cancel := context.WithTimeout(m.n.ctx, 5*time.Second)
	defer cancel()
	return lm.sess.SendReport(ctx, nil, im.MessageID, br, code, comment, hdrs)
}

// reportStatus sends a receiver's standard REPORT on the whole message (RFC 4975 §7.1.2):
// no group headers, only the status.
func (m *media) reportStatus(x fsm.ReportStatus) error {
	lm := m.legs[x.Leg]
	if lm == nil || lm.store == nil {
		return errors.New("no message to report on")
	}
	im := lm.store.msg
	total := max(im.Total, 0)
	code, comment := 200, "OK"
	if x.Outcome.Kind != core.Delivered {
		code, comment = x.Outcome.Status, msrp.StatusText(x.Outcome.Status)
	}
	ctx, cancel := context.WithTimeout(m.n.ctx, 5*time.Second)
	defer cancel()
	return lm.sess.SendReport(ctx, nil, im.MessageID, msrp.ByteRange{Start: 1, End: total, Total: total}, code, comment, nil)
}

// onReport turns a REPORT from downstream into the machine's ReportReceived: a server's
// group report names its member; a member's standard REPORT names none and is about the
// leg's own member.
func (m *media) onReport(leg fsm.LegID, wire *legWire, f *msrp.Frame) {
	member, of := "", 1
	for _, h := range f.Headers {
		switch {
		case strings.EqualFold(h.Name, memberHeader):
			member = h.Value
		case strings.EqualFold(h.Name, membersHeader):
			if n, err := strconv.Atoi(h.Value); err == nil {
				of = n
			}
		}
	}
	if f.ReportStatus == nil {
		return // a REPORT without a Status is malformed (RFC 4975 §7.1.2); the codec answers it
	}
	o := core.DeliveredOutcome()
	if f.ReportStatus.Code != 200 {
		o = core.FailedOutcome(f.ReportStatus.Code)
	}
	ev := fsm.ReportReceived{Leg: leg, Member: member, Outcome: o, Of: of}
	// A success REPORT answers what was acknowledged: it always comes after the 200s.
	after := wire.afterAcks() || o.Kind == core.Delivered
	m.n.post(func() { m.reportIn(ev, after) })
}

// receivedMessages lists what a receiver stored, and a channel closed at the next one.
func (m *media) receivedMessages() ([]Received, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Received(nil), m.received...), m.arrived
}
