package sipx

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// resourceList is an RFC 4826 resource list of n members, the body part an
// ad-hoc group INVITE carries (RFC 5366 §4).
func resourceList(n int) []byte {
	var b strings.Builder
	b.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\" xmlns:cp=\"urn:ietf:params:xml:ns:copycontrol\">\r\n<list>\r\n")
	for i := range n {
		fmt.Fprintf(&b, "<entry uri=\"sip:member%02d@pfb%d.example\" cp:copyControl=\"to\"/>\r\n", i, i%2+1)
	}
	b.WriteString("</list>\r\n</resource-lists>\r\n")
	return []byte(b.String())
}

// TestLargeInviteGoesOverTCP sends an ad-hoc group INVITE — multipart/mixed
// with SDP and a 40-member resource list — from an endpoint configured for
// UDP. Being over 1300 bytes it must travel over TCP on every hop
// (RFC 3261 §18.1.1) and arrive with both parts intact (RFC 5366).
func TestLargeInviteGoesOverTCP(t *testing.T) {
	ctx := testCtx(t)
	p := newPair(t, "udp")
	list := resourceList(40)
	parts := []Part{
		{ContentType: "application/sdp", Body: []byte(sdpOffer)},
		{ContentType: "application/resource-lists+xml", Disposition: "recipient-list", Body: list},
	}
	if err := p.a.Invite("adhoc", "sip:bob@b.example", "", parts, largeMessageHeaders()); err != nil {
		t.Fatal(err)
	}
	inv := p.b.rec.next(t, ctx, "invite")
	if inv.in.Transport != "TCP" {
		t.Errorf("a %d-byte resource list arrived over %s, want TCP", len(list), inv.in.Transport)
	}
	hop := p.hops.waitFor(t, ctx, "the INVITE", func(x proxyHop) bool { return !x.Response && x.Method == "INVITE" })
	if hop.In != "TCP" || hop.Out != "TCP" {
		t.Errorf("the core got the INVITE over %s and sent it over %s, want TCP both", hop.In, hop.Out)
	}
	if !strings.HasPrefix(inv.in.Header("Content-Type"), "multipart/mixed;boundary=") {
		t.Errorf("Content-Type %q", inv.in.Header("Content-Type"))
	}
	if len(inv.in.Parts) != 2 {
		t.Fatalf("%d parts, want 2", len(inv.in.Parts))
	}
	for i, want := range parts {
		got := inv.in.Parts[i]
		if got.ContentType != want.ContentType || got.Disposition != want.Disposition || !bytes.Equal(got.Body, want.Body) {
			t.Errorf("part %d = {%q %q %d bytes}, want {%q %q %d bytes}", i, got.ContentType, got.Disposition, len(got.Body), want.ContentType, want.Disposition, len(want.Body))
		}
	}
	if inv.in.From != "sip:alice@a.example" {
		t.Errorf("From %q (no P-Asserted-Identity: the From URI)", inv.in.From)
	}
	if err := p.b.Answer(inv.leg, []Part{{ContentType: "application/sdp", Body: []byte(sdpAnswer)}}, nil); err != nil {
		t.Fatal(err)
	}
	if r := p.a.rec.next(t, ctx, "response"); r.res.Status != 200 {
		t.Fatalf("%v", r)
	}
	if err := p.a.Ack("adhoc"); err != nil {
		t.Fatal(err)
	}
	p.b.rec.next(t, ctx, "ack")
	if err := p.a.Bye("adhoc"); err != nil {
		t.Fatal(err)
	}
	p.b.rec.next(t, ctx, "bye")
}

