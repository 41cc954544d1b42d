package sipx

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The probes of this file write SIP text by hand and compute digests from
// RFC 7616 §3.4.1 themselves, so that they share no code with what they test
// (sipx answers challenges with github.com/icholy/digest).

const testRealm = "a.example"

func testCredentials(t *testing.T) *Credentials {
	t.Helper()
	// bob is known by his MD5 HA1 only (as htdigest stores it).
	bobHA1 := md5.Sum([]byte("bob:" + testRealm + ":builder"))
	st, err := ParseCredentials(strings.NewReader(fmt.Sprintf(`# test users
alice   a.example password=wonderland
mallory a.example password=evil
bob     a.example md5=%s aor=sip:bob@b.example
`, hex.EncodeToString(bobHA1[:]))))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// rfcHash is H() of RFC 7616 §3.4.1 for alg.
func rfcHash(alg, s string) string {
	if alg == "SHA-256" {
		sum := sha256.Sum256([]byte(s))
		return hex.EncodeToString(sum[:])
	}
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

var paramRE = regexp.MustCompile(`([a-zA-Z-]+)=("([^"]*)"|[^,\s]+)`)

// challengeParams reads the parameters of one Digest challenge.
func challengeParams(t *testing.T, v string) map[string]string {
	t.Helper()
	if !strings.HasPrefix(v, "Digest ") {
		t.Fatalf("not a Digest challenge: %q", v)
	}
	out := map[string]string{}
	for _, m := range paramRE.FindAllStringSubmatch(v, -1) {
		val := m[2]
		if strings.HasPrefix(val, `"`) {
			val = m[3]
		}
		out[strings.ToLower(m[1])] = val
	}
	return out
}

// answer is an Authorization value for a challenge (qop=auth, RFC 7616 §3.4).
func answer(ch map[string]string, user, pass, method, uri string, nc int) string {
	alg := ch["algorithm"]
	ncs := fmt.Sprintf("%08x", nc)
	cnonce := "0a4f113b"
	ha1 := rfcHash(alg, user+":"+ch["realm"]+":"+pass)
	ha2 := rfcHash(alg, method+":"+uri)
	resp := rfcHash(alg, ha1+":"+ch["nonce"]+":"+ncs+":"+cnonce+":auth:"+ha2)
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, cnonce="%s", qop=auth, nc=%s`,
		user, ch["realm"], ch["nonce"], uri, resp, alg, cnonce, ncs)
}

// newRawPeerAt is a raw UDP peer bound on localIP (127.0.0.2 plays a host
// outside the trust domain: Linux routes all of 127/8 to lo).
func newRawPeerAt(t *testing.T, localIP, to string) *rawPeer {
	t.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(localIP, "0"))
	if err != nil {
		t.Skipf("cannot bind %s: %v", localIP, err)
	}
	return rawPeerOn(t, pc, to)
}

// register sends a REGISTER for aor binding contact; extra header lines
// (Authorization ...) end with "\n".
func (p *rawPeer) register(ruri, aor, contact, callID string, cseq, expires int, extra string) {
	p.send(fmt.Sprintf("REGISTER %s SIP/2.0\n"+
		"Via: SIP/2.0/UDP %s;branch=z9hG4bK-%s;rport\n"+
		"Max-Forwards: 70\n"+
		"From: <%s>;tag=%s\n"+
		"To: <%s>\n"+
		"Call-ID: %s\n"+
		"CSeq: %d REGISTER\n"+
		"Contact: <%s>;expires=%d\n"+
		"%s"+
		"Content-Length: 0\n\n", ruri, p.addr, randToken(8), aor, randToken(4), aor, callID, cseq, contact, expires, extra))
}

// invite sends an INVITE from "from" with extra header lines.
func (p *rawPeer) invite(ruri, from, callID string, cseq int, extra string) string {
	branch := "z9hG4bK-" + randToken(8)
	p.send(fmt.Sprintf("INVITE %s SIP/2.0\n"+
		"Via: SIP/2.0/UDP %s;branch=%s;rport\n"+
		"Max-Forwards: 70\n"+
		"From: <%s>;tag=ft%s\n"+
		"To: <%s>\n"+
		"Call-ID: %s\n"+
		"CSeq: %d INVITE\n"+
		"Contact: <sip:probe@%s>\n"+
		"%s"+
		"Content-Type: application/sdp\n"+
		"Content-Length: {{CL}}\n\n%s", ruri, p.addr, branch, from, callID, ruri, callID, cseq, p.addr, extra, sdpOffer))
	return branch
}

func mustStatus(t *testing.T, res *sip.Response, status int, what string) *sip.Response {
	t.Helper()
	if res == nil {
		t.Fatalf("%s: no final response", what)
	}
	if res.StatusCode != status {
		t.Fatalf("%s: got %d %s, want %d\n%s", what, res.StatusCode, res.Reason, status, res)
	}
	return res
}

func headerValues(m sip.Message, name string) []string {
	var out []string
	for _, h := range m.GetHeaders(name) {
		out = append(out, h.Value())
	}
	return out
}

func TestCredentialsFile(t *testing.T) {
	st := testCredentials(t)
	if st.Len() != 3 {
		t.Fatalf("Len = %d", st.Len())
	}
	if c, ok := st.lookup("bob", testRealm); !ok || c.AOR != "sip:bob@b.example" {
		t.Fatalf("bob: %+v %v", c, ok)
	}
	if c, _ := st.lookup("alice", testRealm); c.AOR != "sip:alice@a.example" {
		t.Fatalf("alice's default AOR: %q", c.AOR)
	}
	path := filepath.Join(t.TempDir(), "users")
	if _, err := LoadCredentials(path); !errors.Is(err, ErrConfig) {
		t.Fatalf("missing file: %v", err)
	}
	for _, bad := range []struct{ text, want string }{
		{"alice a.example", "line 1"},
		{"\n# c\nalice a.example pass=x", "line 3"},
		{"alice a.example md5=abc", "32 hex"},
		{"alice a.example sha-256=" + strings.Repeat("0", 32), "64 hex"},
		{"alice a.example password=x md5=" + strings.Repeat("0", 32), "both"},
		{"alice a.example password=x\nalice a.example password=y", "twice"},
		{"al:ice a.example password=x", "username"},
		{"alice a.example password=x aor=tel:+1", "AOR"},
		{"alice a.example password=x password=y", "twice"},
	} {
		_, err := ParseCredentials(strings.NewReader(bad.text))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v (want %q)", bad.text, err, bad.want)
		}
	}
	if _, err := Start(t.Context(), Config{Host: "127.0.0.1", Identity: "sip:pfa@a.example", Auth: &AuthConfig{Realm: testRealm}}, Handler{}); !errors.Is(err, ErrConfig) {
		t.Fatalf("Auth without credentials: %v", err)
	}
	if _, err := Start(t.Context(), Config{Host: "127.0.0.1", Identity: "sip:pfa@a.example", TrustedHosts: []string{"core"}}, Handler{}); !errors.Is(err, ErrConfig) {
		t.Fatalf("TrustedHosts with a name: %v", err)
	}
}

// TestRegisterDigest probes a registrar with digest authentication from a raw
// socket (RFC 3261 §22.2, RFC 7616, RFC 8760): no credentials → 401 with a
// SHA-256 and an MD5 challenge, SHA-256 first; a wrong password → 401 again
// (not stale); the right one → 200 and a binding; the same nonce-count again
// (a replay) and an expired nonce → 401 stale=true; another user's AOR → 403;
// MD5 works for a user known by an MD5 HA1 only, SHA-256 does not.
func TestRegisterDigest(t *testing.T) {
	ctx := testCtx(t)
	pf := startEP(t, Config{Name: "pfa", Identity: "sip:pfa@a.example", Registrar: true,
		Auth: &AuthConfig{Realm: testRealm, Credentials: testCredentials(t), NonceTTL: time.Minute}})
	clock := time.Now()
	pf.mu.Lock()
	pf.now = func() time.Time { return clock }
	pf.mu.Unlock()
	setClock := func(c time.Time) { pf.mu.Lock(); clock = c; pf.mu.Unlock() }

	p := newRawPeer(t, pf.UDPAddr())
	const ruri, aor = "sip:a.example", "sip:alice@a.example"
	contact := "sip:alice@" + p.addr
	callID := randToken(8) + "@probe"

	p.register(ruri, aor, contact, callID, 1, 60, "")
	res := mustStatus(t, p.readFinal(ctx, 0), 401, "REGISTER without credentials")
	chs := headerValues(res, "WWW-Authenticate")
	if len(chs) != 2 {
		t.Fatalf("want a SHA-256 and an MD5 challenge, got %q", chs)
	}
	sha, md := challengeParams(t, chs[0]), challengeParams(t, chs[1])
	if sha["algorithm"] != "SHA-256" || md["algorithm"] != "MD5" || sha["qop"] != "auth" || sha["realm"] != testRealm || sha["nonce"] == "" {
		t.Fatalf("challenges %q", chs)
	}
	if _, ok := pf.Lookup(aor); ok {
		t.Fatal("bound without credentials")
	}

	p.register(ruri, aor, contact, callID, 2, 60, "Authorization: "+answer(sha, "alice", "wrong", "REGISTER", ruri, 1)+"\n")
	res = mustStatus(t, p.readFinal(ctx, 0), 401, "wrong password")
	if c := challengeParams(t, headerValues(res, "WWW-Authenticate")[0]); c["stale"] == "true" {
		t.Fatal("a wrong password must not be called stale")
	}
	if _, ok := pf.Lookup(aor); ok {
		t.Fatal("bound with a wrong password")
	}

	right := "Authorization: " + answer(sha, "alice", "wonderland", "REGISTER", ruri, 1) + "\n"
	p.register(ruri, aor, contact, callID, 3, 60, right)
	res = mustStatus(t, p.readFinal(ctx, 0), 200, "right password")
	if got := headerValues(res, "Contact"); len(got) != 1 || !strings.Contains(got[0], contact) {
		t.Fatalf("200 lists %q", got)
	}
	if c, ok := pf.Lookup(aor); !ok || c != contact {
		t.Fatalf("Lookup = %q %v", c, ok)
	}

	// The same nonce and nonce-count again: a replay.
	p.register(ruri, aor, contact, callID, 4, 60, right)
	res = mustStatus(t, p.readFinal(ctx, 0), 401, "replayed nc")
	if c := challengeParams(t, headerValues(res, "WWW-Authenticate")[0]); c["stale"] != "true" {
		t.Fatalf("replay: want stale=true, got %q", headerValues(res, "WWW-Authenticate"))
	}
	// The next nonce-count of the same nonce is good.
	p.register(ruri, aor, contact, callID, 5, 60, "Authorization: "+answer(sha, "alice", "wonderland", "REGISTER", ruri, 2)+"\n")
	mustStatus(t, p.readFinal(ctx, 0), 200, "nc 2")

	// A nonce older than NonceTTL, with the right response: stale=true.
	setClock(clock.Add(2 * time.Minute))
	p.register(ruri, aor, contact, callID, 6, 60, "Authorization: "+answer(sha, "alice", "wonderland", "REGISTER", ruri, 3)+"\n")
	res = mustStatus(t, p.readFinal(ctx, 0), 401, "stale nonce")
	fresh := challengeParams(t, headerValues(res, "WWW-Authenticate")[0])
	if fresh["stale"] != "true" || fresh["nonce"] == sha["nonce"] {
		t.Fatalf("stale nonce: %q", headerValues(res, "WWW-Authenticate"))
	}
	p.register(ruri, aor, contact, callID, 7, 60, "Authorization: "+answer(fresh, "alice", "wonderland", "REGISTER", ruri, 1)+"\n")
	mustStatus(t, p.readFinal(ctx, 0), 200, "fresh nonce after stale")

	// alice's credentials for mallory's AOR (RFC 3261 §10.3 step 3).
	p.register(ruri, "sip:mallory@a.example", "sip:mallory@"+p.addr, randToken(6), 1, 60, "Authorization: "+answer(fresh, "alice", "wonderland", "REGISTER", ruri, 2)+"\n")
	mustStatus(t, p.readFinal(ctx, 0), 403, "another user's AOR")
	if _, ok := pf.Lookup("sip:mallory@a.example"); ok {
		t.Fatal("mallory bound by alice")
	}

	// bob has an MD5 HA1 only: MD5 works, SHA-256 cannot.
	p.register(ruri, "sip:bob@b.example", "sip:bob@"+p.addr, "bob"+callID, 1, 60, "Authorization: "+answer(fresh, "bob", "builder", "REGISTER", ruri, 1)+"\n")
	res = mustStatus(t, p.readFinal(ctx, 0), 401, "bob with SHA-256")
	freshMD5 := challengeParams(t, headerValues(res, "WWW-Authenticate")[1])
	p.register(ruri, "sip:bob@b.example", "sip:bob@"+p.addr, "bob"+callID, 2, 60, "Authorization: "+answer(freshMD5, "bob", "builder", "REGISTER", ruri, 1)+"\n")
	mustStatus(t, p.readFinal(ctx, 0), 200, "bob with MD5")

	// Garbage credentials: 400, and the registrar keeps working.
	p.register(ruri, aor, contact, callID, 8, 60, "Authorization: Digest username=\"alice\", realm=\""+testRealm+"\"\n")
	mustStatus(t, p.readFinal(ctx, 0), 400, "incomplete credentials")
	if _, ok := pf.Lookup(aor); !ok {
		t.Fatal("binding lost")
	}
}

// TestInviteDigest probes the originating PF's INVITE authentication
// (RFC 3261 §22.3): 407 with Proxy-Authenticate without credentials; with
// them the INVITE is held and the identity is the authenticated AOR; a PAI the
// client added is gone; a From that is not the authenticated user → 403.
func TestInviteDigest(t *testing.T) {
	ctx := testCtx(t)
	pf := startEP(t, Config{Name: "pfa", Identity: "sip:pfa@a.example",
		Auth: &AuthConfig{Realm: testRealm, Credentials: testCredentials(t), Invites: true}})
	p := newRawPeer(t, pf.UDPAddr())
	const ruri = "sip:group@cf.example"

	callID := randToken(8) + "@probe"
	p.invite(ruri, "sip:alice@a.example", callID, 1, "")
	res := mustStatus(t, p.readFinal(ctx, 0), 407, "INVITE without credentials")
	chs := headerValues(res, "Proxy-Authenticate")
	if len(chs) != 2 || len(headerValues(res, "WWW-Authenticate")) != 0 {
		t.Fatalf("407 challenges: %q", chs)
	}
	pf.rec.none(t)
	ch := challengeParams(t, chs[0])

	// mallory authenticates but claims to be alice, in From.
	p.invite(ruri, "sip:alice@a.example", callID, 2, "Proxy-Authorization: "+answer(ch, "mallory", "evil", "INVITE", ruri, 1)+"\n")
	mustStatus(t, p.readFinal(ctx, 0), 403, "From forged by an authenticated user")
	pf.rec.none(t)

	// mallory as herself, asserting alice in a PAI of her own.
	p.invite(ruri, "sip:mallory@a.example", callID, 3,
		"P-Asserted-Identity: <sip:alice@a.example>\nProxy-Authorization: "+answer(ch, "mallory", "evil", "INVITE", ruri, 2)+"\n")
	inv := pf.rec.next(t, ctx, "invite")
	if inv.in.From != "sip:mallory@a.example" {
		t.Fatalf("identity %q, want the authenticated mallory", inv.in.From)
	}
	if inv.in.Header("P-Asserted-Identity") != "" || inv.in.Header("Proxy-Authorization") != "" {
		t.Fatalf("client's PAI or credentials passed on: %v", inv.in.Headers)
	}
	if err := pf.Reject(inv.leg, 486, "", nil); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, p.readFinal(ctx, 0), 486, "held INVITE rejected")

	// A second INVITE is checked again: no credentials, 407.
	p.invite(ruri, "sip:mallory@a.example", randToken(8)+"@probe", 1, "P-Asserted-Identity: <sip:alice@a.example>\n")
	mustStatus(t, p.readFinal(ctx, 0), 407, "next INVITE without credentials")
	pf.rec.none(t)
}

// TestClientAnswersChallenges: a sipx endpoint with AuthUser/AuthPassword
// registers and invites through challenges; a wrong password is a 401
// StatusError after one try.
func TestClientAnswersChallenges(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			ctx := testCtx(t)
			core, _ := startProxy(t, nil)
			pf := startEP(t, Config{Name: "pfa", Identity: "sip:pfa@a.example", Registrar: true, Proxy: core.UDPAddr(),
				Auth: &AuthConfig{Realm: testRealm, Credentials: testCredentials(t), Invites: true}})
			core.setRoutes(t, map[string]string{"a.example": pf.UDPAddr()})
			alice := startEP(t, Config{Name: "alice", Identity: "sip:alice@a.example", Proxy: core.UDPAddr(), Transport: transport,
				AuthUser: "alice", AuthPassword: "wonderland"})
			if err := alice.Register(ctx, "sip:a.example", "sip:alice@a.example", time.Minute); err != nil {
				t.Fatal(err)
			}
			if _, ok := pf.Lookup("sip:alice@a.example"); !ok {
				t.Fatal("not bound")
			}
			if err := alice.Invite("up", "sip:group@a.example", "sip:alice@a.example", []Part{{ContentType: "application/sdp", Body: []byte(sdpOffer)}}, largeMessageHeaders()); err != nil {
				t.Fatal(err)
			}
			inv := pf.rec.next(t, ctx, "invite")
			if inv.in.From != "sip:alice@a.example" {
				t.Fatalf("identity %q", inv.in.From)
			}
			if err := pf.Answer(inv.leg, []Part{{ContentType: "application/sdp", Body: []byte(sdpAnswer)}}, nil); err != nil {
				t.Fatal(err)
			}
			if r := alice.rec.next(t, ctx, "response"); r.res.Status != 200 {
				t.Fatalf("%v", r)
			}
			if err := alice.Ack("up"); err != nil {
				t.Fatal(err)
			}
			pf.rec.next(t, ctx, "ack")
			if err := alice.Bye("up"); err != nil {
				t.Fatal(err)
			}
			pf.rec.next(t, ctx, "bye")

			eve := startEP(t, Config{Name: "eve", Identity: "sip:alice@a.example", Proxy: core.UDPAddr(), Transport: transport,
				AuthUser: "alice", AuthPassword: "guess"})
			var se *StatusError
			if err := eve.Register(ctx, "sip:a.example", "sip:alice@a.example", time.Minute); !errors.As(err, &se) || se.Status != 401 {
				t.Fatalf("wrong password: %v", err)
			}
			if err := eve.Invite("up", "sip:group@a.example", "", []Part{{ContentType: "application/sdp", Body: []byte(sdpOffer)}}, nil); err != nil {
				t.Fatal(err)
			}
			if r := eve.rec.next(t, ctx, "response"); r.res.Status != 407 {
				t.Fatalf("wrong password INVITE: %v", r)
			}
			pf.rec.none(t)
		})
	}
}

// TestTrustDomain probes RFC 3325 from two hosts: 127.0.0.1 is inside the
// trust domain, 127.0.0.2 outside. An endpoint with TrustedHosts believes a PAI
// from inside, refuses an INVITE from outside that has only a PAI (403, the
// From is never an identity), and the proxy removes a PAI that comes from
// outside before it forwards the request.
func TestTrustDomain(t *testing.T) {
	ctx := testCtx(t)
	cf := startEP(t, Config{Name: "cf", Identity: "sip:cf@cf.example", TrustedHosts: []string{"127.0.0.1"}})
	const ruri = "sip:group@cf.example"

	inside := newRawPeer(t, cf.UDPAddr())
	inside.invite(ruri, "sip:pfa@a.example", randToken(8), 1, "P-Asserted-Identity: <sip:alice@a.example>\n")
	inv := cf.rec.next(t, ctx, "invite")
	if inv.in.From != "sip:alice@a.example" {
		t.Fatalf("trusted PAI not believed: %q", inv.in.From)
	}
	if err := cf.Reject(inv.leg, 603, "", nil); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, inside.readFinal(ctx, 0), 603, "trusted INVITE")

	outside := newRawPeerAt(t, "127.0.0.2", cf.UDPAddr())
	outside.invite(ruri, "sip:alice@a.example", randToken(8), 1, "P-Asserted-Identity: <sip:alice@a.example>\n")
	mustStatus(t, outside.readFinal(ctx, 0), 403, "PAI from outside the trust domain")
	outside.invite(ruri, "sip:alice@a.example", randToken(8), 1, "")
	mustStatus(t, outside.readFinal(ctx, 0), 403, "From only")
	cf.rec.none(t)

	// Through a core that guards the domain: the PAI from outside is removed,
	// one from inside passes; checked on every request.
	core, err := StartProxy(ctx, ProxyConfig{Host: "127.0.0.1", Logger: testLogger, TrustedHosts: []string{"127.0.0.1/32"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = core.Close() })
	legacy := startEP(t, Config{Name: "pfb", Identity: "sip:pfb@b.example"})
	core.setRoutes(t, map[string]string{"b.example": legacy.UDPAddr()})
	for i, tc := range []struct {
		from    *rawPeer
		wantPAI bool
	}{
		{newRawPeerAt(t, "127.0.0.2", core.UDPAddr()), false},
		{newRawPeer(t, core.UDPAddr()), true},
		{newRawPeerAt(t, "127.0.0.2", core.UDPAddr()), false},
	} {
		callID := fmt.Sprintf("trust%d-%s", i, randToken(6))
		tc.from.invite("sip:carol@b.example", "sip:mallory@x.example", callID, 1, "P-Asserted-Identity: <sip:alice@a.example>\n")
		inv := legacy.rec.next(t, ctx, "invite")
		want := "sip:mallory@x.example"
		if tc.wantPAI {
			want = "sip:alice@a.example"
		}
		if got := inv.in.Header("P-Asserted-Identity") != ""; got != tc.wantPAI {
			t.Fatalf("request %d: PAI forwarded = %v, want %v", i, got, tc.wantPAI)
		}
		if inv.in.From != want {
			t.Fatalf("request %d: identity %q, want %q", i, inv.in.From, want)
		}
		if err := legacy.Reject(inv.leg, 603, "", nil); err != nil {
			t.Fatal(err)
		}
		mustStatus(t, tc.from.readFinal(ctx, 0), 603, "through the core")
	}
}

// TestCredentialsPermits: a user is known in its realm only, and may act as its own AOR
// (compared as the registrar compares them: the host's case does not matter), not another.
func TestCredentialsPermits(t *testing.T) {
	st := testCredentials(t)
	for _, tc := range []struct {
		user, realm, aor string
		known, ok        bool
	}{
		{"alice", testRealm, "sip:alice@a.example", true, true},
		{"alice", testRealm, "sip:alice@A.EXAMPLE", true, true},
		{"alice", testRealm, "sip:bob@a.example", true, false},
		{"alice", testRealm, "not a uri", true, false},
		{"alice", "b1.example", "sip:alice@a.example", false, false},
		{"nobody", testRealm, "sip:nobody@a.example", false, false},
	} {
		if known, ok := st.Permits(tc.user, tc.realm, tc.aor); known != tc.known || ok != tc.ok {
			t.Errorf("Permits(%s, %s, %s) = %v, %v; want %v, %v", tc.user, tc.realm, tc.aor, known, ok, tc.known, tc.ok)
		}
	}
}
