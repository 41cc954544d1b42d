package msrp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// RelayPolicy decides what the upstream sender is told when downstreams
// disagree.
type RelayPolicy uint8

const (
	// RelayAll reports success upstream only when every downstream took the
	// whole message; otherwise the first failure's status. Default.
	RelayAll RelayPolicy = iota
	// RelayAny reports success when at least one downstream did.
	RelayAny
)

// RelayConfig configures a Relay.
type RelayConfig struct {
	// QueueDepth is how many chunks may wait for one downstream. Memory is
	// bounded by about (QueueDepth+2) × chunk size × downstreams, whatever the
	// message size. Default 8.
	QueueDepth int
	// StallTimeout is how long one downstream's full queue may hold back the
	// upstream before that downstream alone is failed with 408 and the others
	// go on. Default 10 s.
	StallTimeout time.Duration
	// LinkTimeout is how long a downstream whose link is not up yet may take
	// to come up before it is failed with 408. Default 30 s.
	LinkTimeout time.Duration
	// Policy combines downstream outcomes into the upstream REPORT.
	Policy RelayPolicy
	// OnOutcome, if set, is called once per downstream per message with that
	// downstream's result (from the relay's goroutine for that downstream).
	OnOutcome func(Outcome)
	// OnDone, if set, is called once per message after every downstream
	// answered, with the combined status sent upstream.
	OnDone func(m *IncomingMessage, status int)
}

// Outcome is one downstream's result for one relayed message.
type Outcome struct {
	MessageID  string
	Downstream *Session
	Result     Result
}

// Relay forwards every message arriving on an upstream session to a set of
// downstream sessions, chunk by chunk (the B2BUA hops of cpmlink: PF-A and
// PF-B relay to one session, the CF to one per member). Each chunk keeps its
// Message-ID, Byte-Range and flag; To-Path and From-Path are rewritten to the
// downstream session's. The upstream hop is answered per chunk as soon as
// the chunk is queued (hop-by-hop, RFC 4975 §7.2); downstream failures come
// back upstream as REPORTs when Failure-Report asks for them, and success as
// a REPORT when Success-Report does (§7.1.2).
//
// Use it as the upstream session's Accept: SessionConfig{Accept: r.Accept}.
type Relay struct {
	cfg RelayConfig

	mu    sync.Mutex
	downs []*Session
	wg    sync.WaitGroup
}

// NewRelay returns a relay with no downstreams.
func NewRelay(cfg RelayConfig) *Relay {
	if cfg.QueueDepth <= 0 {
		cfg.QueueDepth = 8
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = 10 * time.Second
	}
	if cfg.LinkTimeout <= 0 {
		cfg.LinkTimeout = 30 * time.Second
	}
	return &Relay{cfg: cfg}
}

// Add adds a downstream session. Messages that start after Add reach it.
func (r *Relay) Add(s *Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.downs = append(r.downs, s)
}

// Remove removes a downstream session for messages that start afterwards.
func (r *Relay) Remove(s *Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, d := range r.downs {
		if d == s {
			r.downs = append(r.downs[:i:i], r.downs[i+1:]...)
			return
		}
	}
}

// Wait blocks until every relayed message has its outcomes, or ctx ends.
func (r *Relay) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errNoDownstream = errors.New("msrp: relay has no downstream session")

// Accept starts relaying one message; it is a SessionConfig.Accept.
func (r *Relay) Accept(m *IncomingMessage) (Sink, error) {
	r.mu.Lock()
	downs := append([]*Session(nil), r.downs...)
	r.mu.Unlock()
	if len(downs) == 0 {
		return nil, statusErr(StatusTimeout, errNoDownstream)
	}
	rm := &relayMsg{r: r, im: *m, outstanding: len(downs)}
	for _, d := range downs {
		ctx, cancel := context.WithCancel(context.Background())
		mb := &member{s: d, q: make(chan relayItem, r.cfg.QueueDepth), ctx: ctx, cancel: cancel}
		rm.members = append(rm.members, mb)
		r.wg.Add(1)
		go rm.run(mb)
	}
	return rm, nil
}

// relayItem is one chunk queued for one downstream; buf holds a reference.
type relayItem struct {
	buf   *chunkBuf
	body  []byte
	start int64
	total int64
	flag  byte
	free  bool // the body holds no end-line of any id (Frame.endLineFree)
}

type member struct {
	s      *Session
	q      chan relayItem
	ctx    context.Context
	cancel context.CancelFunc
	failed atomic.Bool
	why    atomic.Pointer[StatusError]
}

// fail isolates one downstream: its goroutine stops sending and drains.
func (mb *member) fail(code int, err error) {
	if mb.failed.CompareAndSwap(false, true) {
		mb.why.Store(statusErr(code, err))
		mb.cancel()
	}
}

type relayMsg struct {
	r       *Relay
	im      IncomingMessage
	members []*member

	end    error // how the upstream message ended; set by Close before the queues close
	maxEnd atomic.Int64

	mu          sync.Mutex
	outstanding int
	final       int // first failure status, or 200
	anyOK       bool
}

// SelfReporting tells the session that the relay sends the REPORTs.
func (rm *relayMsg) SelfReporting() bool { return true }

