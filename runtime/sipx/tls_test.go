package sipx

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
)

func startTLSProxy(t *testing.T, conf *tls.Config, resolver Resolver) (*Proxy, *hops) {
	t.Helper()
	h := &hops{ch: make(chan proxyHop, 1024)}
	p, err := StartProxy(context.Background(), ProxyConfig{Host: "127.0.0.1", TLS: conf, Resolver: resolver, Names: []string{"core.test"},
		Logger: testLogger, observe: h.observe})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p, h
}

// tlsPair is alice@a.example and bob@b.example behind a core, every one of
// them with a certificate of the test's CA for the loopback IPs.
func tlsPair(t *testing.T, aliceCfg Config) *pair {
	t.Helper()
	ca := newTestCA(t)
	p, h := startTLSProxy(t, ca.config(t, loopbackIPs), nil)
	aliceCfg.Name, aliceCfg.Identity, aliceCfg.ContactParams = "alice", "sip:alice@a.example", largeMsgTags
	aliceCfg.TLS = ca.config(t, loopbackIPs)
	if aliceCfg.Proxy == "" {
		aliceCfg.Proxy = p.TLSAddr()
	}
	a := startEP(t, aliceCfg)
	b := startEP(t, Config{Name: "bob", Identity: "sip:bob@b.example", Proxy: p.TLSAddr(), Transport: "tls",
		TLS: ca.config(t, loopbackIPs), ContactParams: largeMsgTags})
	for d, ep := range map[string]*testEP{"a.example": a, "b.example": b} {
		if err := p.SetTargets(d, []Target{{Transport: "TLS", Addr: ep.TLSAddr()}, {Transport: "UDP", Addr: ep.UDPAddr()}, {Transport: "TCP", Addr: ep.TCPAddr()}}); err != nil {
			t.Fatal(err)
		}
	}
	return &pair{a: a, b: b, proxy: p, hops: h}
}

// dialog runs INVITE/200/ACK/BYE from alice to target and returns the INVITE
// bob received and the 200 alice received.
func (p *pair) dialog(t *testing.T, ctx context.Context, target string) (IncomingInvite, Response) {
	t.Helper()
	if err := p.a.Invite("hop1", target, "sip:alice@a.example",
		[]Part{{ContentType: "application/sdp", Body: []byte(sdpOffer)}}, largeMessageHeaders()); err != nil {
		t.Fatal(err)
	}
	inv := p.b.rec.next(t, ctx, "invite")
	if err := p.b.Answer(inv.leg, []Part{{ContentType: "application/sdp", Body: []byte(sdpAnswer)}}, nil); err != nil {
		t.Fatal(err)
	}
	ok := p.a.rec.next(t, ctx, "response")
	if ok.res.Status != 200 || len(ok.res.Parts) != 1 || string(ok.res.Parts[0].Body) != sdpAnswer {
		t.Fatalf("caller got %v parts %+v", ok, ok.res.Parts)
	}
	if err := p.a.Ack("hop1"); err != nil {
		t.Fatal(err)
	}
	p.b.rec.next(t, ctx, "ack")
	if err := p.b.Bye(inv.leg); err != nil {
		t.Fatal(err)
	}
	if ev := p.a.rec.next(t, ctx, "bye"); ev.leg != "hop1" {
		t.Fatalf("BYE on leg %s", ev.leg)
	}
	return inv.in, ok.res
}

