package msrp

import (
	"context"
	"fmt"
	"sync/atomic"
)

// OutgoingHeader describes an outgoing message written chunk by chunk with
// Session.BeginMessage. A relay hop fills it from the upstream
// IncomingMessage, so that every forwarded chunk keeps the upstream's
// Message-ID, total, Content-Type and MIME/extension headers (RFC 4975
// §7.1.1: only To-Path and From-Path change from hop to hop).
type OutgoingHeader struct {
	// ID is the Message-ID; "" means a fresh random one.
	ID string
	// ContentType of the message. Required unless Total is 0.
	ContentType string
	// Total is the message size put in every chunk's Byte-Range, or Unknown
	// ("*") until SetTotal says otherwise.
	Total int64
	// FailureReport is the Failure-Report value; ReportAbsent means "yes",
	// the only value that earns hop-by-hop 200s to wait for (§7.1.1).
	FailureReport Report
	// SuccessReport puts "Success-Report: yes" on the chunks (§7.1.1). Wait
	// then also waits for REPORTs covering the message, unless the session's
	// reports are detached (SessionConfig.DetachedReports).
	SuccessReport bool
	// Headers are MIME and extension headers repeated in every chunk, before
	// Content-Type. Names must be RFC 4975 §9 tokens other than the headers
	// the package writes itself; values must hold no control characters.
	Headers []Field
}

// Outgoing is a message the caller writes chunk by chunk: the building
// block for a hop that forwards chunks as they arrive upstream, at the moment
// its own logic decides, instead of handing a whole io.Reader to Send. It shares Send's transaction machinery: responses matched by
// transaction id, Config.TransactionTimeout, Config.MaxInFlight.
//
// WriteChunk calls must come from one goroutine at a time (chunks go on the
// wire in byte order); Abort, Wait, Done, ID and SetTotal may be called from
// any goroutine.
type Outgoing struct {
	s       *Session
	om      *outMsg
	writing atomic.Bool // a WriteChunk is in progress (misuse guard)
}

// BeginMessage starts an outgoing message on the session. It does not need
// the link to be up and writes nothing: the first WriteChunk does. The
// message counts as in progress on the session from now on, so a link loss
// or Close fails it with 408 even before its first chunk; end every message
// begun (last chunk or Abort), or its state stays until the session ends.
func (s *Session) BeginMessage(h OutgoingHeader) (*Outgoing, error) {
	total := h.Total
	if total < 0 {
		total = Unknown
	}
	if h.ContentType != "" && !utf8Text(h.ContentType) || h.ContentType == "" && total != 0 {
		return nil, fmt.Errorf("%w: Content-Type %q", ErrMalformed, h.ContentType)
	}
	if err := checkFields(h.Headers); err != nil {
		return nil, err
	}
	id := h.ID
	if id == "" {
		id = NewMessageID()
	} else if !validIdent(id) {
		return nil, fmt.Errorf("%w: Message-ID %q", ErrMalformed, id)
	}
	s.mu.Lock()
	closed, busy := s.isClose, s.outgoing[id] != nil
	s.mu.Unlock()
	switch {
	case closed:
		return nil, ErrClosed
	case busy:
		// Two messages under one Message-ID would share responses and
		// REPORTs (RFC 4975 §7.1.1 wants it unique in the session).
		return nil, fmt.Errorf("%w: Message-ID %s already in progress on this session", ErrMalformed, id)
	}
	om := s.newOutMsg(id, total, h.ContentType, append([]Field(nil), h.Headers...), h.SuccessReport, h.FailureReport)
	return &Outgoing{s: s, om: om}, nil
}

// ID returns the Message-ID.
func (m *Outgoing) ID() string { return m.om.id }

// SetTotal records the message size once it is known (a relay learns it
// from a later upstream chunk when the first said "*"); chunks written
// afterwards carry it. It fails when a different total is already set or
// bytes beyond it were written.
func (m *Outgoing) SetTotal(total int64) error {
	om := m.om
	om.mu.Lock()
	defer om.mu.Unlock()
	switch {
	case total < 0:
		return fmt.Errorf("%w: total %d", ErrInvalidByteRange, total)
	case om.total != Unknown && om.total != total:
		return fmt.Errorf("%w: total already %d, not %d", ErrInvalidByteRange, om.total, total)
	case om.sent > total:
		return fmt.Errorf("%w: %d bytes already sent, total %d", ErrInvalidByteRange, om.sent, total)
	}
	om.total = total
	return nil
}

// WriteChunk writes one SEND chunk of the message: body at byte position
// start (1-based), Byte-Range "start-(start+len-1)/total", end-line flag '$'
// when last and '+' otherwise (RFC 4975 §7.1.1). body may be empty only when
// last (a bodiless '$' that ends the message).
//
// Chunks must be written in byte order without gaps or overlap: start is 1
// for the first chunk and one past the previous chunk's last byte after
// that. A relay keeps the upstream's Byte-Ranges unchanged, which works
// because one sender's chunks arrive in order over one connection; a chunk
// out of order is refused with ErrInvalidByteRange and nothing is written.
//
// WriteChunk blocks only until the session's link is up (the first time)
// and until fewer than Config.MaxInFlight chunks are unanswered, both
// bounded by ctx; it then writes the chunk and returns without waiting for
// its response. It neither copies nor keeps body, and only reads it: the
// bytes are on the socket when it returns, so the caller may reuse the
// buffer at once, and one body may be written to several messages (a
// fan-out) concurrently.
//
// A ctx that ends while blocked writes nothing and leaves the message as it
// was (call Abort to give up). If the message has already failed (a non-200
// response such as 413, which asks the sender to stop, §7.1.1; a local 408
// on transaction timeout or link loss; Abort), WriteChunk returns that
// failure, a *StatusError, and ends the message on the wire with '#' if it
// had chunks out and the connection lives. Like Send, WriteChunk does not
// wait for a link that was up and went down: it fails with ErrNotConnected.
func (m *Outgoing) WriteChunk(ctx context.Context, start int64, body []byte, last bool) error {
	return m.writeChunk(ctx, start, body, last, false)
}

