package proptest

import (
	"slices"
	"strings"
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
)

// faultBugs returns the planted bugs of testdata/broken.yaml that need faults to show.
func faultBugs(t *testing.T) []NamedVariant {
	t.Helper()
	all, err := LoadVariants("testdata/broken.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out []NamedVariant
	for _, v := range all {
		if v.Faults > 0 {
			out = append(out, v)
		}
	}
	if len(out) < 7 {
		t.Fatalf("only %d planted fault-path bugs", len(out))
	}
	return out
}

// TestExploreFindsFaultBugs: each planted bug that shows only on a fault path is found by
// the explorer with its fault budget (explore --faults 1) at one member over one PF-B, as
// the property it breaks, on a counterexample that replays and that no shorter path of the
// same configuration beats. With no faults, the same search finds nothing: these are the
// bugs a fault-free search lets through.
func TestExploreFindsFaultBugs(t *testing.T) {
	for _, v := range faultBugs(t) {
		t.Run(v.Name, func(t *testing.T) {
			// The sender's way of ending is a dimension the explorer covers (a failure
			// REPORT that reaches a blind sender needs one that refused them): each sender
			// is clean without faults; then the member faults with every sender, which
			// are small, before the fault steps, up to the first that shows the bug.
			var memberFaults, faultSteps []Config
			for _, sender := range senders {
				base := Config{Variant: v.Variant, Members: 1, PFBs: 1, Chunks: 1, Sender: sender}
				clean, err := Explore(base, ExploreOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if !clean.OK() {
					t.Fatalf("the fault-free search with sender %s already finds %v", sender, clean.Violation)
				}
				for _, c := range FaultConfigs(base, v.Faults) {
					if c.FaultBudget == 0 {
						memberFaults = append(memberFaults, c)
					} else {
						faultSteps = append(faultSteps, c)
					}
				}
			}
			var cfg Config
			var res *ExploreResult
			for _, c := range append(memberFaults, faultSteps...) {
				r, err := Explore(c, ExploreOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if r.Violation != nil {
					cfg, res = c, r
					break
				}
			}
			if res == nil {
				t.Fatalf("the explorer with %d faults missed the planted bug with every sender", v.Faults)
			}
			if res.Violation.Property != v.Expect {
				t.Errorf("found %v (sender %s, member faults %s, %d fault steps), want a %s violation\n%s", res.Violation, cfg.Sender, cfg.FaultLabel(), cfg.FaultBudget, v.Expect, FormatTrace(cfg, res.Trace))
			}
			checkCounterexample(t, cfg, res)
			t.Logf("%s: %s after %d steps (member faults %s, fault steps %d)", v.Name, res.Violation.Property, len(res.Path), cfg.FaultLabel(), cfg.FaultBudget)
		})
	}
}

// TestFaultStepsAreDependent: the sleep sets never prune a fault step nor carry one over:
// every fault step (and every timer) has no actor, which makes it dependent on every step.
func TestFaultStepsAreDependent(t *testing.T) {
	v, _ := fsm.VariantByName("fig1")
	w, err := NewWorld(Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Timers: true, FaultBudget: 1})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[ChoiceKind]bool{}
	// Walk the canonical schedule; at each state every fault choice must have no actor.
	for n := 0; n < 200; n++ {
		choices := w.Choices()
		if len(choices) == 0 {
			break
		}
		normal := 0
		for _, c := range choices {
			switch {
			case c.Kind == ChooseItem || c.Kind == ChooseFrame:
				normal++
				if w.actor(c) < 0 {
					t.Fatalf("%s has no actor", w.Describe(c))
				}
			default:
				kinds[c.Kind] = true
				if w.actor(c) >= 0 {
					t.Fatalf("fault step %s has actor %d", w.Describe(c), w.actor(c))
				}
			}
		}
		if v := w.Apply(choices[w.Earliest(choices[:normal])]); v != nil {
			t.Fatal(v)
		}
	}
	for _, k := range []ChoiceKind{ChooseTimer, ChooseDuplicate, ChooseRefuse, ChooseLoseAck, ChooseReset} {
		if !kinds[k] {
			t.Errorf("the fault-free run never offered fault step kind %d", k)
		}
	}
}

// TestExploreNamedVariantsWithFaults: named variants pass with a budget of one fault, at
// one member over one PF-B, in every way of spending it (FaultConfigs). Three variants
// stand for the figures' families (the receiver opens; the CF opens hop3 against the
// figure on the MSRP SEND; the PFs open on the SEND); `cpmlink explore --variant all
// --members 1 --pfbs 1 --faults 1` runs them all (docs/architecture.md, "Faults").
func TestExploreNamedVariantsWithFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("each search visits 50,000 to 130,000 states")
	}
	for _, name := range []string{"fig4", "fig6-cf-hop3-on-send", "fig1-pf-on-send"} {
		v, ok := fsm.VariantByName(name)
		if !ok {
			t.Fatalf("no variant %s", name)
		}
		for _, cfg := range FaultConfigs(Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1}, 1) {
			res, err := Explore(cfg, ExploreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !res.OK() {
				t.Errorf("%s, member faults %s, %d fault steps: %v\n%s", name, cfg.FaultLabel(), cfg.FaultBudget, res.Violation, FormatTrace(cfg, res.Trace))
			}
			if res.EndStates == 0 {
				t.Errorf("%s, member faults %s: no end state", name, cfg.FaultLabel())
			}
		}
	}
}

