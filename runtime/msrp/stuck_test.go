package msrp

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// stuckConn is a dialled connection whose writes stop going out once the test
// calls stick: the next Write blocks, as a write to a peer that stopped
// reading does until Config.WriteTimeout, until the test calls unstick or the
// connection is closed.
type stuckConn struct {
	net.Conn
	mu      sync.Mutex
	stuck   bool
	entered chan struct{} // closed when a Write blocks
	gate    chan struct{} // closed by unstick or Close
	in      sync.Once
	open    sync.Once
}

func newStuckConn(nc net.Conn) *stuckConn {
	return &stuckConn{Conn: nc, entered: make(chan struct{}), gate: make(chan struct{})}
}

func (c *stuckConn) stick() {
	c.mu.Lock()
	c.stuck = true
	c.mu.Unlock()
}

func (c *stuckConn) unstick() { c.open.Do(func() { close(c.gate) }) }

func (c *stuckConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	stuck := c.stuck
	c.mu.Unlock()
	if stuck {
		c.in.Do(func() { close(c.entered) })
		<-c.gate
	}
	return c.Conn.Write(p)
}

func (c *stuckConn) Close() error {
	c.unstick()
	return c.Conn.Close()
}

// TestStuckWriterHoldsNoOneElse: while a chunk of a session's message is being
// written to a peer that stopped reading, SendReport and Abort on that session
// return at once: a role's driver calls them on the one goroutine that serves
// all its sessions. The REPORT goes out after the chunk once the write moves
// again (RFC 4975 §7.1.2: no response to wait for); the abort reaches the peer
// as the connection failing. What may wait on such a peer is bounded.
func TestStuckWriterHoldsNoOneElse(t *testing.T) {
	const reportID = "report-on-a-stuck-link"
	for _, tc := range []string{"SendReport", "Abort"} {
		t.Run(tc, func(t *testing.T) {
			ctx := testCtx(t)
			conns := make(chan *stuckConn, 1)
			dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
				nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				sc := newStuckConn(nc)
				conns <- sc
				return sc, nil
			}
			// Far beyond the test's own waits: only the fix can make them.
			a := newTestEndpoint(t, Config{Dial: dial, WriteTimeout: 10 * time.Minute})
			b := newTestEndpoint(t, Config{})
			// The first REPORT only: the peer's reader must never wait on the test.
			reports := make(chan *Frame, 1)
			onReport := func(f *Frame) {
				select {
				case reports <- f.Clone():
				default:
				}
			}
			ended := make(chan error, 1)
			accepted := make(chan struct{})
			mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("b"), Remote: Path{a.uri("a")}, OnReport: onReport,
				Accept: func(*IncomingMessage) (Sink, error) { close(accepted); return &endSink{ended: ended}, nil }})
			sa := mustSession(t, a.Endpoint, SessionConfig{Local: a.uri("a"), Remote: Path{b.uri("b")}})
			if _, err := sa.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			sc := <-conns
			t.Cleanup(sc.unstick) // before the endpoints close: a Write of theirs may still wait
			out, err := sa.BeginMessage(OutgoingHeader{ContentType: "text/plain", Total: 20})
			if err != nil {
				t.Fatal(err)
			}
			if err := out.WriteChunk(ctx, 1, []byte("0123456789"), false); err != nil {
				t.Fatal(err)
			}
			waitClosed(t, ctx, accepted)
			sc.stick()
			sent := make(chan error, 1)
			go func() { sent <- out.WriteChunk(ctx, 11, []byte("abcdefghij"), true) }()
			waitClosed(t, ctx, sc.entered)

			returned := make(chan error, 1)
			go func() {
				if tc == "Abort" {
					sa.Abort(errors.New("given up"))
					returned <- nil
					return
				}
				returned <- sa.SendReport(ctx, nil, reportID, ByteRange{1, 10, 10}, StatusOK, "", nil)
			}()
			within, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			select {
			case err := <-returned:
				if err != nil {
					t.Fatalf("%s: %v", tc, err)
				}
			case <-within.Done():
				t.Fatalf("%s waited for the stuck writer", tc)
			}

			if tc == "Abort" {
				// The connection closed under the stuck write: the peer learns the
				// message ended without it.
				select {
				case err := <-ended:
					if err == nil {
						t.Error("the peer took the aborted message as complete")
					}
				case <-ctx.Done():
					t.Fatal("the peer never learned of the abort")
				}
				<-sent
				return
			}
			// What waits on a peer that does not read is bounded: every REPORT
			// frame is over 100 bytes, so this many cannot all be queued.
			err = nil
			for i := 0; i < maxQueued/100+1 && err == nil; i++ {
				err = sa.SendReport(ctx, nil, reportID, ByteRange{1, 10, 10}, StatusOK, "", nil)
			}
			if !errors.Is(err, ErrLimit) {
				t.Errorf("REPORTs queued past %d bytes: %v, want ErrLimit", maxQueued, err)
			}
			sc.unstick()
			select {
			case f := <-reports:
				if f.MessageID != reportID || f.ReportStatus == nil || f.ReportStatus.Code != StatusOK {
					t.Errorf("the peer got REPORT %s %+v", f.MessageID, f.ReportStatus)
				}
			case <-ctx.Done():
				t.Fatal("the queued REPORT never reached the peer")
			}
			if err := <-sent; err != nil {
				t.Errorf("the chunk after the stuck write: %v", err)
			}
		})
	}
}

// endSink records how an incoming message ended.
type endSink struct{ ended chan<- error }

func (s *endSink) WriteChunk(*Chunk) error { return nil }
func (s *endSink) Close(err error) error   { s.ended <- err; return nil }
