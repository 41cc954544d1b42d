package msrp

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// conn is one MSRP connection (TCP or TLS). It owns two goroutines: the
// reader, which parses frames and dispatches them, and the sweeper, which
// fails transactions whose response did not come within
// Config.TransactionTimeout (RFC 4975 §7.1.1).
type conn struct {
	ep     *Endpoint
	nc     net.Conn
	active bool // we dialled it
	target URI  // active side: the URI dialled, the pool key

	// Accepted side: the source address and the listener's count of open
	// connections (Config.MaxConnsPerHost, Config.MaxConns).
	host string
	open *atomic.Int64

	wmu sync.Mutex  // serialises frames on the wire
	wb  net.Buffers // reused under wmu
	// Responses not yet written (coalesced: the responses to every frame that
	// arrived in one read go out in one write, flushed before the reader blocks
	// for more input) and the buffer they swap with while written (under wmu).
	// Every write puts them on the wire first: a request written by whoever
	// learnt of a SEND (a REPORT about its message, say) must follow the SEND's
	// response, as the peer's transaction layer and its REPORT handling expect
	// them in that order. Requests that expect no response (REPORTs, the '#'
	// of an aborted message) are queued here too (queue), behind the responses
	// pending, so that whoever sends one never waits for a writer that a peer
	// which stopped reading holds up for Config.WriteTimeout. Lock order: wmu,
	// then pmu.
	pmu   sync.Mutex
	pend  []byte
	spare []byte
	// flushing is set while a goroutine (flushQueued) writes what queue
	// added; closing is the cause it closes the connection with once pend is
	// on the wire (closeFlushed). Both under pmu.
	flushing bool
	closing  error

	mu       sync.Mutex
	sessions map[*Session]struct{}
	uris     []URI // remote URIs this connection has carried (ReuseURI)
	txns     map[string]*txn
	txq      []*txn // FIFO by deadline: every transaction has the same timeout
	closed   bool
	err      error
	werr     error // a failed write: the cause the reader closes the connection with
	doomed   bool  // being closed by Session.Abort: bind and matches refuse it
	idle     *time.Timer
	everUsed bool
	gotFrame bool // a complete frame arrived (Config.FirstFrameTimeout is over)

	wake chan struct{} // nudges the sweeper when the first transaction is queued
	done chan struct{} // closed when the connection is closed

	// dmu serialises the dispatch of requests: the reader and, while frames
	// for unknown sessions are held, the holder goroutine (holdLoop) take it
	// around each request they hand to a session, so that sinks still see
	// one call at a time and a held frame is handled before later frames
	// for the same session. It guards the fields below.
	dmu sync.Mutex
	// The session of the previous request, so that a run of chunks for one
	// session skips the endpoint lookup.
	last *Session
	// Frames for sessions not registered yet (Config.UnknownSessionHold), in
	// arrival order, with the bytes of their bodies; holding is true while
	// holdLoop runs.
	held      []heldFrame
	heldBytes int
	holding   bool
}

// Bounds of the frames one connection holds for sessions not known yet: a
// binding SEND and the first chunks of a message fit; a burst for unknown
// sessions is answered 481 at once beyond them.
const (
	maxHeldFrames = 8
	maxHeldBytes  = 64 << 10
)

// heldFrame is a request copied aside until its session is registered or
// its hold ends.
type heldFrame struct {
	f        *Frame
	cb       *chunkBuf // owns f.Body
	deadline time.Time
}

// maxPendingResponses bounds the coalesced responses held before a write.
const maxPendingResponses = 16 << 10

// maxQueued bounds what requests queued without waiting (conn.queue) may
// make of the pending bytes: a peer that stops reading holds that much of
// ours, no more; a REPORT beyond it is refused with ErrLimit.
const maxQueued = 256 << 10

// txn is an outstanding request waiting for its response. fn runs exactly
// once: with the response, or with status 408 and an error on timeout or
// connection loss.
type txn struct {
	tid      string
	deadline time.Time
	fn       func(status int, comment string, f *Frame, err error)
	done     bool
}

