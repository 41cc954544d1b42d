package msrp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// relayRig is sender A → relay R (upstream session) → downstream sessions on
// R → receivers B1..Bn: the B2BUA hop shape of cpmlink (n = 1 for PF-A and
// PF-B, n = members for the CF).
type relayRig struct {
	a, r, b  *testEndpoint
	sa, up   *Session
	downs    []*Session
	sinks    []*WriterSink
	bufs     []*bytes.Buffer
	relay    *Relay
	outcomes chan Outcome
	done     chan int
	reports  chan ReportStatus
}

// newRelayRig builds the rig; accept, when set, replaces the sink of member i.
func newRelayRig(t *testing.T, n int, rcfg RelayConfig, cfg Config, accept map[int]func(*IncomingMessage) (Sink, error)) *relayRig {
	t.Helper()
	ctx := testCtx(t)
	g := &relayRig{a: newTestEndpoint(t, cfg), r: newTestEndpoint(t, cfg), b: newTestEndpoint(t, cfg),
		outcomes: make(chan Outcome, n), done: make(chan int, 1), reports: make(chan ReportStatus, 4)}
	rcfg.OnOutcome = func(o Outcome) { g.outcomes <- o }
	rcfg.OnDone = func(_ *IncomingMessage, status int) { g.done <- status }
	g.relay = NewRelay(rcfg)
	for i := range n {
		id := fmt.Sprintf("member%03d", i)
		var buf bytes.Buffer
		ws := NewWriterSink(&buf, 0)
		acc := func(*IncomingMessage) (Sink, error) { return ws, nil }
		if f := accept[i]; f != nil {
			acc = f
		}
		mustSession(t, g.b.Endpoint, SessionConfig{Local: g.b.uri(id), Accept: acc})
		d := mustSession(t, g.r.Endpoint, SessionConfig{Local: g.r.uri("dn" + id), Remote: Path{g.b.uri(id)}})
		if _, err := d.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		g.relay.Add(d)
		g.downs, g.sinks, g.bufs = append(g.downs, d), append(g.sinks, ws), append(g.bufs, &buf)
	}
	g.up = mustSession(t, g.r.Endpoint, SessionConfig{Local: g.r.uri("upstream"), Accept: g.relay.Accept})
	g.sa = mustSession(t, g.a.Endpoint, SessionConfig{Local: g.a.uri("sender"), Remote: Path{g.r.uri("upstream")},
		OnReport: func(f *Frame) { g.reports <- *f.ReportStatus }})
	if _, err := g.sa.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Close the relay side first so that its goroutines end, then wait.
		_ = g.r.Close()
		wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.relay.Wait(wctx); err != nil {
			t.Errorf("relay goroutines did not end: %v", err)
		}
	})
	return g
}

func (g *relayRig) outcome(t *testing.T, ctx context.Context) Outcome {
	t.Helper()
	select {
	case o := <-g.outcomes:
		return o
	case <-ctx.Done():
		t.Fatal("no outcome")
		return Outcome{}
	}
}

func (g *relayRig) waitDone(t *testing.T, ctx context.Context) int {
	t.Helper()
	select {
	case st := <-g.done:
		return st
	case <-ctx.Done():
		t.Fatal("relay never finished the message")
		return 0
	}
}

func TestRelayOneToOne(t *testing.T) {
	// PF-A / PF-B: every chunk goes on with rewritten paths, same
	// Message-ID and Byte-Range; the sender's Success-Report is answered
	// only after the downstream's own REPORT came back.
	ctx := testCtx(t)
	g := newRelayRig(t, 1, RelayConfig{}, Config{}, nil)
	body := randBytes(300_001, 3)
	res, err := g.sa.Send(ctx, &Message{ID: "relaymsg01", ContentType: "message/cpim", Body: bytes.NewReader(body),
		Size: int64(len(body)), SuccessReport: true, ChunkSize: 10 << 10})
	if err != nil || !res.Delivered() {
		t.Fatalf("Send = %+v, %v", res, err)
	}
	if st := g.waitDone(t, ctx); st != 200 {
		t.Fatalf("relay combined status %d", st)
	}
	o := g.outcome(t, ctx)
	if !o.Result.Delivered() || o.MessageID != "relaymsg01" || o.Downstream != g.downs[0] {
		t.Fatalf("outcome %+v", o)
	}
	waitClosed(t, ctx, g.sinks[0].Done())
	if !bytes.Equal(g.bufs[0].Bytes(), body) {
		t.Fatal("downstream body differs")
	}
}

