package fsm_test

import (
	"strings"
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/proptest"
)

// These tests tie the generated machines to the steps of US 8,688,848 B2, as etcd-io/raft's
// raft_paper_test.go ties raft to its paper. Each runs one member with the canonical
// schedule (what was sent first is delivered first) and checks, in the resulting sequence,
// who opens each hop and what it waited for.

// sequence runs a named variant and returns its steps as "From -> To: Label" lines.
func sequence(t *testing.T, name string) []string {
	t.Helper()
	v, ok := fsm.VariantByName(name)
	if !ok {
		t.Fatalf("no variant %s", name)
	}
	cfg := proptest.Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1}
	steps, viol, err := proptest.Canonical(cfg)
	if err != nil || viol != nil {
		t.Fatalf("%s: %v %v", name, err, viol)
	}
	var out []string
	for _, s := range steps {
		out = append(out, cfg.DisplayName(s.From)+" -> "+cfg.DisplayName(s.To)+": "+s.Label)
	}
	return out
}

func index(t *testing.T, seq []string, prefix string) int {
	t.Helper()
	for i, s := range seq {
		if strings.HasPrefix(s, prefix) {
			return i
		}
	}
	t.Fatalf("no step %q in:\n%s", prefix, strings.Join(seq, "\n"))
	return -1
}

// opensAfter checks that the link of hop is opened by opener towards peer, after the step
// that triggers it.
func opensAfter(t *testing.T, seq []string, step, hop, opener, peer, trigger string) {
	t.Helper()
	open := index(t, seq, opener+" -> "+peer+": "+hop+": open link")
	if trig := index(t, seq, trigger); trig > open {
		t.Errorf("%s: %s opened %s before %q", step, opener, hop, trigger)
	}
}

func before(t *testing.T, seq []string, what, a, b string) {
	t.Helper()
	if index(t, seq, a) > index(t, seq, b) {
		t.Errorf("%s: %q should come before %q", what, a, b)
	}
}

func TestSolution1InviteSenderOpens(t *testing.T) {
	for _, fig := range []string{"fig1", "fig2"} {
		seq := sequence(t, fig)
		opensAfter(t, seq, fig+" S105", "hop1", "ClientA", "PF-A", "PF-A -> ClientA: 200 OK")
		opensAfter(t, seq, fig+" S106", "hop2", "PF-A", "CF", "ClientA -> PF-A: ACK")
		opensAfter(t, seq, fig+" S110", "hop3", "CF", "PF-B", "PF-B -> CF: 200 OK")
		opensAfter(t, seq, fig+" S111", "hop4", "PF-B", "ClientB", "CF -> PF-B: ACK")
		// S111: PF-B acknowledges ClientB's 200 only after the ACK from the CF.
		before(t, seq, fig+" S111", "CF -> PF-B: ACK", "PF-B -> ClientB: ACK")
	}
	// FIG. 1: the CF answers at once; FIG. 2: on the first member's 200 OK.
	before(t, sequence(t, "fig1"), "fig1 S103", "CF -> PF-A: 200 OK", "PF-B -> CF: 200 OK")
	before(t, sequence(t, "fig2"), "fig2", "PF-B -> CF: 200 OK", "CF -> PF-A: 200 OK")
}

func TestSolution2InviteReceiverOpens(t *testing.T) {
	for _, fig := range []string{"fig3", "fig4"} {
		seq := sequence(t, fig)
		opensAfter(t, seq, fig+" S201", "hop4", "ClientB", "PF-B", "PF-B -> ClientB: ACK")
		opensAfter(t, seq, fig+" S202", "hop3", "PF-B", "CF", "CF -> PF-B: ACK")
		opensAfter(t, seq, fig+" S203", "hop2", "CF", "PF-A", "PF-A -> CF: ACK")
		opensAfter(t, seq, fig+" S204", "hop1", "PF-A", "ClientA", "ClientA -> PF-A: ACK")
		// FIG. 3 and 4: the PFs acknowledge the 200 OK at once, before any ACK reaches them.
		before(t, seq, fig, "PF-B -> ClientB: ACK", "CF -> PF-B: ACK")
	}
	before(t, sequence(t, "fig3"), "fig3", "CF -> PF-A: 200 OK", "PF-B -> CF: 200 OK")
	before(t, sequence(t, "fig4"), "fig4", "PF-B -> CF: 200 OK", "CF -> PF-A: 200 OK")
}

func TestSolution3ClientsAndPFsOpen(t *testing.T) {
	for _, fig := range []string{"fig5", "fig6", "fig7"} {
		seq := sequence(t, fig)
		opensAfter(t, seq, fig+" S301", "hop1", "ClientA", "PF-A", "PF-A -> ClientA: 200 OK")
		opensAfter(t, seq, fig+" S302", "hop2", "PF-A", "CF", "ClientA -> PF-A: ACK")
		opensAfter(t, seq, fig+" S303", "hop3", "PF-B", "CF", "CF -> PF-B: ACK")
		opensAfter(t, seq, fig+" S304", "hop4", "ClientB", "PF-B", "PF-B -> ClientB: ACK")
	}
	// FIG. 5: the PFs ACK at once; FIG. 6 and 7: after the ACK from upstream.
	before(t, sequence(t, "fig5"), "fig5", "PF-B -> ClientB: ACK", "CF -> PF-B: ACK")
	before(t, sequence(t, "fig6"), "fig6", "CF -> PF-B: ACK", "PF-B -> ClientB: ACK")
	// FIG. 7: the CF answers at once; FIG. 5 and 6 wait for the member.
	before(t, sequence(t, "fig7"), "fig7", "CF -> PF-A: 200 OK", "PF-B -> CF: 200 OK")
	before(t, sequence(t, "fig6"), "fig6", "PF-B -> CF: 200 OK", "CF -> PF-A: 200 OK")
}

// TestAlternatives checks the openers the patent's "it should be additionally noted"
// passages name.
func TestAlternatives(t *testing.T) {
	opensAfter(t, sequence(t, "fig1-pf-on-ok"), "PF-A on 200", "hop2", "PF-A", "CF", "CF -> PF-A: 200 OK")
	opensAfter(t, sequence(t, "fig1-pf-on-send"), "PF-A on SEND", "hop2", "PF-A", "CF", "ClientA -> PF-A: SEND chunk 1")
	opensAfter(t, sequence(t, "fig1-cf-on-ack"), "CF on ACK", "hop3", "CF", "PF-B", "PF-A -> CF: ACK")
	opensAfter(t, sequence(t, "fig1-cf-on-send"), "CF on SEND", "hop3", "CF", "PF-B", "PF-A -> CF: SEND chunk 1")
	opensAfter(t, sequence(t, "fig5-cf-hop2"), "CF opens hop2", "hop2", "CF", "PF-A", "PF-A -> CF: ACK")
	opensAfter(t, sequence(t, "fig5-cf-hop3"), "CF opens hop3", "hop3", "CF", "PF-B", "PF-B -> CF: 200 OK")
}
