package runtime_test

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/proptest"
	"github.com/cpmlink/cpmlink/runtime"
	"github.com/cpmlink/cpmlink/runtime/sipx"
)

// TestAuthDelivers: with trusted identity on (digest credentials for every client,
// checked by its PF; the servers an RFC 3325 trust domain on 127.0.0.1, the clients on
// 127.0.0.2 outside it) a message still reaches every member byte-exact, and the run is
// still a behaviour of the spec: every named variant over UDP, fig1 and fig3 over TCP.
func TestAuthDelivers(t *testing.T) {
	for _, v := range fsm.Variants {
		for _, transport := range []string{"udp", "tcp"} {
			if transport == "tcp" && v.Name != "fig1" && v.Name != "fig3" {
				continue // every variant over UDP; the transport matters to SIP, not to a variant
			}
			t.Run(v.Name+"/"+transport, func(t *testing.T) {
				t.Parallel()
				ctx := testCtx(t, time.Minute)
				msg := payload(30<<10, 11)
				r := sendToGroup(t, ctx, runtime.GroupConfig{Variant: v, Members: 3, PFBs: 2, Transport: transport,
					ChunkSize: 8 << 10, StoreDir: t.TempDir(), Auth: true, LocationDir: t.TempDir()}, false, msg)
				r.checkDelivered(t, msg, nil)
				for _, n := range append([]*runtime.Node{r.g.ClientA}, r.g.Members...) {
					if host, _, _ := net.SplitHostPort(n.SIPAddr()); host != "127.0.0.2" {
						t.Errorf("%s at %s: inside the trust domain", n.Name(), n.SIPAddr())
					}
				}
				r.validate(t, proptest.Config{Variant: v, Members: 3, PFBs: 2})
			})
		}
	}
}

// probe is a hand-written SIP UAC on a UDP socket of 127.0.0.2 (outside the trust
// domain), sending through the SIP/IP core as any client would. It computes digests from
// RFC 7616 §3.4.1 itself and shares no code with sipx.
type probe struct {
	t    *testing.T
	pc   net.PacketConn
	core *net.UDPAddr
	addr string
}

func newProbe(t *testing.T, core string) *probe {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot bind 127.0.0.2: %v", err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	ua, err := net.ResolveUDPAddr("udp", core)
	if err != nil {
		t.Fatal(err)
	}
	return &probe{t: t, pc: pc, core: ua, addr: pc.LocalAddr().String()}
}

// sipMsg is a parsed response: status and headers (names lower-cased).
type sipMsg struct {
	status int
	reason string
	hdrs   map[string][]string
}

