package msrp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// pair is a connected sender session on A and receiver session on B.
type pair struct {
	a, b   *testEndpoint
	sa, sb *Session
	got    chan *WriterSink
	bufs   chan *bytes.Buffer
	upB    chan Link
}

func newPair(t *testing.T, cfgA, cfgB Config) *pair {
	t.Helper()
	p := &pair{a: newTestEndpoint(t, cfgA), b: newTestEndpoint(t, cfgB),
		got: make(chan *WriterSink, 16), bufs: make(chan *bytes.Buffer, 16), upB: make(chan Link, 1)}
	p.sb = mustSession(t, p.b.Endpoint, SessionConfig{Local: p.b.uri("bbbb"), Remote: Path{p.a.uri("aaaa")},
		OnLinkUp: func(l Link) { p.upB <- l },
		Accept: func(m *IncomingMessage) (Sink, error) {
			var buf bytes.Buffer
			ws := NewWriterSink(&buf, 0)
			p.got <- ws
			p.bufs <- &buf
			return ws, nil
		}})
	p.sa = mustSession(t, p.a.Endpoint, SessionConfig{Local: p.a.uri("aaaa"), Remote: Path{p.b.uri("bbbb")}})
	return p
}

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func (p *pair) receive(t *testing.T, ctx context.Context) ([]byte, error) {
	t.Helper()
	var ws *WriterSink
	select {
	case ws = <-p.got:
	case <-ctx.Done():
		t.Fatal("no incoming message")
	}
	buf := <-p.bufs
	select {
	case <-ws.Done():
	case <-ctx.Done():
		t.Fatal("message never completed")
	}
	return buf.Bytes(), ws.Err()
}

func TestSendReceive(t *testing.T) {
	// RFC 4975 §7.1.1: the active party binds with a bodiless SEND, then a
	// message larger than the chunk size crosses in '+' chunks and a '$' one.
	for _, tc := range []struct {
		name  string
		size  int
		chunk int
		known bool
	}{
		{"known size", 100_003, 4096, true},
		{"unknown size", 100_003, 4096, false},
		{"exactly one chunk", 2048, 2048, true},
		{"chunk multiple, unknown size", 8192, 2048, false},
		{"one byte", 1, 2048, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			p := newPair(t, Config{}, Config{})
			linkA, err := p.sa.Connect(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !linkA.Active || linkA.Reused {
				t.Fatalf("A link = %+v", linkA)
			}
			select {
			case l := <-p.upB:
				if l.Active || l.Reused {
					t.Fatalf("B link = %+v", l)
				}
			case <-ctx.Done():
				t.Fatal("B never saw link up")
			}
			body := randBytes(tc.size, uint64(tc.size))
			size := int64(tc.size)
			if !tc.known {
				size = Unknown
			}
			res, err := p.sa.Send(ctx, &Message{ContentType: "message/cpim", Body: bytes.NewReader(body), Size: size, ChunkSize: tc.chunk})
			if err != nil || !res.Delivered() || res.Bytes != int64(tc.size) {
				t.Fatalf("Send = %+v, %v", res, err)
			}
			got, err := p.receive(t, ctx)
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("received %d bytes (%v), want %d byte-exact", len(got), err, len(body))
			}
		})
	}
}

func TestSuccessReport(t *testing.T) {
	// With Success-Report: yes, Send returns only after the receiver's
	// REPORT (RFC 4975 §7.1.2) covering the whole message.
	ctx := testCtx(t)
	p := newPair(t, Config{}, Config{})
	reports := make(chan Frame, 1)
	// The frame is only valid during the callback: keep a copy.
	p.sa.cfg.OnReport = func(f *Frame) { c := *f; st := *f.ReportStatus; c.ReportStatus = &st; reports <- c }
	if _, err := p.sa.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	body := randBytes(10_000, 7)
	res, err := p.sa.Send(ctx, &Message{ContentType: "text/plain", Body: bytes.NewReader(body), Size: 10_000, SuccessReport: true})
	if err != nil || !res.Delivered() {
		t.Fatalf("Send = %+v, %v", res, err)
	}
	select {
	case f := <-reports:
		if f.ReportStatus.Code != 200 || f.ByteRange != (ByteRange{1, 10_000, 10_000}) || f.MessageID != res.MessageID {
			t.Fatalf("REPORT = %+v %v", f.ReportStatus, f.ByteRange)
		}
	default:
		t.Fatal("Send returned before the REPORT was seen")
	}
}

