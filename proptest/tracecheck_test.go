package proptest

import (
	"strings"
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
	"pgregory.net/rapid"
)

// recordRun runs a configuration under a rapid schedule and records it the way the
// runtime traces real runs: every event each machine takes, and each INVITE sent with its
// dialog (here the leg name, which both ends share in the simulator).
func recordRun(t *rapid.T, cfg Config) ([]TraceRecord, *Violation) {
	w, err := NewWorld(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var recs []TraceRecord
	w.tap = func(role int, ev fsm.Event, acts []fsm.Action) {
		r := TraceRecord{Node: w.names[role], Dir: "in", Type: ev.Kind(), Leg: string(ev.EventLeg()), Dialog: string(ev.EventLeg())}
		switch x := ev.(type) {
		case fsm.SendReceived:
			r.Chunk, r.Last = x.Chunk, x.Last
		case fsm.ReportReceived:
			r.Member = x.Member
		}
		recs = append(recs, r)
		for _, a := range acts {
			if a.Kind() == "SendInvite" {
				recs = append(recs, TraceRecord{Node: w.names[role], Dir: "out", Type: "SendInvite", Leg: string(a.ActionLeg()), Dialog: string(a.ActionLeg())})
			}
		}
	}
	// The transmitter's Start and first INVITE happened in NewWorld, before the tap.
	recs = append(recs, TraceRecord{Node: "clientA", Dir: "out", Type: "SendInvite", Leg: string(w.hopLeg(1)), Dialog: string(w.hopLeg(1))})
	v := Run(w, func(w *World, c []Choice) int { return rapid.IntRange(0, len(c)-1).Draw(t, "pick") }, 50000)
	return recs, v
}

// TestValidateTraceAcceptsRuns: every run the simulator can make validates.
func TestValidateTraceAcceptsRuns(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		v := rapid.SampledFrom(fsm.Variants).Draw(t, "variant")
		cfg := DrawConfig(t, v, Sizes{MaxMembers: 4, MaxPFBs: 2, MaxChunks: 3})
		recs, viol := recordRun(t, cfg)
		if viol != nil {
			t.Fatalf("the run itself failed: %v", viol)
		}
		_, got, err := ValidateTrace(cfg, recs, true)
		if err != nil || got != nil {
			t.Fatalf("a run of the simulator does not validate: %v %v", err, got)
		}
	})
}

// TestValidateTraceRejectsImpossibleOrder: a trace in which a member takes the ACK before
// the INVITE it belongs to cannot be a behaviour of the spec.
func TestValidateTraceRejectsImpossibleOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		v := rapid.SampledFrom(fsm.Variants).Draw(t, "variant")
		cfg := Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1}
		recs, viol := recordRun(t, cfg)
		if viol != nil {
			t.Fatal(viol)
		}
		inv, ack := -1, -1
		for i, r := range recs {
			if r.Node == "m1" && r.Type == "InviteReceived" && inv < 0 {
				inv = i
			}
			if r.Node == "m1" && r.Type == "AckReceived" && ack < 0 {
				ack = i
			}
		}
		if inv < 0 || ack < 0 {
			t.Fatalf("no INVITE/ACK at the member in %v", recs)
		}
		recs[inv], recs[ack] = recs[ack], recs[inv]
		_, got, err := ValidateTrace(cfg, recs, true)
		if err == nil && (got == nil || got.Property != PropTrace) {
			t.Fatalf("an impossible order validated: %v", got)
		}
		// What was deliverable is described once the replay is stuck, never left out.
		if got != nil && (strings.Contains(got.Detail, stuckDeliverable) ||
			strings.Contains(got.Detail, "could not deliver then") && !strings.Contains(got.Detail, "deliverable: ")) {
			t.Fatalf("the violation does not say what was deliverable: %q", got.Detail)
		}
	})
}
