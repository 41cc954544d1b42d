package msrp

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// IncomingMessage describes an incoming message as its first chunk announces
// it. It is passed to SessionConfig.Accept.
type IncomingMessage struct {
	Session       *Session
	MessageID     string
	ContentType   string
	Total         int64   // Byte-Range total, or Unknown
	SuccessReport bool    // the sender wants a REPORT on delivery
	FailureReport Report  // effective value: ReportYes when the header was absent
	Headers       []Field // MIME and extension headers of the first chunk
	FromPath      Path    // the SEND's From-Path: where REPORTs go (RFC 4975 §7.1.2)
}

// Chunk is one received chunk handed to a Sink. Body is only valid during the
// WriteChunk call; Retain keeps it longer without a copy.
type Chunk struct {
	MessageID string
	Start     int64 // 1-based position of Body[0] in the message
	Total     int64 // the message size if known so far, or Unknown
	Flag      byte  // FlagEnd, FlagMore (never FlagAbort: aborts go to Close)
	// Body is the chunk content. It is empty only in a final chunk (FlagEnd)
	// that carried no body: a sender may end a message with a bodiless '$'
	// SEND (RFC 4975 §7.1.1), and a relay must forward that end too.
	Body  []byte
	Frame *Frame // the SEND as parsed (headers); valid during the call

	buf   *chunkBuf
	early *earlyAnswer
}

// Answer queues the 200 to the chunk's SEND now, instead of when WriteChunk
// returns, and may be called from another goroutine while WriteChunk waits.
// The response then goes on the wire ahead of anything written on the
// connection afterwards: a sink that hands the chunk to a state machine
// answers just before the machine takes it, so that a REPORT the machine
// sends on taking it follows the 200, as the peer's transaction layer and
// the spec's model of a link expect. The SEND gets no other response, even
// if WriteChunk then fails: a sink that answers early has taken the chunk.
// A Failure-Report of no or partial suppresses the 200 as usual (§7.1.1).
func (c *Chunk) Answer() {
	if c.early != nil {
		c.early.answer(StatusOK)
	}
}

// Range returns the chunk's Byte-Range as a forwarding hop must repeat it:
// Start, the last byte Body covers (Start-1 for an empty body), and the total
// the sender put on this very chunk (which may still be Unknown when an
// earlier chunk announced it).
func (c *Chunk) Range() ByteRange {
	total := c.Total
	if c.Frame != nil {
		total = c.Frame.Range().Total
	}
	return ByteRange{Start: c.Start, End: c.Start - 1 + int64(len(c.Body)), Total: total}
}

// endLineFree reports whether the Reader found no end-line of any
// transaction id in the body (Frame.endLineFree).
func (c *Chunk) endLineFree() bool { return c.Frame != nil && c.Frame.endLineFree }

// Retain returns the chunk with a Body that stays valid after WriteChunk
// returns: what a hop needs to hold chunks until its downstream link is up.
// A body that fills at least half of the pooled read buffer it lives in is
// kept without a copy, by a reference to that buffer; a smaller one is
// copied, so that holding many small chunks never pins many 64 KiB buffers.
// Either way memory is at most twice the body. Call Release once when done.
func (c *Chunk) Retain() *RetainedChunk {
	rc := &RetainedChunk{MessageID: c.MessageID, Range: c.Range(), Flag: c.Flag, endLineFree: c.endLineFree()}
	if c.buf != nil && len(c.Body) > 0 && 2*len(c.Body) >= cap(c.buf.b) {
		c.buf.retain()
		rc.buf, rc.Body = c.buf, c.Body
		return rc
	}
	rc.Body = append([]byte(nil), c.Body...)
	return rc
}

// RetainedChunk is a received chunk kept beyond Sink.WriteChunk (see
// Chunk.Retain). Its fields are the chunk's; Body stays valid until Release.
type RetainedChunk struct {
	MessageID string
	Range     ByteRange // as Chunk.Range: what the chunk said on the wire
	Flag      byte      // FlagEnd or FlagMore
	Body      []byte

	buf      *chunkBuf
	released atomic.Bool
	// endLineFree: the body holds no end-line of any id (Frame.endLineFree),
	// so Outgoing.WriteRetained forwards it without searching it again.
	endLineFree bool
}

// Release gives the body back to the pool; Body must not be used afterwards.
// Releasing twice is harmless.
func (rc *RetainedChunk) Release() {
	if !rc.released.CompareAndSwap(false, true) {
		return
	}
	if rc.buf != nil {
		rc.buf.release()
	}
	rc.Body, rc.buf = nil, nil
}