// WriteChunk queues the chunk for every live downstream. A full queue holds
// the upstream (back-pressure) for at most StallTimeout, then that downstream
// alone is failed; the buffer is shared, never copied.
func (rm *relayMsg) WriteChunk(c *Chunk) error {
	if e := c.Start - 1 + int64(len(c.Body)); e > rm.maxEnd.Load() {
		rm.maxEnd.Store(e)
	}
	live := 0
	var timer *time.Timer
	for _, mb := range rm.members {
		if mb.failed.Load() {
			continue
		}
		it := relayItem{buf: c.buf, body: c.Body, start: c.Start, total: c.Total, flag: c.Flag, free: c.endLineFree()}
		c.buf.retain()
		select {
		case mb.q <- it:
			live++
			continue
		default:
		}
		if timer == nil {
			timer = time.NewTimer(rm.r.cfg.StallTimeout)
			defer timer.Stop()
		}
		select {
		case mb.q <- it:
			live++
		case <-timer.C:
			c.buf.release()
			mb.fail(StatusTimeout, errors.New("downstream stalled"))
			// The stall budget is spent on this downstream; the others
			// get a fresh one.
			timer.Reset(rm.r.cfg.StallTimeout)
		case <-mb.ctx.Done():
			c.buf.release()
		}
	}
	if live == 0 {
		return statusErr(StatusTimeout, errors.New("every downstream failed"))
	}
	return nil
}

// Close ends the upstream message; each downstream finishes on its own.
func (rm *relayMsg) Close(err error) error {
	rm.end = err
	for _, mb := range rm.members {
		close(mb.q)
	}
	return nil
}

// run is the goroutine of one downstream for one message.
func (rm *relayMsg) run(mb *member) {
	defer rm.r.wg.Done()
	defer mb.cancel()
	res := rm.forward(mb)
	rm.outcome(mb, res)
}

func (rm *relayMsg) forward(mb *member) Result {
	id := rm.im.MessageID
	drain := func() {
		for it := range mb.q {
			it.buf.release()
		}
	}
	failRes := func(code int, err error) Result {
		mb.fail(code, err)
		drain()
		se := mb.why.Load()
		return Result{MessageID: id, Status: se.Code, Err: se}
	}
	link := time.NewTimer(rm.r.cfg.LinkTimeout)
	select {
	case <-mb.s.Up():
		link.Stop()
	case <-link.C:
		return failRes(StatusTimeout, errors.New("downstream link not up"))
	case <-mb.ctx.Done():
		link.Stop()
		return failRes(StatusTimeout, errors.New("downstream failed"))
	}
	c := mb.s.boundTo()
	if c == nil {
		return failRes(StatusTimeout, fmt.Errorf("%w: downstream link lost", ErrNotConnected))
	}
	om := mb.s.newOutMsg(id, rm.im.Total, rm.im.ContentType, rm.im.Headers, rm.im.SuccessReport, ReportYes)
	for it := range mb.q {
		if mb.failed.Load() {
			it.buf.release()
			continue
		}
		if it.total != Unknown && om.total == Unknown {
			om.setTotal(it.total)
		}
		err := om.sendChunk(mb.ctx, c, it.body, it.start, it.flag, it.free)
		it.buf.release()
		if err != nil {
			mb.fail(StatusOf(err), err)
			continue
		}
	}
	if mb.failed.Load() {
		if om.isDone() {
			_ = om.abandon(context.Background()) // the downstream refused (e.g. 413): tell it we stopped
		} else {
			om.abort(mb.why.Load())
		}
		res, _ := om.wait(context.Background()) // finished: abort or a failure already
		return res
	}
	if rm.end != nil {
		om.abort(fmt.Errorf("%w: upstream: %w", ErrAborted, rm.end))
		return om.res
	}
	om.lastSent()
	res, _ := om.wait(context.Background()) // bounded by transaction and report timeouts
	return res
}

func (rm *relayMsg) outcome(mb *member, res Result) {
	if cb := rm.r.cfg.OnOutcome; cb != nil {
		cb(Outcome{MessageID: rm.im.MessageID, Downstream: mb.s, Result: res})
	}
	rm.mu.Lock()
	rm.outstanding--
	if res.Status == StatusOK {
		rm.anyOK = true
	} else if rm.final == 0 {
		rm.final = res.Status
	}
	last := rm.outstanding == 0
	rm.mu.Unlock()
	if !last {
		return
	}
	status := StatusOK
	switch {
	case rm.r.cfg.Policy == RelayAny && rm.anyOK:
	case rm.final != 0:
		status = rm.final
	}
	// OnDone first: the caller learns the outcome no later than the sender.
	if cb := rm.r.cfg.OnDone; cb != nil {
		cb(&rm.im, status)
	}
	if rm.end != nil {
		return // an aborted or failed upstream message gets no REPORT
	}
	total := rm.maxEnd.Load()
	br := ByteRange{Start: 1, End: total, Total: total}
	switch {
	case status == StatusOK && rm.im.SuccessReport:
		_ = rm.im.Session.sendReport(rm.im.FromPath, rm.im.MessageID, br, StatusOK, "", nil)
	case status != StatusOK && rm.im.FailureReport != ReportNo:
		_ = rm.im.Session.sendReport(rm.im.FromPath, rm.im.MessageID, br, status, "", nil)
	}
}
