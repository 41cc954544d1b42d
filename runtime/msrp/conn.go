package msrp

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
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

	wmu sync.Mutex  // serialises frames on the wire
	wb  net.Buffers // reused under wmu

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

	wake chan struct{} // nudges the sweeper when the first transaction is queued
	done chan struct{} // closed when the connection is closed

	// Reader-goroutine state: the session of the previous SEND, so that a
	// run of chunks for one session skips the endpoint lookup; and responses
	// not yet written. Responses to every frame that arrived in one read go
	// out in one write, flushed before the reader blocks for more input.
	last *Session
	pend []byte
}

// maxPendingResponses bounds the coalesced responses held before a write.
const maxPendingResponses = 16 << 10

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
	ep.wg.Add(2)
	go c.readLoop()
	go c.sweep()
	return c
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
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.ep.cfg.WriteTimeout))
	c.wb = append(c.wb[:0], parts...)
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
		c.close(ErrClosed)
		return
	}
	c.armIdle()
}

// unbindClosing removes an aborted session and closes the connection at once
// when no other session uses it, so that the peer sees the link fail
// (Session.Abort). A connection shared with other sessions stays.
func (c *conn) unbindClosing(s *Session, cause error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	delete(c.sessions, s)
	empty := len(c.sessions) == 0
	if empty {
		c.doomed = true // no Connect may pick it between here and close
	}
	c.mu.Unlock()
	if empty {
		c.close(cause)
	}
}

func (c *conn) armIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || len(c.sessions) > 0 {
		return
	}
	if c.idle == nil {
		c.idle = time.AfterFunc(c.ep.cfg.IdleTimeout, c.idleExpired)
	} else {
		c.idle.Reset(c.ep.cfg.IdleTimeout)
	}
}

func (c *conn) idleExpired() {
	c.mu.Lock()
	idle := len(c.sessions) == 0
	c.mu.Unlock()
	if idle {
		c.close(fmt.Errorf("%w: idle", ErrClosed))
	}
}

// matches reports whether a session to u may reuse this connection.
func (c *conn) matches(u URI, mode Reuse) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.doomed || !c.active || !c.target.sameAuthority(u) {
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
	for {
		if len(c.pend) > 0 && rd.Buffered() == 0 || len(c.pend) > maxPendingResponses {
			c.flushResponses()
		}
		f.Body = cb.b[:0]
		err := rd.ReadFrame(&f)
		cb.b = f.Body[:0]
		var fe *FrameError
		switch {
		case err == nil:
		case errors.As(err, &fe) && !fe.Fatal:
			c.ep.cfg.Logger.Debug("msrp: malformed frame", "remote", c.nc.RemoteAddr(), "err", err)
			if fe.Request && fe.Status != 0 {
				c.respond(&f, fe.Status, "")
			}
			if fe.Status == StatusTooLarge && f.Method == MethodSEND && len(f.ToPath) > 0 && f.MessageID != "" {
				// 413 tells the sender to stop this message (RFC 4975
				// §7.1.1); forget what we had of it.
				if s := c.lookup(f.ToPath[0], false); s != nil && s.boundTo() == c {
					s.refuseIncoming(f.MessageID, StatusTooLarge, err)
				}
			}
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
			c.handleRequest(&f, cb)
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

func (c *conn) handleRequest(f *Frame, cb *chunkBuf) {
	switch f.Method {
	case MethodSEND:
		c.handleSEND(f, cb)
	case MethodREPORT:
		// REPORT requests are never answered (RFC 4975 §7.1.2).
		if s := c.lookup(f.ToPath[0], false); s != nil && s.boundTo() == c {
			s.handleReport(f)
		}
	default:
		// AUTH is for relays (RFC 4976), NICKNAME for chat rooms (RFC 7701);
		// an endpoint implements neither.
		c.respond(f, StatusNotUnderstood, "")
	}
}

func (c *conn) handleSEND(f *Frame, cb *chunkBuf) {
	s := c.lookup(f.ToPath[0], true)
	switch {
	case s == nil:
		c.respond(f, StatusNoSession, "")
		return
	case len(f.ToPath) > 1:
		// More URIs would mean forwarding, which is a relay's job (RFC 4976).
		c.respond(f, StatusForbidden, "not a relay")
		return
	}
	if code := s.bindIncoming(c, f); code != StatusOK {
		c.respond(f, code, "")
		return
	}
	c.respond(f, s.receiveChunk(f, cb), "")
}

// lookup finds the session a request is for. When hold is true and no
// session matches, it waits up to Config.UnknownSessionHold for one to be
// registered (the SDP answer and the first SEND race).
func (c *conn) lookup(to URI, hold bool) *Session {
	if s := c.last; s != nil && s.local.Equal(to) && !s.isClosed() {
		return s
	}
	if hold && len(c.pend) > 0 {
		c.flushResponses() // do not hold earlier answers while we wait
	}
	s := c.ep.waitSession(to, hold, c.done)
	if s != nil {
		c.last = s
	}
	return s
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
	if comment == "" {
		comment = StatusText(code)
	}
	resp := Frame{TID: req.TID, Status: code, Comment: comment,
		ToPath: req.FromPath, FromPath: Path{req.ToPath[0]}}
	c.pend = resp.AppendTrailer(resp.AppendHeader(c.pend))
}

// flushResponses writes the coalesced responses (reader goroutine only).
func (c *conn) flushResponses() {
	_ = c.write(c.pend)
	c.pend = c.pend[:0]
}
