package sipx

import (
	"context"
	"strings"
	"testing"

	"github.com/cpmlink/cpmlink/runtime/kamailiotest"
)

// tail is the end of a long log, for a failure message (sipp_test.go uses it too).
func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestKamailioCore runs dialogs between two sipx endpoints with Kamailio as
// the SIP/IP core: INVITE / 200 / ACK / BYE over UDP and over TCP, with a
// callee's BYE that must follow Kamailio's Record-Route, a CANCEL through a
// stateful proxy (Kamailio answers 100 and CANCEL itself, RFC 3261 §16.10),
// and a >1300-byte ad-hoc INVITE that must switch to TCP (§18.1.1).
func TestKamailioCore(t *testing.T) {
	kamailiotest.Require(t)
	for _, tc := range []struct {
		name, transport string
		cancel, large   bool
		calleeByes      bool
	}{
		{name: "udp", transport: "udp"},
		{name: "udp/callee-byes", transport: "udp", calleeByes: true},
		{name: "tcp", transport: "tcp"},
		{name: "tcp/callee-byes", transport: "tcp", calleeByes: true},
		{name: "udp/cancel", transport: "udp", cancel: true},
		{name: "tcp/cancel", transport: "tcp", cancel: true},
		{name: "udp/large-goes-tcp", transport: "udp", large: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			// The endpoints take Kamailio's address as their proxy, and Kamailio
			// their addresses as its routes: they start first, on the address
			// Kamailio is about to take (they send nothing until the INVITE).
			var a, b *testEP
			k := kamailiotest.Start(t, func(core string) map[string]string {
				a = startEP(t, Config{Name: "alice", Identity: "sip:alice@a.example", Transport: tc.transport, ContactParams: largeMsgTags, Proxy: core})
				b = startEP(t, Config{Name: "bob", Identity: "sip:bob@b.example", Transport: tc.transport, ContactParams: largeMsgTags, Proxy: core})
				return map[string]string{"a.example": a.UDPAddr(), "b.example": b.UDPAddr()}
			})

			parts := []Part{{ContentType: "application/sdp", Body: []byte(sdpOffer)}}
			if tc.large {
				parts = append(parts, Part{ContentType: "application/resource-lists+xml", Disposition: "recipient-list", Body: resourceList(40)})
			}
			if err := a.Invite("k1", "sip:bob@b.example", "sip:alice@a.example", parts, largeMessageHeaders()); err != nil {
				t.Fatal(err)
			}
			inv := b.rec.next(t, ctx, "invite")
			wantTp := strings.ToUpper(tc.transport)
			if tc.large {
				wantTp = "TCP"
			}
			if inv.in.Transport != wantTp {
				t.Errorf("INVITE reached the callee over %s, want %s", inv.in.Transport, wantTp)
			}
			if !strings.Contains(inv.in.Header("Record-Route"), k.Addr) {
				t.Errorf("Kamailio did not record-route: Record-Route %q", inv.in.Header("Record-Route"))
			}
			if len(inv.in.Parts) != len(parts) || inv.in.From != "sip:alice@a.example" || inv.in.Header("Contribution-ID") != "abcdef-0001" {
				t.Errorf("INVITE through Kamailio: %d parts, From %q, Contribution-ID %q", len(inv.in.Parts), inv.in.From, inv.in.Header("Contribution-ID"))
			}
			finishThroughCore(t, ctx, a, b, inv, k.Addr, tc.cancel, tc.calleeByes)
		})
	}
}