// WriteRetained writes a received chunk kept with Chunk.Retain as the next
// chunk of the message: WriteChunk(ctx, rc.Range.Start, rc.Body, rc.Flag ==
// FlagEnd), for a hop that forwards what it received. A body in which the
// Reader found nothing that opens an end-line is not searched for one again
// (RFC 4975 §7.1 asks the sender to make sure the body holds no end-line of
// its new transaction id; it holds none of any). rc stays the caller's to
// Release.
func (m *Outgoing) WriteRetained(ctx context.Context, rc *RetainedChunk) error {
	return m.writeChunk(ctx, rc.Range.Start, rc.Body, rc.Flag == FlagEnd, rc.endLineFree)
}

func (m *Outgoing) writeChunk(ctx context.Context, start int64, body []byte, last, free bool) error {
	if !m.writing.CompareAndSwap(false, true) {
		return fmt.Errorf("%w: concurrent WriteChunk on message %s", ErrMalformed, m.om.id)
	}
	defer m.writing.Store(false)
	om := m.om
	if om.isDone() {
		_ = om.abandon(ctx)
		if om.res.Err != nil {
			return om.res.Err
		}
		return fmt.Errorf("%w: message %s already delivered", ErrClosed, om.id)
	}
	if len(body) == 0 && !last {
		return fmt.Errorf("%w: empty chunk that is not the last", ErrInvalidByteRange)
	}
	if err := om.lockWrite(ctx); err != nil {
		return err
	}
	next, ended := om.next, om.ended
	om.unlockWrite()
	om.mu.Lock()
	total := om.total
	om.mu.Unlock()
	end := start - 1 + int64(len(body))
	switch {
	case ended:
		return fmt.Errorf("%w: message %s already ended", ErrClosed, om.id)
	case start != next:
		return fmt.Errorf("%w: chunk starts at %d, the message is at %d", ErrInvalidByteRange, start, next)
	case total != Unknown && end > total:
		return fmt.Errorf("%w: chunk ends at %d beyond total %d", ErrInvalidByteRange, end, total)
	case total != Unknown && last && end != total:
		return fmt.Errorf("%w: last chunk ends at %d, total is %d", ErrInvalidByteRange, end, total)
	}
	// The session's Close or Abort has failed the message already; a
	// closed session is checked first because its link may be "up" too.
	if m.s.isClosed() {
		om.fail(StatusTimeout, "", statusErr(StatusTimeout, ErrClosed))
		return om.res.Err
	}
	select {
	case <-m.s.up:
	case <-m.s.closed:
		om.fail(StatusTimeout, "", statusErr(StatusTimeout, ErrClosed))
		return om.res.Err
	case <-om.doneCh:
		return om.res.Err
	case <-ctx.Done():
		return ctx.Err()
	}
	c := m.s.boundTo()
	if c == nil {
		om.fail(StatusTimeout, "", statusErr(StatusTimeout, fmt.Errorf("%w: %w", ErrNotConnected, m.s.Err())))
		return om.res.Err
	}
	flag := FlagMore
	if last {
		flag = FlagEnd
	}
	if err := om.sendChunk(ctx, c, body, start, flag, free); err != nil {
		if om.isDone() {
			_ = om.abandon(ctx)
			return om.res.Err
		}
		return err // ctx ended while waiting for a window slot: nothing written
	}
	if last {
		om.lastSent()
	}
	return nil
}

// Abort gives the message up: it fails at once with a local 408 (wrapping
// ErrAborted) and, when chunks of it are on the wire without an end, the
// bodiless '#' chunk tells the receiver to drop what it has (RFC 4975
// §7.1.1). No response is awaited. ctx bounds the wait for a chunk another
// goroutine is writing right now; if it ends first, Abort returns ctx's
// error and the '#' is left to the next WriteChunk (the message has failed
// anyway). The '#' is queued on the connection, not written here (its
// flusher's write is bounded by Config.WriteTimeout). Aborting
// a message that already has its outcome keeps that outcome but still sends
// the '#' it owes (e.g. after a 413 no later WriteChunk noticed).
func (m *Outgoing) Abort(ctx context.Context) error {
	m.om.fail(StatusTimeout, "aborted", statusErr(StatusTimeout, ErrAborted))
	return m.om.abandon(ctx)
}

// Wait returns the message's outcome once it is known: after the last chunk
// was written and every chunk answered 200 (and, with SuccessReport on a
// session whose reports are not detached, REPORTs covered the message), or
// as soon as it failed: the peer's failure status (413 stops the message,
// 481, ...), a local 408 on transaction timeout or link loss, or Abort's
// 408. Result.Err is nil exactly when the message was delivered. If ctx
// ends first, Wait returns a local 408 whose Err wraps ctx's error, but the
// message goes on: Done tells when its real outcome is known.
func (m *Outgoing) Wait(ctx context.Context) Result {
	res, err := m.om.wait(ctx)
	if err != nil {
		res.Status, res.Comment, res.Err = StatusTimeout, "not known yet", statusErr(StatusTimeout, err)
	}
	return res
}

// Done is closed when the outcome is known; Wait then returns at once.
func (m *Outgoing) Done() <-chan struct{} { return m.om.doneCh }