// Sink receives the chunks of one incoming message, in arrival order (which on
// a relay path may not be byte order, RFC 4975 §7.1.1). Calls come from the
// connection's reader goroutine, one at a time.
type Sink interface {
	// WriteChunk takes one chunk. An error refuses the chunk and fails the
	// message: the sender gets StatusOf(err) (413 asks it to stop sending).
	WriteChunk(c *Chunk) error
	// Close ends the message exactly once: nil when every byte arrived,
	// ErrAborted when the sender sent '#', or the failure.
	Close(err error) error
}

// SelfReporting is implemented by sinks that produce the message's REPORTs
// themselves (a Relay reports only once its downstreams have answered); for
// other sinks the session sends the success REPORT on completion.
type SelfReporting interface {
	SelfReporting() bool
}

// maxSpans bounds the distinct byte ranges tracked per message: a peer that
// sends ever more disjoint chunks cannot make the tracking grow without limit.
const maxSpans = 1024

// spans is a sorted set of disjoint half-open byte intervals [lo, hi).
type spans []span
type span struct{ lo, hi int64 }

// add inserts [lo, hi) and merges neighbours. It reports false when the set
// would exceed maxSpans.
func (s *spans) add(lo, hi int64) bool {
	if hi <= lo {
		return true
	}
	v := *s
	i := 0
	for i < len(v) && v[i].hi < lo {
		i++
	}
	j := i
	for j < len(v) && v[j].lo <= hi {
		lo = min(lo, v[j].lo)
		hi = max(hi, v[j].hi)
		j++
	}
	if j > i { // merged with v[i:j]: no allocation on the in-order path
		v[i] = span{lo, hi}
		*s = append(v[:i+1], v[j:]...)
		return true
	}
	if len(v) >= maxSpans {
		return false
	}
	v = append(v, span{})
	copy(v[i+1:], v[i:])
	v[i] = span{lo, hi}
	*s = v
	return true
}

// covers reports whether [0, n) is fully in the set.
func (s spans) covers(n int64) bool {
	if n == 0 {
		return true
	}
	return len(s) > 0 && s[0].lo == 0 && s[0].hi >= n
}

// inMsg is the receiving side's state for one message.
type inMsg struct {
	im       IncomingMessage
	sink     Sink
	got      spans
	total    int64 // Unknown until a chunk or the '$' chunk tells
	sawEnd   bool
	failed   int   // status every further chunk gets, 0 while healthy
	closed   bool  // the sink was closed (or must be, as soon as Accept returns it)
	abortErr error // why, when the message was aborted before Accept returned
	mu       sync.Mutex
}

func (m *inMsg) abort(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.closed = true
	if m.sink == nil {
		m.abortErr = err // Accept is still running: its sink is closed when it returns
		return
	}
	_ = m.sink.Close(err)
}

// receiveChunk hands one SEND chunk to its message's sink and returns the
// status to answer with. A bodiless SEND that is not part of a message in
// progress only binds the connection (RFC 4975 §7.1.1) and is not delivered.
func (s *Session) receiveChunk(f *Frame, cb *chunkBuf, ea *earlyAnswer) int {
	r := f.Range()
	s.mu.Lock()
	if code, ok := s.dead[f.MessageID]; ok {
		if f.Flag != FlagMore {
			delete(s.dead, f.MessageID) // the sender ended it; the order slice forgets it lazily
		}
		s.mu.Unlock()
		return code
	}
	m := s.incoming[f.MessageID]
	if m == nil {
		if !f.HasBody() {
			s.mu.Unlock()
			return StatusOK
		}
		if len(s.incoming) >= s.ep.cfg.MaxIncomingMessages {
			s.mu.Unlock()
			return StatusTooLarge // too many concurrent messages
		}
		if code, why := s.checkTypes(f); code != StatusOK {
			// Refused before Accept: nothing of the message is stored or
			// relayed, and its later chunks get the same answer.
			if f.Flag == FlagMore {
				s.bury(f.MessageID, code)
			}
			s.mu.Unlock()
			s.ep.cfg.Logger.Debug("msrp: message refused", "local", s.local, "message", f.MessageID, "status", code, "reason", why)
			return code
		}
		fr := f.FailureReport
		if fr == ReportAbsent {
			fr = ReportYes
		}
		m = &inMsg{total: r.Total, im: IncomingMessage{
			Session: s, MessageID: f.MessageID, ContentType: f.ContentType, Total: r.Total,
			SuccessReport: f.SuccessReport == ReportYes, FailureReport: fr,
			Headers: append([]Field(nil), f.Headers...), FromPath: append(Path(nil), f.FromPath...),
		}}
		s.incoming[f.MessageID] = m
		s.mu.Unlock()
		var sink Sink
		var err error
		if s.cfg.Accept == nil {
			err = statusErr(StatusForbidden, errRefused)
		} else {
			sink, err = s.cfg.Accept(&m.im)
			if err == nil && sink == nil {
				err = statusErr(StatusForbidden, errRefused)
			}
		}
		m.mu.Lock()
		m.sink = sink
		switch {
		case err != nil:
			m.failed = StatusOf(err)
			m.closed = true
		case m.closed:
			// The session was closed or its link lost while Accept ran:
			// abort found no sink to close then, so close it now.
			_ = sink.Close(m.abortErr)
			m.failed = StatusNoSession
		}
		m.mu.Unlock()
	} else {
		s.mu.Unlock()
	}
	code, done := m.deliver(f, cb, r, ea)
	if done || code != StatusOK {
		s.mu.Lock()
		if s.incoming[f.MessageID] == m {
			delete(s.incoming, f.MessageID)
		}
		if code != StatusOK && !done {
			s.bury(f.MessageID, code)
		}
		s.mu.Unlock()
	}
	return code
}