func newConn(ep *Endpoint, nc net.Conn, active bool, target URI) *conn {
	c := &conn{
		ep: ep, nc: nc, active: active, target: target,
		sessions: make(map[*Session]struct{}),
		txns:     make(map[string]*txn),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	c.armIdle()
	// Counted here, under the endpoint's lock, so that Close waits for them
	// even when it runs before start.
	ep.wg.Add(2)
	return c
}

// start runs the connection's reader and sweeper.
func (c *conn) start() {
	go c.readLoop()
	go c.sweep()
}

// write sends one frame as a single writev of its parts.
func (c *conn) write(parts ...[]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	select {
	case <-c.done:
		return c.closeErr()
	default:
	}
	c.pmu.Lock()
	pend := c.pend
	c.pend = c.spare[:0]
	c.pmu.Unlock()
	c.spare = pend
	c.wb = c.wb[:0]
	if len(pend) > 0 {
		c.wb = append(c.wb, pend)
	}
	c.wb = append(c.wb, parts...)
	if len(c.wb) == 0 {
		return nil
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.ep.cfg.WriteTimeout))
	bufs := c.wb
	if _, err := bufs.WriteTo(c.nc); err != nil {
		// A partial write leaves half a frame on the wire: framing is lost
		// for the peer, so the connection cannot be used any more. Shutting
		// the socket makes the reader goroutine close the connection: closing
		// it here would run OnLinkDown and the failed transactions' callbacks
		// on this goroutine, which holds c.wmu (and the message's write lock),
		// and a callback that writes again would deadlock.
		werr := fmt.Errorf("msrp: write: %w", err)
		c.mu.Lock()
		if c.werr == nil {
			c.werr = werr
		}
		c.mu.Unlock()
		// Out of the pool at once (conn.matches refuses it too): the reader
		// closes the connection only when its read fails, which may be late
		// (it can be waiting on a sink), and meanwhile no new session may be
		// bound to a connection that cannot carry a frame.
		c.ep.unpool(c)
		_ = c.nc.Close()
		return werr
	}
	return nil
}

func (c *conn) closeErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	return ErrClosed
}

// addTxn registers a transaction before its request is written, so that a
// fast response cannot overtake the registration.
func (c *conn) addTxn(tid string, fn func(int, string, *Frame, error)) error {
	t := &txn{tid: tid, deadline: time.Now().Add(c.ep.cfg.TransactionTimeout), fn: fn}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.closeErr()
	}
	c.txns[tid] = t
	c.txq = append(c.txq, t)
	first := len(c.txq) == 1
	c.mu.Unlock()
	if first {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// dropTxn forgets a transaction whose request could not be written.
func (c *conn) dropTxn(tid string) {
	c.mu.Lock()
	if t := c.txns[tid]; t != nil {
		t.done = true
		delete(c.txns, tid)
		c.trimLocked()
	}
	c.mu.Unlock()
}

// trimLocked drops answered transactions from the head of the timeout queue.
// Responses mostly come in order, so the queue stays as short as the number
// of requests in flight instead of growing with the message (c.mu held).
func (c *conn) trimLocked() {
	for len(c.txq) > 0 && c.txq[0].done {
		c.txq[0] = nil
		c.txq = c.txq[1:]
	}
	if len(c.txq) == 0 {
		c.txq = nil
	}
}

func (c *conn) sweep() {
	defer c.ep.wg.Done()
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		now := time.Now()
		var expired []*txn
		var next time.Time
		c.mu.Lock()
		for len(c.txq) > 0 {
			h := c.txq[0]
			if h.done {
				c.txq = c.txq[1:]
				continue
			}
			if h.deadline.After(now) {
				next = h.deadline
				break
			}
			h.done = true
			delete(c.txns, h.tid)
			c.txq = c.txq[1:]
			expired = append(expired, h)
		}
		if len(c.txq) == 0 {
			c.txq = nil // let the backing array go
		}
		c.mu.Unlock()
		for _, h := range expired {
			h.fn(StatusTimeout, "transaction timed out", nil, statusErr(StatusTimeout, errors.New("no response")))
		}
		if !next.IsZero() {
			t.Reset(time.Until(next))
		}
		select {
		case <-t.C:
		case <-c.wake:
			t.Stop()
		case <-c.done:
			t.Stop()
			return
		}
	}
}

