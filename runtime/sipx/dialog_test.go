package sipx

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"
)

// pair is two endpoints behind the embedded SIP/IP core: alice@a.example
// and bob@b.example.
type pair struct {
	a, b  *testEP
	proxy *Proxy
	hops  *hops
}

func newPair(t *testing.T, transport string) *pair {
	t.Helper()
	p, h := startProxy(t, nil)
	a := startEP(t, Config{Name: "alice", Identity: "sip:alice@a.example", Proxy: p.UDPAddr(), Transport: transport, ContactParams: largeMsgTags})
	b := startEP(t, Config{Name: "bob", Identity: "sip:bob@b.example", Proxy: p.UDPAddr(), Transport: transport, ContactParams: largeMsgTags})
	p.setRoutes(t, map[string]string{"a.example": a.UDPAddr(), "b.example": b.UDPAddr()})
	return &pair{a: a, b: b, proxy: p, hops: h}
}

// TestDialogThroughProxy runs INVITE / 200 / ACK / BYE between two
// endpoints through the embedded core (RFC 3261 §13, §12, §15), over UDP and
// TCP, with the BYE from either side. The core must see the ACK and the BYE
// too: it record-routed the INVITE (§16.6 step 4).
func TestDialogThroughProxy(t *testing.T) {
	for _, tc := range []struct {
		name, transport string
		calleeByes      bool
	}{
		{"udp/caller-byes", "udp", false},
		{"udp/callee-byes", "udp", true},
		{"tcp/caller-byes", "tcp", false},
		{"tcp/callee-byes", "tcp", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			p := newPair(t, tc.transport)
			wantTp := strings.ToUpper(tc.transport)

			if err := p.a.Invite("hop1", "sip:bob@b.example", "sip:alice@a.example",
				[]Part{{ContentType: "application/sdp", Body: []byte(sdpOffer)}}, largeMessageHeaders()); err != nil {
				t.Fatal(err)
			}
			inv := p.b.rec.next(t, ctx, "invite")
			in := inv.in
			if in.RequestURI != "sip:bob@b.example" || in.From != "sip:alice@a.example" || in.To != "sip:bob@b.example" {
				t.Errorf("INVITE R-URI %q From %q To %q", in.RequestURI, in.From, in.To)
			}
			if in.Transport != wantTp {
				t.Errorf("INVITE arrived over %s, want %s", in.Transport, wantTp)
			}
			if len(in.Parts) != 1 || in.Parts[0].ContentType != "application/sdp" || !bytes.Equal(in.Parts[0].Body, []byte(sdpOffer)) {
				t.Errorf("INVITE parts %+v", in.Parts)
			}
			for _, h := range largeMessageHeaders() {
				if got := in.Header(h.Name); got != h.Value {
					t.Errorf("INVITE %s = %q, want %q", h.Name, got, h.Value)
				}
			}
			if !strings.Contains(in.Header("Contact"), "+g.oma.sip-im.large-message") {
				t.Errorf("INVITE Contact %q lacks the large-message feature tag", in.Header("Contact"))
			}
			if in.Header("Record-Route") == "" {
				t.Error("the core did not Record-Route the INVITE")
			}

			if err := p.b.Answer(inv.leg, []Part{{ContentType: "application/sdp", Body: []byte(sdpAnswer)}}, nil); err != nil {
				t.Fatal(err)
			}
			ok := p.a.rec.next(t, ctx, "response")
			if ok.leg != "hop1" || ok.res.Status != 200 || len(ok.res.Parts) != 1 || string(ok.res.Parts[0].Body) != sdpAnswer {
				t.Fatalf("caller got %v parts %+v", ok, ok.res.Parts)
			}
			if err := p.a.Ack("hop1"); err != nil {
				t.Fatal(err)
			}
			p.b.rec.next(t, ctx, "ack")
			if cid := p.a.CallID("hop1"); cid == "" || cid != p.b.CallID(inv.leg) {
				t.Errorf("Call-ID %q on the caller, %q on the callee", cid, p.b.CallID(inv.leg))
			}

			if tc.calleeByes {
				if err := p.b.Bye(inv.leg); err != nil {
					t.Fatal(err)
				}
				if ev := p.a.rec.next(t, ctx, "bye"); ev.leg != "hop1" {
					t.Fatalf("BYE on leg %s", ev.leg)
				}
			} else {
				if err := p.a.Bye("hop1"); err != nil {
					t.Fatal(err)
				}
				if ev := p.b.rec.next(t, ctx, "bye"); ev.leg != inv.leg {
					t.Fatalf("BYE on leg %s, want %s", ev.leg, inv.leg)
				}
			}
			for _, m := range []string{"INVITE", "ACK", "BYE"} {
				p.hops.waitFor(t, ctx, m, func(x proxyHop) bool { return !x.Response && x.Method == m && x.In == wantTp })
			}
			p.hops.waitFor(t, ctx, "200 to BYE", func(x proxyHop) bool { return x.Response && x.Method == "BYE" && x.Status == 200 })
			// The dialog is gone on both sides.
			if err := p.a.Ack("hop1"); !errors.Is(err, ErrUnknownLeg) {
				t.Errorf("Ack after BYE: %v, want ErrUnknownLeg", err)
			}
			if err := p.b.Bye(inv.leg); !errors.Is(err, ErrUnknownLeg) {
				t.Errorf("Bye after BYE: %v, want ErrUnknownLeg", err)
			}
			if p.a.CallID("hop1") != "" || p.b.CallID(inv.leg) != "" {
				t.Error("CallID of an ended leg")
			}
			p.a.rec.none(t)
			p.b.rec.none(t)
		})
	}
}

