package msrp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// recordSink keeps every chunk it gets (range, flag, a copy of the body) and
// refuses the chunk numbered refuseAt (1-based) with 413 when set.
type recordSink struct {
	refuseAt int
	seen     chan struct{} // one token per chunk taken

	mu     sync.Mutex
	ranges []ByteRange
	flags  []byte
	body   bytes.Buffer
	err    error
	done   chan struct{}
}

func newRecordSink(refuseAt int) *recordSink {
	return &recordSink{refuseAt: refuseAt, seen: make(chan struct{}, 1024), done: make(chan struct{})}
}

func (r *recordSink) WriteChunk(c *Chunk) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ranges = append(r.ranges, c.Range())
	r.flags = append(r.flags, c.Flag)
	r.seen <- struct{}{}
	if r.refuseAt == len(r.ranges) {
		return statusErr(StatusTooLarge, errors.New("test refuses"))
	}
	r.body.Write(c.Body)
	return nil
}

func (r *recordSink) Close(err error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
	close(r.done)
	return nil
}

func (r *recordSink) chunks() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ranges)
}

// holdSink is the upstream side of a relay played by the test: it retains
// every chunk (no copy for big ones) for the test's driver, as the runtime
// does while a downstream link is not up yet.
type holdSink struct {
	held  chan *RetainedChunk
	ended chan error
}

func (h *holdSink) WriteChunk(c *Chunk) error { h.held <- c.Retain(); return nil }
func (h *holdSink) Close(err error) error     { h.ended <- err; return nil }