// TestDialogOverTLS: INVITE/200/ACK/BYE through the core with every hop over
// TLS (RFC 3261 §26.2, RFC 5630): Via says SIP/2.0/TLS, the Contacts and the
// core's Record-Route name the TLS listeners, and the ACK and the callee's BYE
// cross the core over TLS too. With a sips: Request-URI the Contacts and the
// Record-Route are sips: URIs (RFC 3261 §8.1.1.8, §12.1.1, §16.6). A caller
// that speaks UDP by default and names its core by a static table still sends
// a sips: request over TLS (§26.2.2), to the core's TLS target.
func TestDialogOverTLS(t *testing.T) {
	for _, tc := range []struct {
		name, target string
		sips, static bool
	}{
		{"sip-transport-tls", "sip:bob@b.example", false, false},
		{"sips", "sips:bob@b.example", true, false},
		{"sips-from-udp-caller", "sips:bob@b.example", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			cfg := Config{Transport: "tls"}
			var core *StaticResolver
			if tc.static {
				var err error
				core, err = NewStaticResolver(nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				cfg = Config{Transport: "udp", Proxy: "sip:core.test", Resolver: core}
			}
			p := tlsPair(t, cfg)
			if core != nil {
				if err := core.Set("core.test", []Target{{Transport: "UDP", Addr: p.proxy.UDPAddr()}, {Transport: "TLS", Addr: p.proxy.TLSAddr()}}); err != nil {
					t.Fatal(err)
				}
			}
			in, ok := p.dialog(t, ctx, tc.target)
			if in.Transport != "TLS" {
				t.Errorf("INVITE reached bob over %s, want TLS", in.Transport)
			}
			if via := in.Header("Via"); !strings.HasPrefix(via, "SIP/2.0/TLS ") {
				t.Errorf("top Via %q, want SIP/2.0/TLS", via)
			}
			callerContact, calleeContact, rr := in.Header("Contact"), ok.Header("Contact"), in.Header("Record-Route")
			if tc.sips {
				for what, v := range map[string]string{"caller's Contact": callerContact, "callee's Contact": calleeContact, "Record-Route": rr} {
					if !strings.HasPrefix(v, "<sips:") {
						t.Errorf("%s %q is not a sips: URI", what, v)
					}
				}
			} else {
				for what, v := range map[string]string{"caller's Contact": callerContact, "callee's Contact": calleeContact, "Record-Route": rr} {
					if !strings.Contains(v, "transport=tls") {
						t.Errorf("%s %q does not name the TLS transport", what, v)
					}
				}
			}
			if !strings.Contains(callerContact, ":"+port(p.a.TLSAddr())) || !strings.Contains(calleeContact, ":"+port(p.b.TLSAddr())) {
				t.Errorf("Contacts %q and %q are not the TLS listeners %s and %s", callerContact, calleeContact, p.a.TLSAddr(), p.b.TLSAddr())
			}
			for _, m := range []string{"INVITE", "ACK", "BYE"} {
				p.hops.waitFor(t, ctx, m+" over TLS", func(x proxyHop) bool {
					return !x.Response && x.Method == m && x.Out == "TLS" && (x.In == "TLS" || m == "INVITE" && tc.static)
				})
			}
			if tc.static {
				p.hops.waitFor(t, ctx, "the sips: INVITE coming in over TLS", func(x proxyHop) bool { return !x.Response && x.Method == "INVITE" && x.In == "TLS" })
			}
			p.hops.waitFor(t, ctx, "200 to BYE", func(x proxyHop) bool { return x.Response && x.Method == "BYE" && x.Status == 200 && x.Out == "TLS" })
			p.a.rec.none(t)
			p.b.rec.none(t)
		})
	}
}

func port(hostport string) string {
	_, p, _ := net.SplitHostPort(hostport)
	return p
}