func TestSendFromPassiveSide(t *testing.T) {
	// Once bound, the connection carries messages both ways.
	ctx := testCtx(t)
	p := newPair(t, Config{}, Config{})
	var got bytes.Buffer
	ws := NewWriterSink(&got, 0)
	p.sa.cfg.Accept = func(*IncomingMessage) (Sink, error) { return ws, nil }
	if _, err := p.sa.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.sb.Send(ctx, &Message{ContentType: "text/plain", Body: bytes.NewReader([]byte("back to you"))}); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ctx, ws.Done())
	if got.String() != "back to you" {
		t.Fatalf("got %q", got.String())
	}
}

func TestUnknownSession481(t *testing.T) {
	ctx := testCtx(t)
	a := newTestEndpoint(t, Config{})
	b := newTestEndpoint(t, Config{UnknownSessionHold: -1})
	s := mustSession(t, a.Endpoint, SessionConfig{Local: a.uri("aaaa"), Remote: Path{b.uri("nosuch")}})
	_, err := s.Connect(ctx)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != StatusNoSession {
		t.Fatalf("Connect = %v, want 481", err)
	}
}

func TestUnknownSessionHeld(t *testing.T) {
	// A SEND that beats the session's registration is held, not refused
	// (DESIGN.md §6, lessons): register the session only after the SEND is
	// on the wire.
	ctx := testCtx(t)
	b := newTestEndpoint(t, Config{UnknownSessionHold: 10 * time.Second})
	peer := dialRaw(t, b.addr)
	peer.send(rawSEND("held0001", b.uri("late").String(), "msrp://127.0.0.1:9/p;tcp", "m0000001", "1-0/0", "", '$'))
	// Registration happens while the reader waits; the response proves the
	// SEND was held and matched rather than answered 481.
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("late")})
	if f := peer.next(); f.Status != 200 {
		t.Fatalf("held SEND answered %d", f.Status)
	}
	_ = ctx
}

func TestWrongConnection506(t *testing.T) {
	// RFC 4975 §7.3 / §5.4: once a session is bound to one connection, a
	// SEND for it on another connection is refused with 506.
	ctx := testCtx(t)
	p := newPair(t, Config{}, Config{})
	if _, err := p.sa.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	intruder := dialRaw(t, p.b.addr)
	intruder.send(rawSEND("intr0001", p.b.uri("bbbb").String(), p.a.uri("aaaa").String(), "m0000001", "1-0/0", "", '$'))
	if f := intruder.next(); f.Status != StatusWrongConnection {
		t.Fatalf("answer %d, want 506", f.Status)
	}
	// The bound session still works.
	if _, err := p.sa.Send(ctx, &Message{ContentType: "text/plain", Body: bytes.NewReader([]byte("still here"))}); err != nil {
		t.Fatal(err)
	}
}

func TestFromPathMismatch403(t *testing.T) {
	b := newTestEndpoint(t, Config{})
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("bbbb"), Remote: Path{MustParseURI("msrp://127.0.0.1:7/expected;tcp")}})
	peer := dialRaw(t, b.addr)
	peer.send(rawSEND("frm00001", b.uri("bbbb").String(), "msrp://127.0.0.1:7/other;tcp", "m0000001", "1-0/0", "", '$'))
	if f := peer.next(); f.Status != StatusForbidden {
		t.Fatalf("answer %d, want 403", f.Status)
	}
}

func TestTransactionTimeout408(t *testing.T) {
	// A peer that reads but never answers: the bind SEND fails with a local
	// 408 after TransactionTimeout (RFC 4975 §7.1.1).
	ctx := testCtx(t)
	l := listenLoopback(t)
	accepted := make(chan struct{})
	go func() {
		nc, err := l.Accept()
		if err != nil {
			return
		}
		close(accepted)
		_, _ = io.Copy(io.Discard, nc) // read forever, answer nothing
		_ = nc.Close()
	}()
	a := newTestEndpoint(t, Config{TransactionTimeout: 200 * time.Millisecond})
	s := mustSession(t, a.Endpoint, SessionConfig{Local: a.uri("aaaa"),
		Remote: Path{MustParseURI("msrp://" + l.Addr().String() + "/silent;tcp")}})
	_, err := s.Connect(ctx)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != StatusTimeout {
		t.Fatalf("Connect = %v, want local 408", err)
	}
	<-accepted
	_ = a.Close()
	_ = l.Close()
}