// TestChunkRelayByHand plays a B2BUA hop with the chunk-level API the way
// the runtime driver will: sender A → relay R (upstream session with
// detached reports, chunks held through a Sink) → receiver B. The relay's
// downstream link comes up only after the whole upstream message arrived,
// then R forwards each held chunk with WriteChunk, keeping the upstream's
// Message-ID, Byte-Ranges, flags, Content-Type and headers, and reports the
// downstream outcome upstream with SendReport (RFC 4975 §7.1.2).
func TestChunkRelayByHand(t *testing.T) {
	const size, chunk = 10_500, 1000
	for _, tc := range []struct {
		name     string
		refuseAt int  // receiver refuses this chunk with 413
		dropAt   int  // receiver's endpoint closes after this many chunks were written
		want     int  // downstream outcome, reported upstream
		complete bool // the receiver gets the whole message
	}{
		{name: "delivered", want: StatusOK, complete: true},
		{name: "413 from the receiver stops the message", refuseAt: 3, want: StatusTooLarge},
		{name: "link loss gives 408", dropAt: 3, want: StatusTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			a := newTestEndpoint(t, Config{})
			// One chunk in flight: the 413 is seen before the next chunk.
			r := newTestEndpoint(t, Config{MaxInFlight: 1})
			b := newTestEndpoint(t, Config{})

			rec := newRecordSink(tc.refuseAt)
			accepted := make(chan IncomingMessage, 1)
			mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("recv"), Accept: func(m *IncomingMessage) (Sink, error) {
				accepted <- *m
				return rec, nil
			}})
			hold := &holdSink{held: make(chan *RetainedChunk, 64), ended: make(chan error, 1)}
			upMsg := make(chan IncomingMessage, 1)
			up := mustSession(t, r.Endpoint, SessionConfig{Local: r.uri("up"), DetachedReports: true,
				Accept: func(m *IncomingMessage) (Sink, error) { upMsg <- *m; return hold, nil }})
			dn := mustSession(t, r.Endpoint, SessionConfig{Local: r.uri("dn"), Remote: Path{b.uri("recv")}})
			sa := mustSession(t, a.Endpoint, SessionConfig{Local: a.uri("sender"), Remote: Path{r.uri("up")}})
			if _, err := sa.Connect(ctx); err != nil {
				t.Fatal(err)
			}

			body := randBytes(size, 42)
			sent := make(chan Result, 1)
			go func() {
				res, _ := sa.Send(ctx, &Message{ID: "upstreamMsg01", ContentType: "message/cpim", Body: bytes.NewReader(body),
					Size: size, ChunkSize: chunk, SuccessReport: true, Headers: []Field{{"X-Cpm-Hint", "keep me"}}})
				sent <- res
			}()

			// The driver: the message starts upstream; hold every chunk.
			var im IncomingMessage
			select {
			case im = <-upMsg:
			case <-ctx.Done():
				t.Fatal("no upstream message")
			}
			out, err := dn.BeginMessage(OutgoingHeader{ID: im.MessageID, ContentType: im.ContentType, Total: im.Total,
				SuccessReport: im.SuccessReport, Headers: im.Headers})
			if err != nil {
				t.Fatal(err)
			}
			var held []*RetainedChunk
			for done := false; !done; {
				select {
				case h := <-hold.held:
					held = append(held, h)
				case err := <-hold.ended:
					if err != nil {
						t.Fatalf("upstream ended with %v", err)
					}
					// Every chunk was queued before Close on the reader
					// goroutine: take what select left in the channel.
					for len(hold.held) > 0 {
						held = append(held, <-hold.held)
					}
					done = true
				case <-ctx.Done():
					t.Fatal("upstream message never ended")
				}
			}
			if len(held) != (size+chunk-1)/chunk {
				t.Fatalf("held %d chunks", len(held))
			}
			// The downstream link is not up: WriteChunk blocks, bounded by
			// its context, and writes nothing.
			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			if err := out.WriteChunk(cancelled, 1, held[0].Body, false); !errors.Is(err, context.Canceled) {
				t.Fatalf("WriteChunk before link up = %v, want context.Canceled", err)
			}
			if _, err := dn.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			var werr error
			for i, h := range held {
				if tc.dropAt != 0 && i == tc.dropAt {
					// The receiver's side goes away mid-message, once it has
					// taken every chunk written so far (closing its session
					// earlier would answer a chunk 481 instead).
					for range tc.dropAt {
						select {
						case <-rec.seen:
						case <-ctx.Done():
							t.Fatal("receiver never took the chunks")
						}
					}
					_ = b.Close()
					if res := out.Wait(ctx); res.Status != StatusTimeout {
						t.Fatalf("Wait after link loss = %+v", res)
					}
				}
				if werr == nil {
					werr = out.WriteChunk(ctx, h.Range.Start, h.Body, h.Flag == FlagEnd)
				}
				h.Release()
			}
			res := out.Wait(ctx)
			if res.Status != tc.want || res.Delivered() != (tc.want == StatusOK) {
				t.Fatalf("downstream Wait = %+v; want %d", res, tc.want)
			}
			if tc.want != StatusOK && StatusOf(werr) != tc.want {
				t.Fatalf("WriteChunk after the failure = %v, want status %d", werr, tc.want)
			}
			if err := up.SendReport(ctx, im.FromPath, im.MessageID, ByteRange{1, size, size}, res.Status, "", nil); err != nil {
				t.Fatal(err)
			}
			select {
			case res := <-sent:
				if res.Status != tc.want || res.MessageID != "upstreamMsg01" {
					t.Fatalf("sender's Result = %+v, want %d", res, tc.want)
				}
			case <-ctx.Done():
				t.Fatal("sender never got its outcome")
			}

			switch {
			case tc.refuseAt != 0:
				// Not one chunk after the refused one reached the sink.
				if n := rec.chunks(); n != tc.refuseAt {
					t.Fatalf("receiver saw %d chunks, want %d", n, tc.refuseAt)
				}
			case tc.complete:
				waitClosed(t, ctx, rec.done)
				m := <-accepted
				if m.MessageID != "upstreamMsg01" || m.ContentType != "message/cpim" || m.Total != size {
					t.Fatalf("receiver's message %+v", m)
				}
				if v, ok := (&Frame{Headers: m.Headers}).Header("x-cpm-hint"); !ok || v != "keep me" {
					t.Fatalf("extension header lost: %v", m.Headers)
				}
				rec.mu.Lock()
				defer rec.mu.Unlock()
				if rec.err != nil || !bytes.Equal(rec.body.Bytes(), body) {
					t.Fatalf("receiver: %v, %d bytes", rec.err, rec.body.Len())
				}
				for i, got := range rec.ranges {
					want := ByteRange{int64(i*chunk + 1), int64(min((i+1)*chunk, size)), size}
					flag := FlagMore
					if i == len(rec.ranges)-1 {
						flag = FlagEnd
					}
					if got != want || rec.flags[i] != flag {
						t.Fatalf("chunk %d: %v %c, want the upstream's %v %c", i, got, rec.flags[i], want, flag)
					}
				}
			}
		})
	}
}