func TestRelayFanOut(t *testing.T) {
	// The CF: one upstream message, every member gets it byte-exact.
	ctx := testCtx(t)
	const n = 12
	g := newRelayRig(t, n, RelayConfig{QueueDepth: 2}, Config{}, nil)
	body := randBytes(200_000, 5)
	if _, err := g.sa.Send(ctx, &Message{ContentType: "message/cpim", Body: bytes.NewReader(body), Size: int64(len(body)), SuccessReport: true}); err != nil {
		t.Fatal(err)
	}
	if st := g.waitDone(t, ctx); st != 200 {
		t.Fatalf("combined status %d", st)
	}
	for i := range n {
		waitClosed(t, ctx, g.sinks[i].Done())
		if !bytes.Equal(g.bufs[i].Bytes(), body) {
			t.Fatalf("member %d got %d bytes", i, g.bufs[i].Len())
		}
	}
}

func TestRelayMemberFailureIsolated(t *testing.T) {
	// Member 1 refuses the message with 415: the others still get every
	// byte, the relay reports member 1's status, and the sender (which asked
	// for Failure-Report yes) gets a failure REPORT upstream.
	ctx := testCtx(t)
	refuse := map[int]func(*IncomingMessage) (Sink, error){
		1: func(*IncomingMessage) (Sink, error) { return nil, statusErr(StatusUnsupportedMedia, nil) },
	}
	g := newRelayRig(t, 3, RelayConfig{}, Config{}, refuse)
	body := randBytes(50_000, 9)
	res, _ := g.sa.Send(ctx, &Message{ContentType: "message/cpim", Body: bytes.NewReader(body), Size: int64(len(body))})
	// Hop by hop the relay accepted every chunk, so Send succeeds — unless
	// the failure REPORT overtook the last 200, which fails it with 415.
	if res.Status != 200 && res.Status != StatusUnsupportedMedia {
		t.Fatalf("Send = %+v", res)
	}
	if st := g.waitDone(t, ctx); st != StatusUnsupportedMedia {
		t.Fatalf("combined status %d, want 415", st)
	}
	got := map[*Session]int{}
	for range 3 {
		o := g.outcome(t, ctx)
		got[o.Downstream] = o.Result.Status
	}
	if got[g.downs[0]] != 200 || got[g.downs[1]] != 415 || got[g.downs[2]] != 200 {
		t.Fatalf("outcomes %v", got)
	}
	for _, i := range []int{0, 2} {
		waitClosed(t, ctx, g.sinks[i].Done())
		if !bytes.Equal(g.bufs[i].Bytes(), body) {
			t.Fatalf("member %d lost data", i)
		}
	}
	select {
	case st := <-g.reports:
		if st.Code != StatusUnsupportedMedia {
			t.Fatalf("upstream REPORT %+v", st)
		}
	case <-ctx.Done():
		t.Fatal("no failure REPORT upstream")
	}
}

// blockingSink blocks its first WriteChunk until release is closed: a member
// that stops reading.
type blockingSink struct {
	once    sync.Once
	started chan struct{}
	release chan struct{}
}

func (b *blockingSink) WriteChunk(*Chunk) error {
	b.once.Do(func() { close(b.started) })
	<-b.release
	return nil
}
func (b *blockingSink) Close(error) error { return nil }

