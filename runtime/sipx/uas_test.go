package sipx

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// rawCall is the state a raw peer needs to act as a UAC towards an endpoint.
type rawCall struct {
	p       *rawPeer
	target  string // Request-URI of the INVITE
	callID  string
	fromTag string
	branch  string
}

func newRawCall(p *rawPeer, target string) *rawCall {
	return &rawCall{p: p, target: target, callID: randToken(8) + "@raw", fromTag: randToken(4), branch: "z9hG4bK-raw" + randToken(6)}
}

func (c *rawCall) invite(branch string) {
	c.p.send(fmt.Sprintf("INVITE %s SIP/2.0\n"+
		"Via: SIP/2.0/UDP %s;branch=%s\n"+
		"Max-Forwards: 70\n"+
		"From: <sip:peer@127.0.0.1>;tag=%s\n"+
		"To: <%s>\n"+
		"Call-ID: %s\n"+
		"CSeq: 1 INVITE\n"+
		"Contact: <sip:peer@%s>\n"+
		"Content-Type: application/sdp\n"+
		"Content-Length: {{CL}}\n\n%s", c.target, c.p.addr, branch, c.fromTag, c.target, c.callID, c.p.addr, sdpOffer))
}

// ack sends the ACK for a 2xx with toTag, in a transaction of its own
// (branch) as RFC 3261 §17.1.1.3 wants, or reusing the INVITE's branch as an
// RFC 2543 peer would.
func (c *rawCall) ack(branch, toTag string) {
	c.p.send(fmt.Sprintf("ACK %s SIP/2.0\n"+
		"Via: SIP/2.0/UDP %s;branch=%s\n"+
		"Max-Forwards: 70\n"+
		"From: <sip:peer@127.0.0.1>;tag=%s\n"+
		"To: <%s>;tag=%s\n"+
		"Call-ID: %s\n"+
		"CSeq: 1 ACK\n"+
		"Content-Length: 0\n\n", c.target, c.p.addr, branch, c.fromTag, c.target, toTag, c.callID))
}

// respond answers a request the endpoint sent to the raw peer.
func (c *rawCall) respond(req *sip.Request, status int) {
	res := sip.NewResponseFromRequest(req, status, reasonPhrase(status), nil)
	c.p.send(res.String())
}

// TestAnswerRetransmittedUntilAck checks RFC 3261 §13.3.1.4 from the wire:
// the UAS sends its 2xx again after T1, 2*T1, ... until the ACK arrives —
// whether the ACK is a transaction of its own or reuses the INVITE's branch
// (RFC 2543 peers) — and stops then. The ACK reaches the driver once.
func TestAnswerRetransmittedUntilAck(t *testing.T) {
	const t1 = 50 * time.Millisecond
	for _, tc := range []struct{ name, ackBranch string }{
		{"ack-own-transaction", "z9hG4bK-rawack"},
		{"ack-with-invite-branch", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			b := startEP(t, Config{Name: "bob", Identity: "sip:bob@b.example", T1: t1})
			peer := newRawPeer(t, b.UDPAddr())
			call := newRawCall(peer, "sip:bob@"+b.UDPAddr())
			call.invite(call.branch)
			inv := b.rec.next(t, ctx, "invite")
			if err := b.Answer(inv.leg, []Part{{ContentType: "application/sdp", Body: []byte(sdpAnswer)}}, nil); err != nil {
				t.Fatal(err)
			}
			var times []time.Time
			var ok *sip.Response
			for len(times) < 3 {
				r := peer.readFinal(ctx, 0)
				if r == nil {
					t.Fatalf("only %d 200 OKs", len(times))
				}
				if r.StatusCode != 200 {
					t.Fatalf("got %d", r.StatusCode)
				}
				if ok != nil && tagOf(r.To().Params) != tagOf(ok.To().Params) {
					t.Fatal("a retransmitted 2xx changed its To tag")
				}
				ok = r
				times = append(times, peer.arrived)
			}
			// Nominal gaps T1 and 2*T1; allow for scheduling slack, but a
			// gap under half its nominal value means no back-off.
			if g := times[1].Sub(times[0]); g < t1/2 {
				t.Errorf("first retransmission after %v, want about T1=%v", g, t1)
			}
			if g := times[2].Sub(times[1]); g < t1 {
				t.Errorf("second retransmission after %v, want about 2*T1=%v", g, 2*t1)
			}
			branch := tc.ackBranch
			if branch == "" {
				branch = call.branch
			}
			call.ack(branch, tagOf(ok.To().Params))
			if ev := b.rec.next(t, ctx, "ack"); ev.leg != inv.leg {
				t.Fatalf("ACK on %s", ev.leg)
			}
			// The next retransmission was due 4*T1 after the last; nothing
			// may come within 20*T1 of the ACK's arrival.
			if m := peer.read(ctx, 20*t1); m != nil {
				t.Fatalf("after the ACK the endpoint still sent:\n%s", m)
			}
			call.ack("z9hG4bK-rawack2", tagOf(ok.To().Params)) // a duplicate is absorbed
			if err := b.Bye(inv.leg); err != nil {
				t.Fatal(err)
			}
			bye := peer.read(ctx, 0)
			if req, isReq := bye.(*sip.Request); !isReq || req.Method != sip.BYE {
				t.Fatalf("want BYE, got\n%s", bye)
			} else {
				call.respond(req, 200)
			}
			b.rec.none(t)
		})
	}
}