// TestReuseAfterRefusedBind: a link its opener learned has failed holds its connection
// no more than a closed one. FIG. 1 at 2 members over 1 PF-B, one fault step: PF-B's guard
// on member 1's hop3 fires early, the CF's bind there is answered 481, and the CF opens
// member 2's hop3 on a new connection, as its engine offers for reuse only the connections
// of links that are still live. The checker counted the failed link's connection as live
// and reported a second connection (`reuse`) until it read the opener's failed end too.
func TestReuseAfterRefusedBind(t *testing.T) {
	v, ok := fsm.VariantByName("fig1")
	if !ok {
		t.Fatal("no variant fig1")
	}
	cfg := Config{Variant: v, Members: 2, PFBs: 1, Chunks: 1, Timers: true, FaultBudget: 1,
		MemberSetups: []core.SetupChoice{core.ChooseActive, core.ChoosePassive}}
	// The whole search is beyond 5 million states; the counterexample was at about 22,000
	// (12 steps), so the first 40,000 are searched.
	res, err := Explore(cfg, ExploreOptions{MaxStates: 40_000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Violation != nil {
		t.Fatalf("%v\n%s", res.Violation, FormatTrace(cfg, res.Trace))
	}
	if !res.Truncated {
		t.Fatalf("the search ended at %d states: the size this test assumes is out of date", res.States)
	}
}

// closesOn is a role that, given an event `on` selects, closes the links it lets go where
// it should abort them: its own end is closed, but the peer is not told, and what is
// queued on the link goes on.
type closesOn struct {
	fsm.Role
	on func(fsm.Event) bool
}

func (r closesOn) Step(ev fsm.Event) ([]fsm.Action, error) {
	acts, err := r.Role.Step(ev)
	if r.on(ev) {
		for i, a := range acts {
			if x, ok := a.(fsm.AbortLink); ok {
				acts[i] = fsm.CloseLink{Leg: x.Leg}
			}
		}
	}
	return acts, err
}

// quietClose is a relay that, told a link failed, closes the links it lets go instead of
// aborting them, so the next hop is not told.
func quietClose(r fsm.Role) fsm.Role {
	return closesOn{r, func(ev fsm.Event) bool { _, ok := ev.(fsm.LinkFailed); return ok }}
}

// TestAbortOnwardTellsNextHop: abort-onward asks for more than a closed end (the planted
// onward-kept leaves the onward links open): a relay that closes them without a word,
// when its upstream link fails mid-message, leaves the next hop waiting as surely.
func TestAbortOnwardTellsNextHop(t *testing.T) {
	v, _ := fsm.VariantByName("fig1")
	cfg := Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Timers: true, FaultBudget: 1}
	cfg.plant = func(k fsm.RoleKind, r fsm.Role) fsm.Role {
		if k == fsm.RolePFA || k == fsm.RoleCF || k == fsm.RolePFB {
			return quietClose(r)
		}
		return r
	}
	res, err := Explore(cfg, ExploreOptions{Workers: 1})
	if err != nil || res.Violation == nil || res.Violation.Property != PropAbortOnward || !strings.Contains(res.Violation.Detail, "without telling") {
		t.Fatalf("found %v (err %v), want a %s violation for a link closed without telling the next hop", res.Violation, err, PropAbortOnward)
	}
	checkCounterexample(t, cfg, res)
}

// guardDrops is a role whose guard on a leg (fire at up, or at down) leaves out the actions
// drop selects, given that leg; with onBye, its answer to a BYE on a leg does instead.
type guardDrops struct {
	fsm.Role
	drop func(a fsm.Action, guarded fsm.LegID) bool
	// onBye plants the drop in the role's answer to a BYE instead of its guard.
	onBye bool
}

func (r guardDrops) Step(ev fsm.Event) ([]fsm.Action, error) {
	acts, err := r.Role.Step(ev)
	var leg fsm.LegID
	switch x := ev.(type) {
	case fsm.Timeout:
		if r.onBye {
			return acts, err
		}
		leg = x.Leg
	case fsm.ByeReceived:
		if !r.onBye {
			return acts, err
		}
		leg = x.Leg
	default:
		return acts, err
	}
	kept := acts[:0]
	for _, a := range acts {
		if !r.drop(a, leg) {
			kept = append(kept, a)
		}
	}
	return kept, err
}

// TestRelayGuardBugsFound plants relays whose guard on the upstream leg leaves out part of
// what the spec's `fire at up` does, at 1 member / 1 PF-B of FIG. 1 with one fault:
//
//   - onward links kept (the mutant drop-statement@1e8d513b): abort-onward covers a guard
//     as it covers a link failure, and ended-link's sender clause now finds it a check
//     earlier, as the guard BYEs the onward dialog in that step (before either, nothing
//     noticed: the member's own guard ends its link later);
//   - no CANCEL, ACK or BYE onward (the ten surviving mutants of stop 23,
//     docs/mutation.md): without checkEndsOnward nothing tells the planted PF-B from
//     the spec, the member's own guard ending what it left open one guard later, and the
//     model has no clock to see the delay (a planted PF-A or CF also leaves the next relay
//     waiting, which terminal sees);
//   - no BYE upstream (the upstream half of the planted relay-lingers, whose onward half
//     abort-onward finds first): the dialog lasts with no guard to end it; the CF stands
//     for the three relays, which share the rule.
func TestRelayGuardBugsFound(t *testing.T) {
	onward := func(a fsm.Action, up fsm.LegID) bool { return a.ActionLeg() != up }
	cases := []struct {
		name   string
		role   fsm.RoleKind
		drop   func(fsm.Action, fsm.LegID) bool
		prop   string
		detail string
	}{
		// The guard BYEs the onward dialog in the same step: ended-link, which holds the
		// end that sends BYE to letting its link go, finds the kept link first.
		{"onward links kept", fsm.RolePFB, func(a fsm.Action, up fsm.LegID) bool {
			_, abort := a.(fsm.AbortLink)
			return abort && onward(a, up)
		}, PropEndedLink, "sent BYE on hop4 of member 1 and kept its link"},
		{"onward dialogs kept", fsm.RolePFB, func(a fsm.Action, up fsm.LegID) bool {
			switch a.(type) {
			case fsm.SendAck, fsm.SendBye, fsm.SendCancel:
				return onward(a, up)
			}
			return false
		}, PropAbortOnward, "neither cancelled nor ended"},
		{"upstream dialog kept", fsm.RoleCF, func(a fsm.Action, up fsm.LegID) bool {
			_, bye := a.(fsm.SendBye)
			return bye && !onward(a, up)
		}, PropGuarded, "dialog has not ended"},
	}
	v, _ := fsm.VariantByName("fig1")
	cfg := Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Timers: true, FaultBudget: 1}
	// One clean search stands for all three plants (they share the configuration).
	exploreClean(t, cfg, ExploreOptions{}, fsm.RoleCF)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			res := exploreFinds(t, withPlant(cfg, c.role, func(r fsm.Role) fsm.Role { return guardDrops{r, c.drop, false} }), ExploreOptions{}, c.prop)
			if !strings.Contains(res.Violation.Detail, c.detail) {
				t.Fatalf("found %v, want %q", res.Violation, c.detail)
			}
		})
	}
}