// maxTombstones bounds how many failed messages are remembered so that their
// late chunks get the same answer instead of starting a new message.
const maxTombstones = 64

// bury remembers a failed message (s.mu held).
func (s *Session) bury(id string, code int) {
	if s.dead == nil {
		s.dead = make(map[string]int)
	}
	if _, ok := s.dead[id]; !ok {
		s.deadOrder = append(s.deadOrder, id)
		if len(s.deadOrder) > maxTombstones {
			delete(s.dead, s.deadOrder[0])
			s.deadOrder = s.deadOrder[1:]
		}
	}
	s.dead[id] = code
}

// refuseIncoming fails a message whose chunk the reader had to skip (a body
// over Limits.MaxChunkBody answered 413).
func (s *Session) refuseIncoming(id string, code int, err error) {
	s.mu.Lock()
	m := s.incoming[id]
	delete(s.incoming, id)
	s.bury(id, code)
	s.mu.Unlock()
	if m != nil {
		m.mu.Lock()
		m.refuse(code, err)
		m.mu.Unlock()
	}
}

// deliver applies one chunk to the message and reports the answer and whether
// the message is finished (complete, aborted, or failed and ended).
func (m *inMsg) deliver(f *Frame, cb *chunkBuf, r ByteRange, ea *earlyAnswer) (code int, done bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ended := f.Flag == FlagEnd || f.Flag == FlagAbort
	if m.failed != 0 {
		return m.failed, ended
	}
	if m.closed || m.sink == nil {
		return StatusOK, ended // late chunk after completion or abort: harmless
	}
	if f.Flag == FlagAbort {
		m.closed = true
		_ = m.sink.Close(ErrAborted)
		return StatusOK, true
	}
	if r.Total != Unknown {
		if m.total != Unknown && m.total != r.Total {
			return m.refuse(StatusBadRequest, fmt.Errorf("%w: total changed from %d to %d", ErrInvalidByteRange, m.total, r.Total)), true
		}
		m.total = r.Total
	}
	n := int64(len(f.Body))
	lo, hi := r.Start-1, r.Start-1+n
	if m.total != Unknown && hi > m.total {
		return m.refuse(StatusBadRequest, fmt.Errorf("%w: chunk beyond total", ErrInvalidByteRange)), true
	}
	// A bodiless '$' that ends a message in progress reaches the sink too:
	// it is where a relay learns that the message ended.
	if n > 0 || f.Flag == FlagEnd {
		c := Chunk{MessageID: f.MessageID, Start: r.Start, Total: m.total, Flag: f.Flag, Body: f.Body, Frame: f, buf: cb, early: ea}
		if err := m.sink.WriteChunk(&c); err != nil {
			return m.refuse(StatusOf(err), err), ended
		}
		if !m.got.add(lo, hi) {
			return m.refuse(StatusTooLarge, fmt.Errorf("%w: more than %d disjoint ranges", ErrTooLarge, maxSpans)), ended
		}
	}
	if f.Flag == FlagEnd {
		m.sawEnd = true
		if m.total == Unknown {
			m.total = hi
		}
	}
	if m.sawEnd && m.got.covers(m.total) {
		m.closed = true
		err := m.sink.Close(nil)
		m.report(err)
		if err != nil {
			return StatusOf(err), true
		}
		return StatusOK, true
	}
	return StatusOK, false
}

// refuse fails the message with code: the sink is closed with err and every
// further chunk of the message gets the same answer.
func (m *inMsg) refuse(code int, err error) int {
	m.failed = code
	if !m.closed {
		m.closed = true
		_ = m.sink.Close(err)
	}
	return code
}