func TestPeer413AbortsMessage(t *testing.T) {
	// 413 from the receiver stops the sender: no further chunks of that
	// message are sent (RFC 4975 §7.1.1), and the next message still goes.
	ctx := testCtx(t)
	a := newTestEndpoint(t, Config{})
	b := newTestEndpoint(t, Config{})
	var mu sync.Mutex
	chunks := 0
	first := true
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("bbbb"), Accept: func(m *IncomingMessage) (Sink, error) {
		mu.Lock()
		defer mu.Unlock()
		if first {
			first = false
			return sinkFunc(func(c *Chunk) error {
				mu.Lock()
				chunks++
				mu.Unlock()
				return statusErr(StatusTooLarge, nil)
			}), nil
		}
		return NewWriterSink(io.Discard, 0), nil
	}})
	sa := mustSession(t, a.Endpoint, SessionConfig{Local: a.uri("aaaa"), Remote: Path{b.uri("bbbb")}})
	if _, err := sa.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	// One in flight at a time, so the 413 arrives before the second chunk.
	a.Endpoint.cfg.MaxInFlight = 1
	res, err := sa.Send(ctx, &Message{ContentType: "text/plain", Body: bytes.NewReader(make([]byte, 100_000)), Size: 100_000})
	if res.Status != StatusTooLarge || err == nil {
		t.Fatalf("Send = %+v, %v; want 413", res, err)
	}
	if res.Bytes >= 100_000 {
		t.Fatalf("sender went on after 413: %d bytes sent", res.Bytes)
	}
	if _, err := sa.Send(ctx, &Message{ContentType: "text/plain", Body: bytes.NewReader([]byte("next"))}); err != nil {
		t.Fatalf("next message: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if chunks != 1 {
		t.Fatalf("receiver saw %d chunks of the refused message, want 1", chunks)
	}
}

// sinkFunc is a Sink from a function; Close does nothing.
type sinkFunc func(*Chunk) error

func (f sinkFunc) WriteChunk(c *Chunk) error { return f(c) }
func (f sinkFunc) Close(error) error         { return nil }

func TestSenderAbortOnCancel(t *testing.T) {
	// Cancelling Send mid-message sends the '#' marker: the receiver's sink
	// ends with ErrAborted instead of waiting forever.
	ctx := testCtx(t)
	p := newPair(t, Config{}, Config{})
	if _, err := p.sa.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	body := &cancelAfter{r: bytes.NewReader(make([]byte, 50_000)), after: 10_000, cancel: cancel}
	_, err := p.sa.Send(sctx, &Message{ContentType: "text/plain", Body: body, Size: 50_000})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Send = %v, want context.Canceled", err)
	}
	if _, err := p.receive(t, ctx); !errors.Is(err, ErrAborted) {
		t.Fatalf("receiver ended with %v, want ErrAborted", err)
	}
}

// cancelAfter cancels a context once `after` bytes were read.
type cancelAfter struct {
	r      io.Reader
	n      int
	after  int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	if c.n >= c.after {
		c.cancel()
	}
	return n, err
}

func TestLinkLostFailsSend(t *testing.T) {
	ctx := testCtx(t)
	p := newPair(t, Config{}, Config{})
	down := make(chan error, 1)
	p.sa.cfg.OnLinkDown = func(err error) { down <- err }
	if _, err := p.sa.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	_ = p.b.Close()
	select {
	case <-down:
	case <-ctx.Done():
		t.Fatal("link loss not reported")
	}
	if _, err := p.sa.Send(ctx, &Message{ContentType: "text/plain", Body: bytes.NewReader([]byte("x"))}); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Send after link loss = %v", err)
	}
}

func TestLargeMessageStreamsWithBoundedMemory(t *testing.T) {
	// 32 MiB through one hop, checked by hash on the fly: neither side ever
	// holds the message (the sender reads chunk by chunk from an io.Reader,
	// the receiver writes chunk by chunk into an io.Writer).
	ctx := testCtx(t)
	a := newTestEndpoint(t, Config{})
	b := newTestEndpoint(t, Config{})
	h := sha256.New()
	ws := NewWriterSink(h, 0)
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("bbbb"), Accept: func(*IncomingMessage) (Sink, error) { return ws, nil }})
	sa := mustSession(t, a.Endpoint, SessionConfig{Local: a.uri("aaaa"), Remote: Path{b.uri("bbbb")}, ChunkSize: 64 << 10})
	if _, err := sa.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	const size = 32 << 20
	src := &patternReader{n: size}
	want := sha256.New()
	_, _ = io.Copy(want, &patternReader{n: size})
	if _, err := sa.Send(ctx, &Message{ContentType: "application/octet-stream", Body: src, Size: size}); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ctx, ws.Done())
	if ws.Err() != nil || !bytes.Equal(h.Sum(nil), want.Sum(nil)) || ws.Written() != size {
		t.Fatalf("hash mismatch or error %v (%d bytes)", ws.Err(), ws.Written())
	}
}

