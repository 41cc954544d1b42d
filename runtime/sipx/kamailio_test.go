package sipx

import (
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
			if tc.cancel {
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
			if !strings.Contains(r.res.Header("Record-Route"), k.Addr) {
				t.Errorf("200 OK without Kamailio's Record-Route: %q", r.res.Header("Record-Route"))
			}
			if err := a.Ack("k1"); err != nil {
				t.Fatal(err)
			}
			b.rec.next(t, ctx, "ack")
			if tc.calleeByes {
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
		})
	}
}