// TestByeEndsOnward: a BYE from upstream before the whole message arrived ends the
// session a relay serves as its guard does. A blind sender whose guard fires early hangs
// up with its message still on the way, and PF-A, told so by the BYE, must end its
// onward dialog at once (the mutants drop-statement@4845f588 and @bd3242ae dropped the
// onward BYE, and the onward CANCEL). The planted PF-A leaves them to the CF's guard,
// which ends them one guard later and tells the sender nothing new: only abort-onward's
// BYE clause tells it from the spec.
func TestByeEndsOnward(t *testing.T) {
	v, _ := fsm.VariantByName("fig1")
	cfg := Config{Variant: v, Members: 1, PFBs: 1, Chunks: 2, Timers: true, FaultBudget: 1, Sender: core.SenderBlind}
	drop := func(a fsm.Action, up fsm.LegID) bool {
		switch a.(type) {
		case fsm.SendBye, fsm.SendCancel:
			return a.ActionLeg() != up
		}
		return false
	}
	plantFindsSaying(t, cfg, fsm.RolePFA, func(r fsm.Role) fsm.Role { return guardDrops{r, drop, true} }, PropAbortOnward, "a BYE ended its dialog")
}

// TestByeLetsLinkGo: a blind sender whose guard ends its session sends BYE and closes
// its connection gracefully; one that keeps the connection (the mutant
// drop-statement@d25a46d5) holds it until PF-A closes its end, and for ever if PF-A is
// gone. PF-A, told by the BYE, closes its end anyway, so the run ends as the spec's: only
// ended-link's sender clause tells it.
func TestByeLetsLinkGo(t *testing.T) {
	v, _ := fsm.VariantByName("fig1")
	cfg := Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Timers: true, Sender: core.SenderBlind}
	keep := func(a fsm.Action, _ fsm.LegID) bool {
		_, c := a.(fsm.CloseLink)
		return c
	}
	plantFindsSaying(t, cfg, fsm.RoleClientA, func(r fsm.Role) fsm.Role { return guardDrops{r, keep, false} }, PropEndedLink, "sent BYE on hop1 and kept its link")
}