// TestPlainClientOnTLSPort: a client that speaks plain SIP over TCP to a TLS
// port is refused — its connection is closed, it gets no SIP back — and a
// dialog already running over TLS on the same listener carries on, as does
// the listener while a client that never starts its handshake sits on it.
func TestPlainClientOnTLSPort(t *testing.T) {
	ctx := testCtx(t)
	p := tlsPair(t, Config{Transport: "tls"})
	if err := p.a.Invite("hop1", "sip:bob@b.example", "sip:alice@a.example",
		[]Part{{ContentType: "application/sdp", Body: []byte(sdpOffer)}}, nil); err != nil {
		t.Fatal(err)
	}
	inv := p.b.rec.next(t, ctx, "invite")

	// A silent client, then a plain-text one, on the core's and on bob's TLS port.
	for _, addr := range []string{p.proxy.TLSAddr(), p.b.TLSAddr()} {
		silent, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer silent.Close()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		msg := "OPTIONS sip:" + addr + " SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-plain\r\nMax-Forwards: 70\r\n" +
			"From: <sip:probe@x.example>;tag=1\r\nTo: <sip:" + addr + ">\r\nCall-ID: plain@x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		dl, _ := ctx.Deadline()
		_ = c.SetReadDeadline(dl)
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil || strings.HasPrefix(line, "SIP/2.0") {
			t.Fatalf("%s answered plain text with %q (err %v)", addr, line, err)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s kept the plain-text connection open", addr)
		}
	}

	// The dialog that was under way is untouched.
	if err := p.b.Answer(inv.leg, []Part{{ContentType: "application/sdp", Body: []byte(sdpAnswer)}}, nil); err != nil {
		t.Fatal(err)
	}
	if ok := p.a.rec.next(t, ctx, "response"); ok.res.Status != 200 {
		t.Fatalf("caller got %v", ok)
	}
	if err := p.a.Ack("hop1"); err != nil {
		t.Fatal(err)
	}
	p.b.rec.next(t, ctx, "ack")
	if err := p.a.Bye("hop1"); err != nil {
		t.Fatal(err)
	}
	p.b.rec.next(t, ctx, "bye")
}