// close shuts the connection once; pending transactions fail with 408 and
// every bound session learns that its link is down.
func (c *conn) close(cause error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if cause == nil {
		cause = ErrClosed
	}
	c.err = cause
	pending := c.txq
	c.txq, c.txns = nil, nil
	sessions := make([]*Session, 0, len(c.sessions))
	for s := range c.sessions {
		sessions = append(sessions, s)
	}
	c.sessions = nil
	if c.idle != nil {
		c.idle.Stop()
	}
	c.mu.Unlock()
	close(c.done)
	_ = c.nc.Close()
	c.ep.forget(c)
	for _, t := range pending {
		if !t.done {
			t.done = true
			t.fn(StatusTimeout, "connection lost", nil, statusErr(StatusTimeout, cause))
		}
	}
	for _, s := range sessions {
		s.linkLost(c, cause)
	}
}

// bind adds a session to the connection and reports whether the connection
// already carried another session (a reused link).
func (c *conn) bind(s *Session) (reused bool, err error) {
	remote := s.Remote() // before c.mu: the session's lock is never taken under it
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.doomed {
		if c.err != nil {
			return false, c.err
		}
		return false, ErrClosed
	}
	reused = c.everUsed
	c.everUsed = true
	c.sessions[s] = struct{}{}
	if len(remote) > 0 {
		c.uris = append(c.uris, remote[0])
	}
	if c.idle != nil {
		c.idle.Stop()
	}
	return reused, nil
}

// unbind removes a session. A connection left without sessions is closed at
// once when it is not shareable (reuse off), after IdleTimeout otherwise.
func (c *conn) unbind(s *Session) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	delete(c.sessions, s)
	empty := len(c.sessions) == 0
	c.mu.Unlock()
	if !empty {
		return
	}
	if c.active && c.ep.cfg.Reuse == ReuseOff {
		c.closeFlushed(ErrClosed)
		return
	}
	c.armIdle()
}

// unbindClosing removes an aborted session (Session.Abort). The connection
// is closed at once, so that the peer sees the link fail, only when no other
// session is bound to it and none can be on the way: we dialed it (our pool
// is the only way onto it, and doomed shuts that), or it is dedicated
// (ReuseOff). An accepted connection under a reuse policy stays, because
// the peer that dialed it may have bound other sessions to it whose binding
// SENDs have not arrived yet: closing it would fail them all for one
// session's fault. Left without sessions, it closes after IdleTimeout.
func (c *conn) unbindClosing(s *Session, cause error, dedicated bool) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	delete(c.sessions, s)
	empty := len(c.sessions) == 0
	closing := empty && (c.active || dedicated)
	if closing {
		c.doomed = true // no Connect may pick it between here and close
	}
	c.mu.Unlock()
	switch {
	case closing:
		c.closeFlushed(cause)
	case empty:
		c.armIdle()
	}
}

// armIdle (re)starts the timer that closes a connection without sessions:
// Config.FirstFrameTimeout for an accepted connection that has not
// delivered a frame yet, Config.IdleTimeout otherwise.
func (c *conn) armIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || len(c.sessions) > 0 {
		return
	}
	d := c.ep.cfg.IdleTimeout
	if c.silentLocked() {
		d = c.ep.cfg.FirstFrameTimeout
	}
	if c.idle == nil {
		c.idle = time.AfterFunc(d, c.idleExpired)
	} else {
		c.idle.Reset(d)
	}
}

