package msrp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Message is an outgoing message. Its body streams from Body: the sender
// holds at most one chunk (plus one look-ahead byte) in memory, whatever the
// message size.
type Message struct {
	// ID is the Message-ID; empty means a fresh random one.
	ID string
	// ContentType of the message, e.g. "message/cpim". Required when the
	// message has a body.
	ContentType string
	// Body supplies the content; nil means an empty message.
	Body io.Reader
	// Size is the total length when known in advance (sent as the Byte-Range
	// total), or negative when unknown ("*"). Zero with a non-nil Body is
	// taken as unknown.
	Size int64
	// SuccessReport asks for an end-to-end REPORT on delivery (RFC 4975
	// §7.1.1); Send then waits for it.
	SuccessReport bool
	// FailureReport is the Failure-Report value; ReportAbsent means "yes".
	// With "partial" or "no" there are no 200 responses to wait for, so Send
	// can only report local failures and REPORTs.
	FailureReport Report
	// Headers are extra MIME headers sent before Content-Type in every chunk.
	Headers []Field
	// ChunkSize overrides the session's chunk size for this message.
	ChunkSize int
	// Started, if set, is called once before the first chunk is written, with a
	// channel closed when the message's outcome is known (as Outgoing.Done): a
	// REPORT read once it is closed came after the 200s to every chunk (the
	// reader takes frames in wire order), one read before it did not.
	Started func(done <-chan struct{})
}

// Result is the outcome of one outgoing message on one session.
type Result struct {
	MessageID string
	Status    int    // 200 when delivered; the failing status otherwise
	Comment   string // the peer's reason phrase, when it gave one
	Bytes     int64  // body bytes sent
	Err       error  // nil exactly when Status is 200; a *StatusError otherwise
}

// Delivered reports whether the message was accepted by the next hop (and,
// when Success-Report was requested, reported delivered end to end).
func (r Result) Delivered() bool { return r.Status == StatusOK && r.Err == nil }

// outMsg tracks one outgoing message: its unanswered chunks, its success
// REPORT coverage, and its final Result. Chunks are sent by one goroutine at
// a time; responses and REPORTs arrive on the connection's reader.
type outMsg struct {
	s      *Session
	id     string
	ctype  string
	hdrs   []Field
	sr     bool // Success-Report: yes goes on the wire
	await  bool // the Result waits for success REPORTs (sr, unless the session's reports are detached)
	fr     Report
	window chan struct{} // one slot per unanswered chunk (Failure-Report yes only)

	// wlock (a one-slot semaphore, so that waiting for it can be bounded by
	// a context) serialises writing this message's chunks: the scratch
	// buffers, and the wire state below, which decides whether a '#' is
	// still owed.
	wlock chan struct{}
	// owed is set when an abort found a chunk being written: the '#' it owes
	// goes out when the writer lets go of wlock (unlockWrite, payAbort).
	owed    atomic.Bool
	hdr     []byte // header scratch
	trl     []byte
	c       *conn // the connection the first chunk went on
	started bool  // a chunk with a Message-ID of this message is on the wire
	ended   bool  // the '$' or '#' chunk is on the wire: nothing more may follow
	next    int64 // byte position after the last chunk written

	mu       sync.Mutex
	total    int64
	pending  int
	last     bool
	sent     int64
	reported spans
	timer    *time.Timer
	finished bool
	res      Result
	doneCh   chan struct{}
}

func (s *Session) newOutMsg(id string, total int64, ctype string, hdrs []Field, sr bool, fr Report) *outMsg {
	if fr == ReportAbsent {
		fr = ReportYes
	}
	om := &outMsg{s: s, id: id, total: total, ctype: ctype, hdrs: hdrs, sr: sr, fr: fr,
		await:  sr && !s.cfg.DetachedReports,
		window: make(chan struct{}, s.ep.cfg.MaxInFlight), doneCh: make(chan struct{}), next: 1,
		wlock: make(chan struct{}, 1)}
	s.mu.Lock()
	s.outgoing[id] = om
	s.mu.Unlock()
	return om
}