// TestTLSVerifiesPeer: a TLS target whose certificate does not cover the name
// the request was resolved for (RFC 5922 §4.1) is not used: the INVITE fails
// over to the next target (RFC 3263 §4.3), whose certificate names the domain,
// and the impostor sees no SIP. With only the impostor, Invite fails; so does
// reusing a verified connection for a name its certificate does not hold.
func TestTLSVerifiesPeer(t *testing.T) {
	ctx := testCtx(t)
	ca := newTestCA(t)
	other := newTestCA(t)
	bob := startEP(t, Config{Name: "bob", Identity: "sip:bob@b.test", Transport: "tls", TLS: ca.config(t, loopbackIPs, "b.test")})
	// Signed by our CA but for another domain; and one signed by a CA nobody trusts.
	wrongName := startEP(t, Config{Name: "mallory", Identity: "sip:bob@b.test", Transport: "tls", TLS: ca.config(t, loopbackIPs, "m.test")})
	wrongCA := startEP(t, Config{Name: "eve", Identity: "sip:bob@b.test", Transport: "tls", TLS: other.config(t, loopbackIPs, "b.test")})
	table, err := NewStaticResolver(map[string][]Target{
		"b.test":    {{Transport: "TLS", Addr: wrongName.TLSAddr(), Name: "b.test"}, {Transport: "TLS", Addr: wrongCA.TLSAddr(), Name: "b.test"}, {Transport: "TLS", Addr: bob.TLSAddr(), Name: "b.test"}},
		"fake.test": {{Transport: "TLS", Addr: wrongName.TLSAddr(), Name: "fake.test"}},
		// bob's address under a name its certificate does not hold.
		"alias.test": {{Transport: "TLS", Addr: bob.TLSAddr(), Name: "alias.test"}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	alice := startEP(t, Config{Name: "alice", Identity: "sip:alice@a.test", Transport: "tls", TLS: ca.config(t, loopbackIPs, "a.test"), Resolver: table})
	if err := alice.Invite("hop1", "sips:bob@b.test", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	inv := bob.rec.next(t, ctx, "invite")
	if inv.in.Transport != "TLS" {
		t.Errorf("INVITE over %s", inv.in.Transport)
	}
	if err := bob.Reject(inv.leg, 486, "", nil); err != nil {
		t.Fatal(err)
	}
	if r := alice.rec.next(t, ctx, "response"); r.res.Status != 486 {
		t.Fatalf("caller got %v", r)
	}
	err = alice.Invite("hop2", "sips:bob@fake.test", "", nil, nil)
	if !errors.Is(err, ErrTransport) {
		t.Fatalf("INVITE to an impostor only: %v, want ErrTransport", err)
	}
	if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("error %v does not say what was wrong with the certificate", err)
	}
	// The connection to bob, verified for b.test, is not reused for a name its
	// certificate does not cover (RFC 5923 §4's caution).
	if err := alice.Invite("hop3", "sips:bob@alias.test", "", nil, nil); !errors.Is(err, ErrTransport) || !strings.Contains(err.Error(), "alias.test") {
		t.Fatalf("INVITE to bob's address under another name: %v, want ErrTransport for alias.test", err)
	}
	wrongName.rec.none(t)
	wrongCA.rec.none(t)
	bob.rec.none(t)
}

// TestDialogOverTLSIPv6: the TLS dialog on ::1 — bracketed hosts in Via,
// Contact and Record-Route, and certificates checked against the IPv6 address.
func TestDialogOverTLSIPv6(t *testing.T) {
	if c, err := net.ListenPacket("udp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		_ = c.Close()
	}
	ctx := testCtx(t)
	ca := newTestCA(t)
	h := &hops{ch: make(chan proxyHop, 64)}
	core, err := StartProxy(ctx, ProxyConfig{Host: "::1", TLS: ca.config(t, loopbackIPs), observe: h.observe})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = core.Close() })
	a := startEP(t, Config{Host: "::1", Name: "alice", Identity: "sip:alice@a.example", Proxy: core.TLSAddr(), Transport: "tls", TLS: ca.config(t, loopbackIPs)})
	b := startEP(t, Config{Host: "::1", Name: "bob", Identity: "sip:bob@b.example", Proxy: core.TLSAddr(), Transport: "tls", TLS: ca.config(t, loopbackIPs)})
	if err := core.SetTargets("b.example", []Target{{Transport: "TLS", Addr: b.TLSAddr()}}); err != nil {
		t.Fatal(err)
	}
	p := &pair{a: a, b: b, proxy: core, hops: h}
	in, ok := p.dialog(t, ctx, "sips:bob@b.example")
	if in.Transport != "TLS" || !strings.HasPrefix(in.Header("Contact"), "<sips:alice@[::1]:") || !strings.HasPrefix(ok.Header("Contact"), "<sips:bob@[::1]:") {
		t.Errorf("INVITE over %s, Contacts %q and %q", in.Transport, in.Header("Contact"), ok.Header("Contact"))
	}
	h.waitFor(t, ctx, "BYE over TLS", func(x proxyHop) bool { return x.Method == "BYE" && !x.Response && x.In == "TLS" && x.Out == "TLS" })
}

// tlsPeer is a SIP peer written from RFC 3261 for the test: it speaks over one
// TLS connection it opened itself (crypto/tls, no sipx), as a foreign client
// would, and reads the stream by Content-Length (§18.3).
type tlsPeer struct {
	t    *testing.T
	conn *tls.Conn
	r    *bufio.Reader
	port string
}

func dialTLSPeer(t *testing.T, ctx context.Context, addr string, roots *tls.Config) *tlsPeer {
	t.Helper()
	d := tls.Dialer{Config: &tls.Config{RootCAs: roots.RootCAs, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	dl, _ := ctx.Deadline()
	_ = c.SetDeadline(dl)
	return &tlsPeer{t: t, conn: c.(*tls.Conn), r: bufio.NewReader(c), port: port(c.LocalAddr().String())}
}

// send writes msg with "\n" as CRLF and Content-Length computed.
func (p *tlsPeer) send(head, body string) {
	p.t.Helper()
	wire := strings.ReplaceAll(strings.TrimRight(head, "\n"), "\n", "\r\n") + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	if _, err := io.WriteString(p.conn, wire); err != nil {
		p.t.Fatal(err)
	}
}

// read returns the next message's start line and headers (names lower-cased,
// first value kept).
func (p *tlsPeer) read() (string, map[string]string) {
	p.t.Helper()
	start, err := p.r.ReadString('\n')
	if err != nil {
		p.t.Fatalf("reading from the TLS stream: %v", err)
	}
	hs := map[string]string{}
	for {
		line, err := p.r.ReadString('\n')
		if err != nil {
			p.t.Fatal(err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		name, value, _ := strings.Cut(line, ":")
		name = strings.ToLower(strings.TrimSpace(name))
		if _, seen := hs[name]; !seen {
			hs[name] = strings.TrimSpace(value)
		}
	}
	n, _ := strconv.Atoi(hs["content-length"])
	if _, err := io.CopyN(io.Discard, p.r, int64(n)); err != nil {
		p.t.Fatal(err)
	}
	return strings.TrimRight(start, "\r\n"), hs
}

// readFinal skips provisional responses.
func (p *tlsPeer) readFinal() (string, map[string]string) {
	p.t.Helper()
	for {
		start, hs := p.read()
		if !strings.HasPrefix(start, "SIP/2.0 1") {
			return start, hs
		}
	}
}

// TestForeignTLSClient: a client that is not sipx — a TLS connection and RFC 3261
// text — calls bob through the core: INVITE, 200 on the same connection, ACK and BYE
// along the Record-Route. It stands in for SIPp, which this machine has without TLS.
func TestForeignTLSClient(t *testing.T) {
	ctx := testCtx(t)
	p := tlsPair(t, Config{Transport: "tls"})
	c := dialTLSPeer(t, ctx, p.proxy.TLSAddr(), p.b.cfg.TLS)
	common := "From: <sip:raw@x.example>;tag=r1\nTo: <sip:bob@b.example>%s\nCall-ID: raw-tls-1@x.example\n"
	via := func(branch string) string {
		return "Via: SIP/2.0/TLS 127.0.0.1:" + c.port + ";branch=z9hG4bK-" + branch + ";rport\nMax-Forwards: 70\n"
	}
	c.send("INVITE sip:bob@b.example SIP/2.0\n"+via("raw1")+strings.Replace(common, "%s", "", 1)+
		"CSeq: 1 INVITE\nContact: <sip:raw@127.0.0.1:"+c.port+";transport=tls>\nContent-Type: application/sdp\n", sdpOffer)
	inv := p.b.rec.next(t, ctx, "invite")
	if inv.in.Transport != "TLS" || inv.in.From != "sip:raw@x.example" {
		t.Errorf("bob got the INVITE over %s from %s", inv.in.Transport, inv.in.From)
	}
	if err := p.b.Answer(inv.leg, []Part{{ContentType: "application/sdp", Body: []byte(sdpAnswer)}}, nil); err != nil {
		t.Fatal(err)
	}
	start, hs := c.readFinal()
	if start != "SIP/2.0 200 OK" {
		t.Fatalf("INVITE answered %q", start)
	}
	if !strings.Contains(hs["contact"], "transport=tls") || !strings.Contains(hs["record-route"], "transport=tls") {
		t.Errorf("200 Contact %q Record-Route %q do not stay on TLS", hs["contact"], hs["record-route"])
	}
	toTag := hs["to"][strings.Index(hs["to"], ";tag="):]
	ct := hs["contact"]
	target := ct[strings.IndexByte(ct, '<')+1 : strings.IndexByte(ct, '>')]
	route := "Route: " + hs["record-route"] + "\n"
	// ACK and BYE go down the same connection: the Record-Route names the core's
	// TLS listener, which is what this connection reaches.
	c.send("ACK "+target+" SIP/2.0\n"+via("raw2")+route+strings.Replace(common, "%s", toTag, 1)+"CSeq: 1 ACK\n", "")
	p.b.rec.next(t, ctx, "ack")
	c.send("BYE "+target+" SIP/2.0\n"+via("raw3")+route+strings.Replace(common, "%s", toTag, 1)+"CSeq: 2 BYE\n", "")
	p.b.rec.next(t, ctx, "bye")
	if start, hs := c.readFinal(); start != "SIP/2.0 200 OK" || !strings.HasSuffix(hs["cseq"], "BYE") {
		t.Fatalf("BYE answered %q (CSeq %q)", start, hs["cseq"])
	}
}