// silentLocked: an accepted connection that has not delivered a frame.
func (c *conn) silentLocked() bool { return !c.active && !c.gotFrame }

// framed records the first complete frame of a connection: from now on it
// is closed after IdleTimeout without sessions, not FirstFrameTimeout.
func (c *conn) framed() {
	c.mu.Lock()
	first := !c.gotFrame
	c.gotFrame = true
	c.mu.Unlock()
	if first && !c.active {
		c.armIdle()
	}
}

func (c *conn) idleExpired() {
	c.mu.Lock()
	idle := len(c.sessions) == 0
	silent := c.silentLocked()
	c.mu.Unlock()
	switch {
	case !idle:
	case silent:
		c.ep.expired.Add(1)
		err := fmt.Errorf("%w: no frame within %v (FirstFrameTimeout)", ErrLimit, c.ep.cfg.FirstFrameTimeout)
		c.ep.cfg.Logger.Warn("msrp: connection closed", "remote", c.nc.RemoteAddr(), "reason", err)
		c.close(err)
	default:
		c.close(fmt.Errorf("%w: idle", ErrClosed))
	}
}

// matches reports whether a session to u may reuse this connection.
func (c *conn) matches(u URI, mode Reuse) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.doomed || c.werr != nil || !c.active || !c.target.sameAuthority(u) {
		return false
	}
	if mode != ReuseURI {
		return true
	}
	for _, v := range c.uris {
		if v.Equal(u) {
			return true
		}
	}
	return false
}

func (c *conn) readLoop() {
	defer c.ep.wg.Done()
	rd := NewReader(c.nc, c.ep.cfg.Limits)
	var f Frame
	cb := getBuf(0)
	defer func() { cb.release() }()
	framed := false
	for {
		if rd.Buffered() == 0 {
			c.dmu.Lock()
			c.flushResponses()
			c.dmu.Unlock()
		}
		f.Body = cb.b[:0]
		err := rd.ReadFrame(&f)
		cb.b = f.Body[:0]
		var fe *FrameError
		if !framed && (err == nil || errors.As(err, &fe) && !fe.Fatal) {
			framed = true
			c.framed()
		}
		switch {
		case err == nil:
		case errors.As(err, &fe) && !fe.Fatal:
			c.ep.cfg.Logger.Debug("msrp: malformed frame", "remote", c.nc.RemoteAddr(), "err", err)
			c.dmu.Lock()
			if fe.Request && fe.Status != 0 {
				c.respond(&f, fe.Status, "")
			}
			if fe.Status == StatusTooLarge && f.Method == MethodSEND && len(f.ToPath) > 0 && f.MessageID != "" {
				// 413 tells the sender to stop this message (RFC 4975
				// §7.1.1); forget what we had of it.
				if s := c.lookup(f.ToPath[0]); s != nil && s.boundTo() == c {
					s.refuseIncoming(f.MessageID, StatusTooLarge, err)
				}
			}
			c.dmu.Unlock()
			continue
		default:
			c.mu.Lock()
			if c.werr != nil {
				err = c.werr // the read failed because a write did and shut the socket
			}
			c.mu.Unlock()
			if !errors.Is(err, io.EOF) {
				c.ep.cfg.Logger.Debug("msrp: connection read failed", "remote", c.nc.RemoteAddr(), "err", err)
			}
			c.close(err)
			return
		}
		cb.b = f.Body
		if f.Method == "" {
			c.handleResponse(&f)
		} else {
			c.dmu.Lock()
			c.handleRequest(&f, cb)
			if c.pending() > maxPendingResponses {
				c.flushResponses()
			}
			c.dmu.Unlock()
		}
		// A relay may have kept the buffer for its downstream queues; the
		// reader then takes a fresh one.
		if cb.refs.Load() > 1 {
			cb.release()
			cb = getBuf(0)
		}
	}
}

