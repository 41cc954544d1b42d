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
	// Connect needs it. It may be empty while the peer is not known yet (an
	// RFC 6135 a=setup:actpass offerer must accept the connection before the
	// answer names the answerer): the first SEND that binds the session is
	// then accepted from any peer and its From-Path becomes Remote; SetRemote
	// sets it later. When set, the From-Path of the binding SEND and of
	// every later SEND and REPORT on the session must end with the same URI
	// (RFC 4975 §7.3: a SEND is refused with 403, a REPORT dropped). See
	// SetRemote for the security trade-off.
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
	// the call (the reader reuses it): Frame.Clone keeps it. Extension
	// headers are in Frame.Headers (Frame.Header looks one up).
	OnReport func(*Frame)
	// DetachedReports hands REPORTs to the caller entirely (a runtime whose
	// state machines produce and consume per-member REPORTs, RFC 4975
	// §7.1.2): incoming REPORTs go only to OnReport and never change an
	// outgoing message's Result, so Send and Outgoing.Wait finish on
	// the hop-by-hop 200s even with Success-Report: yes on the wire; and the
	// session sends no REPORT of its own for incoming messages, success or
	// failure (a failure still reaches the sender as the chunk's response
	// status). Use SendReport. A Relay sends its own REPORTs regardless, and
	// expects downstream sessions that do not detach theirs.
	DetachedReports bool
	// AcceptTypes is the a=accept-types this side advertised in its SDP
	// (RFC 4975 §8.6): media types ("type/subtype", "type/*" or "*") that
	// an incoming message may have. A message whose first chunk's
	// Content-Type matches none is refused with 415 before Accept sees it,
	// and nothing of it is delivered; its later chunks get 415 too. Nil
	// accepts every type (no check).
	AcceptTypes []string
	// AcceptWrappedTypes is the a=accept-wrapped-types this side advertised:
	// types accepted only inside a wrapper. With AcceptTypes set, a
	// message/cpim message (RFC 3862) must wrap an object whose Content-Type
	// matches AcceptTypes or AcceptWrappedTypes; it is read from the CPIM
	// headers, which must lie whole in the message's first chunk (Byte-Range
	// starting at 1), else 415. A "*" in either list skips that check.
	AcceptWrappedTypes []string
	// ChunkSize overrides Config.ChunkSize for messages sent on this session
	// (a hop through Kamailio needs ≤ 10 KB, a direct hop can use more).
	ChunkSize int
	// Reuse overrides Config.Reuse for this session's Connect when non-nil.
	// It also says whether the session's connection may be shared (anything
	// but ReuseOff): Abort then never closes a connection it did not dial,
	// because the peer that dialed it may already be binding other sessions
	// to it.
	Reuse *Reuse
	// Active makes this side the session's active party from the start (SDP
	// or RFC 6135 a=setup:active says it connects): only the connection Dial
	// attaches binds it, and a SEND for it on any other connection is refused
	// with 506, even before Dial runs. Without it a peer that connects too (a
	// double connect) could bind the session first on its own connection, and
	// every chunk it sent there would be answered 200 while the caller, which
	// dials, never hears of them (RFC 4975 §7.2: a 200 takes responsibility).
	// SetActive sets it later.
	Active bool
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
	// dialed is the link Dial chose, until Bind sends on it.
	dialed *Link

	dead      map[string]int // failed incoming messages: the status their late chunks get
	deadOrder []string
	// active: only Dial binds the session (SessionConfig.Active).
	active bool
}