// TestCancelBeforeAnswer cancels an INVITE the callee holds (RFC 3261 §9):
// the CANCEL waits for the first provisional response (§9.1), the callee's
// endpoint answers it 200 and the INVITE 487 (§9.2), the driver's
// Reject(487) releases the leg, the caller gets 487, and its transaction
// layer ACKs the 487 through the core (§17.1.1.3).
func TestCancelBeforeAnswer(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			ctx := testCtx(t)
			p := newPair(t, transport)
			if err := p.a.Invite("c1", "sip:bob@b.example", "", []Part{{ContentType: "application/sdp", Body: []byte(sdpOffer)}}, nil); err != nil {
				t.Fatal(err)
			}
			inv := p.b.rec.next(t, ctx, "invite")
			if err := p.a.Cancel("c1"); err != nil {
				t.Fatal(err)
			}
			if err := p.a.Cancel("c1"); err != nil {
				t.Fatalf("second Cancel: %v, want a no-op", err)
			}
			p.b.rec.next(t, ctx, "cancel")
			if err := p.b.Answer(inv.leg, nil, nil); !errors.Is(err, ErrCancelled) {
				t.Fatalf("Answer after CANCEL: %v, want ErrCancelled", err)
			}
			if err := p.b.Reject(inv.leg, 487, "", nil); err != nil {
				t.Fatalf("Reject(487) after CANCEL: %v", err)
			}
			r := p.a.rec.next(t, ctx, "response")
			if r.leg != "c1" || r.res.Status != 487 || r.res.Local {
				t.Fatalf("caller got %v (local %v), want 487", r, r.res.Local)
			}
			p.hops.waitFor(t, ctx, "200 to CANCEL", func(x proxyHop) bool { return x.Response && x.Method == "CANCEL" && x.Status == 200 })
			p.hops.waitFor(t, ctx, "the ACK for 487", func(x proxyHop) bool { return !x.Response && x.Method == "ACK" })
			if err := p.a.Cancel("c1"); !errors.Is(err, ErrUnknownLeg) {
				t.Errorf("Cancel after the final response: %v, want ErrUnknownLeg", err)
			}
			if err := p.b.Reject(inv.leg, 487, "", nil); !errors.Is(err, ErrUnknownLeg) {
				t.Errorf("second Reject: %v, want ErrUnknownLeg", err)
			}
			p.a.rec.none(t)
			p.b.rec.none(t)
		})
	}
}

// TestCancelAfterAnswer: once the INVITE has its 2xx, Cancel has nothing to
// cancel (RFC 3261 §9.1) and says so.
func TestCancelAfterAnswer(t *testing.T) {
	ctx := testCtx(t)
	p := newPair(t, "udp")
	if err := p.a.Invite("c2", "sip:bob@b.example", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	inv := p.b.rec.next(t, ctx, "invite")
	if err := p.b.Answer(inv.leg, nil, nil); err != nil {
		t.Fatal(err)
	}
	p.a.rec.next(t, ctx, "response")
	if err := p.a.Cancel("c2"); !errors.Is(err, ErrFinal) {
		t.Fatalf("Cancel after 200: %v, want ErrFinal", err)
	}
	if err := p.a.Ack("c2"); err != nil {
		t.Fatal(err)
	}
	p.b.rec.next(t, ctx, "ack")
}

// TestRejectStatuses: every final non-2xx the roles use reaches the caller
// with its reason and extra headers (RFC 3261 §21; Warning §20.43, Reason
// RFC 3326), and the leg is gone on both sides.
func TestRejectStatuses(t *testing.T) {
	ctx := testCtx(t)
	p := newPair(t, "udp")
	for i, tc := range []struct {
		status int
		reason string
		extra  []Header
	}{
		{486, "Busy Here", nil},
		{480, "Temporarily Unavailable", nil},
		{603, "Decline", nil},
		{404, "Not Found", []Header{{"Reason", `SIP;cause=404;text="unknown group"`}}},
		{403, "Forbidden", []Header{{"Reason", `SIP;cause=403;text="not a member"`}}},
		{488, "Not Acceptable Here", []Header{{"Warning", `305 cf.example "Incompatible media format"`}}},
		{500, "", nil},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			leg := fmt.Sprintf("r%d", i)
			if err := p.a.Invite(leg, "sip:bob@b.example", "", nil, nil); err != nil {
				t.Fatal(err)
			}
			inv := p.b.rec.next(t, ctx, "invite")
			if err := p.b.Reject(inv.leg, tc.status, tc.reason, tc.extra); err != nil {
				t.Fatal(err)
			}
			r := p.a.rec.next(t, ctx, "response")
			wantReason := tc.reason
			if wantReason == "" {
				wantReason = reasonPhrase(tc.status)
			}
			if r.leg != leg || r.res.Status != tc.status || r.res.Reason != wantReason {
				t.Fatalf("caller got %v, want %d %s", r, tc.status, wantReason)
			}
			for _, h := range tc.extra {
				if got := r.res.Header(h.Name); got != h.Value {
					t.Errorf("%s = %q, want %q", h.Name, got, h.Value)
				}
			}
			if err := p.b.Reject(inv.leg, tc.status, "", nil); !errors.Is(err, ErrUnknownLeg) {
				t.Errorf("second Reject: %v", err)
			}
			if err := p.a.Ack(leg); !errors.Is(err, ErrUnknownLeg) {
				t.Errorf("Ack after %d: %v", tc.status, err)
			}
		})
	}
}

