package sipx

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	bolt "go.etcd.io/bbolt"
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

// TestRegistrarCap probes the per-AOR cap from a raw socket. Refusing mode
// (the default): the fourth contact of a three-contact cap gets 403 and the
// three in force stay; a refresh and a removal still work. Overwrite mode: it
// is accepted and the binding refreshed longest ago goes. Over UDP the 200,
// which lists every binding (RFC 3261 §10.3 step 8), always fits in 1300
// bytes: with no count cap, long contacts are refused once they would not
// fit, and every REGISTER gets its answer.
func TestRegistrarCap(t *testing.T) {
	const aor = "sip:alice@a.example"
	contact := func(p *rawPeer, i int) string { return fmt.Sprintf("sip:alice-%d@%s", i, p.addr) }
	t.Run("reject", func(t *testing.T) {
		ctx := testCtx(t)
		pf := startEP(t, Config{Name: "pfa", Identity: "sip:pfa@a.example", Registrar: true, MaxContacts: 3})
		p := newRawPeer(t, pf.UDPAddr())
		for i := range 3 {
			p.register("sip:a.example", aor, contact(p, i), fmt.Sprint("c", i), 1, 60, "")
			mustStatus(t, p.readFinal(ctx, 0), 200, fmt.Sprint("contact ", i))
		}
		p.register("sip:a.example", aor, contact(p, 3), "c3", 1, 60, "")
		res := mustStatus(t, p.readFinal(ctx, 0), 403, "fourth contact")
		if !strings.Contains(res.Reason, "Too Many") {
			t.Fatalf("reason %q", res.Reason)
		}
		pf.mu.Lock()
		n := len(pf.bindings[aor])
		pf.mu.Unlock()
		if n != 3 {
			t.Fatalf("%d bindings after the refusal", n)
		}
		p.register("sip:a.example", aor, contact(p, 1), "c1", 2, 60, "")
		if res := mustStatus(t, p.readFinal(ctx, 0), 200, "refresh at the cap"); len(res.GetHeaders("Contact")) != 3 {
			t.Fatalf("200 lists %d contacts", len(res.GetHeaders("Contact")))
		}
		p.register("sip:a.example", aor, contact(p, 0), "c0", 2, 0, "")
		mustStatus(t, p.readFinal(ctx, 0), 200, "removal")
		p.register("sip:a.example", aor, contact(p, 3), "c3", 2, 60, "")
		mustStatus(t, p.readFinal(ctx, 0), 200, "room again")
	})
	t.Run("overwrite", func(t *testing.T) {
		ctx := testCtx(t)
		pf := startEP(t, Config{Name: "pfa", Identity: "sip:pfa@a.example", Registrar: true, MaxContacts: 3, OverwriteContacts: true})
		base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		step := 0
		pf.mu.Lock()
		pf.now = func() time.Time { step++; return base.Add(time.Duration(step) * time.Second) }
		pf.mu.Unlock()
		p := newRawPeer(t, pf.UDPAddr())
		for i := range 5 {
			p.register("sip:a.example", aor, contact(p, i), fmt.Sprint("c", i), 1, 3600, "")
			res := mustStatus(t, p.readFinal(ctx, 0), 200, fmt.Sprint("contact ", i))
			if got, want := len(res.GetHeaders("Contact")), min(i+1, 3); got != want {
				t.Fatalf("contact %d: 200 lists %d, want %d", i, got, want)
			}
		}
		for i := range 5 {
			pf.mu.Lock()
			bound := slices.ContainsFunc(pf.bindings[aor], func(b binding) bool { return b.contact == contact(p, i) })
			pf.mu.Unlock()
			if bound != (i >= 2) {
				t.Fatalf("contact %d bound = %v: the oldest must go first", i, bound)
			}
		}
	})
	t.Run("udp-size", func(t *testing.T) {
		ctx := testCtx(t)
		pf := startEP(t, Config{Name: "pfa", Identity: "sip:pfa@a.example", Registrar: true, MaxContacts: -1})
		p := newRawPeer(t, pf.UDPAddr())
		pad := strings.Repeat("x", 120)
		refused := 0
		for i := range 20 {
			p.register("sip:a.example", aor, fmt.Sprintf("sip:alice-%d-%s@%s", i, pad, p.addr), fmt.Sprint("c", i), 1, 60, "")
			res := p.readFinal(ctx, 2*time.Second)
			if res == nil {
				t.Fatalf("REGISTER %d got no answer (a 200 too large for UDP?)", i)
			}
			if len(res.String()) > 1300 {
				t.Fatalf("REGISTER %d: %d-byte response over UDP", i, len(res.String()))
			}
			switch res.StatusCode {
			case 200:
				if refused > 0 {
					t.Fatalf("REGISTER %d accepted after a refusal", i)
				}
			case 403:
				refused++
			default:
				t.Fatalf("REGISTER %d: %d", i, res.StatusCode)
			}
		}
		if refused == 0 {
			t.Fatal("20 long contacts all fit in one UDP 200?")
		}
	})
}