func (c *conn) handleResponse(f *Frame) {
	c.mu.Lock()
	t := c.txns[f.TID]
	if t != nil {
		t.done = true
		delete(c.txns, f.TID)
		c.trimLocked()
	}
	c.mu.Unlock()
	if t == nil {
		return // late (after timeout) or unknown: RFC 4975 §7.2 has nothing to answer
	}
	t.fn(f.Status, f.Comment, f, nil)
}

// handleRequest dispatches a request (c.dmu held).
func (c *conn) handleRequest(f *Frame, cb *chunkBuf) {
	switch f.Method {
	case MethodSEND:
		c.handleSEND(f, cb)
	case MethodREPORT:
		c.handleREPORT(f)
	default:
		// AUTH is for relays (RFC 4976), NICKNAME for chat rooms (RFC 7701);
		// an endpoint implements neither.
		c.respond(f, StatusNotUnderstood, "")
	}
}

// handleREPORT hands a REPORT to its session when it passes the session
// matching of RFC 4975 §7.3 that every request of a bound session must pass:
// one To-Path URI naming a session bound to this connection, and a From-Path
// ending at the peer the session is bound to. Anything else is dropped:
// REPORTs are never answered (§7.1.2), and a forged one must not reach the
// session.
func (c *conn) handleREPORT(f *Frame) {
	var s *Session
	if len(f.ToPath) == 1 {
		s = c.lookup(f.ToPath[0])
	}
	if s == nil || !s.matches(c, f) {
		c.ep.cfg.Logger.Debug("msrp: REPORT dropped: no session bound here for its paths",
			"remote", c.nc.RemoteAddr(), "to", f.ToPath, "from", f.FromPath)
		return
	}
	s.handleReport(f)
}

// handleSEND answers a SEND or hands it to its session (c.dmu held). A SEND
// for a session not registered yet is held (Config.UnknownSessionHold), and
// so is every later SEND for the same URI while one is, to keep their order.
func (c *conn) handleSEND(f *Frame, cb *chunkBuf) {
	if len(f.ToPath) > 1 {
		// More URIs would mean forwarding, which is a relay's job (RFC 4976).
		c.respond(f, StatusForbidden, "not a relay")
		return
	}
	var s *Session
	if !c.isHeld(f.ToPath[0]) {
		s = c.lookup(f.ToPath[0])
	}
	if s == nil {
		if !c.hold(f, cb) {
			c.respond(f, StatusNoSession, "")
		}
		return
	}
	c.deliverSEND(s, f, cb)
}

// deliverSEND applies the session matching of RFC 4975 §7.3 (and the binding
// of §7.1.1) to a SEND for session s, then hands it over (c.dmu held).
func (c *conn) deliverSEND(s *Session, f *Frame, cb *chunkBuf) {
	if code := s.bindIncoming(c, f); code != StatusOK {
		c.ep.cfg.Logger.Debug("msrp: SEND refused", "remote", c.nc.RemoteAddr(), "to", f.ToPath, "from", f.FromPath, "status", code)
		c.respond(f, code, "")
		return
	}
	ea := &earlyAnswer{c: c, f: f}
	ea.answer(s.receiveChunk(f, cb, ea))
}

// earlyAnswer is the one answer of a SEND, which its sink may give before it
// returns (Chunk.Answer), from another goroutine. One per SEND: a late call
// from a sink that gave up waiting finds it answered and does nothing.
type earlyAnswer struct {
	mu   sync.Mutex // held while answering, so that f is not reused meanwhile
	c    *conn
	f    *Frame
	done bool
}

func (ea *earlyAnswer) answer(code int) {
	ea.mu.Lock()
	defer ea.mu.Unlock()
	if ea.done {
		return
	}
	ea.done = true
	ea.c.respond(ea.f, code, "")
}

