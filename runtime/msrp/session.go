package msrp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
)

// SessionConfig describes one MSRP session as SDP negotiated it.
type SessionConfig struct {
	// Local is this side's URI, the one put in a=path
	// (msrp://host:port/session-id;tcp). Required.
	Local URI
	// Remote is the peer's a=path: relays first, the peer's own URI last.
	// Required for the active side; on the passive side it is optional and,
	// when set, the first SEND's From-Path must end with the same URI.
	Remote Path
	// Accept is called on the first chunk of each incoming message and
	// returns where the message goes. An error refuses the message with its
	// StatusOf code (e.g. a *StatusError{Code: 415}). Nil refuses every
	// incoming message with 403.
	Accept func(m *IncomingMessage) (Sink, error)
	// OnLinkUp, if set, is called once when the session's connection becomes
	// usable; Up() reports the same.
	OnLinkUp func(Link)
	// OnLinkDown, if set, is called once when a bound connection is lost.
	OnLinkDown func(error)
	// OnReport, if set, sees every REPORT for this session after the package
	// has matched it to an outgoing message. The frame is only valid during
	// the call (the reader reuses it).
	OnReport func(*Frame)
	// ChunkSize overrides Config.ChunkSize for messages sent on this session
	// (a hop through Kamailio needs ≤ 10 KB, a direct hop can use more).
	ChunkSize int
	// Reuse overrides Config.Reuse for this session's Connect when non-nil.
	Reuse *Reuse
}

// Link describes a session's usable connection.
type Link struct {
	Active     bool // this side opened (or reused) the connection
	Reused     bool // an existing connection was chosen (active side) or it already carried another session
	LocalAddr  net.Addr
	RemoteAddr net.Addr
}

// Session is one MSRP session. Methods are safe for concurrent use.
type Session struct {
	ep     *Endpoint
	cfg    SessionConfig
	local  URI
	remote Path

	up     chan struct{} // closed at link up
	closed chan struct{} // closed by Close

	mu       sync.Mutex
	c        *conn
	link     Link
	err      error // why the link went down
	incoming map[string]*inMsg
	outgoing map[string]*outMsg
	isClose  bool

	dead      map[string]int // failed incoming messages: the status their late chunks get
	deadOrder []string
}

// NewSession creates and registers a session. Incoming SENDs addressed to
// cfg.Local are matched to it from now on.
func (e *Endpoint) NewSession(cfg SessionConfig) (*Session, error) {
	if cfg.Local.IsZero() {
		return nil, fmt.Errorf("%w: session without a local URI", ErrInvalidURI)
	}
	s := &Session{
		ep: e, cfg: cfg, local: cfg.Local, remote: cfg.Remote,
		up: make(chan struct{}), closed: make(chan struct{}),
		incoming: make(map[string]*inMsg), outgoing: make(map[string]*outMsg),
	}
	if err := e.register(s); err != nil {
		return nil, err
	}
	return s, nil
}

// Local returns the session's own URI.
func (s *Session) Local() URI { return s.local }

// Remote returns the path to the peer (learned from SDP, or from the first
// SEND's From-Path on the passive side when SDP gave none).
func (s *Session) Remote() Path {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.remote
}

// Up is closed when the session's connection becomes usable: on the active
// side when the binding SEND was answered 200, on the passive side when the
// first SEND bound the connection (RFC 4975 §7.1.1).
func (s *Session) Up() <-chan struct{} { return s.up }

// Link returns the link description and whether the link is (still) up.
func (s *Session) Link() (Link, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.link, s.c != nil
}

// Err returns why the link went down, or nil.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Connect makes this side the active party: it takes a pooled connection to
// the first hop of the remote path when the reuse policy allows, or dials a
// new one, and binds it with a bodiless SEND (RFC 4975 §7.1.1). It returns
// when that SEND is answered, or fails with its status as a *StatusError.
func (s *Session) Connect(ctx context.Context) (Link, error) {
	if len(s.remote) == 0 {
		return Link{}, fmt.Errorf("%w: no remote path to connect to", ErrNotConnected)
	}
	s.mu.Lock()
	switch {
	case s.isClose:
		s.mu.Unlock()
		return Link{}, ErrClosed
	case s.c != nil:
		l := s.link
		s.mu.Unlock()
		return l, nil
	}
	s.mu.Unlock()
	mode := s.ep.cfg.Reuse
	if s.cfg.Reuse != nil {
		mode = *s.cfg.Reuse
	}
	c, pooled, err := s.ep.connFor(ctx, s.remote[0], mode)
	if err != nil {
		return Link{}, err
	}
	carried, err := c.bind(s)
	reused := pooled || carried
	if err != nil {
		return Link{}, err
	}
	s.mu.Lock()
	if s.isClose || s.c != nil {
		s.mu.Unlock()
		c.unbind(s)
		if s.isClose {
			return Link{}, ErrClosed
		}
		return Link{}, fmt.Errorf("%w: session bound concurrently", ErrSessionExists)
	}
	s.c = c
	s.mu.Unlock()
	// The bodiless SEND: Byte-Range 1-0/0 and no Content-Type (§7.1.1).
	om := s.newOutMsg(NewMessageID(), 0, "", nil, false, ReportYes)
	err = om.sendChunk(ctx, c, nil, 1, FlagEnd)
	if err == nil {
		om.lastSent()
		var res Result
		res, err = om.wait(ctx)
		if err == nil && res.Status != StatusOK {
			err = res.Err
		}
	}
	if err != nil {
		s.mu.Lock()
		if s.c == c {
			s.c = nil
		}
		s.mu.Unlock()
		c.unbind(s)
		return Link{}, err
	}
	return s.linkUp(c, true, reused), nil
}