// TestUnsentMessageReportedFailed: a blind sender whose guard fires before its message is
// out (an early timer) records every member failed, as any sender does; one that records
// nothing (the mutant drop-and-operand@fa482c35 ends such a session as if the message
// were out, with BYE and no record) leaves its user without a word on a message that
// never left it. Only the outcome clauses for senders that hear of no member tell it: at
// the step (checkGaveUpUnsent), and at the end of the run.
func TestUnsentMessageReportedFailed(t *testing.T) {
	v, _ := fsm.VariantByName("fig1")
	cfg := Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Timers: true, FaultBudget: 1, Sender: core.SenderBlind}
	mute := func(a fsm.Action, _ fsm.LegID) bool {
		_, f := a.(fsm.Fail)
		return f
	}
	plantFindsSaying(t, cfg, fsm.RoleClientA, func(r fsm.Role) fsm.Role { return guardDrops{r, mute, false} }, PropOutcome, "ended before its message left it")
}

// TestGaveUpStopsSending: a sender whose guard gives up (every member left recorded failed)
// stops its message in that step. One that keeps its link (the mutant
// drop-statement@83208c0c drops the guard's AbortLink) goes on sending a message it has
// just reported failed, which its user will send again. Only the step clause of outcome
// (checkGaveUpStops) tells it: the members may well get the message, and nobody reads
// the sender's link after its session is over.
func TestGaveUpStopsSending(t *testing.T) {
	v, _ := fsm.VariantByName("fig1")
	cfg := Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Timers: true, FaultBudget: 1}
	plantFindsSaying(t, cfg, fsm.RoleClientA, guardCloses, PropOutcome, "went on sending its message")
}

// guardCloses is a role whose guard closes its link where it should abort it: the link
// lets what is queued on it go on, as a role whose machine kept the link up (and so
// closed it at the end of its session) would.
func guardCloses(r fsm.Role) fsm.Role {
	return closesOn{r, func(ev fsm.Event) bool { _, ok := ev.(fsm.Timeout); return ok }}
}