// patternReader yields n deterministic bytes without holding them: a
// repeating 251-byte pattern copied from a small table, so generating input
// costs no more than a memcpy in the benchmarks.
type patternReader struct{ n, off int64 }

var patternTable = func() []byte {
	b := make([]byte, 64<<10+251)
	for i := range b {
		b[i] = byte(i % 251 * 131 >> 3)
	}
	return b
}()

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	total := 0
	for len(b) > 0 && p.off < p.n {
		start := int(p.off % 251)
		k := copy(b[:min(int64(len(b)), p.n-p.off)], patternTable[start:])
		b = b[k:]
		p.off += int64(k)
		total += k
	}
	return total, nil
}

func TestSendSizeMismatch(t *testing.T) {
	// A Body that does not match the declared Size is a local error, and the
	// receiver is told with '#' instead of waiting for bytes that never come.
	ctx := testCtx(t)
	p := newPair(t, Config{}, Config{})
	if _, err := p.sa.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := p.sa.Send(ctx, &Message{ContentType: "text/plain", Body: bytes.NewReader(make([]byte, 5000)), Size: 9000})
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("Send = %v, want ErrMalformed", err)
	}
	if _, err := p.receive(t, ctx); !errors.Is(err, ErrAborted) {
		t.Fatalf("receiver ended with %v, want ErrAborted", err)
	}
}

func TestUnknownRemote(t *testing.T) {
	// RFC 6135 a=setup:actpass: the offerer accepts the connection before
	// the answer names the peer. The binding SEND's From-Path becomes
	// Remote; SetRemote fixes it later and From-Path checks apply again.
	peerP := "msrp://127.0.0.1:7/peerp;tcp"
	peerQ := "msrp://127.0.0.1:7/peerq;tcp"
	for _, tc := range []struct {
		name      string
		setBefore string // SetRemote before any SEND
		bindFrom  []string
		want      []int // answer to each binding SEND
		setAfter  string
		wantAfter int // StatusOf(SetRemote after binding)
	}{
		{name: "learned from the binding SEND, SDP agrees", bindFrom: []string{peerP}, want: []int{200}, setAfter: peerP, wantAfter: 200},
		{name: "learned, SDP names someone else", bindFrom: []string{peerP}, want: []int{200}, setAfter: peerQ, wantAfter: 403},
		{name: "set before binding: From-Path enforced", setBefore: peerP, bindFrom: []string{peerQ, peerP}, want: []int{403, 200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newTestEndpoint(t, Config{})
			s := mustSession(t, b.Endpoint, SessionConfig{Local: b.uri(NewSessionID())})
			if tc.setBefore != "" {
				if err := s.SetRemote(Path{MustParseURI(tc.setBefore)}); err != nil {
					t.Fatal(err)
				}
			}
			peer := dialRaw(t, b.addr)
			for i, from := range tc.bindFrom {
				tid := fmt.Sprintf("bind%04d", i)
				peer.send(rawSEND(tid, s.Local().String(), from, "m0000001", "1-0/0", "", '$'))
				if f := peer.next(); f.Status != tc.want[i] {
					t.Fatalf("binding SEND from %s answered %d, want %d", from, f.Status, tc.want[i])
				}
			}
			learned := tc.bindFrom[len(tc.bindFrom)-1]
			if got := s.Remote().String(); got != learned {
				t.Fatalf("Remote = %s, want %s", got, learned)
			}
			if tc.setAfter != "" {
				err := s.SetRemote(Path{MustParseURI(tc.setAfter)})
				if StatusOf(err) != tc.wantAfter {
					t.Fatalf("SetRemote(%s) = %v, want %d", tc.setAfter, err, tc.wantAfter)
				}
				if got := s.Remote().String(); got != learned {
					t.Fatalf("Remote = %s after SetRemote, want %s", got, learned)
				}
			}
		})
	}
}