func (s *Session) linkUp(c *conn, active, reused bool) Link {
	l := Link{Active: active, Reused: reused, LocalAddr: c.nc.LocalAddr(), RemoteAddr: c.nc.RemoteAddr()}
	s.mu.Lock()
	select {
	case <-s.up:
		l = s.link // already up (a second SEND on the passive side)
		s.mu.Unlock()
		return l
	default:
	}
	s.link = l
	close(s.up)
	s.mu.Unlock()
	if s.cfg.OnLinkUp != nil {
		s.cfg.OnLinkUp(l)
	}
	return l
}

func (s *Session) boundTo() *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

func (s *Session) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// bindIncoming applies RFC 4975 §7.1.1 and §7.3 to a SEND that matched this
// session: bind an unbound session to the connection it arrived on; refuse
// with 506 a SEND on another connection than the bound one; refuse with 403
// a From-Path that does not end at the peer SDP named.
func (s *Session) bindIncoming(c *conn, f *Frame) int {
	s.mu.Lock()
	switch {
	case s.isClose:
		s.mu.Unlock()
		return StatusNoSession
	case s.c == c:
		s.mu.Unlock()
		return StatusOK
	case s.c != nil:
		s.mu.Unlock()
		return StatusWrongConnection
	}
	if len(s.remote) > 0 && !s.remote[len(s.remote)-1].Equal(f.FromPath[len(f.FromPath)-1]) {
		s.mu.Unlock()
		return StatusForbidden
	}
	if len(s.remote) == 0 {
		s.remote = append(Path(nil), f.FromPath...)
	}
	s.c = c
	s.mu.Unlock()
	reused, err := c.bind(s)
	if err != nil {
		return StatusNoSession
	}
	s.linkUp(c, false, reused)
	return StatusOK
}

// linkLost is called by a closing connection.
func (s *Session) linkLost(c *conn, cause error) {
	s.mu.Lock()
	if s.c != c {
		s.mu.Unlock()
		return
	}
	s.c = nil
	if s.err == nil {
		s.err = cause
	}
	in := s.takeIncoming()
	s.mu.Unlock()
	for _, m := range in {
		m.abort(fmt.Errorf("%w: %w", ErrClosed, cause))
	}
	s.failOutgoing(cause)
	if s.cfg.OnLinkDown != nil && !s.isClosed() {
		s.cfg.OnLinkDown(cause)
	}
}

// Close ends the session: incoming messages in progress are closed with
// ErrClosed, outgoing ones fail, and the connection is released (closed if
// nothing else uses it and it is not shareable).
func (s *Session) Close() error {
	s.mu.Lock()
	if s.isClose {
		s.mu.Unlock()
		return nil
	}
	s.isClose = true
	close(s.closed)
	c := s.c
	s.c = nil
	in := s.takeIncoming()
	s.mu.Unlock()
	s.ep.unregister(s)
	for _, m := range in {
		m.abort(ErrClosed)
	}
	s.failOutgoing(ErrClosed)
	if c != nil {
		c.unbind(s)
	}
	return nil
}

func (s *Session) takeIncoming() []*inMsg {
	in := make([]*inMsg, 0, len(s.incoming))
	for id, m := range s.incoming {
		in = append(in, m)
		delete(s.incoming, id)
	}
	return in
}

func (s *Session) failOutgoing(cause error) {
	s.mu.Lock()
	out := make([]*outMsg, 0, len(s.outgoing))
	for _, om := range s.outgoing {
		out = append(out, om)
	}
	s.mu.Unlock()
	for _, om := range out {
		om.fail(StatusTimeout, "", statusErr(StatusTimeout, cause))
	}
}

// handleReport consumes a REPORT (RFC 4975 §7.1.2): a success status counts
// its Byte-Range as delivered, any other status fails the message.
func (s *Session) handleReport(f *Frame) {
	s.mu.Lock()
	om := s.outgoing[f.MessageID]
	s.mu.Unlock()
	if om != nil {
		om.onReport(f)
	}
	if s.cfg.OnReport != nil {
		s.cfg.OnReport(f)
	}
}

// sendReport sends a REPORT for a message received from `to` (the From-Path
// of its SEND, which becomes the REPORT's To-Path, RFC 4975 §7.1.2).
func (s *Session) sendReport(to Path, msgID string, br ByteRange, code int, reason string) error {
	c := s.boundTo()
	if c == nil {
		return ErrNotConnected
	}
	if reason == "" {
		reason = StatusText(code)
	}
	f := Frame{TID: NewTransactionID(), Method: MethodREPORT, ToPath: to, FromPath: Path{s.local},
		MessageID: msgID, ByteRange: br, ReportStatus: &ReportStatus{Namespace: 0, Code: code, Reason: reason}}
	var buf [512]byte
	return c.write(f.AppendTrailer(f.AppendHeader(buf[:0])))
}

// errRefused is the cause recorded when Accept is nil.
var errRefused = errors.New("msrp: session accepts no incoming messages")