// lookup finds the session a request is for, without waiting (c.dmu held).
func (c *conn) lookup(to URI) *Session {
	if s := c.last; s != nil && s.local.Equal(to) && !s.isClosed() {
		return s
	}
	s, _ := c.ep.findSession(to)
	if s != nil {
		c.last = s
	}
	return s
}

// isHeld reports whether a frame for the URI to is being held (c.dmu held).
func (c *conn) isHeld(to URI) bool {
	for _, h := range c.held {
		if h.f.ToPath[0].Equal(to) {
			return true
		}
	}
	return false
}

// hold copies a SEND for a session not registered yet aside, to be handled
// when the session appears or answered 481 when its hold ends, and reports
// whether it did: holding is off, or the connection holds its maximum
// already (c.dmu held). The reader goes on at once; holdLoop waits.
func (c *conn) hold(f *Frame, cb *chunkBuf) bool {
	d := c.ep.cfg.UnknownSessionHold
	if d <= 0 || len(c.held) >= maxHeldFrames || c.heldBytes+len(f.Body) > maxHeldBytes {
		return false
	}
	nb := getBuf(len(f.Body))
	nb.b = append(nb.b[:0], f.Body...)
	body := f.Body
	f.Body = nil
	g := f.Clone()
	f.Body = body
	g.Body = nb.b
	c.held = append(c.held, heldFrame{f: g, cb: nb, deadline: time.Now().Add(d)})
	c.heldBytes += len(g.Body)
	if !c.holding {
		c.holding = true
		c.ep.wg.Add(1) // the reader's own count keeps Endpoint.Close waiting
		go c.holdLoop()
	}
	return true
}

// holdLoop hands held frames to their sessions as these are registered, in
// arrival order, and answers 481 to those whose hold ended. It runs while
// the connection holds frames.
func (c *conn) holdLoop() {
	defer c.ep.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		c.dmu.Lock()
		added := c.ep.addedCh() // before looking, so that no registration is missed
		next := c.releaseHeld(time.Now())
		c.flushResponses()
		if next.IsZero() {
			c.holding = false
			c.dmu.Unlock()
			return
		}
		c.dmu.Unlock()
		t.Reset(time.Until(next))
		select {
		case <-added:
		case <-t.C:
		case <-c.done:
			c.dmu.Lock()
			for _, h := range c.held {
				h.cb.release()
			}
			c.held, c.heldBytes, c.holding = nil, 0, false
			c.dmu.Unlock()
			return
		}
	}
}

// releaseHeld delivers the held frames whose session exists now, answers 481
// to those whose hold ended, and returns the earliest deadline of the frames
// still held, or zero (c.dmu held). Once a frame for a URI stays held, the
// later ones for that URI stay too, so that their order holds.
func (c *conn) releaseHeld(now time.Time) time.Time {
	var waiting []URI
	var next time.Time
	keep := c.held[:0]
	for _, h := range c.held {
		to := h.f.ToPath[0]
		wait := false
		for _, u := range waiting {
			if u.Equal(to) {
				wait = true
				break
			}
		}
		if !wait {
			switch s := c.lookup(to); {
			case s != nil:
				c.deliverSEND(s, h.f, h.cb)
			case !now.Before(h.deadline):
				c.respond(h.f, StatusNoSession, "")
			default:
				wait = true
				waiting = append(waiting, to)
			}
		}
		if wait {
			keep = append(keep, h)
			if next.IsZero() || h.deadline.Before(next) {
				next = h.deadline
			}
			continue
		}
		c.heldBytes -= len(h.f.Body)
		h.cb.release()
	}
	clear(c.held[len(keep):])
	c.held = keep
	return next
}