// TestAnswerNeverAcked: without an ACK the 2xx is retransmitted for 64*T1,
// then the UAS ends the dialog with a BYE (RFC 3261 §13.3.1.4) and the
// driver hears ErrNoAck.
func TestAnswerNeverAcked(t *testing.T) {
	const t1 = 10 * time.Millisecond
	ctx := testCtx(t)
	b := startEP(t, Config{Name: "bob", Identity: "sip:bob@b.example", T1: t1})
	peer := newRawPeer(t, b.UDPAddr())
	call := newRawCall(peer, "sip:bob@"+b.UDPAddr())
	call.invite(call.branch)
	inv := b.rec.next(t, ctx, "invite")
	start := time.Now()
	if err := b.Answer(inv.leg, nil, nil); err != nil {
		t.Fatal(err)
	}
	oks := 0
	var bye *sip.Request
	for bye == nil {
		switch m := peer.read(ctx, 0).(type) {
		case *sip.Response:
			if m.StatusCode == 200 {
				oks++
			}
		case *sip.Request:
			if m.Method != sip.BYE {
				t.Fatalf("got %s", m.Method)
			}
			bye = m
		case nil:
			t.Fatal("no BYE")
		}
	}
	call.respond(bye, 200)
	// 64*T1 = 640ms with sends at 0, T1, 3T1, 7T1, 15T1, 31T1, 63T1.
	if oks < 5 {
		t.Errorf("%d 200 OKs before the BYE, want about 7", oks)
	}
	if d := time.Since(start); d < 64*t1 {
		t.Errorf("gave up after %v, before 64*T1", d)
	}
	if bye.Recipient.String() != "sip:peer@"+peer.addr {
		t.Errorf("BYE Request-URI %s, want the INVITE's Contact", bye.Recipient.String())
	}
	if tagOf(bye.To().Params) != call.fromTag || bye.CallID().Value() != call.callID {
		t.Errorf("BYE not in the dialog: %s", bye)
	}
	if f := b.rec.next(t, ctx, "failed"); f.leg != inv.leg || !errors.Is(f.err, ErrNoAck) {
		t.Fatalf("%v", f)
	}
}