// sendChunk writes one SEND chunk of body starting at byte start. An empty
// body with flag '#' is the abort marker; an empty body with '$' and start 1
// is the bodiless binding SEND. Once the message has failed, only '#' may
// still be written (RFC 4975 §7.1.1: after a 413 the sender stops sending
// the message); once '$' or '#' is on the wire, nothing more is.
//
// free says the body is known to hold no end-line of any transaction id
// (Frame.endLineFree, set by the Reader that received it): the search for
// one is then skipped.
func (om *outMsg) sendChunk(ctx context.Context, c *conn, body []byte, start int64, flag byte, free bool) error {
	// Only Failure-Report yes earns a 200 to wait for (RFC 4975 §7.1.1); the
	// abort marker is fire-and-forget.
	expect := om.fr == ReportYes && flag != FlagAbort
	if expect {
		select {
		case om.window <- struct{}{}:
		case <-om.doneCh:
			return om.res.Err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := om.lockWrite(ctx); err != nil {
		if expect {
			<-om.window
		}
		return err
	}
	defer om.unlockWrite()
	return om.writeLocked(c, body, start, flag, expect, free)
}

// lockWrite takes the message's write lock, waiting at most until ctx ends.
// A free lock is taken even when ctx has ended already, so that a '#' owed
// under a cancelled context still goes out.
func (om *outMsg) lockWrite(ctx context.Context) error {
	select {
	case om.wlock <- struct{}{}:
		return nil
	default:
	}
	select {
	case om.wlock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// unlockWrite lets go of the message's write lock, and pays a '#' that an
// abort left owed meanwhile.
func (om *outMsg) unlockWrite() {
	<-om.wlock
	if om.owed.Load() {
		om.payAbort()
	}
}

// payAbort queues the '#' an abort owes, unless a chunk of the message is
// being written: its writer pays it when it lets go (unlockWrite). The owed
// flag is looked at again after every unlock, so an abort that found the
// lock taken just before it was let go is not lost.
func (om *outMsg) payAbort() {
	for om.owed.Load() {
		select {
		case om.wlock <- struct{}{}:
		default:
			return
		}
		if om.owed.Swap(false) {
			_ = om.endLocked()
		}
		<-om.wlock
	}
}

// writeLocked writes one chunk, or queues it when it is the '#' (see
// conn.queue); the caller holds wlock and, when expect, a window slot (given
// back here if nothing is written).
func (om *outMsg) writeLocked(c *conn, body []byte, start int64, flag byte, expect, free bool) error {
	if om.ended || flag != FlagAbort && om.isDone() {
		if expect {
			<-om.window
		}
		if om.isDone() {
			return om.res.Err
		}
		return fmt.Errorf("%w: message %s already ended", ErrClosed, om.id)
	}
	tid := NewTransactionID()
	for !free && containsEndLine(body, tid) {
		tid = NewTransactionID() // RFC 4975 §7.1: the body must not contain the end-line
	}
	om.mu.Lock()
	total := om.total
	om.mu.Unlock()
	f := Frame{TID: tid, Method: MethodSEND, ToPath: om.s.Remote(), FromPath: Path{om.s.local},
		MessageID: om.id, ByteRange: ByteRange{Start: start, End: start - 1 + int64(len(body)), Total: total},
		Headers: om.hdrs, Flag: flag}
	if om.fr != ReportYes {
		f.FailureReport = om.fr
	}
	if om.sr {
		f.SuccessReport = ReportYes
	}
	if len(body) > 0 || om.ctype != "" && total == 0 && flag == FlagEnd {
		f.ContentType = om.ctype
		f.hasBody = true
	}
	om.hdr = f.AppendHeader(om.hdr[:0])
	om.trl = f.AppendTrailer(om.trl[:0])
	if expect {
		err := c.addTxn(tid, func(status int, comment string, _ *Frame, err error) {
			// Outcome first, then the window slot: a sender waiting for the
			// slot then already sees a failure (a 413 stops the message,
			// §7.1.1) and writes no further chunk.
			om.onResponse(status, comment, err)
			<-om.window
		})
		if err != nil {
			<-om.window
			return err
		}
	}
	om.mu.Lock()
	if expect {
		om.pending++
	}
	om.sent += int64(len(body))
	if flag == FlagEnd {
		// Marked before the write, not after it returns: the reader may take the
		// last 200 (and a REPORT behind it) before this goroutine runs again, and
		// the outcome must be known by the time it reads what follows the 200.
		om.markLastLocked()
	}
	om.mu.Unlock()
	om.c, om.started = c, true
	om.next = start + int64(len(body))
	om.ended = flag == FlagEnd || flag == FlagAbort
	if flag == FlagAbort {
		// No body and no response (§7.1.1): queued behind what the connection
		// writes, so that ending a message never waits for the connection's
		// writer, and written before the connection closes in order
		// (conn.closeFlushed).
		return c.queue(append(om.hdr, om.trl...))
	}
	if err := c.write(om.hdr, body, om.trl); err != nil {
		// The connection is gone; its reader fails the transaction (408).
		return err
	}
	return nil
}

// setTotal records a message size learned after the message started (a
// relay learns it from a later upstream chunk).
func (om *outMsg) setTotal(t int64) {
	om.mu.Lock()
	om.total = t
	om.mu.Unlock()
}

func (om *outMsg) onResponse(status int, comment string, err error) {
	om.mu.Lock()
	defer om.mu.Unlock()
	om.pending--
	if status != StatusOK {
		if err == nil {
			err = &StatusError{Code: status, Comment: comment}
		}
		om.finishLocked(status, comment, err)
		return
	}
	om.checkLocked()
}

// lastSent marks that no more chunks follow.
func (om *outMsg) lastSent() {
	om.mu.Lock()
	defer om.mu.Unlock()
	om.markLastLocked()
	om.checkLocked()
}

// markLastLocked records that the last chunk is written (om.mu held): a size
// unknown until now is what was sent.
func (om *outMsg) markLastLocked() {
	om.last = true
	if om.total < 0 {
		om.total = om.sent
	}
}

func (om *outMsg) onReport(f *Frame) {
	om.mu.Lock()
	defer om.mu.Unlock()
	st := f.ReportStatus
	if st.Code != StatusOK {
		om.finishLocked(st.Code, st.Reason, &StatusError{Code: st.Code, Comment: st.Reason, Err: errors.New("failure REPORT")})
		return
	}
	r := f.Range()
	end := r.End
	if end == Unknown {
		end = r.Total
	}
	if end >= r.Start-1 && end != Unknown {
		om.reported.add(r.Start-1, end)
	}
	om.checkLocked()
}

func (om *outMsg) checkLocked() {
	if om.finished || !om.last || om.pending > 0 {
		return
	}
	if !om.await || om.reported.covers(om.total) {
		om.finishLocked(StatusOK, "", nil)
		return
	}
	if om.timer == nil {
		om.timer = time.AfterFunc(om.s.ep.cfg.ReportTimeout, func() {
			om.fail(StatusTimeout, "no success REPORT", statusErr(StatusTimeout, errors.New("no success REPORT")))
		})
	}
}

func (om *outMsg) fail(status int, comment string, err error) {
	om.mu.Lock()
	defer om.mu.Unlock()
	om.finishLocked(status, comment, err)
}

func (om *outMsg) finishLocked(status int, comment string, err error) {
	if om.finished {
		return
	}
	om.finished = true
	if om.timer != nil {
		om.timer.Stop()
	}
	om.res = Result{MessageID: om.id, Status: status, Comment: comment, Bytes: om.sent, Err: err}
	// Off the session before anyone waiting learns the outcome, so that the
	// Message-ID is free again for whoever reacts to it. Lock order is om.mu
	// then s.mu: no caller holds s.mu while calling in.
	s := om.s
	s.mu.Lock()
	if s.outgoing[om.id] == om {
		delete(s.outgoing, om.id)
	}
	s.mu.Unlock()
	close(om.doneCh)
}

func (om *outMsg) isDone() bool {
	select {
	case <-om.doneCh:
		return true
	default:
		return false
	}
}

func (om *outMsg) wait(ctx context.Context) (Result, error) {
	select {
	case <-om.doneCh:
		return om.res, nil
	case <-ctx.Done():
		return Result{MessageID: om.id}, ctx.Err()
	}
}

// abort fails the message locally with err and, when chunks of it are on
// the wire without an end, sends the bodiless '#' chunk so that the receiver
// can drop what it has (RFC 4975 §7.1.1). It never waits: when a chunk of
// the message is being written, to a peer that may have stopped reading (for
// up to Config.WriteTimeout), the '#' is left owed to that writer.
// Session.Abort runs on its caller's goroutine, which in a role serves every
// other session too.
func (om *outMsg) abort(err error) {
	om.fail(StatusOf(err), "", err)
	om.owed.Store(true)
	om.payAbort()
}

// abandon ends a message that failed or was given up before its last chunk
// (a 413 from the peer, a failed downstream, an aborted session) with the
// bodiless '#' chunk, so that every hop can drop its state for it (RFC 4975
// §7.1.1). It writes nothing when no chunk went out or the message already
// ended on the wire. No response is awaited; ctx bounds the wait for a
// chunk being written by another goroutine.
func (om *outMsg) abandon(ctx context.Context) error {
	if err := om.lockWrite(ctx); err != nil {
		return err
	}
	defer om.unlockWrite()
	return om.endLocked()
}

// endLocked sends the '#' a message owes when chunks of it went out without
// an end; the caller holds wlock.
func (om *outMsg) endLocked() error {
	if !om.started || om.ended {
		return nil
	}
	return om.writeLocked(om.c, nil, om.next, FlagAbort, false, true)
}

// Send sends m on the session, chunked by the session's chunk size, and
// returns when the outcome is known: every chunk answered (Failure-Report
// yes) and, if requested, the success REPORT received. It first waits for
// the link to be up, bounded by ctx. The error is nil exactly when the
// message was delivered; otherwise it is the *StatusError also in Result.Err,
// or a local error (ctx, ErrClosed, ErrNotConnected, a read error from Body).
func (s *Session) Send(ctx context.Context, m *Message) (Result, error) {
	if err := s.waitUp(ctx); err != nil {
		return Result{}, err
	}
	c := s.boundTo()
	if c == nil {
		return Result{}, fmt.Errorf("%w: %w", ErrNotConnected, s.Err())
	}
	chunk := m.ChunkSize
	if chunk <= 0 {
		chunk = s.cfg.ChunkSize
	}
	if chunk <= 0 {
		chunk = s.ep.cfg.ChunkSize
	}
	total := m.Size
	if m.Body == nil {
		total = 0
	} else if total == 0 {
		total = Unknown
	}
	if total < 0 {
		total = Unknown
	}
	if m.ContentType == "" && total != 0 {
		return Result{}, fmt.Errorf("%w: message without Content-Type", ErrMalformed)
	}
	id := m.ID
	if id == "" {
		id = NewMessageID()
	} else if !validIdent(id) {
		return Result{}, fmt.Errorf("%w: Message-ID %q", ErrMalformed, id)
	}
	om := s.newOutMsg(id, total, m.ContentType, m.Headers, m.SuccessReport, m.FailureReport)
	if m.Started != nil {
		m.Started(om.doneCh)
	}
	if m.Body == nil {
		if err := om.sendChunk(ctx, c, nil, 1, FlagEnd, true); err != nil {
			om.fail(StatusOf(err), "", err)
			return om.res, err
		}
		return om.finishSend(ctx)
	}
	buf := getBuf(chunk + 1)
	defer buf.release()
	b := buf.b[:chunk+1]
	have := 0 // bytes already in b (the look-ahead byte of the previous round)
	start := int64(1)
	for {
		if err := ctx.Err(); err != nil {
			om.abort(err)
			return om.res, err
		}
		if om.isDone() { // e.g. 413 from the peer: stop sending (§7.1.1)
			_ = om.abandon(context.Background())
			return om.res, om.res.Err
		}
		n, err := io.ReadFull(m.Body, b[have:])
		n += have
		more := err == nil // chunk+1 bytes: at least one byte follows this chunk
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			om.abort(err)
			return om.res, err
		}
		size := n
		if more {
			size = chunk
		}
		if total != Unknown && start-1+int64(size) > total || !more && total != Unknown && start-1+int64(size) != total {
			err := fmt.Errorf("%w: body length differs from Size %d", ErrMalformed, total)
			om.abort(err)
			return om.res, err
		}
		flag := FlagEnd
		if more {
			flag = FlagMore
		}
		if err := om.sendChunk(ctx, c, b[:size], start, flag, false); err != nil {
			if om.isDone() {
				_ = om.abandon(context.Background())
				return om.res, om.res.Err
			}
			om.abort(err) // harmless if the connection is gone
			return om.res, err
		}
		start += int64(size)
		if !more {
			return om.finishSend(ctx)
		}
		b[0] = b[chunk]
		have = 1
	}
}

func (om *outMsg) finishSend(ctx context.Context) (Result, error) {
	om.lastSent()
	res, err := om.wait(ctx)
	if err != nil {
		return res, err
	}
	return res, res.Err
}