// TestFailedStartFreesItsPorts: a Start that fails after binding its sockets (here, on a
// location store that cannot be opened) leaves none of them bound, TLS's included. The
// test holds a TLS port it found free only between its probe and the refused Start.
func TestFailedStartFreesItsPorts(t *testing.T) {
	ctx := testCtx(t)
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsAddr := probe.Addr().String()
	_ = probe.Close()
	cfg := Config{Host: "127.0.0.1", Identity: "sip:pfb@b.example", Registrar: true,
		LocationStore: t.TempDir(), // a directory: no bbolt file opens there
		TLS:           newTestCA(t).config(t, []net.IP{net.IPv4(127, 0, 0, 1)}),
		TLSPort:       probe.Addr().(*net.TCPAddr).Port}
	if _, err := Start(ctx, cfg, Handler{}); !errors.Is(err, ErrConfig) {
		t.Fatalf("Start with a directory as location store: %v, want ErrConfig", err)
	}
	again, err := net.Listen("tcp", tlsAddr)
	if err != nil {
		t.Fatalf("the TLS port is still bound after the failed Start: %v", err)
	}
	_ = again.Close()
}

// TestLocationStoreRestart: a registrar with a location store serves its
// bindings at once after a restart, from the same file; bindings that expired
// meanwhile are dropped on load, in memory and in the file.
func TestLocationStoreRestart(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "location.db")
	pf, err := Start(ctx, Config{Host: "127.0.0.1", Identity: "sip:pfb@b.example", Registrar: true, LocationStore: path}, Handler{})
	if err != nil {
		t.Fatal(err)
	}
	// A second registrar on the same file is refused, not blocked.
	if _, err := Start(ctx, Config{Host: "127.0.0.1", Identity: "sip:pfb@b.example", Registrar: true, LocationStore: path}, Handler{}); !errors.Is(err, ErrConfig) {
		t.Fatalf("second registrar on the file: %v", err)
	}
	p := newRawPeer(t, pf.UDPAddr())
	p.register("sip:b.example", "sip:carol@b.example", "sip:carol@"+p.addr, "carol", 1, 3600, "")
	mustStatus(t, p.readFinal(ctx, 0), 200, "carol")
	// dave registered a year ago for an hour: long expired at restart.
	pf.mu.Lock()
	pf.now = func() time.Time { return time.Now().Add(-365 * 24 * time.Hour) }
	pf.mu.Unlock()
	p.register("sip:b.example", "sip:dave@b.example", "sip:dave@"+p.addr, "dave", 1, 3600, "")
	mustStatus(t, p.readFinal(ctx, 0), 200, "dave")
	if err := pf.Close(); err != nil {
		t.Fatal(err)
	}

	again, err := Start(ctx, Config{Host: "127.0.0.1", Identity: "sip:pfb@b.example", Registrar: true, LocationStore: path}, Handler{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = again.Close() })
	if c, ok := again.Lookup("sip:carol@b.example"); !ok || c != "sip:carol@"+p.addr {
		t.Fatalf("after restart: Lookup(carol) = %q %v", c, ok)
	}
	if _, ok := again.Lookup("sip:dave@b.example"); ok {
		t.Fatal("an expired binding came back")
	}
	again.storeMu.Lock()
	err = again.store.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bindingsBucket).Get([]byte("sip:dave@b.example")); v != nil {
			return fmt.Errorf("expired AOR still in the file: %s", v)
		}
		return nil
	})
	again.storeMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	// The restarted registrar keeps writing: carol leaves, and a third start
	// does not find her.
	p2 := newRawPeer(t, again.UDPAddr())
	p2.register("sip:b.example", "sip:carol@b.example", "sip:carol@"+p.addr, "carol", 2, 0, "")
	mustStatus(t, p2.readFinal(ctx, 0), 200, "carol leaves")
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
	third, err := Start(ctx, Config{Host: "127.0.0.1", Identity: "sip:pfb@b.example", Registrar: true, LocationStore: path}, Handler{})
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if _, ok := third.Lookup("sip:carol@b.example"); ok {
		t.Fatal("a removed binding came back")
	}
}

