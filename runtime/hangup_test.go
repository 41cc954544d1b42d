package runtime_test

import (
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/proptest"
	"github.com/cpmlink/cpmlink/runtime"
)

// TestSenderHangsUpAfterLastOK: a sender that hangs up as soon as every SEND of its
// message has its 200, as common MSRP libraries do (dropping its MSRP connection and
// sending BYE, or only sending BYE), loses no member. What PF-A acknowledged is delivered
// byte-exact to every member, every session ends, the sender (which asked for no success
// REPORT) is sent none, and the trace is a behaviour of the spec with that sender.
func TestSenderHangsUpAfterLastOK(t *testing.T) {
	for _, sender := range []core.Sender{core.SenderCloses, core.SenderHangsUp} {
		for _, name := range []string{"fig1", "fig3", "fig5"} {
			v, ok := fsm.VariantByName(name)
			if !ok {
				t.Fatalf("no variant %s", name)
			}
			t.Run(sender.String()+"/"+name, func(t *testing.T) {
				t.Parallel()
				ctx := testCtx(t, time.Minute)
				// Many chunks, so that the sender has every 200 while the members are
				// still receiving what the relays hold.
				msg := payload(300<<10+11, 9)
				cfg := runtime.GroupConfig{Variant: v, Members: 3, PFBs: 2, ChunkSize: 8 << 10, StoreDir: t.TempDir(), Sender: sender}
				r := sendToGroup(t, ctx, cfg, false, msg)
				if len(r.outcome.Members) != 0 {
					t.Errorf("the sender asked for no success REPORT but learned %+v", r.outcome.Members)
				}
				for i, m := range r.g.Members {
					rec := m.Received()
					if len(rec) != 1 {
						t.Errorf("%s stored %d messages, want 1", r.members[i], len(rec))
						continue
					}
					if rec[0].SHA256 != sum(msg) || rec[0].Bytes != int64(len(msg)) {
						t.Errorf("%s stored %d bytes with SHA-256 %s, want %d bytes %s", r.members[i], rec[0].Bytes, rec[0].SHA256, len(msg), sum(msg))
					}
				}
				r.validate(t, proptest.Config{Variant: v, Members: 3, PFBs: 2, Sender: sender})
			})
		}
	}
}

// TestBlindSenderHearsNothing: a sender that asks for nothing (Failure-Report: no and
// Success-Report: no, the spec's blind sender) gets no 200 to its SENDs (RFC 4975 §7.1.1)
// and no REPORT, not even on the member that declined (§7.1.2), although PF-A hears of that
// member's failure; it hangs up when its guard runs out. Every other member still stores
// the message byte-exact, every session ends, and the trace is a behaviour of the spec
// with that sender (whose `reports` property refuses a failure REPORT on hop1).
func TestBlindSenderHearsNothing(t *testing.T) {
	for _, name := range []string{"fig1", "fig5"} {
		v, ok := fsm.VariantByName(name)
		if !ok {
			t.Fatalf("no variant %s", name)
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, time.Minute)
			msg := payload(40<<10+3, 4)
			cfg := runtime.GroupConfig{Variant: v, Members: 3, PFBs: 2, ChunkSize: 8 << 10, StoreDir: t.TempDir(),
				Sender: core.SenderBlind, Guard: 3 * time.Second,
				Answers: map[int]core.Answer{1: {Mode: core.AnswerDecline, Status: 486}}}
			r := sendToGroup(t, ctx, cfg, false, msg)
			if len(r.outcome.Members) != 0 || r.outcome.Rest.Final() {
				t.Errorf("the sender asked for no REPORT but learned %+v (rest %v)", r.outcome.Members, r.outcome.Rest)
			}
			for i, m := range r.g.Members {
				rec := m.Received()
				if i == 1 {
					if len(rec) != 0 {
						t.Errorf("%s declined but stored %d messages", r.members[i], len(rec))
					}
					continue
				}
				if len(rec) != 1 {
					t.Errorf("%s stored %d messages, want 1", r.members[i], len(rec))
					continue
				}
				if rec[0].SHA256 != sum(msg) || rec[0].Bytes != int64(len(msg)) {
					t.Errorf("%s stored %d bytes with SHA-256 %s, want %d bytes %s", r.members[i], rec[0].Bytes, rec[0].SHA256, len(msg), sum(msg))
				}
			}
			r.validate(t, proptest.Config{Variant: v, Members: 3, PFBs: 2, Sender: core.SenderBlind,
				Faults: map[int]proptest.Fault{1: {Kind: proptest.Decline, Status: 486}}})
		})
	}
}