func (m sipMsg) get(name string) string {
	if v := m.hdrs[strings.ToLower(name)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (p *probe) send(lines ...string) {
	p.t.Helper()
	head := strings.Join(lines, "\r\n")
	body := ""
	if i := strings.Index(head, "\r\n\r\n"); i >= 0 {
		head, body = head[:i], head[i+4:]
	}
	wire := head + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	if _, err := p.pc.WriteTo([]byte(wire), p.core); err != nil {
		p.t.Fatal(err)
	}
}

// final reads until the final response whose CSeq is cseq (provisional responses and
// retransmissions of earlier answers are skipped), bounded by within.
func (p *probe) final(cseq string, within time.Duration) sipMsg {
	p.t.Helper()
	deadline := time.Now().Add(within)
	buf := make([]byte, 65535)
	for {
		_ = p.pc.SetReadDeadline(deadline)
		n, _, err := p.pc.ReadFrom(buf)
		if err != nil {
			p.t.Fatalf("no final response to CSeq %s: %v", cseq, err)
		}
		head, _, _ := strings.Cut(string(buf[:n]), "\r\n\r\n")
		lines := strings.Split(head, "\r\n")
		f := strings.SplitN(lines[0], " ", 3)
		if len(f) < 3 || f[0] != "SIP/2.0" {
			continue // a request (none expected) is ignored
		}
		m := sipMsg{reason: f[2], hdrs: map[string][]string{}}
		m.status, _ = strconv.Atoi(f[1])
		for _, l := range lines[1:] {
			k, v, ok := strings.Cut(l, ":")
			if ok {
				k = strings.ToLower(strings.TrimSpace(k))
				m.hdrs[k] = append(m.hdrs[k], strings.TrimSpace(v))
			}
		}
		if m.status >= 200 && m.get("CSeq") == cseq {
			return m
		}
	}
}

var digestParam = regexp.MustCompile(`([a-zA-Z-]+)=("([^"]*)"|[^,\s]+)`)

func hashFor(alg, s string) string {
	if alg == "SHA-256" {
		x := sha256.Sum256([]byte(s))
		return hex.EncodeToString(x[:])
	}
	x := md5.Sum([]byte(s))
	return hex.EncodeToString(x[:])
}

// digestAnswer answers a Digest challenge with qop=auth, nc=1 (RFC 7616 §3.4.1).
func digestAnswer(challenge, user, pass, method, uri string) string {
	ch := map[string]string{}
	for _, m := range digestParam.FindAllStringSubmatch(strings.TrimPrefix(challenge, "Digest "), -1) {
		v := m[2]
		if strings.HasPrefix(v, `"`) {
			v = m[3]
		}
		ch[strings.ToLower(m[1])] = v
	}
	alg := ch["algorithm"]
	ha1 := hashFor(alg, user+":"+ch["realm"]+":"+pass)
	ha2 := hashFor(alg, method+":"+uri)
	resp := hashFor(alg, ha1+":"+ch["nonce"]+":00000001:c0ffee:auth:"+ha2)
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, cnonce="c0ffee", qop=auth, nc=00000001`,
		user, ch["realm"], ch["nonce"], uri, resp, alg)
}

// invite sends an INVITE for a group through the core, preloaded with route (the PF-A,
// or none), and ACKs its final non-2xx answer (RFC 3261 §17.1.1.3). It returns that answer.
func (p *probe) invite(ruri, route, from, callID string, cseq int, extra ...string) sipMsg {
	p.t.Helper()
	branch := "z9hG4bK-probe" + strconv.Itoa(cseq) + callID
	_, port, _ := net.SplitHostPort(p.addr)
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=message " + port +
		" TCP/MSRP *\r\na=path:msrp://" + p.addr + "/probe1;tcp\r\na=accept-types:message/cpim\r\na=sendonly\r\n"
	lines := []string{
		"INVITE " + ruri + " SIP/2.0",
		"Via: SIP/2.0/UDP " + p.addr + ";branch=" + branch + ";rport",
		"Route: <sip:" + p.core.String() + ";lr>",
	}
	if route != "" {
		lines = append(lines, "Route: <sip:"+route+";lr>")
	}
	lines = append(lines,
		"Max-Forwards: 70",
		"From: <"+from+">;tag=pt"+callID,
		"To: <"+ruri+">",
		"Call-ID: "+callID,
		fmt.Sprintf("CSeq: %d INVITE", cseq),
		"Contact: <sip:probe@"+p.addr+">",
		"Accept-Contact: *;+g.oma.sip-im.large-message",
		"P-Preferred-Service: urn:urn-7:3gpp-service.ims.icsi.oma.cpm.largemsg")
	lines = append(lines, extra...)
	lines = append(lines, "Content-Type: application/sdp", "", sdp)
	p.send(lines...)
	res := p.final(fmt.Sprintf("%d INVITE", cseq), 20*time.Second)
	if res.status >= 300 {
		ack := []string{
			"ACK " + ruri + " SIP/2.0",
			"Via: SIP/2.0/UDP " + p.addr + ";branch=" + branch + ";rport",
			"Route: <sip:" + p.core.String() + ";lr>",
		}
		if route != "" {
			ack = append(ack, "Route: <sip:"+route+";lr>")
		}
		ack = append(ack, "Max-Forwards: 70", "From: <"+from+">;tag=pt"+callID, "To: "+res.get("To"),
			"Call-ID: "+callID, fmt.Sprintf("CSeq: %d ACK", cseq))
		p.send(ack...)
	}
	return res
}

// TestForgedIdentityRefused probes the trusted identity of a running deployment from a
// host outside its trust domain: a member's From without credentials gets 407; a user
// who authenticates as herself but claims the sender in From gets 403 at the PF-A; the
// same user asserting the sender in a P-Asserted-Identity of her own has it removed, the
// PF-A asserts who she is, and the CF refuses her (403, not a sender); a PAI sent to the
// CF around the PF-A is removed by the core and the CF refuses the request (403). No
// member stores anything, and the real sender then delivers to every member.
func TestForgedIdentityRefused(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, time.Minute)
	r := startGroup(t, ctx, runtime.GroupConfig{Variant: fig1(t), Members: 2, PFBs: 1, StoreDir: t.TempDir(), Auth: true,
		Users: []sipx.Credential{{Username: "mallory", Realm: "a.example", Password: "evil"}}})
	p := newProbe(t, r.g.CoreAddr())
	pfa := r.g.PFA.SIPAddr()
	group := runtime.GroupURI

	res := p.invite(group, pfa, runtime.SenderURI, "forge1", 1)
	if res.status != 407 || len(res.hdrs["proxy-authenticate"]) != 2 {
		t.Fatalf("no credentials: %d %s %v", res.status, res.reason, res.hdrs["proxy-authenticate"])
	}
	challenge := res.hdrs["proxy-authenticate"][0]

	res = p.invite(group, pfa, runtime.SenderURI, "forge1", 2,
		"Proxy-Authorization: "+digestAnswer(challenge, "mallory", "evil", "INVITE", group))
	if res.status != 403 {
		t.Fatalf("mallory with From: alice: %d %s, want 403", res.status, res.reason)
	}

	res = p.invite(group, pfa, runtime.SenderURI, "forge2", 1)
	challenge = res.hdrs["proxy-authenticate"][0]
	res = p.invite(group, pfa, "sip:mallory@a.example", "forge2", 2,
		"P-Asserted-Identity: <"+runtime.SenderURI+">",
		"Proxy-Authorization: "+digestAnswer(challenge, "mallory", "evil", "INVITE", group))
	if res.status != 403 {
		t.Fatalf("mallory asserting alice: %d %s, want 403 from the CF's sender check", res.status, res.reason)
	}

	// Around the PF-A, straight to the CF through the core.
	res = p.invite(group, "", runtime.SenderURI, "forge3", 1, "P-Asserted-Identity: <"+runtime.SenderURI+">")
	if res.status != 403 {
		t.Fatalf("PAI around the PF-A: %d %s, want 403", res.status, res.reason)
	}

	for _, m := range r.g.Members {
		if n := len(m.Received()); n != 0 {
			t.Fatalf("%s stored %d messages from forged senders", m.Name(), n)
		}
	}
	msg := payload(5<<10, 12)
	r.send(t, ctx, group, nil, msg)
	r.checkDelivered(t, msg, nil)
}

// TestPFBRestartKeepsMembers restarts both PF-Bs between registration and sending. With a
// location store every member is reached at once; without one (the control, which shows
// the test can fail) the members are unknown to the restarted PF-Bs and get 480.
func TestPFBRestartKeepsMembers(t *testing.T) {
	for _, stored := range []bool{true, false} {
		t.Run(fmt.Sprintf("store=%v", stored), func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, time.Minute)
			cfg := runtime.GroupConfig{Variant: fig1(t), Members: 3, PFBs: 2, StoreDir: t.TempDir(), Auth: true}
			if stored {
				cfg.LocationDir = t.TempDir()
			}
			r := startGroup(t, ctx, cfg)
			for j := range r.g.PFBs {
				if err := r.g.RestartPFB(j); err != nil {
					t.Fatalf("restarting pfb%d: %v", j+1, err)
				}
			}
			msg := payload(10<<10, 13)
			r.send(t, ctx, runtime.GroupURI, nil, msg)
			if stored {
				r.checkDelivered(t, msg, nil)
				return
			}
			for i := range r.g.Members {
				if got := r.outcome.Of(r.members[i]); got.Kind != core.Failed || got.Status != 480 {
					t.Errorf("%s without a store: %v, want failed 480", r.members[i], got)
				}
			}
		})
	}
}

// TestTrustConfigRefused: options that cannot work are refused at start: authentication
// or a location store on a role without users, a PF-A in a trust domain that does not
// authenticate (it could assert nothing), an unknown contacts policy.
func TestTrustConfigRefused(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	creds, err := sipx.NewCredentials([]sipx.Credential{{Username: "alice", Realm: "a.example", Password: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	auth := &sipx.AuthConfig{Realm: "a.example", Credentials: creds}
	for _, tc := range []struct {
		name string
		cfg  runtime.NodeConfig
		want string
	}{
		{"auth at the CF", runtime.NodeConfig{Kind: fsm.RoleCF, Auth: auth}, "authentication is a PF's"},
		{"store at a client", runtime.NodeConfig{Kind: fsm.RoleClientB, LocationStore: "x.db"}, "location store is a PF's"},
		{"PF-A trusting without auth", runtime.NodeConfig{Kind: fsm.RolePFA, TrustedHosts: []string{"127.0.0.1"}}, "must authenticate"},
		{"contacts policy", runtime.NodeConfig{Kind: fsm.RolePFB, ContactsPolicy: "evict"}, "contacts policy"},
	} {
		tc.cfg.Name, tc.cfg.URI, tc.cfg.Variant = "x", "sip:x@x.example", fig1(t)
		if n, err := runtime.StartNode(ctx, tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			if n != nil {
				n.Close()
			}
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