func TestWriteChunkOrderAndBounds(t *testing.T) {
	// Chunks go out in byte order with no gap or overlap, inside the total;
	// a refused chunk writes nothing, so the right one still follows.
	ctx := testCtx(t)
	p := newPair(t, Config{}, Config{})
	if _, err := p.sa.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := p.sa.BeginMessage(OutgoingHeader{ContentType: "text/plain", Total: 6})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.sa.BeginMessage(OutgoingHeader{ID: out.ID(), ContentType: "text/plain", Total: 6}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("second message with the same Message-ID: %v", err)
	}
	for _, tc := range []struct {
		name  string
		start int64
		body  string
		last  bool
		want  error
	}{
		{"gap at the start", 2, "bc", false, ErrInvalidByteRange},
		{"empty non-last chunk", 1, "", false, ErrInvalidByteRange},
		{"beyond the total", 1, "abcdefg", false, ErrInvalidByteRange},
		{"last chunk short of the total", 1, "abc", true, ErrInvalidByteRange},
		{"first chunk", 1, "abc", false, nil},
		{"overlap", 3, "cdef", true, ErrInvalidByteRange},
		{"last chunk", 4, "def", true, nil},
		{"after the end", 7, "", true, ErrClosed},
	} {
		if err := out.WriteChunk(ctx, tc.start, []byte(tc.body), tc.last); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Fatalf("%s: WriteChunk = %v, want %v", tc.name, err, tc.want)
		}
	}
	if res := out.Wait(ctx); !res.Delivered() || res.Bytes != 6 {
		t.Fatalf("Wait = %+v", res)
	}
	got, err := p.receive(t, ctx)
	if err != nil || string(got) != "abcdef" {
		t.Fatalf("received %q, %v", got, err)
	}
	for _, tc := range []struct {
		name string
		h    OutgoingHeader
	}{
		{"no Content-Type", OutgoingHeader{Total: Unknown}},
		{"reserved header", OutgoingHeader{ContentType: "text/plain", Headers: []Field{{"Byte-Range", "1-2/2"}}}},
		{"header injection", OutgoingHeader{ContentType: "text/plain", Headers: []Field{{"X-A", "v\r\nTo-Path: x"}}}},
		{"bad Message-ID", OutgoingHeader{ID: "no spaces allowed", ContentType: "text/plain"}},
	} {
		if _, err := p.sa.BeginMessage(tc.h); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: BeginMessage = %v, want ErrMalformed", tc.name, err)
		}
	}
}

func TestWriteChunkUnknownTotal(t *testing.T) {
	// Total "*" until SetTotal: the receiver learns the size from the last
	// chunk and the '$' may come without a body (RFC 4975 §7.1.1).
	ctx := testCtx(t)
	a := newTestEndpoint(t, Config{})
	b := newTestEndpoint(t, Config{})
	rec := newRecordSink(0)
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("recv"), Accept: func(*IncomingMessage) (Sink, error) { return rec, nil }})
	sa := mustSession(t, a.Endpoint, SessionConfig{Local: a.uri("send"), Remote: Path{b.uri("recv")}})
	if _, err := sa.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := sa.BeginMessage(OutgoingHeader{ContentType: "text/plain", Total: Unknown})
	if err != nil {
		t.Fatal(err)
	}
	if err := out.WriteChunk(ctx, 1, []byte("hello "), false); err != nil {
		t.Fatal(err)
	}
	if err := out.SetTotal(3); err == nil {
		t.Fatal("SetTotal below the bytes sent must fail")
	}
	if err := out.SetTotal(11); err != nil {
		t.Fatal(err)
	}
	if err := out.WriteChunk(ctx, 7, []byte("world"), false); err != nil {
		t.Fatal(err)
	}
	if err := out.WriteChunk(ctx, 12, nil, true); err != nil {
		t.Fatal(err)
	}
	if res := out.Wait(ctx); !res.Delivered() {
		t.Fatal(res.Err)
	}
	waitClosed(t, ctx, rec.done)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	want := []ByteRange{{1, 6, Unknown}, {7, 11, 11}, {12, 11, 11}}
	if rec.err != nil || rec.body.String() != "hello world" || fmt.Sprint(rec.ranges) != fmt.Sprint(want) || string(rec.flags) != "++$" {
		t.Fatalf("receiver: %v %q %v %q", rec.err, rec.body.String(), rec.ranges, rec.flags)
	}
}