// TestByeWaitsForAck: a Bye called before the ACK of our 2xx is sent after
// it (RFC 3261 §15: not before the ACK or the transaction's timeout).
func TestByeWaitsForAck(t *testing.T) {
	ctx := testCtx(t)
	b := startEP(t, Config{Name: "bob", Identity: "sip:bob@b.example", T1: 50 * time.Millisecond})
	peer := newRawPeer(t, b.UDPAddr())
	call := newRawCall(peer, "sip:bob@"+b.UDPAddr())
	call.invite(call.branch)
	inv := b.rec.next(t, ctx, "invite")
	if err := b.Answer(inv.leg, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Bye(inv.leg); err != nil {
		t.Fatal(err)
	}
	// Take two 200s (the second proves time passed without a BYE).
	var ok *sip.Response
	for n := 0; n < 2; {
		switch m := peer.read(ctx, 0).(type) {
		case *sip.Response:
			if m.StatusCode == 200 {
				ok = m
				n++
			}
		case *sip.Request:
			t.Fatalf("%s before the ACK", m.Method)
		case nil:
			t.Fatal("no 200")
		}
	}
	call.ack("z9hG4bK-rawack", tagOf(ok.To().Params))
	for {
		m := peer.read(ctx, 0)
		if m == nil {
			t.Fatal("no BYE after the ACK")
		}
		if req, isReq := m.(*sip.Request); isReq && req.Method == sip.BYE {
			call.respond(req, 200)
			break
		}
	}
	b.rec.next(t, ctx, "ack")
}

// TestUnknownDialog: requests for dialogs or transactions the endpoint does
// not know get 481 (RFC 3261 §12.2.2, §9.2), an unknown ACK is dropped, and
// the endpoint keeps answering.
func TestUnknownDialog(t *testing.T) {
	ctx := testCtx(t)
	b := startEP(t, Config{Name: "bob", Identity: "sip:bob@b.example"})
	peer := newRawPeer(t, b.UDPAddr())
	target := "sip:bob@" + b.UDPAddr()
	req := func(method, toTag, extra string) string {
		to := "<" + target + ">"
		if toTag != "" {
			to += ";tag=" + toTag
		}
		return fmt.Sprintf("%s %s SIP/2.0\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-%s\nMax-Forwards: 70\nFrom: <sip:peer@127.0.0.1>;tag=f1\nTo: %s\nCall-ID: %s@raw\nCSeq: 7 %s\n%sContent-Length: 0\n\n",
			method, target, peer.addr, randToken(6), to, randToken(6), method, extra)
	}
	for _, tc := range []struct {
		name, msg string
		status    int // 0: no response
	}{
		{"BYE", req("BYE", "nosuchtag", ""), 481},
		{"CANCEL", req("CANCEL", "", ""), 481},
		{"re-INVITE", req("INVITE", "nosuchtag", "Contact: <sip:peer@"+peer.addr+">\n"), 481},
		{"ACK", req("ACK", "nosuchtag", ""), 0},
		{"MESSAGE", req("MESSAGE", "", ""), 405},
		{"OPTIONS", req("OPTIONS", "", ""), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer.send(tc.msg)
			// An OPTIONS right behind: its 200 must be the first answer
			// when the request under test gets none.
			probe := req("OPTIONS", "", "")
			if tc.status == 0 {
				peer.send(probe)
			}
			r := peer.readFinal(ctx, 0)
			if r == nil {
				t.Fatal("no response")
			}
			want := tc.status
			if want == 0 {
				want = 200
			}
			if r.StatusCode != want || (tc.status == 0 && r.CSeq().MethodName != sip.OPTIONS) {
				t.Fatalf("got %d to %s, want %d", r.StatusCode, r.CSeq().MethodName, want)
			}
		})
	}
	b.rec.none(t)
}