// loseAckRun runs cfg on the canonical schedule (Earliest, which ranks fault steps last),
// but loses the first ACK in flight on leg(w) for good, calling before (if not nil) ahead
// of each step. The run must end quiescent with the ACK lost.
func loseAckRun(t *testing.T, cfg Config, leg func(*World) core.LegID, before func(n int, c Choice, w *World)) *World {
	t.Helper()
	w, err := NewWorld(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := leg(w)
	lost := false
	for n := 0; ; n++ {
		if n == 1000 {
			t.Fatal("the run did not end in 1000 steps")
		}
		choices := w.Choices()
		if len(choices) == 0 {
			break
		}
		pick := w.Earliest(choices)
		for i, c := range choices {
			if !lost && c.Kind == ChooseLoseAck && w.net.bag[c.item].leg == l {
				pick, lost = i, true
			}
		}
		if before != nil {
			before(n, choices[pick], w)
		}
		if v := w.Apply(choices[pick]); v != nil {
			t.Fatalf("step %d (%s): %v", n, w.Describe(choices[pick]), v)
		}
	}
	if !lost {
		t.Fatalf("no ACK on %s was ever in flight", l)
	}
	if v := w.quiescent(); v != nil {
		t.Fatal(v)
	}
	return w
}

// TestLostAckEndsTheSession: an ACK lost for good on hop3 (the ACK of each retransmitted
// 2xx lost too) leaves PF-B's 2xx unconfirmed, and in FIG. 1 PF-B waits for that ACK
// before it ACKs the member and opens hop4 (S111). The guards end what the loss leaves:
// the run ends with every role done, every dialog ended and the sender told the member
// failed, while the checkers hold the member to nothing more (its hop3 is harmed) and the
// sender's hops to everything.
func TestLostAckEndsTheSession(t *testing.T) {
	v, _ := fsm.VariantByName("fig1")
	w := loseAckRun(t, Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Timers: true, FaultBudget: 1},
		func(w *World) core.LegID { return w.memberLeg(0, 3) }, nil)
	if !w.memberHarmed(0) || w.net.harmed {
		t.Errorf("harm: member %v, every member %v; want the member's only", w.memberHarmed(0), w.net.harmed)
	}
	got := w.obs.members[0].result
	if !got.Final() {
		got = w.obs.rest // the group REPORT's word for every member it does not name
	}
	if got.Kind != core.Failed {
		t.Errorf("the sender learned %v of the member; want failed", got)
	}
	if le := w.dialog(w.memberLeg(0, 3)); le.ackRecv || !le.byeSeen() {
		t.Errorf("hop3: ACK received %v, BYE sent %v; want no ACK and a BYE", le.ackRecv, le.byeSeen())
	}
}

// ackOnByeDropped is a PF that, given its upstream's BYE, leaves unACKed a 2xx it is not
// ending with a BYE of its own (the mutant drop-statement@530c721d). End-down ACKs it
// later, before its BYE, so the member still gets the message and no BYE precedes an ACK:
// only the 2xx held past the step the BYE arrived in tells it from the spec
// (checkAckHeld).
type ackOnByeDropped struct{ fsm.Role }

func (r ackOnByeDropped) Step(ev fsm.Event) ([]fsm.Action, error) {
	acts, err := r.Role.Step(ev)
	if _, ok := ev.(fsm.ByeReceived); !ok {
		return acts, err
	}
	byes := map[core.LegID]bool{}
	for _, a := range acts {
		if _, ok := a.(fsm.SendBye); ok {
			byes[a.ActionLeg()] = true
		}
	}
	return slices.DeleteFunc(acts, func(a fsm.Action) bool {
		_, ack := a.(fsm.SendAck)
		return ack && !byes[a.ActionLeg()]
	}), err
}

// TestAckHeldFound: in FIG. 1 PF-A ACKs the CF's 200 when ClientA's ACK arrives (S106).
// ClientA, its message through, hangs up, and its BYE may overtake its ACK (SIP over UDP
// keeps no order between them): PF-A has its dialog's end, not its confirmation, and
// must ACK the 2xx it held in that step. A PF-A that leaves it to end-down is found.
func TestAckHeldFound(t *testing.T) {
	v, _ := fsm.VariantByName("fig1")
	cfg := Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Sender: core.SenderCloses}
	plantFindsSaying(t, cfg, fsm.RolePFA, func(r fsm.Role) fsm.Role { return ackOnByeDropped{r} }, PropAckPer2xx, "pfa holds the 200 OK of hop2 un-ACKed")
}