// report sends the end-to-end REPORT a completed message asks for (RFC 4975
// §7.1.2): success when Success-Report is yes, failure when Failure-Report
// allows it — unless the sink reports by itself or the session leaves
// REPORTs to its caller (SessionConfig.DetachedReports).
func (m *inMsg) report(closeErr error) {
	if sr, ok := m.sink.(SelfReporting); ok && sr.SelfReporting() || m.im.Session.cfg.DetachedReports {
		return
	}
	br := ByteRange{Start: 1, End: m.total, Total: m.total}
	switch {
	case closeErr == nil && m.im.SuccessReport:
		_ = m.im.Session.sendReport(m.im.FromPath, m.im.MessageID, br, StatusOK, "", nil)
	case closeErr != nil && m.im.FailureReport != ReportNo:
		_ = m.im.Session.sendReport(m.im.FromPath, m.im.MessageID, br, StatusOf(closeErr), "", nil)
	}
}

// WriterSink reassembles a message into an io.Writer by Byte-Range. Chunks in
// order are written straight through; a chunk that arrives ahead of a gap is
// copied aside (at most MaxReorderBytes in total, then 413) until the gap
// fills. If the writer is an io.WriterAt, every chunk is written in place and
// nothing is buffered.
type WriterSink struct {
	w        io.Writer
	wa       io.WriterAt
	maxAhead int

	mu      sync.Mutex
	next    int64 // 0-based offset the writer expects next
	ahead   map[int64][]byte
	aheadN  int
	written int64
	err     error
	done    chan struct{}
}

// NewWriterSink returns a sink writing into w. maxAhead bounds the bytes held
// for out-of-order chunks; 0 means 1 MiB.
func NewWriterSink(w io.Writer, maxAhead int) *WriterSink {
	if maxAhead <= 0 {
		maxAhead = 1 << 20
	}
	ws := &WriterSink{w: w, maxAhead: maxAhead, done: make(chan struct{})}
	ws.wa, _ = w.(io.WriterAt)
	return ws
}

// WriteChunk implements Sink.
func (ws *WriterSink) WriteChunk(c *Chunk) error {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	off := c.Start - 1
	if ws.wa != nil {
		if _, err := ws.wa.WriteAt(c.Body, off); err != nil {
			return statusErr(StatusTimeout, err)
		}
		ws.written += int64(len(c.Body))
		return nil
	}
	end := off + int64(len(c.Body))
	switch {
	case end <= ws.next:
		return nil // duplicate of bytes already written
	case off > ws.next:
		if _, dup := ws.ahead[off]; dup {
			return nil
		}
		if ws.aheadN+len(c.Body) > ws.maxAhead {
			return statusErr(StatusTooLarge, fmt.Errorf("%w: %d bytes waiting for a gap", ErrTooLarge, ws.aheadN+len(c.Body)))
		}
		if ws.ahead == nil {
			ws.ahead = make(map[int64][]byte)
		}
		ws.ahead[off] = append([]byte(nil), c.Body...)
		ws.aheadN += len(c.Body)
		return nil
	}
	if err := ws.put(c.Body[ws.next-off:]); err != nil {
		return err
	}
	// Drain chunks the gap was holding back.
	for len(ws.ahead) > 0 {
		progressed := false
		for o, b := range ws.ahead {
			if o > ws.next {
				continue
			}
			delete(ws.ahead, o)
			ws.aheadN -= len(b)
			progressed = true
			if e := o + int64(len(b)); e > ws.next {
				if err := ws.put(b[ws.next-o:]); err != nil {
					return err
				}
			}
		}
		if !progressed {
			break
		}
	}
	return nil
}

func (ws *WriterSink) put(b []byte) error {
	n, err := ws.w.Write(b)
	ws.next += int64(n)
	ws.written += int64(n)
	if err != nil {
		// The local writer failed: not the sender's fault, but the message
		// cannot be delivered; 408 is RFC 4975's generic "could not deliver".
		return statusErr(StatusTimeout, err)
	}
	return nil
}

// Close implements Sink.
func (ws *WriterSink) Close(err error) error {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	select {
	case <-ws.done:
		return ws.err
	default:
	}
	if err == nil && len(ws.ahead) > 0 {
		err = fmt.Errorf("%w: message ended with buffered bytes beyond a gap", ErrMalformed)
	}
	ws.err = err
	ws.ahead = nil
	close(ws.done)
	return err
}

// Done is closed when the message ended; Err then tells how.
func (ws *WriterSink) Done() <-chan struct{} { return ws.done }

// Err returns nil for a complete message, ErrAborted, or the failure.
func (ws *WriterSink) Err() error {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.err
}

// Written returns the bytes written so far.
func (ws *WriterSink) Written() int64 {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.written
}