// TestMalformedRequests: sipgo answers a request without CSeq 400 (RFC 3261
// §8.2, §16.3), sipx answers 400 to an INVITE without Contact or with a
// broken multipart body, unparsable bytes are dropped (UDP) or close the
// connection (TCP, no message boundary to resync on) — and through all of it
// the endpoint keeps serving a real dialog.
func TestMalformedRequests(t *testing.T) {
	ctx := testCtx(t)
	p := newPair(t, "udp")
	peer := newRawPeer(t, p.b.UDPAddr())
	target := "sip:bob@" + p.b.UDPAddr()
	head := func(method string) string {
		return fmt.Sprintf("%s %s SIP/2.0\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-%s\nMax-Forwards: 70\nFrom: <sip:peer@127.0.0.1>;tag=f1\nTo: <%s>\nCall-ID: %s@raw\n",
			method, target, peer.addr, randToken(6), target, randToken(6))
	}
	for _, tc := range []struct {
		name, msg string
		status    int // 0: dropped
	}{
		{"no CSeq", head("BYE") + "Content-Length: 0\n\n", 400},
		{"INVITE without Contact", head("INVITE") + "CSeq: 1 INVITE\nContent-Length: 0\n\n", 400},
		{"multipart without boundary", head("INVITE") + "CSeq: 1 INVITE\nContact: <sip:peer@" + peer.addr + ">\nContent-Type: multipart/mixed\nContent-Length: {{CL}}\n\nhello", 400},
		{"garbage", "this is not SIP at all\n\n", 0},
		{"binary", "\x00\x01\x02INVITE\xff\xfe\n\n", 0},
		{"bad CSeq", head("OPTIONS") + "CSeq: many OPTIONS\nContent-Length: 0\n\n", 400}, // precheck.go
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer.send(tc.msg)
			if tc.status == 0 {
				peer.send(head("OPTIONS") + "CSeq: 1 OPTIONS\nContent-Length: 0\n\n")
			}
			r := peer.readFinal(ctx, 0)
			if r == nil {
				t.Fatal("no response")
			}
			want, method := tc.status, ""
			if want == 0 {
				want, method = 200, "OPTIONS"
			}
			if r.StatusCode != want || (method != "" && string(r.CSeq().MethodName) != method) {
				t.Fatalf("got %s, want %d", r.StartLine(), want)
			}
		})
	}
	t.Run("tcp garbage", func(t *testing.T) {
		nc, err := net.Dial("tcp", p.b.TCPAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(nc, "GARBAGE GARBAGE GARBAGE\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if _, err := bufio.NewReader(nc).ReadString('\n'); err == nil {
			t.Fatal("the endpoint answered garbage over TCP")
		}
	})
	// A real dialog still works.
	if err := p.a.Invite("after", "sip:bob@b.example", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	inv := p.b.rec.next(t, ctx, "invite")
	if err := p.b.Answer(inv.leg, nil, nil); err != nil {
		t.Fatal(err)
	}
	if r := p.a.rec.next(t, ctx, "response"); r.res.Status != 200 {
		t.Fatalf("%v", r)
	}
	if err := p.a.Ack("after"); err != nil {
		t.Fatal(err)
	}
	p.b.rec.next(t, ctx, "ack")
}

// TestRetransmittedInviteOneLeg: a retransmitted INVITE (same branch) is
// absorbed by the transaction (RFC 3261 §17.2.3); the same request on
// another branch is a merged request and gets 482 (§8.2.2.2). Either way the
// driver sees one leg.
func TestRetransmittedInviteOneLeg(t *testing.T) {
	ctx := testCtx(t)
	b := startEP(t, Config{Name: "bob", Identity: "sip:bob@b.example"})
	peer := newRawPeer(t, b.UDPAddr())
	call := newRawCall(peer, "sip:bob@"+b.UDPAddr())
	call.invite(call.branch)
	inv := b.rec.next(t, ctx, "invite")
	call.invite(call.branch)
	call.invite("z9hG4bK-other")
	if r := peer.readFinal(ctx, 0); r == nil || r.StatusCode != 482 {
		t.Fatalf("merged INVITE got %v, want 482", r)
	}
	if err := b.Answer(inv.leg, nil, nil); err != nil {
		t.Fatal(err)
	}
	r := peer.readFinal(ctx, 0)
	if r == nil || r.StatusCode != 200 {
		t.Fatalf("got %v", r)
	}
	if br, _ := r.Via().Params.Get("branch"); br != call.branch {
		t.Fatalf("200 on branch %s", br)
	}
	call.ack("z9hG4bK-ack", tagOf(r.To().Params))
	// FIFO delivery: a second leg's Invite would have come before this ACK.
	b.rec.next(t, ctx, "ack")
}

// waitClosed waits for ch, bounded by ctx.
func waitClosed(t *testing.T, ctx context.Context, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-ctx.Done():
		t.Fatalf("timed out waiting for %s", what)
	}
}

var _ = strings.TrimSpace

// TestNoTryingOfSipgosOwn: the only 100 Trying an INVITE gets is the one
// onInvite sends, before the answer. sipgo's transaction would send one of
// its own 200 ms after the INVITE unless a response went first, and one whose
// timer had fired before the answer went out after it (RFC 3261 §17.2.1 has no
// provisional response after a final one). Here onInvite is held up (the
// endpoint's lock, which it takes first) for three times sipgo's delay:
// nothing may come meanwhile, and then exactly one 100 and the 200.
func TestNoTryingOfSipgosOwn(t *testing.T) {
	ctx := testCtx(t)
	b := startEP(t, Config{Name: "bob", Identity: "sip:bob@b.example"})
	peer := newRawPeer(t, b.UDPAddr())
	call := newRawCall(peer, "sip:bob@"+b.UDPAddr())
	b.mu.Lock()
	call.invite(call.branch)
	early := peer.read(ctx, 600*time.Millisecond)
	b.mu.Unlock()
	if early != nil {
		t.Fatalf("before onInvite ran, the endpoint sent:\n%s", early)
	}
	inv := b.rec.next(t, ctx, "invite")
	if err := b.Answer(inv.leg, []Part{{ContentType: "application/sdp", Body: []byte(sdpAnswer)}}, nil); err != nil {
		t.Fatal(err)
	}
	var got []int
	var r *sip.Response
	for len(got) == 0 || got[len(got)-1] != 200 {
		var ok bool
		if r, ok = peer.read(ctx, 0).(*sip.Response); !ok {
			t.Fatalf("after %v: not a response", got)
		}
		got = append(got, r.StatusCode)
	}
	if len(got) != 2 || got[0] != 100 {
		t.Fatalf("responses %v, want [100 200]", got)
	}
	call.ack("z9hG4bK-rawack", tagOf(r.To().Params))
	b.rec.next(t, ctx, "ack")
}
