package sipx

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// TestProxyRejects checks the core's own answers: 404 for a domain it cannot
// route (RFC 3261 §16.5), 483 for Max-Forwards 0 (§16.3 step 3), 482 for a
// route back to itself (it never loops), 200 for OPTIONS to itself.
func TestProxyRejects(t *testing.T) {
	ctx := testCtx(t)
	p, h := startProxy(t, nil)
	p.setRoutes(t, map[string]string{"self.example": p.UDPAddr()})
	peer := newRawPeer(t, p.UDPAddr())
	req := func(method, ruri string, maxf int) string {
		return fmt.Sprintf("%s %s SIP/2.0\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-%s;rport\nMax-Forwards: %d\nFrom: <sip:peer@127.0.0.1>;tag=f1\nTo: <%s>\nCall-ID: %s@raw\nCSeq: 1 %s\nContact: <sip:peer@%s>\nContent-Length: 0\n\n",
			method, ruri, peer.addr, randToken(6), maxf, ruri, randToken(6), method, peer.addr)
	}
	for _, tc := range []struct {
		name, msg string
		status    int
	}{
		{"unroutable domain", req("INVITE", "sip:x@nowhere.example", 70), 404},
		{"max-forwards 0", req("INVITE", "sip:x@127.0.0.1:9", 0), 483},
		{"route to itself", req("INVITE", "sip:x@self.example", 70), 482},
		{"request-uri is the proxy", req("INVITE", "sip:x@"+p.UDPAddr(), 70), 404},
		{"options to the proxy", req("OPTIONS", "sip:"+p.UDPAddr(), 70), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer.send(tc.msg)
			r := peer.readFinal(ctx, 0)
			if r == nil || r.StatusCode != tc.status {
				t.Fatalf("got %v, want %d", r, tc.status)
			}
		})
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.all) != 0 {
		t.Fatalf("the proxy forwarded %d messages it should have answered itself: %+v", len(h.all), h.all)
	}
}

// TestProxyDoubleRecordRoute: when the transport changes at the core (UDP in,
// TCP out because the INVITE is over 1300 bytes) the core record-routes twice
// (RFC 5658), so each side reaches it over its own transport: the callee's
// BYE goes to the TCP entry, the caller's ACK to the UDP one.
func TestProxyDoubleRecordRoute(t *testing.T) {
	ctx := testCtx(t)
	p := newPair(t, "udp")
	// Grow the body until the caller's INVITE is still under 1300 bytes
	// but no longer is once the core has added its Via and Record-Route.
	parts := []Part{{ContentType: "application/sdp", Body: []byte(sdpOffer)}}
	for {
		if err := p.a.Invite("probe", "sip:bob@b.example", "", parts, nil); err != nil {
			t.Fatal(err)
		}
		inv := p.b.rec.next(t, ctx, "invite")
		_ = p.b.Reject(inv.leg, 486, "", nil)
		p.a.rec.next(t, ctx, "response")
		hop := h0(p, "INVITE")
		if hop.In == "UDP" && hop.Out == "TCP" {
			break
		}
		if hop.In == "TCP" {
			t.Fatal("could not find a body size that only the core moves to TCP")
		}
		parts[0].Body = append(parts[0].Body, "a=x:0123456789\r\n"...)
		p.hops.mu.Lock()
		p.hops.all = nil
		p.hops.mu.Unlock()
	}
	if err := p.a.Invite("dbl", "sip:bob@b.example", "", parts, nil); err != nil {
		t.Fatal(err)
	}
	inv := p.b.rec.next(t, ctx, "invite")
	var rrs []string
	for _, hd := range inv.in.Headers {
		if hd.Name == "Record-Route" {
			rrs = append(rrs, hd.Value)
		}
	}
	if len(rrs) != 2 || !strings.Contains(rrs[0], "transport=tcp") || strings.Contains(rrs[1], "transport=tcp") {
		t.Fatalf("Record-Route %q, want the TCP entry above the UDP one", rrs)
	}
	if err := p.b.Answer(inv.leg, nil, nil); err != nil {
		t.Fatal(err)
	}
	p.a.rec.next(t, ctx, "response")
	if err := p.a.Ack("dbl"); err != nil {
		t.Fatal(err)
	}
	p.b.rec.next(t, ctx, "ack")
	if err := p.b.Bye(inv.leg); err != nil {
		t.Fatal(err)
	}
	p.a.rec.next(t, ctx, "bye")
	ack := p.hops.waitFor(t, ctx, "ACK", func(x proxyHop) bool { return !x.Response && x.Method == "ACK" })
	bye := p.hops.waitFor(t, ctx, "BYE", func(x proxyHop) bool { return !x.Response && x.Method == "BYE" })
	if ack.In != "UDP" || bye.In != "TCP" {
		t.Errorf("ACK reached the core over %s (want UDP), BYE over %s (want TCP)", ack.In, bye.In)
	}
}

