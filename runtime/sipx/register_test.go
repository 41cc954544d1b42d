package sipx

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestRegisterAndLookup runs REGISTER through the core to a registrar
// endpoint (RFC 3261 §10): the binding is found by its AOR (host compared
// without case), honours Expires, is refreshed with the same Call-ID,
// removed by Expires 0 — and the contact it yields reaches the client.
func TestRegisterAndLookup(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			ctx := testCtx(t)
			p, _ := startProxy(t, nil)
			pf := startEP(t, Config{Name: "pfb", Identity: "sip:pfb@pfb.example", Registrar: true, Proxy: p.UDPAddr()})
			carol := startEP(t, Config{Name: "carol", Identity: "sip:carol@pfb.example", Proxy: p.UDPAddr(), Transport: transport, ContactParams: largeMsgTags})
			p.setRoutes(t, map[string]string{"pfb.example": pf.UDPAddr()})

			base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
			clock := base
			pf.mu.Lock()
			pf.now = func() time.Time { return clock }
			pf.mu.Unlock()
			setClock := func(c time.Time) { pf.mu.Lock(); clock = c; pf.mu.Unlock() }

			if _, ok := pf.Lookup("sip:carol@pfb.example"); ok {
				t.Fatal("bound before REGISTER")
			}
			if err := carol.Register(ctx, "sip:pfb.example", "sip:carol@pfb.example", 60*time.Second); err != nil {
				t.Fatal(err)
			}
			contact, ok := pf.Lookup("sip:carol@PFB.example")
			wantHostPort := carol.UDPAddr()
			if transport == "tcp" {
				wantHostPort = carol.TCPAddr()
			}
			if !ok || !strings.HasPrefix(contact, "sip:carol@"+wantHostPort) {
				t.Fatalf("Lookup = %q, %v; want sip:carol@%s", contact, ok, wantHostPort)
			}
			setClock(base.Add(59 * time.Second))
			if _, ok := pf.Lookup("sip:carol@pfb.example"); !ok {
				t.Fatal("binding gone before it expired")
			}
			setClock(base.Add(61 * time.Second))
			if _, ok := pf.Lookup("sip:carol@pfb.example"); ok {
				t.Fatal("binding outlived its Expires")
			}
			// Refresh, then remove with expires 0.
			if err := carol.Register(ctx, "sip:pfb.example", "sip:carol@pfb.example", time.Hour); err != nil {
				t.Fatal(err)
			}
			if _, ok := pf.Lookup("sip:carol@pfb.example"); !ok {
				t.Fatal("refresh did not bind")
			}
			carol.mu.Lock()
			var reg *registration
			for _, r := range carol.regs {
				reg = r
			}
			carol.mu.Unlock()
			if reg == nil || reg.cseq != 2 {
				t.Fatalf("refresh did not reuse the registration (RFC 3261 §10.2.4): %+v", reg)
			}
			// The contact is a request target: a PF-B can INVITE it.
			if err := pf.Invite("to-carol", contact, "sip:alice@a.example", nil, nil); err != nil {
				t.Fatal(err)
			}
			inv := carol.rec.next(t, ctx, "invite")
			if err := carol.Reject(inv.leg, 486, "", nil); err != nil {
				t.Fatal(err)
			}
			if r := pf.rec.next(t, ctx, "response"); r.res.Status != 486 {
				t.Fatalf("%v", r)
			}
			if err := carol.Register(ctx, "sip:pfb.example", "sip:carol@pfb.example", 0); err != nil {
				t.Fatal(err)
			}
			if _, ok := pf.Lookup("sip:carol@pfb.example"); ok {
				t.Fatal("Expires 0 did not remove the binding")
			}
		})
	}
}

// TestRegisterRejected: a REGISTER to an endpoint that is no registrar gets
// 405, reported as a *StatusError.
func TestRegisterRejected(t *testing.T) {
	ctx := testCtx(t)
	notRegistrar := startEP(t, Config{Name: "cf", Identity: "sip:cf@cf.example"})
	c := startEP(t, Config{Name: "dave", Identity: "sip:dave@cf.example"})
	err := c.Register(ctx, notRegistrar.UDPAddr(), "sip:dave@cf.example", time.Minute)
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 405 || !errors.Is(err, ErrRejected) {
		t.Fatalf("Register to a non-registrar: %v", err)
	}
}