func TestRelaySlowMemberIsolated(t *testing.T) {
	// Member 0 stops reading. The upstream is held back for at most
	// StallTimeout, then member 0 alone fails with 408; member 1 gets every
	// byte. Memory stays bounded by the queue depth throughout.
	ctx := testCtx(t)
	bs := &blockingSink{started: make(chan struct{}), release: make(chan struct{})}
	slow := map[int]func(*IncomingMessage) (Sink, error){0: func(*IncomingMessage) (Sink, error) { return bs, nil }}
	// StallTimeout is generous so that the healthy member never trips it even
	// on a loaded CI machine under -race; the blocked one always does.
	// Reuse off: with reuse, both downstream sessions would share one TCP
	// connection to B, and B's blocked reader would stall both (head-of-line
	// blocking is a property of a shared connection, not of the relay).
	g := newRelayRig(t, 2, RelayConfig{QueueDepth: 2, StallTimeout: 2 * time.Second}, Config{MaxInFlight: 2, Reuse: ReuseOff}, slow)
	t.Cleanup(func() { close(bs.release) })
	body := randBytes(400_000, 11)
	res, _ := g.sa.Send(ctx, &Message{ContentType: "message/cpim", Body: bytes.NewReader(body), Size: int64(len(body))})
	if res.Status != 200 && res.Status != StatusTimeout { // 408 if the failure REPORT overtook the last 200
		t.Fatalf("Send = %+v", res)
	}
	waitClosed(t, ctx, g.sinks[1].Done())
	if !bytes.Equal(g.bufs[1].Bytes(), body) {
		t.Fatal("healthy member lost data")
	}
	got := map[*Session]int{}
	for range 2 {
		o := g.outcome(t, ctx)
		got[o.Downstream] = o.Result.Status
	}
	if got[g.downs[0]] != StatusTimeout || got[g.downs[1]] != 200 {
		t.Fatalf("outcomes %v, want member 0 408 and member 1 200", got)
	}
	if st := g.waitDone(t, ctx); st != StatusTimeout {
		t.Fatalf("combined %d", st)
	}
}

func TestRelayAnyPolicy(t *testing.T) {
	ctx := testCtx(t)
	refuse := map[int]func(*IncomingMessage) (Sink, error){
		0: func(*IncomingMessage) (Sink, error) { return nil, statusErr(StatusForbidden, nil) },
	}
	g := newRelayRig(t, 2, RelayConfig{Policy: RelayAny}, Config{}, refuse)
	if _, err := g.sa.Send(ctx, &Message{ContentType: "text/plain", Body: bytes.NewReader([]byte("hi all")), SuccessReport: true}); err != nil {
		t.Fatalf("with one member delivered, RelayAny must report success: %v", err)
	}
	if st := g.waitDone(t, ctx); st != 200 {
		t.Fatalf("combined %d", st)
	}
}

func TestRelayUpstreamAbort(t *testing.T) {
	// '#' from upstream reaches every downstream as '#'.
	ctx := testCtx(t)
	g := newRelayRig(t, 2, RelayConfig{}, Config{}, nil)
	sctx, cancel := context.WithCancel(ctx)
	body := &cancelAfter{r: bytes.NewReader(make([]byte, 50_000)), after: 10_000, cancel: cancel}
	if _, err := g.sa.Send(sctx, &Message{ContentType: "text/plain", Body: body, Size: 50_000}); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	for i := range 2 {
		select {
		case <-g.sinks[i].Done():
		case <-ctx.Done():
			t.Fatalf("member %d never saw the abort", i)
		}
		if !errors.Is(g.sinks[i].Err(), ErrAborted) {
			t.Fatalf("member %d ended with %v", i, g.sinks[i].Err())
		}
	}
	g.waitDone(t, ctx)
}

func TestRelayNoDownstream(t *testing.T) {
	ctx := testCtx(t)
	g := newRelayRig(t, 0, RelayConfig{}, Config{}, nil)
	res, err := g.sa.Send(ctx, &Message{ContentType: "text/plain", Body: bytes.NewReader([]byte("x"))})
	if err == nil || res.Status != StatusTimeout {
		t.Fatalf("Send = %+v, %v", res, err)
	}
}

func TestRelayEmptyMessage(t *testing.T) {
	// A message with a Content-Type and no bytes is one bodiless '$' chunk;
	// the relay forwards it, so every member gets the (empty) message.
	ctx := testCtx(t)
	g := newRelayRig(t, 2, RelayConfig{}, Config{}, nil)
	if _, err := g.sa.Send(ctx, &Message{ContentType: "text/plain", SuccessReport: true}); err != nil {
		t.Fatal(err)
	}
	if st := g.waitDone(t, ctx); st != 200 {
		t.Fatalf("combined status %d", st)
	}
	for i := range 2 {
		waitClosed(t, ctx, g.sinks[i].Done())
		if g.sinks[i].Err() != nil || g.bufs[i].Len() != 0 {
			t.Fatalf("member %d: %v, %d bytes", i, g.sinks[i].Err(), g.bufs[i].Len())
		}
	}
}