// h0 is the first forwarded request with method.
func h0(p *pair, method string) proxyHop {
	p.hops.mu.Lock()
	defer p.hops.mu.Unlock()
	for _, x := range p.hops.all {
		if !x.Response && x.Method == method {
			return x
		}
	}
	return proxyHop{}
}

// TestInOrderTurns: the turns of one key run one after the other in the order
// they were taken, whatever order their goroutines start in; another key's
// turn waits for none of them.
func TestInOrderTurns(t *testing.T) {
	var o inOrder
	w1, d1 := o.turn("z9hG4bK-a")
	w2, d2 := o.turn("z9hG4bK-a")
	w3, d3 := o.turn("z9hG4bK-a")
	wb, db := o.turn("z9hG4bK-b")
	if w1 != nil || wb != nil {
		t.Fatal("a first turn waits")
	}
	ready := func(w <-chan struct{}) bool {
		select {
		case <-w:
			return true
		default:
			return false
		}
	}
	if ready(w2) || ready(w3) {
		t.Fatal("later turns may go before the first is done")
	}
	db()
	if ready(w2) {
		t.Fatal("another key's turn released this key's")
	}
	d1()
	if !ready(w2) || ready(w3) {
		t.Fatal("after the first: the second may go, not the third")
	}
	d2()
	if !ready(w3) {
		t.Fatal("the third still waits after the second")
	}
	d3()
	o.mu.Lock()
	left := len(o.last)
	o.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d keys kept after every turn was done", left)
	}
}

// TestProxyKeepsACallsRequestsInOrder: a PF that ACKs a member's 200 and hangs up at
// once sends ACK and BYE back to back. They are different transactions, and the proxy
// forwards each on a goroutine of its own, yet the callee must get them in the order they
// came: a BYE before the ACK ends a dialog the callee has not seen confirmed (SIPp, as a
// foreign ClientB, aborts the call). The ACK is held until the BYE either waits for it
// or has been forwarded, which is the order a scheduler picks now and then.
func TestProxyKeepsACallsRequestsInOrder(t *testing.T) {
	ctx := testCtx(t)
	callee, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	byeWaits, byeSent := make(chan struct{}), make(chan struct{})
	var once sync.Once
	p, err := StartProxy(ctx, ProxyConfig{Host: "127.0.0.1", Logger: testLogger,
		Routes: map[string]string{"b.example": callee.LocalAddr().String()},
		observe: func(x proxyHop) {
			if x.Method == "BYE" && !x.Response {
				once.Do(func() { close(byeSent) })
			}
		},
		turnTaken: func(m sip.Message, waits bool) {
			req, ok := m.(*sip.Request)
			switch {
			case !ok:
			case req.Method == sip.BYE && waits:
				close(byeWaits)
			case req.Method == sip.ACK:
				select {
				case <-byeWaits:
				case <-byeSent:
				case <-ctx.Done():
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	caller := newRawPeer(t, p.UDPAddr())
	in := rawPeerOn(t, callee, p.UDPAddr())
	req := func(method string, seq int) string {
		return fmt.Sprintf("%s sip:bob@b.example SIP/2.0\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-%s;rport\nMax-Forwards: 70\nFrom: <sip:pf@a.example>;tag=f1\nTo: <sip:bob@b.example>;tag=t1\nCall-ID: ackbye@raw\nCSeq: %d %s\nContent-Length: 0\n\n",
			method, caller.addr, randToken(6), seq, method)
	}
	caller.send(req("ACK", 1))
	caller.send(req("BYE", 2))
	var got []string
	for len(got) < 2 {
		m := in.read(ctx, 0)
		if m == nil {
			t.Fatalf("the callee got %v, then nothing", got)
		}
		if r, ok := m.(*sip.Request); ok {
			got = append(got, string(r.Method))
		}
	}
	if got[0] != "ACK" || got[1] != "BYE" {
		t.Fatalf("the callee got %v, want the order they were sent in: [ACK BYE]", got)
	}
}