// TestDialogIPv6 runs a dialog through the core on ::1 (Config.Host may be
// 127.0.0.1 or ::1): Via, Contact and Record-Route carry bracketed IPv6
// references (RFC 3261 §25.1, RFC 5954).
func TestDialogIPv6(t *testing.T) {
	if c, err := net.ListenPacket("udp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		_ = c.Close()
	}
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			ctx := testCtx(t)
			h := &hops{ch: make(chan proxyHop, 64)}
			p, err := StartProxy(ctx, ProxyConfig{Host: "::1", observe: h.observe})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = p.Close() })
			a := startEP(t, Config{Host: "::1", Name: "alice", Identity: "sip:alice@a.example", Proxy: p.UDPAddr(), Transport: transport})
			b := startEP(t, Config{Host: "::1", Name: "bob", Identity: "sip:bob@b.example", Proxy: p.UDPAddr(), Transport: transport})
			p.setRoutes(t, map[string]string{"b.example": b.UDPAddr()})
			if err := a.Invite("v6", "sip:bob@b.example", "", nil, nil); err != nil {
				t.Fatal(err)
			}
			inv := b.rec.next(t, ctx, "invite")
			if !strings.Contains(inv.in.Header("Contact"), "[::1]") {
				t.Errorf("Contact %q", inv.in.Header("Contact"))
			}
			if err := b.Answer(inv.leg, nil, nil); err != nil {
				t.Fatal(err)
			}
			a.rec.next(t, ctx, "response")
			if err := a.Ack("v6"); err != nil {
				t.Fatal(err)
			}
			b.rec.next(t, ctx, "ack")
			if err := b.Bye(inv.leg); err != nil {
				t.Fatal(err)
			}
			a.rec.next(t, ctx, "bye")
			h.waitFor(t, ctx, "BYE", func(x proxyHop) bool { return x.Method == "BYE" && !x.Response })
		})
	}
}

// TestRequestURITransport: sent straight to a Contact with ;transport=tcp
// (as Lookup returns it), the INVITE goes over TCP even from an endpoint
// configured for UDP (RFC 3263 §4.1).
func TestRequestURITransport(t *testing.T) {
	ctx := testCtx(t)
	a := startEP(t, Config{Name: "alice", Identity: "sip:alice@a.example"})
	b := startEP(t, Config{Name: "bob", Identity: "sip:bob@b.example"})
	if err := a.Invite("t", "sip:bob@"+b.TCPAddr()+";transport=tcp", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	if inv := b.rec.next(t, ctx, "invite"); inv.in.Transport != "TCP" {
		t.Fatalf("INVITE over %s", inv.in.Transport)
	}
}