func TestOutgoingAbort(t *testing.T) {
	// Abort ends a started message with '#' (the receiver drops it) and
	// fails it locally; a message never started sends nothing.
	ctx := testCtx(t)
	p := newPair(t, Config{}, Config{})
	if _, err := p.sa.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	idle, err := p.sa.BeginMessage(OutgoingHeader{ContentType: "text/plain", Total: 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := idle.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if res := idle.Wait(ctx); res.Status != StatusTimeout || !errors.Is(res.Err, ErrAborted) {
		t.Fatalf("Wait after Abort = %+v", res)
	}
	out, err := p.sa.BeginMessage(OutgoingHeader{ContentType: "text/plain", Total: 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := out.WriteChunk(ctx, 1, []byte("abcd"), false); err != nil {
		t.Fatal(err)
	}
	// Even with a context that has ended: the '#' is owed and the lock free.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := out.Abort(cancelled); err != nil {
		t.Fatal(err)
	}
	if got, err := p.receive(t, ctx); !errors.Is(err, ErrAborted) || string(got) != "abcd" {
		t.Fatalf("receiver: %q, %v; want the first chunk then ErrAborted", got, err)
	}
	if res := out.Wait(ctx); res.Status != StatusTimeout || !errors.Is(res.Err, ErrAborted) {
		t.Fatalf("Wait = %+v, want the abort's 408", res)
	}
	if err := out.WriteChunk(ctx, 5, []byte("efgh"), false); !errors.Is(err, ErrAborted) {
		t.Fatalf("WriteChunk after Abort = %v", err)
	}
	// Nothing of the aborted messages is left on the session.
	p.sa.mu.Lock()
	n := len(p.sa.outgoing)
	p.sa.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d outgoing messages left", n)
	}
}

func TestChunkRetain(t *testing.T) {
	// A body filling most of its pooled buffer is kept by reference; a small
	// one is copied so that it does not pin a 64 KiB buffer.
	for _, tc := range []struct {
		name     string
		n        int
		zeroCopy bool
	}{
		{"big chunk by reference", 40 << 10, true},
		{"small chunk copied", 100, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Built by hand: a pooled buffer may have grown past 64 KiB.
			cb := &chunkBuf{b: make([]byte, 0, 64<<10)}
			cb.refs.Store(1)
			cb.b = append(cb.b, randBytes(tc.n, 1)...)
			f := &Frame{ByteRange: ByteRange{101, Unknown, Unknown}}
			c := &Chunk{MessageID: "m0000001", Start: 101, Total: 5000, Flag: FlagMore, Body: cb.b, Frame: f, buf: cb}
			if r := c.Range(); r != (ByteRange{101, int64(100 + tc.n), Unknown}) {
				t.Fatalf("Range = %v (the wire said total *)", r)
			}
			rc := c.Retain()
			shared := &rc.Body[0] == &cb.b[0]
			if shared != tc.zeroCopy || !bytes.Equal(rc.Body, cb.b) || rc.Range.Start != 101 || rc.Flag != FlagMore {
				t.Fatalf("retained: shared=%v, %v", shared, rc.Range)
			}
			wantRefs := int32(1)
			if tc.zeroCopy {
				wantRefs = 2
			}
			if got := cb.refs.Load(); got != wantRefs {
				t.Fatalf("refs = %d, want %d", got, wantRefs)
			}
			rc.Release()
			rc.Release() // harmless
			if got := cb.refs.Load(); got != 1 || rc.Body != nil {
				t.Fatalf("after Release: refs = %d, body %v", got, rc.Body != nil)
			}
			cb.release()
		})
	}
}
