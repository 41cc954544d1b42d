package sipx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestStartBindError: a port that is taken fails Start at once with the
// bind error — no wait on a ready signal that never comes.
func TestStartBindError(t *testing.T) {
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.LocalAddr().(*net.UDPAddr).Port
	done := make(chan error, 1)
	go func() {
		e, err := Start(context.Background(), Config{Host: "127.0.0.1", UDPPort: port, Identity: "sip:x@x.example"}, Handler{})
		if e != nil {
			_ = e.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrTransport) {
			t.Fatalf("Start on a taken port: %v, want ErrTransport", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Start hung on a taken port")
	}
	for _, cfg := range []Config{
		{Host: "localhost", Identity: "sip:x@x.example"},
		{Host: "127.0.0.1"},
		{Host: "127.0.0.1", Identity: "sip:x@x.example", Transport: "sctp"},
		{Host: "127.0.0.1", Identity: "sip:x@x.example", Proxy: "nowhere"},
	} {
		if _, err := Start(context.Background(), cfg, Handler{}); !errors.Is(err, ErrConfig) {
			t.Errorf("Start(%+v): %v, want ErrConfig", cfg, err)
		}
	}
	if _, err := StartProxy(context.Background(), ProxyConfig{Host: "127.0.0.1", Routes: map[string]string{"x": "name:5060"}}); !errors.Is(err, ErrConfig) {
		t.Errorf("route to a name: %v", err)
	}
}

// TestSamePortForBoth: with both ports 0 one number serves UDP and TCP, so
// a single routing entry reaches the endpoint over either transport.
func TestSamePortForBoth(t *testing.T) {
	e := startEP(t, Config{Name: "x", Identity: "sip:x@x.example"})
	if e.UDPAddr() != e.TCPAddr() {
		t.Fatalf("UDP %s, TCP %s", e.UDPAddr(), e.TCPAddr())
	}
	if _, p, _ := net.SplitHostPort(e.UDPAddr()); p == "0" {
		t.Fatal("port 0 reported")
	}
}

// TestCloseMidCall closes endpoints and the core in the middle of
// everything — a held INVITE, an unACKed 2xx being retransmitted, a pending
// outgoing INVITE, an established dialog — and checks that the caller of the
// held INVITE hears 503, that calls after Close fail with ErrClosed, and that
// no goroutine survives (goleak).
func TestCloseMidCall(t *testing.T) {
	ctx := testCtx(t)
	p, _ := startProxy(t, nil)
	a := startEP(t, Config{Name: "alice", Identity: "sip:alice@a.example", Proxy: p.UDPAddr()})
	bRec := newRecorder()
	b, err := Start(context.Background(), Config{Host: "127.0.0.1", Name: "bob", Identity: "sip:bob@b.example", Proxy: p.UDPAddr(), T1: time.Second}, bRec.handler())
	if err != nil {
		t.Fatal(err)
	}
	p.setRoutes(t, map[string]string{"b.example": b.UDPAddr(), "a.example": a.UDPAddr()})

	// Established dialog.
	if err := a.Invite("est", "sip:bob@b.example", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	est := bRec.next(t, ctx, "invite")
	if err := b.Answer(est.leg, nil, nil); err != nil {
		t.Fatal(err)
	}
	a.rec.next(t, ctx, "response")
	if err := a.Ack("est"); err != nil {
		t.Fatal(err)
	}
	bRec.next(t, ctx, "ack")
	// Answered, never ACKed: b retransmits.
	if err := a.Invite("unacked", "sip:bob@b.example", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	un := bRec.next(t, ctx, "invite")
	if err := b.Answer(un.leg, nil, nil); err != nil {
		t.Fatal(err)
	}
	a.rec.next(t, ctx, "response")
	// Held.
	if err := a.Invite("held", "sip:bob@b.example", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	bRec.next(t, ctx, "invite")
	// Pending outgoing from b to a (a holds it).
	if err := b.Invite("out", "sip:alice@a.example", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	a.rec.next(t, ctx, "invite")

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if r := a.rec.next(t, ctx, "response"); r.leg != "held" || r.res.Status != 503 {
		t.Fatalf("held INVITE ended with %v, want 503", r)
	}
	for name, err := range map[string]error{
		"Invite":   b.Invite("n", "sip:alice@a.example", "", nil, nil),
		"Answer":   b.Answer("in:1", nil, nil),
		"Bye":      b.Bye("in:1"),
		"Ack":      b.Ack("out"),
		"Cancel":   b.Cancel("out"),
		"Register": b.Register(ctx, p.UDPAddr(), "sip:bob@b.example", time.Minute),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	_ = a.Close()
	_ = p.Close()
	goleak.VerifyNone(t)
}

// TestParentContextCloses: cancelling the context given to Start closes the
// endpoint and the proxy.
func TestParentContextCloses(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	e, err := Start(ctx, Config{Host: "127.0.0.1", Identity: "sip:x@x.example"}, Handler{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := StartProxy(ctx, ProxyConfig{Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	wctx := testCtx(t)
	waitClosed(t, wctx, e.Done(), "the endpoint to close")
	waitClosed(t, wctx, p.Done(), "the proxy to close")
	for _, addr := range []string{e.TCPAddr(), p.TCPAddr()} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			t.Errorf("%s still accepting after the context ended", addr)
		}
	}
	if err := e.Invite("x", "sip:y@127.0.0.1:9", "", nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Invite after the context ended: %v", err)
	}
	_ = e.Close()
	_ = p.Close()
}

// TestWithoutClosed: Close's error keeps what went wrong and drops only the
// second close of a connection sipgo's pool still listed.
func TestWithoutClosed(t *testing.T) {
	other := errors.New("listener broke")
	wrapped := fmt.Errorf("close tls: %w", net.ErrClosed)
	for _, c := range []struct {
		in   error
		want []error // errors.Is must hold for each; nil means no error at all
	}{
		{nil, nil},
		{net.ErrClosed, nil},
		{errors.Join(wrapped, net.ErrClosed), nil},
		{other, []error{other}},
		{errors.Join(wrapped, other), []error{other}},
		{errors.Join(errors.Join(net.ErrClosed), other), []error{other}},
	} {
		got := withoutClosed(c.in)
		if (got == nil) != (c.want == nil) {
			t.Fatalf("withoutClosed(%v) = %v, want %v", c.in, got, c.want)
		}
		for _, w := range c.want {
			if !errors.Is(got, w) || errors.Is(got, net.ErrClosed) {
				t.Fatalf("withoutClosed(%v) = %v, want only %v", c.in, got, w)
			}
		}
	}
}