// TestKamailioCoreTLS runs dialogs between two sipx endpoints with Kamailio as
// the SIP/IP core over TLS only (RFC 3261 §26.2): every hop mutually
// authenticated with certificates of one test CA — Kamailio requires and
// verifies the endpoints' (module tls), the endpoints verify Kamailio's for
// the IP they reach it at (RFC 5922 §7.3). The dialog's ACK and BYE follow
// Kamailio's Record-Route over TLS, in either direction; a CANCEL crosses it;
// and a callee, or a caller, whose certificate comes from another CA gets no
// SIP through: the caller gets an error response, the callee no INVITE.
func TestKamailioCoreTLS(t *testing.T) {
	kamailiotest.RequireTLS(t)
	ca := newTestCA(t)
	dir := t.TempDir()
	cert, key, caCert := ca.pemFiles(t, dir, loopbackIPs)
	for _, tc := range []struct {
		name               string
		calleeByes, cancel bool
		untrustedCallee    bool
		untrustedCaller    bool
	}{
		{name: "caller-byes"},
		{name: "callee-byes", calleeByes: true},
		{name: "cancel", cancel: true},
		{name: "untrusted-callee", untrustedCallee: true},
		{name: "untrusted-caller", untrustedCaller: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			bobTLS := ca.config(t, loopbackIPs)
			if tc.untrustedCallee {
				bobTLS = newTestCA(t).config(t, loopbackIPs)
				bobTLS.RootCAs = ca.pool // bob would trust Kamailio; Kamailio must not trust bob
			}
			aliceTLS := ca.config(t, loopbackIPs)
			if tc.untrustedCaller {
				aliceTLS = newTestCA(t).config(t, loopbackIPs)
				aliceTLS.RootCAs = ca.pool
			}
			var a, b *testEP
			k := kamailiotest.StartTLS(t, kamailiotest.TLS{Cert: cert, Key: key, CA: caCert}, func(_, core string) map[string]string {
				a = startEP(t, Config{Name: "alice", Identity: "sip:alice@a.example", Transport: "tls", TLS: aliceTLS,
					ContactParams: largeMsgTags, Proxy: core})
				b = startEP(t, Config{Name: "bob", Identity: "sip:bob@b.example", Transport: "tls", TLS: bobTLS,
					ContactParams: largeMsgTags, Proxy: core})
				return map[string]string{"a.example": a.TLSAddr(), "b.example": b.TLSAddr()}
			})

			if err := a.Invite("k1", "sip:bob@b.example", "sip:alice@a.example",
				[]Part{{ContentType: "application/sdp", Body: []byte(sdpOffer)}}, largeMessageHeaders()); err != nil {
				t.Fatal(err)
			}
			if tc.untrustedCallee || tc.untrustedCaller {
				// Kamailio drops the connection in the handshake, so the caller's
				// transaction times out (408): no INVITE crosses it either way.
				r := a.rec.next(t, ctx, "response")
				if r.res.Status < 400 {
					t.Fatalf("INVITE with a peer Kamailio cannot authenticate ended with %v", r)
				}
				b.rec.none(t)
				return
			}
			inv := b.rec.next(t, ctx, "invite")
			if inv.in.Transport != "TLS" {
				t.Errorf("INVITE reached the callee over %s, want TLS", inv.in.Transport)
			}
			if rr := inv.in.Header("Record-Route"); !strings.Contains(rr, k.TLSAddr) || !strings.Contains(strings.ToLower(rr), "transport=tls") {
				t.Errorf("Kamailio did not record-route its TLS listener %s: Record-Route %q", k.TLSAddr, rr)
			}
			finishThroughCore(t, ctx, a, b, inv, k.TLSAddr, tc.cancel, tc.calleeByes)
		})
	}
}

// finishThroughCore ends the dialog that alice's INVITE k1 opened at bob (inv),
// through a core that record-routes with its address core: alice cancels and
// bob answers 487, or bob answers 200 (which must carry the core's
// Record-Route), alice ACKs and one of them sends BYE. Nothing else is left.
func finishThroughCore(t *testing.T, ctx context.Context, a, b *testEP, inv event, core string, cancel, calleeByes bool) {
	t.Helper()
	if cancel {
		if err := a.Cancel("k1"); err != nil {
			t.Fatal(err)
		}
		b.rec.next(t, ctx, "cancel")
		if err := b.Reject(inv.leg, 487, "", nil); err != nil {
			t.Fatal(err)
		}
		if r := a.rec.next(t, ctx, "response"); r.res.Status != 487 {
			t.Fatalf("cancelled INVITE ended with %v", r)
		}
		return
	}
	if err := b.Answer(inv.leg, []Part{{ContentType: "application/sdp", Body: []byte(sdpAnswer)}}, nil); err != nil {
		t.Fatal(err)
	}
	r := a.rec.next(t, ctx, "response")
	if r.res.Status != 200 || len(r.res.Parts) != 1 || string(r.res.Parts[0].Body) != sdpAnswer {
		t.Fatalf("caller got %v", r)
	}
	if !strings.Contains(r.res.Header("Record-Route"), core) {
		t.Errorf("200 OK without the core's Record-Route (%s): %q", core, r.res.Header("Record-Route"))
	}
	if err := a.Ack("k1"); err != nil {
		t.Fatal(err)
	}
	b.rec.next(t, ctx, "ack")
	if calleeByes {
		if err := b.Bye(inv.leg); err != nil {
			t.Fatal(err)
		}
		a.rec.next(t, ctx, "bye")
	} else {
		if err := a.Bye("k1"); err != nil {
			t.Fatal(err)
		}
		b.rec.next(t, ctx, "bye")
	}
	a.rec.none(t)
	b.rec.none(t)
}