func TestSetRemoteThenConnect(t *testing.T) {
	// The offerer that turns out to be the active party (the answer said
	// a=setup:passive) learns the path from the answer, then connects.
	ctx := testCtx(t)
	p := newPair(t, Config{}, Config{})
	s := mustSession(t, p.a.Endpoint, SessionConfig{Local: p.a.uri("late")})
	if _, err := s.Connect(ctx); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Connect without Remote = %v", err)
	}
	if err := s.SetRemote(nil); !errors.Is(err, ErrInvalidURI) {
		t.Fatalf("SetRemote(nil) = %v", err)
	}
	// B's session expects aaaa, so it refuses this one with 403...
	if err := s.SetRemote(Path{p.b.uri("bbbb")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Connect(ctx); StatusOf(err) != StatusForbidden {
		t.Fatalf("Connect to a peer expecting someone else = %v, want 403", err)
	}
	// ...and accepts the party its SDP named.
	if _, err := p.sa.Connect(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestSessionAbortDedicatedConnection(t *testing.T) {
	// Abort on the only session of a dedicated connection (ReuseOff) closes
	// it, from whichever side: the peer's OnLinkDown fires. (Under a reuse
	// policy the passive side keeps it: see
	// TestAbortLeavesPeerSessionsOnAcceptedConnection.) A sends a message to B; when A
	// aborts, B's message ends with '#' (then the link fails); when B
	// aborts, B's sink is closed with the cause and A's message fails 408.
	for _, tc := range []struct {
		name          string
		activeAborts  bool
		wantPeerAbort bool // B's sink ends with ErrAborted ('#' from A)
	}{
		{"active side aborts", true, true},
		{"passive side aborts", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			downA, downB := make(chan error, 1), make(chan error, 1)
			p := &pair{a: newTestEndpoint(t, Config{Reuse: ReuseOff}), b: newTestEndpoint(t, Config{Reuse: ReuseOff}), got: make(chan *WriterSink, 1)}
			p.sb = mustSession(t, p.b.Endpoint, SessionConfig{Local: p.b.uri("bbbb"), Remote: Path{p.a.uri("aaaa")},
				OnLinkDown: func(err error) { downB <- err },
				Accept: func(*IncomingMessage) (Sink, error) {
					ws := NewWriterSink(io.Discard, 0)
					p.got <- ws
					return ws, nil
				}})
			p.sa = mustSession(t, p.a.Endpoint, SessionConfig{Local: p.a.uri("aaaa"), Remote: Path{p.b.uri("bbbb")},
				OnLinkDown: func(err error) { downA <- err }})
			if _, err := p.sa.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			out, err := p.sa.BeginMessage(OutgoingHeader{ContentType: "text/plain", Total: 10})
			if err != nil {
				t.Fatal(err)
			}
			if err := out.WriteChunk(ctx, 1, []byte("abcd"), false); err != nil {
				t.Fatal(err)
			}
			var ws *WriterSink
			select {
			case ws = <-p.got:
			case <-ctx.Done():
				t.Fatal("no incoming message")
			}
			aborter, aborterEp, peerDown := p.sa, p.a, downB
			if !tc.activeAborts {
				aborter, aborterEp, peerDown = p.sb, p.b, downA
			}
			cause := errors.New("the state machine gave up")
			aborter.Abort(cause)
			select {
			case <-peerDown:
			case <-ctx.Done():
				t.Fatal("the peer never saw the link fail")
			}
			if !errors.Is(aborter.Err(), cause) {
				t.Fatalf("aborter: Err = %v", aborter.Err())
			}
			// The aborter's writer closes the connection once the '#' it queued is
			// written (closeFlushed), so the peer may see the link fail before the
			// aborter's endpoint has let the connection go.
			waitFor(t, ctx, func() bool { return aborterEp.Conns() == 0 })
			waitClosed(t, ctx, ws.Done())
			if got := errors.Is(ws.Err(), ErrAborted); got != tc.wantPeerAbort {
				t.Fatalf("receiver's message ended with %v", ws.Err())
			}
			// The sender's message failed either way: aborted, or link lost.
			res := out.Wait(ctx)
			if res.Status != StatusTimeout {
				t.Fatalf("sender's message: %+v", res)
			}
			if tc.activeAborts {
				if _, err := p.sa.Send(ctx, &Message{ContentType: "text/plain", Body: bytes.NewReader([]byte("x"))}); !errors.Is(err, ErrClosed) {
					t.Fatalf("Send after Abort = %v", err)
				}
			}
		})
	}
}

func TestSessionAbortSharedConnection(t *testing.T) {
	// Two sessions share one connection: aborting one leaves the other
	// working, and the connection stays. The peer of the aborted one learns
	// of it only when it sends: 481.
	ctx := testCtx(t)
	a := newTestEndpoint(t, Config{UnknownSessionHold: -1})
	b := newTestEndpoint(t, Config{})
	var got bytes.Buffer
	ws := NewWriterSink(&got, 0)
	sb1 := mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("b1")})
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("b2"), Accept: func(*IncomingMessage) (Sink, error) { return ws, nil }})
	sa1 := mustSession(t, a.Endpoint, SessionConfig{Local: a.uri("a1"), Remote: Path{b.uri("b1")}})
	sa2 := mustSession(t, a.Endpoint, SessionConfig{Local: a.uri("a2"), Remote: Path{b.uri("b2")}})
	if _, err := sa1.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if l, err := sa2.Connect(ctx); err != nil || !l.Reused {
		t.Fatalf("second session: %+v, %v (want a reused connection)", l, err)
	}
	sa1.Abort(nil)
	if a.Conns() != 1 {
		t.Fatalf("%d connections, want the shared one kept", a.Conns())
	}
	if _, err := sa2.Send(ctx, &Message{ContentType: "text/plain", Body: bytes.NewReader([]byte("still here"))}); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ctx, ws.Done())
	if got.String() != "still here" {
		t.Fatalf("got %q", got.String())
	}
	if _, up := sb1.Link(); !up {
		t.Fatal("the aborted session's peer lost its link on a shared connection")
	}
	if _, err := sb1.Send(ctx, &Message{ContentType: "text/plain", Body: bytes.NewReader([]byte("hello?"))}); StatusOf(err) != StatusNoSession {
		t.Fatalf("send to the aborted session = %v, want 481", err)
	}
}