// TestCallErrors covers the argument and state errors of the API.
func TestCallErrors(t *testing.T) {
	ctx := testCtx(t)
	p := newPair(t, "udp")
	if err := p.a.Invite("x", "sip:bob@b.example", "", nil, []Header{{"Call-ID", "mine"}}); !errors.Is(err, ErrReservedHeader) {
		t.Errorf("Invite with Call-ID: %v", err)
	}
	if err := p.a.Invite("in:1", "sip:bob@b.example", "", nil, nil); !errors.Is(err, ErrLegExists) {
		t.Errorf("Invite on an in: leg: %v", err)
	}
	if err := p.a.Invite("x", "mailto:bob@b.example", "", nil, nil); !errors.Is(err, ErrBadURI) {
		t.Errorf("Invite to mailto: %v", err)
	}
	if err := p.a.Invite("x", "sip:bob@b.example", "", []Part{{Body: []byte("x")}}, nil); !errors.Is(err, ErrBadBody) {
		t.Errorf("part without Content-Type: %v", err)
	}
	if err := p.a.Invite("dup", "sip:bob@b.example", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.a.Invite("dup", "sip:bob@b.example", "", nil, nil); !errors.Is(err, ErrLegExists) {
		t.Errorf("second Invite on a leg: %v", err)
	}
	inv := p.b.rec.next(t, ctx, "invite")
	if err := p.b.Reject(inv.leg, 200, "", nil); !errors.Is(err, ErrBadStatus) {
		t.Errorf("Reject(200): %v", err)
	}
	if err := p.b.Bye(inv.leg); !errors.Is(err, ErrNoDialog) {
		t.Errorf("Bye on a held INVITE: %v", err)
	}
	if err := p.a.Bye("dup"); !errors.Is(err, ErrNoDialog) {
		t.Errorf("Bye on a pending INVITE: %v", err)
	}
	if err := p.a.Ack("dup"); !errors.Is(err, ErrNoDialog) {
		t.Errorf("Ack before a 2xx: %v", err)
	}
	if err := p.a.Answer("dup", nil, nil); !errors.Is(err, ErrWrongDirection) {
		t.Errorf("Answer on an outgoing leg: %v", err)
	}
	if err := p.b.Cancel(inv.leg); !errors.Is(err, ErrWrongDirection) {
		t.Errorf("Cancel on an incoming leg: %v", err)
	}
	if err := p.b.Answer(inv.leg, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.b.Answer(inv.leg, nil, nil); !errors.Is(err, ErrFinal) {
		t.Errorf("second Answer: %v", err)
	}
	p.a.rec.next(t, ctx, "response")
	if err := p.a.Ack("dup"); err != nil {
		t.Fatal(err)
	}
	p.b.rec.next(t, ctx, "ack")
	noProxy := startEP(t, Config{Name: "np", Identity: "sip:np@np.example"})
	if err := noProxy.Invite("x", "sip:bob@b.example", "", nil, nil); !errors.Is(err, ErrNoRoute) {
		t.Errorf("Invite to a domain without a proxy: %v", err)
	}
}

// TestHoldExpires: an INVITE the driver never decides on is answered 408
// after HoldTimeout, and the driver hears of it through Failed.
func TestHoldExpires(t *testing.T) {
	ctx := testCtx(t)
	p, _ := startProxy(t, nil)
	a := startEP(t, Config{Name: "alice", Identity: "sip:alice@a.example", Proxy: p.UDPAddr()})
	b := startEP(t, Config{Name: "bob", Identity: "sip:bob@b.example", Proxy: p.UDPAddr(), HoldTimeout: 300 * time.Millisecond})
	p.setRoutes(t, map[string]string{"b.example": b.UDPAddr()})
	if err := a.Invite("h", "sip:bob@b.example", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	inv := b.rec.next(t, ctx, "invite")
	if f := b.rec.next(t, ctx, "failed"); f.leg != inv.leg || !errors.Is(f.err, ErrHoldExpired) {
		t.Fatalf("%v", f)
	}
	if r := a.rec.next(t, ctx, "response"); r.res.Status != 408 || r.res.Local {
		t.Fatalf("caller got %v", r)
	}
	if err := b.Answer(inv.leg, nil, nil); !errors.Is(err, ErrUnknownLeg) {
		t.Fatalf("Answer after expiry: %v", err)
	}
}

// TestInviteTimeout: an INVITE nobody answers ends with a local 408 after
// Timer B (RFC 3261 §8.1.3.1, §17.1.1.2; TestMain makes it 3.2 s); over TCP a
// refused connection fails Invite at once.
func TestInviteTimeout(t *testing.T) {
	ctx := testCtx(t)
	a := startEP(t, Config{Name: "alice", Identity: "sip:alice@a.example"})
	// A UDP socket that never answers.
	silent := newRawPeer(t, a.UDPAddr())
	if err := a.Invite("t", "sip:nobody@"+silent.addr, "", nil, nil); err != nil {
		t.Fatal(err)
	}
	r := a.rec.next(t, ctx, "response")
	if r.res.Status != 408 || !r.res.Local {
		t.Fatalf("got %v local=%v, want a local 408", r, r.res.Local)
	}
	// Sent at least 3 s ago, so it is waiting in the socket: read with the test's own
	// deadline. A 1 ms one timed out on a loaded machine before the read was tried (Go
	// checks the deadline first), though the datagram was there.
	if silent.read(ctx, 0) == nil {
		t.Error("the INVITE never reached the silent peer")
	}

	tcpA := startEP(t, Config{Name: "alice2", Identity: "sip:alice@a.example", Transport: "tcp"})
	closedPort := freeTCPPort(t)
	if err := tcpA.Invite("t", fmt.Sprintf("sip:nobody@127.0.0.1:%d", closedPort), "", nil, nil); !errors.Is(err, ErrTransport) {
		t.Fatalf("Invite over TCP to a closed port: %v, want ErrTransport", err)
	}
}

// TestPreloadedRoute: a Route in extra extends the preloaded route set after
// the outbound proxy (RFC 3261 §8.1.2): the INVITE for bob@b.example goes
// through the core to the originating PF first, Request-URI unchanged, and
// the dialog's ACK follows the Record-Route back to that PF.
func TestPreloadedRoute(t *testing.T) {
	ctx := testCtx(t)
	p := newPair(t, "udp")
	pfa := startEP(t, Config{Name: "pfa", Identity: "sip:pf@a.example", Proxy: p.proxy.UDPAddr()})
	if err := p.a.Invite("via-pf", "sip:bob@b.example", "", nil, []Header{{"Route", "<sip:" + pfa.UDPAddr() + ";lr>"}}); err != nil {
		t.Fatal(err)
	}
	inv := pfa.rec.next(t, ctx, "invite")
	if inv.in.RequestURI != "sip:bob@b.example" {
		t.Errorf("the PF got Request-URI %q", inv.in.RequestURI)
	}
	p.b.rec.none(t)
	if err := pfa.Answer(inv.leg, nil, nil); err != nil {
		t.Fatal(err)
	}
	if r := p.a.rec.next(t, ctx, "response"); r.res.Status != 200 {
		t.Fatalf("%v", r)
	}
	if err := p.a.Ack("via-pf"); err != nil {
		t.Fatal(err)
	}
	pfa.rec.next(t, ctx, "ack")
	if err := p.a.Invite("x", "sip:bob@b.example", "", nil, []Header{{"Route", "not a uri"}}); !errors.Is(err, ErrBadURI) {
		t.Errorf("bad Route: %v", err)
	}
}

// TestReservedLegIDs pins the namespace rule: only the exact form of an incoming leg's id
// is refused, so that a B2BUA can name a down leg after the incoming one it serves.
func TestReservedLegIDs(t *testing.T) {
	for id, want := range map[string]bool{"in:": true, "in:1": true, "in:42": true,
		"in:1/0": false, "in:x": false, "clientA-1": false, "in": false} {
		if got := reservedLeg(id); got != want {
			t.Errorf("reservedLeg(%q) = %v, want %v", id, got, want)
		}
	}
}