// NewSession creates and registers a session. Incoming SENDs addressed to
// cfg.Local are matched to it from now on.
func (e *Endpoint) NewSession(cfg SessionConfig) (*Session, error) {
	if cfg.Local.IsZero() {
		return nil, fmt.Errorf("%w: session without a local URI", ErrInvalidURI)
	}
	s := &Session{
		ep: e, cfg: cfg, local: cfg.Local, remote: cfg.Remote, active: cfg.Active,
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
// It is Dial, Bind and the wait for the answer.
func (s *Session) Connect(ctx context.Context) (Link, error) {
	s.mu.Lock()
	if s.c != nil && s.dialed == nil {
		l := s.link
		s.mu.Unlock()
		return l, nil // already connected
	}
	s.mu.Unlock()
	if _, err := s.Dial(ctx); err != nil {
		return Link{}, err
	}
	answered, err := s.Bind(ctx)
	if err != nil {
		return Link{}, err
	}
	select {
	case err = <-answered:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		return Link{}, err
	}
	l, _ := s.Link()
	return l, nil
}

// Dial is the first half of Connect: it takes or dials the connection and
// attaches the session to it, but sends nothing, so that the peer cannot
// know of the link yet. The Link it returns is not up: Bind makes it so. A
// caller that must learn of its link before the peer does (a state machine
// whose model says the opener's link is up before the passive end's) calls
// Dial off its event loop and Bind on it.
func (s *Session) Dial(ctx context.Context) (Link, error) {
	remote := s.Remote()
	if len(remote) == 0 {
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
		return l, fmt.Errorf("%w: already connected", ErrSessionExists)
	}
	s.mu.Unlock()
	var (
		c       *conn
		pooled  bool
		carried bool
	)
	for tries := 1; ; tries++ {
		var err error
		c, pooled, err = s.ep.connFor(ctx, remote[0], s.reuseMode())
		if err != nil {
			return Link{}, err
		}
		if carried, err = c.bind(s); err == nil {
			break
		}
		// A pooled connection can die between the pool and the bind (its
		// last session aborted, a write failed, the peer closed it). It has
		// left the pool by then (conn.matches refuses it), so the next try
		// takes another or dials a new one: a dead connection never fails a
		// session that had not used it.
		if !pooled || tries == maxRedials {
			return Link{}, err
		}
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
	s.dialed = &Link{Active: true, Reused: pooled || carried, LocalAddr: c.nc.LocalAddr(), RemoteAddr: c.nc.RemoteAddr()}
	l := *s.dialed
	s.mu.Unlock()
	return l, nil
}

// maxRedials bounds how often Dial takes another connection when the pooled
// one it was handed died before the bind.
const maxRedials = 3

// reuseMode is the session's reuse policy: SessionConfig.Reuse, else
// Config.Reuse.
func (s *Session) reuseMode() Reuse {
	if s.cfg.Reuse != nil {
		return *s.cfg.Reuse
	}
	return s.ep.cfg.Reuse
}

// SetActive makes the session the active party (SessionConfig.Active) from
// now on: a SEND that would bind it on a connection Dial did not attach is
// refused with 506.
func (s *Session) SetActive() {
	s.mu.Lock()
	s.active = true
	s.mu.Unlock()
}

// Bind sends the bodiless SEND that binds a dialed session (RFC 4975
// §7.1.1) and returns once it is written. The channel then yields the
// answer: nil for 200, when the link is up (Up is closed and OnLinkUp
// called first), or why it is not, after which the session is detached
// from the connection. Messages sent after Bind returns follow the bind on
// the wire.
func (s *Session) Bind(ctx context.Context) (<-chan error, error) {
	s.mu.Lock()
	c, dialed := s.c, s.dialed
	s.dialed = nil
	s.mu.Unlock()
	if c == nil || dialed == nil {
		return nil, fmt.Errorf("%w: Bind needs a Dial first", ErrNotConnected)
	}
	// Byte-Range 1-0/0 and no Content-Type.
	om := s.newOutMsg(NewMessageID(), 0, "", nil, false, ReportYes)
	if err := om.sendChunk(ctx, c, nil, 1, FlagEnd, true); err != nil {
		s.detach(c)
		return nil, err
	}
	om.lastSent()
	answered := make(chan error, 1)
	go func() {
		// The transaction timeout, a lost connection or Close end the wait.
		res, err := om.wait(context.Background())
		if err == nil && res.Status != StatusOK {
			err = res.Err
		}
		if err != nil {
			s.detach(c)
		} else {
			s.linkUp(c, true, dialed.Reused)
		}
		answered <- err
	}()
	return answered, nil
}

// detach undoes a Dial whose bind failed.
func (s *Session) detach(c *conn) {
	s.mu.Lock()
	if s.c == c {
		s.c = nil
	}
	s.mu.Unlock()
	c.unbind(s)
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
// with 506 a SEND on another connection than the bound one, and any SEND
// that would bind an active session (only its own dial binds it); refuse with 403
// a From-Path that does not end at the peer the session is bound to (or, at
// binding, the peer SDP named) — on every SEND, not only the first.
func (s *Session) bindIncoming(c *conn, f *Frame) int {
	s.mu.Lock()
	switch {
	case s.isClose:
		s.mu.Unlock()
		return StatusNoSession
	case s.c == c:
		ok := s.fromPeerLocked(f)
		s.mu.Unlock()
		if !ok {
			return StatusForbidden
		}
		return StatusOK
	case s.c != nil, s.active:
		// Bound to another connection, or to be bound only by our own
		// dial: this connection is not the session's (RFC 4975 §7.3), and
		// a 200 here would take responsibility for chunks the session
		// never sees.
		s.mu.Unlock()
		return StatusWrongConnection
	}
	if !s.fromPeerLocked(f) {
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

// fromPeerLocked reports whether a request's From-Path ends at the session's
// peer: the last URI of Remote, which is the peer SDP named or, when SDP
// named none (RFC 6135 actpass), the sender of the SEND that bound the
// session. RFC 4975 §7.3 matches a request to its session by both paths; the
// last From-Path URI is the sending endpoint itself (relays come before it,
// RFC 4976), so a request whose From-Path ends elsewhere is not the peer's,
// whatever connection it came on. With no peer known yet there is nothing to
// compare (s.mu held).
func (s *Session) fromPeerLocked(f *Frame) bool {
	if len(s.remote) == 0 {
		return true
	}
	return len(f.FromPath) > 0 && s.remote[len(s.remote)-1].Equal(f.FromPath[len(f.FromPath)-1])
}

// matches reports whether a request that named this session in its To-Path
// belongs to it: the session is bound to connection c and the From-Path is
// its peer's (RFC 4975 §7.3).
func (s *Session) matches(c *conn, f *Frame) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.isClose && s.c == c && s.fromPeerLocked(f)
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
// its Byte-Range as delivered, any other status fails the message — unless
// the session's reports are detached, when only OnReport sees it.
func (s *Session) handleReport(f *Frame) {
	if !s.cfg.DetachedReports {
		s.mu.Lock()
		om := s.outgoing[f.MessageID]
		s.mu.Unlock()
		if om != nil {
			om.onReport(f)
		}
	}
	if s.cfg.OnReport != nil {
		s.cfg.OnReport(f)
	}
}

// sendReport sends a REPORT for a message received from `to` (the From-Path
// of its SEND, which becomes the REPORT's To-Path, RFC 4975 §7.1.2).
func (s *Session) sendReport(to Path, msgID string, br ByteRange, code int, reason string, hdrs []Field) error {
	c := s.boundTo()
	if c == nil {
		return ErrNotConnected
	}
	if reason == "" {
		reason = StatusText(code)
	}
	f := Frame{TID: NewTransactionID(), Method: MethodREPORT, ToPath: to, FromPath: Path{s.local},
		MessageID: msgID, ByteRange: br, Headers: hdrs, ReportStatus: &ReportStatus{Namespace: 0, Code: code, Reason: reason}}
	var buf [512]byte
	// Queued, not written here: no response comes back (§7.1.2), so nothing
	// is lost by not waiting, and a sender that serves other sessions (a
	// role's driver) must not wait behind a write to a peer that stopped
	// reading.
	return c.queue(f.AppendTrailer(f.AppendHeader(buf[:0])))
}

// SendReport sends a REPORT request (RFC 4975 §7.1.2) for message msgID:
// "Status: 000 <code> <comment>" (comment "" takes the standard reason
// phrase), the Byte-Range br it reports on, and extra headers, which RFC
// 4975 §9 allows as extension headers and the peer sees in its OnReport
// frame. The To-Path is to, or the session's Remote when to is nil (the
// peer's a=path; RFC 4975 §7.1.2 wants the From-Path of the reported SEND,
// which on a session is the same path). It waits for the link to be up
// (bounded by ctx), never for the write: the REPORT is queued on the
// connection behind the responses pending and written by the connection's
// own goroutine, bounded by Config.WriteTimeout. REPORTs get no response,
// so nil means "queued", not "received"; a connection whose peer has not
// read what is queued on it refuses more with ErrLimit.
func (s *Session) SendReport(ctx context.Context, to Path, msgID string, br ByteRange, code int, comment string, headers []Field) error {
	if !validIdent(msgID) {
		return fmt.Errorf("%w: Message-ID %q", ErrMalformed, msgID)
	}
	if err := br.Validate(); err != nil {
		return err
	}
	if code < 0 || code > 999 || !utf8Text(comment) {
		return fmt.Errorf("%w: REPORT status %d %q", ErrMalformed, code, comment)
	}
	if err := checkFields(headers); err != nil {
		return err
	}
	if err := s.waitUp(ctx); err != nil {
		return err
	}
	if to == nil {
		to = s.Remote()
	}
	if len(to) == 0 {
		return fmt.Errorf("%w: no path to send the REPORT to", ErrNotConnected)
	}
	if err := s.sendReport(to, msgID, br, code, comment, headers); err != nil {
		if errors.Is(err, ErrNotConnected) {
			return fmt.Errorf("%w: %w", err, s.Err())
		}
		return err
	}
	return nil
}

// waitUp waits for the link to come up, bounded by ctx. A closed session
// is reported as such even when its link had come up.
func (s *Session) waitUp(ctx context.Context) error {
	if s.isClosed() {
		return ErrClosed
	}
	select {
	case <-s.up:
		return nil
	case <-s.closed:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// reservedHeaders are the headers the serializer writes from Frame fields:
// an extension header by one of these names would duplicate one, and the
// peer would refuse the frame (RFC 4975 §9 allows each once).
var reservedHeaders = []string{"To-Path", "From-Path", "Message-ID", "Byte-Range",
	"Success-Report", "Failure-Report", "Status", "Content-Type"}

// checkFields validates extension and MIME headers to be sent: a name that
// is an RFC 4975 §9 token and no reserved name, a value without control
// characters, so that nothing a caller passes can break or inject a line.
func checkFields(hs []Field) error {
	for _, h := range hs {
		if !isToken(h.Name) || !utf8Text(h.Value) {
			return fmt.Errorf("%w: header %q: %q", ErrMalformed, h.Name, h.Value)
		}
		for _, r := range reservedHeaders {
			if equalFoldASCII(h.Name, r) {
				return fmt.Errorf("%w: %s is not an extension header", ErrMalformed, h.Name)
			}
		}
	}
	return nil
}

// SetRemote sets the path to the peer once SDP names it (e.g. the answer to
// an a=setup:actpass offer, RFC 6135). Before the session is bound, the
// binding SEND's From-Path is then checked against it as for a Remote given
// in SessionConfig. If a SEND already bound the session while Remote was
// unknown, p must end with the URI that SEND came from; otherwise the wrong
// party holds the session, SetRemote returns a *StatusError 403 and leaves
// everything as it is (call Abort).
//
// Security: while Remote is unknown, any party that can reach the listener
// and names this session's URI can bind it. RFC 4975 §14.1 relies on the
// session-id being unguessable, and so does this: use NewSessionID (about
// 95 random bits; 80 or more is the bar) for Local, so that only a party
// that saw the SDP can bind. Keep the unknown window short by calling
// SetRemote as soon as the answer arrives.
func (s *Session) SetRemote(p Path) error {
	if len(p) == 0 {
		return fmt.Errorf("%w: empty remote path", ErrInvalidURI)
	}
	p = append(Path(nil), p...)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClose {
		return ErrClosed
	}
	if s.c != nil && len(s.remote) > 0 && !s.remote[len(s.remote)-1].Equal(p[len(p)-1]) {
		return &StatusError{Code: StatusForbidden, Comment: StatusText(StatusForbidden),
			Err: fmt.Errorf("session bound by %s, not %s", s.remote[len(s.remote)-1], p[len(p)-1])}
	}
	s.remote = p
	return nil
}

// Abort ends the session as a failure the peer must notice. Outgoing
// messages with chunks on the wire are ended with the bodiless '#' chunk
// (RFC 4975 §7.1.1) and fail locally with StatusOf(cause); incoming ones are
// closed with cause. Only the session is aborted, never a connection other
// sessions use or may be using: the connection is closed at once, so that
// the peer sees the link fail (its OnLinkDown fires, its transactions get
// 408), only when no other session of ours is bound to it and nothing else
// can be: a connection this side dialed (it leaves the pool first), or any
// connection under ReuseOff. A connection the peer dialed under a reuse
// policy stays, because the peer may already have put other sessions on it
// that have not reached us yet (RFC 4975 §5.4 connection sharing); with no
// session it closes after Config.IdleTimeout. Wherever the connection stays,
// the peer learns of the abort from the '#' of a message in progress, or
// when it next sends to this session (481); MSRP has no teardown request,
// SIP BYE is the signal.
//
// Close, by contrast, is the orderly end: no '#', and the connection stays
// open for reuse (or until Config.IdleTimeout; at once only for an active
// connection under ReuseOff), so the peer sees nothing immediately.
// Abort after Close, or twice, does nothing. OnLinkDown is not called for
// this session.
func (s *Session) Abort(cause error) {
	if cause == nil {
		cause = ErrAborted
	}
	s.mu.Lock()
	if s.isClose {
		s.mu.Unlock()
		return
	}
	s.isClose = true
	close(s.closed)
	c := s.c
	s.c = nil
	if s.err == nil {
		s.err = cause
	}
	in := s.takeIncoming()
	out := make([]*outMsg, 0, len(s.outgoing))
	for _, om := range s.outgoing {
		out = append(out, om)
	}
	s.mu.Unlock()
	s.ep.unregister(s)
	for _, m := range in {
		m.abort(cause)
	}
	// '#' first, while the connection is still there: queued, and written
	// before the connection closes (closeFlushed). A '#' owed by a message
	// whose chunk is being written follows that chunk, from its writer's
	// goroutine: Abort never waits for a write (see outMsg.abort).
	for _, om := range out {
		om.abort(statusErr(StatusOf(cause), cause))
	}
	if c != nil {
		c.unbindClosing(s, cause, s.reuseMode() == ReuseOff)
	}
}

// errRefused is the cause recorded when Accept is nil.
var errRefused = errors.New("msrp: session accepts no incoming messages")

// NewSessionID returns a fresh random session-id for a local URI (RFC 4975
// §6: the session-id part of msrp://host:port/session-id;tcp). Its 16
// alphanumeric characters carry about 95 random bits, so that it cannot be
// guessed (RFC 4975 §14.1): a session with an unknown Remote relies on it.
func NewSessionID() string { return NewTransactionID() }