// TestConcurrentSendersOneAOR is issue 8's lock-out at the registrar: 40 senders of one
// user register at once with a PF-A (overwrite policy, the cap at its default of 10) over
// UDP and authenticate; every one is answered 200, the bindings never pass the cap, every
// 200 fits in UDP; once they have all unregistered none is left, and the user registers
// again at once.
func TestConcurrentSendersOneAOR(t *testing.T) {
	ctx := testCtx(t)
	const aor = "sip:alice@a.example"
	pf := startEP(t, Config{Name: "pfa", Identity: "sip:pfa@a.example", Registrar: true, OverwriteContacts: true,
		Auth: &AuthConfig{Realm: testRealm, Credentials: testCredentials(t)}})
	const n = 40
	senders := make([]*testEP, n)
	for i := range senders {
		senders[i] = startEP(t, Config{Name: fmt.Sprint("alice", i), Identity: aor, AuthUser: "alice", AuthPassword: "wonderland"})
	}
	errs := make(chan error, n)
	for _, s := range senders {
		go func() { errs <- s.Register(ctx, pf.UDPAddr(), aor, time.Hour) }()
	}
	for range senders {
		if err := <-errs; err != nil {
			t.Fatalf("a concurrent REGISTER: %v", err)
		}
	}
	pf.mu.Lock()
	bound := len(pf.bindings[aor])
	pf.mu.Unlock()
	if bound != defaultMaxContacts {
		t.Fatalf("%d bindings after %d senders, want the cap %d", bound, n, defaultMaxContacts)
	}
	for _, s := range senders {
		go func() { errs <- s.Register(ctx, pf.UDPAddr(), aor, 0) }()
	}
	for range senders {
		if err := <-errs; err != nil {
			t.Fatalf("a concurrent removal: %v", err)
		}
	}
	if c, ok := pf.Lookup(aor); ok {
		t.Fatalf("%s still bound after every sender left", c)
	}
	if err := senders[0].Register(ctx, pf.UDPAddr(), aor, time.Hour); err != nil {
		t.Fatalf("registering right after: %v", err)
	}
}

// TestRegisterOverTCPLargeOK: a REGISTER that came over TCP is answered over TCP
// (RFC 3261 §18.2.2), where the 200 listing every binding may exceed 1300 bytes: 20
// long contacts without a count cap are all bound and the last 200 lists them all. A raw
// TCP socket written for the test.
func TestRegisterOverTCPLargeOK(t *testing.T) {
	ctx := testCtx(t)
	pf := startEP(t, Config{Name: "pfa", Identity: "sip:pfa@a.example", Registrar: true, MaxContacts: -1})
	conn, err := net.Dial("tcp", pf.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dl, _ := ctx.Deadline()
	_ = conn.SetDeadline(dl)
	rd := bufio.NewReader(conn)
	local := conn.LocalAddr().String()
	pad := strings.Repeat("x", 120)
	var last *sip.Response
	for i := range 20 {
		msg := fmt.Sprintf("REGISTER sip:a.example SIP/2.0\r\n"+
			"Via: SIP/2.0/TCP %s;branch=z9hG4bK-tcp%d;rport\r\n"+
			"Max-Forwards: 70\r\n"+
			"From: <sip:alice@a.example>;tag=t%d\r\n"+
			"To: <sip:alice@a.example>\r\n"+
			"Call-ID: tcp-%d\r\n"+
			"CSeq: 1 REGISTER\r\n"+
			"Contact: <sip:alice-%d-%s@%s;transport=tcp>;expires=60\r\n"+
			"Content-Length: 0\r\n\r\n", local, i, i, i, i, pad, local)
		if _, err := conn.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		var head strings.Builder
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("REGISTER %d: %v", i, err)
			}
			head.WriteString(line)
			if line == "\r\n" {
				break
			}
		}
		m, err := sip.ParseMessage([]byte(head.String()))
		if err != nil {
			t.Fatal(err)
		}
		res, ok := m.(*sip.Response)
		if !ok || res.StatusCode != 200 {
			t.Fatalf("REGISTER %d over TCP: %s", i, head.String())
		}
		last = res
	}
	if got := len(last.GetHeaders("Contact")); got != 20 || len(last.String()) <= 1300 {
		t.Fatalf("last 200: %d contacts, %d bytes", got, len(last.String()))
	}
}