// respond answers a request, honouring its Failure-Report (RFC 4975 §7.1.1:
// "no" suppresses every response, "partial" suppresses 200). The response's
// To-Path is the request's whole From-Path and its From-Path is our URI (the
// first of the request's To-Path), so that a relay on the way (RFC 4976) can
// route it back; Kamailio drops a response whose To-Path names only itself.
func (c *conn) respond(req *Frame, code int, comment string) {
	if req.Method == MethodREPORT || len(req.ToPath) == 0 || len(req.FromPath) == 0 {
		return // REPORTs get no response; without paths there is no address
	}
	if req.Method == MethodSEND {
		if req.FailureReport == ReportNo || req.FailureReport == ReportPartial && code == StatusOK {
			return
		}
	}
	if code >= 300 && code < 700 {
		c.ep.answered[code-300].Add(1)
	}
	if comment == "" {
		comment = StatusText(code)
	}
	resp := Frame{TID: req.TID, Status: code, Comment: comment,
		ToPath: req.FromPath, FromPath: Path{req.ToPath[0]}}
	c.pmu.Lock()
	c.pend = resp.AppendTrailer(resp.AppendHeader(c.pend))
	c.pmu.Unlock()
}

// pending is the size of the responses not yet written.
func (c *conn) pending() int {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	return len(c.pend)
}

// flushResponses writes the coalesced responses, unless a write since has.
func (c *conn) flushResponses() {
	if c.pending() == 0 {
		return
	}
	_ = c.write()
}

// queue adds a request that expects no response (a REPORT, RFC 4975 §7.1.2;
// the '#' chunk of an aborted message, §7.1.1) to what the connection writes
// next, behind the responses pending, and returns without writing: a
// goroutine of the connection (flushQueued) writes it, or the next write of
// anyone else does first. Whoever sends it is never held up by a write in
// progress, which a peer that stopped reading can block for
// Config.WriteTimeout: a role's driver sends REPORTs and aborts from the one
// goroutine that serves all its sessions. Nil means queued, not written.
func (c *conn) queue(frame []byte) error {
	c.pmu.Lock()
	if len(c.pend)+len(frame) > maxQueued {
		n := len(c.pend)
		c.pmu.Unlock()
		return fmt.Errorf("%w: %d bytes wait on a connection whose peer does not read them", ErrLimit, n)
	}
	c.pend = append(c.pend, frame...)
	start := !c.flushing
	c.flushing = true
	c.pmu.Unlock()
	if !start {
		return nil // the running flusher writes it
	}
	c.mu.Lock()
	closed := c.closed
	if !closed {
		// Counted before close can run (it sets closed under c.mu), so that
		// Endpoint.Close, which closes every connection first, waits for it.
		c.ep.wg.Add(1)
	}
	c.mu.Unlock()
	if closed {
		c.pmu.Lock()
		c.flushing = false
		c.pend = c.pend[:0]
		c.pmu.Unlock()
		return c.closeErr()
	}
	go c.flushQueued()
	return nil
}

// flushQueued writes what is pending until nothing is, then closes the
// connection if closeFlushed asked it to meanwhile. It waits for c.wmu like
// any writer; a write in progress puts pend on the wire first anyway.
func (c *conn) flushQueued() {
	defer c.ep.wg.Done()
	for {
		err := c.write()
		c.pmu.Lock()
		if err == nil && len(c.pend) > 0 {
			c.pmu.Unlock()
			continue
		}
		if err != nil {
			c.pend = c.pend[:0] // nothing goes out on this connection any more
		}
		c.flushing = false
		cause := c.closing
		c.pmu.Unlock()
		if cause != nil {
			c.close(cause)
		}
		return
	}
}

// closeFlushed is the orderly close (a session's Close or Abort): what was
// queued before it (the REPORTs and the '#' the session sent last) goes out
// first, without the caller waiting for it. Responses the reader had not
// flushed yet are dropped, as by close.
func (c *conn) closeFlushed(cause error) {
	if cause == nil {
		cause = ErrClosed
	}
	c.pmu.Lock()
	if !c.flushing {
		c.pmu.Unlock()
		c.close(cause)
		return
	}
	c.closing = cause
	c.pmu.Unlock()
	c.mu.Lock()
	c.doomed = true // no session may be bound to it meanwhile
	c.mu.Unlock()
}