// TestLostAckMadeUpByBye: the ACK of PF-A's 200 is lost for good, and ClientA's BYE
// arrives in its place before any guard gives up. The loss then costs nothing (PF-A
// takes the BYE as the end of a dialog whose message it has whole, ACKs the CF and
// delivers), so the checkers hold the run to everything: no member harmed, and the
// member holds the message. The sender hangs up after its last 200: one that waits for
// REPORTs never sends the BYE, and only the guards end that run (harmed, as they should).
func TestLostAckMadeUpByBye(t *testing.T) {
	v, _ := fsm.VariantByName("fig1")
	w := loseAckRun(t, Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Timers: true, FaultBudget: 1, Sender: core.SenderCloses},
		func(w *World) core.LegID { return w.hopLeg(1) }, func(n int, c Choice, w *World) {
			if w.net.harmed {
				t.Fatalf("step %d: the run is harmed before %s", n, w.Describe(c))
			}
		})
	if w.net.harmed || w.memberHarmed(0) {
		t.Errorf("harm: every member %v, the member %v; want none", w.net.harmed, w.memberHarmed(0))
	}
	if got := w.obs.members[0].next - 1; got != 1 {
		t.Errorf("the member holds %d of 1 chunks", got)
	}
}

// TestWholeMessageOwedOnward: a relay that holds the whole message owes its members the
// rest of the delivery, whatever becomes of the sender: when its guard upstream fires, it
// ends the onward dialogs only after each member's outcome (end-down). One that aborts
// them at once (the mutant drop-guard@b6482fdf dropped the guard that says so) is found
// at the guard's own step, where a next hop is still receiving (checkKeepsDelivering).
// Here the sender closes its connection after its last 200 and PF-A's guard, armed by
// that, fires before the BYE arrives.
func TestWholeMessageOwedOnward(t *testing.T) {
	v, _ := fsm.VariantByName("fig1")
	cfg := Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Timers: true, FaultBudget: 1, Sender: core.SenderCloses}
	plantFindsSaying(t, cfg, fsm.RolePFA, func(r fsm.Role) fsm.Role { return upGuardAborts{Role: r} }, PropAbortOnward, "fired with the whole message there")
}

// TestWholeMessageOwedToLinksBeingSetUp: the same bug, where the relay aborts only the
// onward links not yet up, which no step check reads as a delivery under way. The sender
// hears of no member, so only the end-state checks tell it (the member lacks the message),
// and only because an early guard upstream no longer excuses a member once the relay
// beyond it holds the whole message and the ACK (lostEarly).
func TestWholeMessageOwedToLinksBeingSetUp(t *testing.T) {
	v, _ := fsm.VariantByName("fig1")
	cfg := Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Timers: true, FaultBudget: 1, Sender: core.SenderCloses}
	plantFindsSaying(t, cfg, fsm.RolePFA, func(r fsm.Role) fsm.Role { return upGuardAborts{Role: r, settingUp: true} }, PropDelivery, "had no fault but holds 0 of 1 chunks")
}

// linkUp: the side's MSRP link machine is up.
func linkUp(d *core.Side) bool {
	for _, m := range d.M {
		if m.Def().Name == "link" {
			return m.Name() == "up"
		}
	}
	return false
}

// upGuardAborts is a relay whose guard upstream aborts every onward link of the session
// at once, whole message or not (settingUp: only those whose link is not up yet).
type upGuardAborts struct {
	fsm.Role
	settingUp bool
}

func (r upGuardAborts) Step(ev fsm.Event) ([]fsm.Action, error) {
	acts, err := r.Role.Step(ev)
	if _, ok := ev.(fsm.Timeout); !ok || err != nil {
		return acts, err
	}
	for _, s := range r.Sessions() {
		if s.Up != nil && s.Up.Leg == ev.EventLeg() {
			for _, d := range s.Downs {
				if !r.settingUp || !linkUp(d) {
					acts = append(acts, fsm.AbortLink{Leg: d.Leg})
				}
			}
		}
	}
	return acts, err
}
