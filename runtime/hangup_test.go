package runtime_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
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

// hangUpAt is how many chunks a member takes before its user hangs up: few of the
// message's 256, so that the hang-up comes mid-message whatever the relays and the
// member's inbox still hold (a relay's store holds 16 chunks, and so back-pressure
// bounds what a member's reader may queue ahead of its machine).
const hangUpAt = 8

// hangUpRuns runs a hang-up test in fig1 and fig5, in parallel, each with the message a
// member hangs up on: 2 MiB in 8 KiB chunks.
func hangUpRuns(t *testing.T, run func(t *testing.T, v fsm.Variant, ctx context.Context, msg []byte, chunk int)) {
	for _, name := range []string{"fig1", "fig5"} {
		v, ok := fsm.VariantByName(name)
		if !ok {
			t.Fatalf("no variant %s", name)
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			run(t, v, testCtx(t, time.Minute), payload(2<<20+9, 31), 8<<10)
		})
	}
}

// TestForeignMemberHangUp: a foreign member (the test's own RFC 3261/4975 client) hangs
// up mid-message: it sends BYE in its dialog and closes its MSRP connection. Its PF-B
// answers the BYE, ends the member's link and reports the member failed with 481 (the
// session no longer exists, not a guard's 408); the member beside it behind the same
// PF-B stores the message byte-exact, and every session ends. The foreign member leaves
// no trace, so the run is not replayed into the simulator.
func TestForeignMemberHangUp(t *testing.T) {
	hangUpRuns(t, func(t *testing.T, v fsm.Variant, ctx context.Context, msg []byte, chunk int) {
		cfg := runtime.GroupConfig{Variant: v, Members: 2, PFBs: 1, ChunkSize: chunk, StoreDir: t.TempDir(),
			Foreign: map[int]bool{0: true}}
		r := startGroup(t, ctx, cfg)
		foreign := newForeignMember(t, r.members[0])
		foreign.hangUpAfter = hangUpAt
		if err := foreign.register(ctx, r.g.PFBs[0].SIPAddr()); err != nil {
			t.Fatalf("registering the raw member: %v", err)
		}
		foreign.serve()
		took := r.sendFrom(t, ctx, runtime.GroupURI, nil, int64(len(msg)),
			func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(msg)), nil })
		select {
		case <-foreign.byeDone:
		case <-ctx.Done():
			t.Fatal("the raw member's BYE got no final response")
		}
		foreign.mu.Lock()
		byeStatus, chunks, after, flag := foreign.byeStatus, foreign.chunks, foreign.afterBye, foreign.lastFlag
		foreign.mu.Unlock()
		t.Logf("send took %v; the raw member stored %d chunks, BYE answered %d, then read %d MSRP requests (last flag %q); PF-B took %s",
			took.Round(time.Millisecond), chunks, byeStatus, after, flag, pfbLearned(t, r.trace.Bytes(), "m1"))
		if byeStatus != 200 {
			t.Errorf("the raw member's BYE was answered %d, want 200", byeStatus)
		}
		select {
		case <-foreign.done:
			t.Errorf("the raw member got the end of the message although it hung up after %d chunks", hangUpAt)
		default:
		}
		if o := r.outcome.Of(r.members[0]); o.Kind != core.Failed || o.Status != 481 {
			t.Errorf("the member that hung up: the sender learned %v, want failed 481", o)
		}
		if o := r.outcome.Of(r.members[1]); o.Kind != core.Delivered {
			t.Errorf("our member: the sender learned %v, want delivered", o)
		}
		if rec := r.g.Members[0].Received(); len(rec) != 1 || rec[0].SHA256 != sum(msg) || rec[0].Bytes != int64(len(msg)) {
			t.Errorf("our member stored %+v, want %d bytes %s", rec, len(msg), sum(msg))
		}
	})
}