// TestDialThenBind: after Dial the peer cannot know of the link (nothing was sent); Bind
// sends the bodiless SEND, the passive end is up first, then the answer makes the active
// end up. A driver relies on this order to tell its machine before the peer's.
func TestDialThenBind(t *testing.T) {
	ctx := testCtx(t)
	p := newPair(t, Config{}, Config{})
	if _, err := p.sa.Bind(ctx); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Bind before Dial = %v, want ErrNotConnected", err)
	}
	l, err := p.sa.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Active || l.Reused {
		t.Errorf("Dial link = %+v, want active and new", l)
	}
	select {
	case <-p.sb.Up():
		t.Fatal("the passive end is up before anything was sent")
	case <-p.sa.Up():
		t.Fatal("the active end is up before the bind was answered")
	default:
	}
	answered, err := p.sa.Bind(ctx)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-answered:
	case <-ctx.Done():
		t.Fatal("no answer to the bind")
	}
	if err != nil {
		t.Fatalf("bind answered %v", err)
	}
	select {
	case <-p.sb.Up():
	default:
		t.Fatal("the active end is up but the passive end is not")
	}
	<-p.sa.Up()
	if _, err := p.sa.Dial(ctx); !errors.Is(err, ErrSessionExists) {
		t.Errorf("second Dial = %v, want ErrSessionExists", err)
	}
	if _, err := p.sa.Connect(ctx); err != nil {
		t.Errorf("Connect on a connected session = %v, want its link", err)
	}
}

// TestBindUnknownSession: a bind the peer refuses comes back on the channel, and the
// session is free to dial again.
func TestBindUnknownSession(t *testing.T) {
	ctx := testCtx(t)
	a := newTestEndpoint(t, Config{})
	b := newTestEndpoint(t, Config{UnknownSessionHold: -1})
	s := mustSession(t, a.Endpoint, SessionConfig{Local: a.uri("aaaa"), Remote: Path{b.uri("nosuch")}})
	if _, err := s.Dial(ctx); err != nil {
		t.Fatal(err)
	}
	answered, err := s.Bind(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var se *StatusError
	select {
	case err = <-answered:
	case <-ctx.Done():
		t.Fatal("no answer to the bind")
	}
	if !errors.As(err, &se) || se.Code != StatusNoSession {
		t.Fatalf("bind answered %v, want 481", err)
	}
	if _, ok := s.Link(); ok {
		t.Error("the session is still attached after a refused bind")
	}
}
