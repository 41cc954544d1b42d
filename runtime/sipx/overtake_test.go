package sipx

import (
	"fmt"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// TestByeOvertakingTwoHundred: a callee whose 2xx went unacknowledged ends the dialog with
// BYE (RFC 3261 §13.3.1.4), and the BYE may reach the caller before the 2xx it follows.
// The caller has no dialog yet (§12.1.2): the BYE matches none and is answered 481
// (§12.2.2), and the driver never hears of it, so the spec's uac machine keeps its INVITE
// guard. The 2xx that comes later is a 2xx like any other: the driver gets it, ACKs it
// (§13.2.2.4) and can then end the dialog with BYE, which the callee, whose dialog is
// over, answers 481.
func TestByeOvertakingTwoHundred(t *testing.T) {
	ctx := testCtx(t)
	a := startEP(t, Config{Name: "alice", Identity: "sip:alice@a.example"})
	peer := newRawPeer(t, a.UDPAddr())
	if err := a.Invite("t", "sip:bob@"+peer.addr, "", []Part{{ContentType: "application/sdp", Body: []byte(sdpOffer)}}, nil); err != nil {
		t.Fatal(err)
	}
	var inv *sip.Request
	for inv == nil {
		switch m := peer.read(ctx, 0).(type) {
		case *sip.Request:
			if m.Method == sip.INVITE {
				inv = m
			}
		case nil:
			t.Fatal("no INVITE")
		}
	}
	// The callee's 2xx, built now for its To tag, sent only after its BYE.
	ok := sip.NewResponseFromRequest(inv, 200, "OK", []byte(sdpAnswer))
	ok.AppendHeader(sip.NewHeader("Contact", "<sip:bob@"+peer.addr+">"))
	ok.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	calleeTag, _ := ok.To().Params.Get("tag")
	peer.send(fmt.Sprintf("BYE %s SIP/2.0\n"+
		"Via: SIP/2.0/UDP %s;branch=z9hG4bK-bye%s\n"+
		"Max-Forwards: 70\n"+
		"From: <sip:bob@%s>;tag=%s\n"+
		"To: %s\n"+
		"Call-ID: %s\n"+
		"CSeq: 2 BYE\n"+
		"Content-Length: 0\n\n",
		inv.Contact().Address.String(), peer.addr, randToken(6), peer.addr, calleeTag, inv.From().Value(), inv.CallID().Value()))
	if r := peer.readFinal(ctx, 0); r == nil || r.StatusCode != 481 || r.CSeq().MethodName != sip.BYE {
		t.Fatalf("the BYE before the 2xx got %v, want 481 (no dialog, RFC 3261 §12.2.2)", r)
	}

	peer.send(ok.String())
	if r := a.rec.next(t, ctx, "response"); r.res.Status != 200 || r.leg != "t" {
		t.Fatalf("got %v, want the 200 on leg t (the overtaking BYE must not reach the driver)", r)
	}
	if err := a.Ack("t"); err != nil {
		t.Fatal(err)
	}
	if err := a.Bye("t"); err != nil {
		t.Fatal(err)
	}
	var gotAck bool
	for {
		m := peer.read(ctx, 0)
		req, isReq := m.(*sip.Request)
		if m == nil {
			t.Fatalf("no ACK and BYE after the late 2xx (ACK seen: %v)", gotAck)
		}
		if !isReq {
			t.Fatalf("got %v, want ACK then BYE", m)
		}
		if req.Method == sip.ACK {
			gotAck = true
			continue
		}
		if req.Method != sip.BYE {
			t.Fatalf("got %s, want ACK then BYE", req.Method)
		}
		if !gotAck {
			t.Fatal("BYE before the ACK of the 2xx")
		}
		if tag, _ := req.To().Params.Get("tag"); tag != calleeTag || req.CallID().Value() != inv.CallID().Value() {
			t.Errorf("BYE not in the 2xx's dialog: %s", req)
		}
		(&rawCall{p: peer}).respond(req, 481)
		break
	}
	a.rec.none(t)
}