// TestMemberHangUp: cpmlink's own member hangs up mid-message (Node.HangUp, once it has
// stored a few chunks). It sends BYE and closes its link; its PF-B reports it failed with
// 481, the member beside it stores the message byte-exact, every session ends, and the
// member stored nothing.
// HangUp refuses, with an error that says so, a member with no session to end and a node
// that is no member.
func TestMemberHangUp(t *testing.T) {
	hangUpRuns(t, func(t *testing.T, v fsm.Variant, ctx context.Context, msg []byte, chunk int) {
		cfg := runtime.GroupConfig{Variant: v, Members: 2, PFBs: 1, ChunkSize: chunk, StoreDir: t.TempDir()}
		// stored is closed once the member (m1) has stored hangUpAt chunks and its
		// dialog is confirmed: a callee may not send BYE before the ACK (RFC 3261 §15),
		// and a member may be handed chunks before its ACK (PF-B may open hop4 as it
		// sends the ACK, and the chunks can overtake it).
		stored := make(chan struct{})
		acked, chunks := false, 0
		watch := recordWatch(func(rec runtime.Record) {
			if rec.Node != "m1" || chunks >= hangUpAt && acked {
				return
			}
			switch {
			case rec.Dir == "in" && rec.Type == "AckReceived":
				acked = true
			case rec.Dir == "out" && rec.Type == "Deliver":
				chunks++
			default:
				return
			}
			if chunks >= hangUpAt && acked {
				close(stored)
			}
		})
		r := startGroup(t, ctx, cfg, watch)
		m := r.g.Members[0]
		if err := m.HangUp(); !errors.Is(err, runtime.ErrNoSession) {
			t.Errorf("HangUp with no session: %v, want ErrNoSession", err)
		}
		if err := r.g.PFBs[0].HangUp(); !errors.Is(err, runtime.ErrNotReceiver) {
			t.Errorf("HangUp on a PF-B: %v, want ErrNotReceiver", err)
		}
		type sent struct {
			out  runtime.Outcome
			err  error
			took time.Duration
		}
		done := make(chan sent, 1)
		start := time.Now()
		go func() {
			out, err := r.g.ClientA.Send(ctx, runtime.GroupURI, nil, runtime.Message{
				Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(msg)), nil },
				Size: int64(len(msg)), ContentType: "application/octet-stream"})
			done <- sent{out, err, time.Since(start)}
		}()
		select {
		case <-stored:
		case <-ctx.Done():
			t.Fatalf("the member never stored %d chunks in a confirmed dialog", hangUpAt)
		}
		hungUp := time.Now()
		if err := m.HangUp(); err != nil {
			t.Fatalf("HangUp mid-message: %v", err)
		}
		var res sent
		select {
		case res = <-done:
		case <-ctx.Done():
			t.Fatal("Send never returned")
		}
		afterHangUp := time.Since(hungUp)
		if res.err != nil {
			t.Fatalf("send: %v (outcome %+v)", res.err, res.out)
		}
		r.outcome = res.out
		if err := r.g.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
		// The trace is read once every node is idle: until then the nodes still write it.
		t.Logf("send took %v, %v after the hang-up; PF-B took %s", res.took.Round(time.Millisecond),
			afterHangUp.Round(time.Millisecond), pfbLearned(t, r.trace.Bytes(), "m1"))
		if err := m.HangUp(); !errors.Is(err, runtime.ErrNoSession) {
			t.Errorf("HangUp once the session ended: %v, want ErrNoSession", err)
		}
		r.checkDelivered(t, msg, map[int]int{0: 481})
		for _, rec := range records(t, r.trace.Bytes()) {
			if rec.Node == "m1" && (rec.Err != "" || rec.Type == "error") {
				t.Errorf("the member that hung up recorded %s %s: %s%s", rec.Type, rec.Leg, rec.Err, rec.Note)
			}
		}
		r.validate(t, proptest.Config{Variant: v, Members: 2, PFBs: 1, Faults: map[int]proptest.Fault{0: {Kind: proptest.HangUp}}})
	})
}

// pfbLearned says how the PF-B learned that the member of a down leg hung up: the events
// its machine took on that leg after the link was up, in order (ByeReceived, and a
// LinkFailed with its status when the member's MSRP answer came first).
func pfbLearned(t *testing.T, trace []byte, member string) string {
	recs := records(t, trace)
	leg := ""
	for _, rec := range recs {
		if rec.Node == "pfb1" && rec.Type == "SendInvite" && strings.HasPrefix(fmt.Sprint(rec.Fields["Target"]), "sip:"+member+"@") {
			leg = rec.Leg
		}
	}
	var out []string
	for _, rec := range recs {
		if rec.Node != "pfb1" || rec.Dir != "in" || rec.Leg != leg {
			continue
		}
		switch rec.Type {
		case "ByeReceived":
			out = append(out, rec.Type)
		case "LinkFailed":
			out = append(out, fmt.Sprintf("%s %v", rec.Type, rec.Fields["Status"]))
		}
	}
	return strings.Join(out, ", ")
}
