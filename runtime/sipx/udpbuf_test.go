package sipx

import (
	"context"
	"net"
	"runtime"
	"testing"
	"time"
)

// An INVITE sent again with its branch counts once per retransmission; another
// INVITE, a CANCEL of the first (same branch, RFC 3261 §9.1) and responses do not.
func TestInviteWatchCountsRetransmissions(t *testing.T) {
	w := newInviteWatch(time.Hour)
	invite := func(branch string) []byte {
		return []byte("INVITE sip:m1@b1.example SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;rport;branch=" + branch +
			"\r\nv: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKother\r\nContent-Length: 0\r\n\r\n")
	}
	before := RetransmittedInvites()
	w.sent(invite("z9hG4bK1"))
	w.sent(invite("z9hG4bK2"))
	w.sent([]byte("CANCEL sip:m1@b1.example SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n\r\n"))
	w.sent([]byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n\r\n"))
	if got := RetransmittedInvites() - before; got != 0 {
		t.Fatalf("first sendings counted as %d retransmissions", got)
	}
	w.sent(invite("z9hG4bK1"))
	w.sent(invite("z9hG4bK1"))
	if got := RetransmittedInvites() - before; got != 2 {
		t.Fatalf("two retransmissions counted as %d", got)
	}
}

// A branch is remembered for 64*T1 at least: a retransmission after one rotation of
// the watch's two generations still counts, and the oldest generation is forgotten.
func TestInviteWatchForgets(t *testing.T) {
	w := newInviteWatch(time.Millisecond)
	clock := w.since
	w.now = func() time.Time { return clock }
	tick := func() { clock = clock.Add(time.Second) } // past 64*T1: the generations turn
	inv := []byte("INVITE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\r\n\r\n")
	other := []byte("INVITE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKb\r\n\r\n")
	before := RetransmittedInvites()
	w.sent(inv)
	tick()
	w.sent(inv)
	if got := RetransmittedInvites() - before; got != 1 {
		t.Fatalf("a retransmission one generation later counted %d", got)
	}
	w.sent(other)
	tick()
	w.sent(other)
	tick()
	w.sent(other)
	if n := len(w.cur) + len(w.old); n > 2 {
		t.Fatalf("the watch holds %d branches, want at most 2", n)
	}
}

// The SIP UDP sockets get buffers well above the usual 208 KiB default, so that a
// CF's INVITE burst to 1000 members is not dropped by the kernel.
func TestUDPBuffersRaised(t *testing.T) {
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	base := udpReadBuffer(uc)
	setUDPBuffers(uc)
	got := udpReadBuffer(uc)
	if base != 0 && got <= base && got < udpBuffer {
		t.Skipf("the system caps the receive buffer at %d bytes (net.core.rmem_max) and grants no more", got)
	}
	if base != 0 && got < min(udpBuffer, 1<<20) {
		t.Fatalf("receive buffer %d bytes after setUDPBuffers (was %d)", got, base)
	}
}

// With a window of one INVITE over UDP, a caller's INVITEs queue and each goes out once
// the one before it is answered (the callee's 100 Trying): every one arrives, and every
// dialog is set up.
func TestInviteWindowQueues(t *testing.T) {
	ctx := testCtx(t)
	p, _ := startProxy(t, nil)
	a := startEP(t, Config{Name: "alice", Identity: "sip:alice@a.example", Proxy: p.UDPAddr(), Transport: "udp", InviteWindow: 1})
	b := startEP(t, Config{Name: "bob", Identity: "sip:bob@b.example", Proxy: p.UDPAddr(), Transport: "udp"})
	p.setRoutes(t, map[string]string{"a.example": a.UDPAddr(), "b.example": b.UDPAddr()})
	const n = 4
	for i := range n {
		leg := "w" + string(rune('0'+i))
		if err := a.Invite(leg, "sip:bob@b.example", "", []Part{{ContentType: "application/sdp", Body: []byte(sdpOffer)}}, nil); err != nil {
			t.Fatalf("Invite %s: %v", leg, err)
		}
	}
	for range n {
		inv := b.rec.next(t, ctx, "invite")
		if err := b.Answer(inv.leg, []Part{{ContentType: "application/sdp", Body: []byte(sdpOffer)}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	for range n {
		r := a.rec.next(t, ctx, "response")
		if r.res.Status != 200 {
			t.Fatalf("%s: %d, want 200", r.leg, r.res.Status)
		}
		got[r.leg] = true
	}
	if len(got) != n {
		t.Fatalf("answered legs %v, want %d", got, n)
	}
}

// The INVITE window follows the time to the first response: it starts at
// initialInviteWindow, widens by one for each INVITE answered within T1/8, up to its
// ceiling, and halves once for INVITEs answered after T1/4 that were out together.
// A clock of the test's own: nothing here waits on time.
func TestInviteWindowFollowsAnswerTime(t *testing.T) {
	const t1 = 500 * time.Millisecond
	now := time.Unix(0, 0)
	w := newInviteWindow(10, t1)
	w.now = func() time.Time { return now }
	takeAll := func() []*windowSlot {
		var got []*windowSlot
		for {
			s, ok := w.take("UDP")
			if !ok {
				return got
			}
			got = append(got, s)
		}
	}
	out := takeAll()
	if len(out) != initialInviteWindow {
		t.Fatalf("%d INVITEs out at first, want %d", len(out), initialInviteWindow)
	}
	if s, ok := w.take("TCP"); !ok || s.w != nil {
		t.Fatal("over TCP the window must not hold an INVITE back")
	}
	// Answered fast: each gives its place back and widens the window by one, up to
	// the ceiling (10).
	now = now.Add(t1 / 10)
	for _, s := range out[:3] {
		s.answered()
		s.answered() // counted once
	}
	if more := takeAll(); len(more) != 5 {
		t.Fatalf("%d more INVITEs out after 3 fast answers of 8, want 5 (ceiling 10)", len(more))
	} else {
		out = append(out[3:], more...)
	}
	// Answered late: the window halves once for all that were out together.
	now = now.Add(t1 / 2)
	out[0].answered()
	out[1].answered()
	if w.cap() != 5 {
		t.Fatalf("window %d after two late answers of one round, want 5", w.cap())
	}
	// A place given back with nothing learnt neither widens nor cuts.
	out[2].release()
	if w.cap() != 5 {
		t.Fatalf("window %d after a release, want 5", w.cap())
	}
	// 7 still out against a window of 5: nothing goes until 3 more come back, and
	// the waiters are served in order.
	ctx := testCtx(t)
	got := make(chan int, 2)
	for i := range 2 {
		ready := make(chan struct{})
		go func() {
			close(ready)
			if s, ok := w.wait(ctx); ok {
				got <- i
				_ = s
			}
		}()
		<-ready
		for {
			w.mu.Lock()
			n := len(w.waiters)
			w.mu.Unlock()
			if n == i+1 {
				break
			}
			if ctx.Err() != nil {
				t.Fatal("the waiter never queued")
			}
			runtime.Gosched()
		}
	}
	for _, s := range out[3:6] {
		s.release()
	}
	if first := <-got; first != 0 {
		t.Fatalf("waiter %d served first", first)
	}
	out[6].release()
	select {
	case second := <-got:
		if second != 1 {
			t.Fatalf("waiter %d served second", second)
		}
	case <-ctx.Done():
		t.Fatal("the second waiter was never served")
	}
}

// A waiter whose context ends leaves the queue and holds no place.
func TestInviteWindowWaitEnds(t *testing.T) {
	w := newInviteWindow(1, 500*time.Millisecond)
	s, ok := w.take("UDP")
	if !ok {
		t.Fatal("no first place")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok := w.wait(ctx); ok {
		t.Fatal("a waiter whose context ended got a place")
	}
	s.release()
	if _, ok := w.take("UDP"); !ok {
		t.Fatal("the place given back was not free")
	}
}
