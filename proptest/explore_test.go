package proptest

import (
	"reflect"
	"strings"
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/model"
)

// senders are the ways a sender may end its session: ours waits for every outcome; a
// foreign one hangs up after its last 200, closing its connection or only with BYE.
var senders = core.Senders

// TestExploreFindsPlantedBugs shows that the explorer's checkers fail when they should:
// each variant of testdata/broken.yaml plants one bug, and the explorer must report the
// property it breaks, with a shortest counterexample that replays. Each bug is looked for
// with each way the sender may end (senders, in order): a bug in what happens after a
// foreign sender hangs up shows only with such a sender.
func TestExploreFindsPlantedBugs(t *testing.T) {
	broken, err := LoadVariants("testdata/broken.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(broken) < 4 {
		t.Fatalf("only %d planted bugs", len(broken))
	}
	for _, v := range broken {
		if v.Faults > 0 {
			continue // a fault-path bug: TestExploreFindsFaultBugs
		}
		t.Run(v.Name, func(t *testing.T) {
			// The clients' a=setup choices and the sender's way of ending are dimensions the
			// explorer covers: the first configuration that shows the bug (senders in order,
			// each under every a=setup rotation) must show it as the expected property.
			var cfg Config
			var res *ExploreResult
			states := 0
		search:
			for _, sender := range senders {
				for _, c := range SetupRotations(Config{Variant: v.Variant, Members: 1, PFBs: 1, Chunks: 2, Sender: sender}) {
					r, err := Explore(c, ExploreOptions{})
					if err != nil {
						t.Fatal(err)
					}
					states += r.States
					if r.Violation != nil {
						cfg, res = c, r
						break search
					}
				}
			}
			if res == nil {
				t.Fatalf("the explorer missed the planted bug with every sender and a=setup rotation (%d states)", states)
			}
			if res.Violation.Property != v.Expect {
				t.Errorf("found %v, want a %s violation", res.Violation, v.Expect)
			}
			checkCounterexample(t, cfg, res)
		})
	}
}

// TestVariantsOfRejectsOtherRules: a spec whose rules differ from the generated code's
// cannot have its variants explored with that code.
func TestVariantsOfRejectsOtherRules(t *testing.T) {
	src := model.DefaultSource()
	s, err := model.Parse("changed.yaml", []byte(string(src)+"\n")) // same rules: accepted
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VariantsOf(s); err != nil {
		t.Fatalf("the default spec itself was rejected: %v", err)
	}
	s.Flags = append(s.Flags, &model.Flag{Name: "extra"})
	if _, err := VariantsOf(s); err == nil {
		t.Fatal("a spec with other rules was accepted")
	}
}

func TestCanonicalRunIsClean(t *testing.T) {
	for _, v := range fsm.Variants {
		steps, viol, err := Canonical(Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1})
		if err != nil || viol != nil {
			t.Errorf("%s: %v %v", v.Name, err, viol)
		}
		if len(steps) < 20 {
			t.Errorf("%s: only %d steps", v.Name, len(steps))
		}
	}
}

// checkCounterexample: replaying a violation's path gives the same violation and the
// same trace, and, the search being breadth first, no shorter path reaches a violation:
// every proper prefix of the path ends violation-free.
// exploreFinds explores cfg, requires a violation of prop, and requires its path to
// replay to the same violation; it returns the search's result.
func exploreFinds(t *testing.T, cfg Config, opt ExploreOptions, prop string) *ExploreResult {
	t.Helper()
	res, err := Explore(cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	if res.Violation == nil || res.Violation.Property != prop {
		t.Fatalf("found %v, want a %s violation", res.Violation, prop)
	}
	if _, again, err := Replay(cfg, res.Path); err != nil || again == nil || *again != *res.Violation {
		t.Errorf("replaying %v gave %v (err %v), want %v", res.Path, again, err, res.Violation)
	}
	return res
}

// plantFinds plants wrap around every role of kind k in cfg: the search without it must
// pass, and with it find a prop violation, which replays (exploreFinds).
func plantFinds(t *testing.T, cfg Config, opt ExploreOptions, k fsm.RoleKind, wrap func(fsm.Role) fsm.Role, prop string) *ExploreResult {
	t.Helper()
	exploreClean(t, cfg, opt, k)
	return exploreFinds(t, withPlant(cfg, k, wrap), opt, prop)
}

// plantFindsSaying is plantFinds with the default options, whose violation says want.
func plantFindsSaying(t *testing.T, cfg Config, k fsm.RoleKind, wrap func(fsm.Role) fsm.Role, prop, want string) {
	t.Helper()
	if res := plantFinds(t, cfg, ExploreOptions{}, k, wrap, prop); !strings.Contains(res.Violation.Detail, want) {
		t.Fatalf("found %v, want %q", res.Violation, want)
	}
}

// exploreClean: the search of cfg without a planted role passes (what a planted k is
// told from).
func exploreClean(t *testing.T, cfg Config, opt ExploreOptions, k fsm.RoleKind) {
	t.Helper()
	clean, err := Explore(cfg, opt)
	if err != nil || !clean.OK() {
		t.Fatalf("without the planted %s: %v (err %v)", k, clean.Violation, err)
	}
}

// withPlant returns cfg with wrap around every role of kind k.
func withPlant(cfg Config, k fsm.RoleKind, wrap func(fsm.Role) fsm.Role) Config {
	cfg.plant = func(kind fsm.RoleKind, r fsm.Role) fsm.Role {
		if kind == k {
			return wrap(r)
		}
		return r
	}
	return cfg
}

func checkCounterexample(t *testing.T, cfg Config, res *ExploreResult) {
	t.Helper()
	steps, again, err := Replay(cfg, res.Path)
	if err != nil || again == nil || *again != *res.Violation {
		t.Errorf("replaying %v gave %v (err %v), want %v", res.Path, again, err, res.Violation)
	}
	if !reflect.DeepEqual(steps, res.Trace) {
		t.Errorf("the replayed trace differs from the reported one")
	}
	for n := 0; n < len(res.Path); n++ {
		if _, v, err := Replay(cfg, res.Path[:n]); err != nil || v != nil {
			t.Fatalf("prefix of %d steps already violates: %v (err %v)", n, v, err)
		}
	}
}

// TestTriggerCoverageLive: the points of the knob space that `cpmlink mutate` adds for the
// ways of opening a hop no named variant uses (TriggerCoverage) pass every check on the
// spec, with each client a=setup choice and each sender, as CheckMutant runs them, so that
// a violation on them is the mutant's.
func TestTriggerCoverageLive(t *testing.T) {
	cover := TriggerCoverage(fsm.Variants, figureVariants(t))
	if len(cover) != 3 {
		t.Errorf("%d coverage variants, want 3 (offerer on ok-sent, answerer on ok-received and on ok-sent)", len(cover))
	}
	for _, v := range cover {
		for _, cfg := range SetupRotations(Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Hostile: true}) {
			for _, s := range senders {
				cfg.Sender = s
				res, err := Explore(cfg, ExploreOptions{Workers: 1})
				if err != nil || !res.OK() {
					t.Fatalf("%s, %s, sender %s: %v (err %v)\n%s", v.Name, cfg.SetupLabel(), s, res.Violation, err, FormatTrace(cfg, res.Trace))
				}
			}
		}
	}
}

// TestDeadTriggerOnlyDeadlocks: on the way of opening that TriggerCoverage leaves out (an
// answerer that opens on send-received, DeadTrigger), the spec deadlocks or passes, with
// each client a=setup choice and each sender, as CheckMutant runs it; so any other
// violation there is a mutant's (invert-guard@1a38c889, whose answerer opens at once, is
// killed there as an opening before its trigger: docs/mutation.md).
func TestDeadTriggerOnlyDeadlocks(t *testing.T) {
	v, ok := DeadTrigger(figureVariants(t))
	if !ok {
		t.Fatal("no figure can have a hop opened by its answerer on send-received")
	}
	deadlocks := 0
	for _, cfg := range SetupRotations(Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Hostile: true}) {
		for _, s := range senders {
			cfg.Sender = s
			res, err := Explore(cfg, ExploreOptions{Workers: 1})
			if err != nil || res.Truncated {
				t.Fatalf("%s, %s, sender %s: err %v, truncated %v", v.Name, cfg.SetupLabel(), s, err, res.Truncated)
			}
			if res.Violation != nil {
				if res.Violation.Property != PropDeadlock {
					t.Fatalf("%s, %s, sender %s: %v\n%s", v.Name, cfg.SetupLabel(), s, res.Violation, FormatTrace(cfg, res.Trace))
				}
				deadlocks++
			}
		}
	}
	if deadlocks == 0 {
		t.Errorf("%s never deadlocked: the answerer opened on send-received after all", v.Name)
	}
}

// TestSenderHangsUpInConfirmedDialog: where PF-A, the answerer of hop1, opens it on a 200
// OK (FIG. 1 with hop1 opened by the answerer on ok-received or ok-sent), the sender's link
// comes up while its INVITE is still pending, and its message can be through before its own
// 200 OK arrives. A sender that hangs up after its last 200 must still wait for the 200 OK
// and ACK it before its BYE (RFC 3261 §15: BYE only in a confirmed dialog); so must a blind
// sender whose guard fires early, which ends the session as a failure instead. No named
// variant opens hop1 before the ACK; these points of the knob space are the only ones that
// show it (docs/mutation.md, "Found on the way").
func TestSenderHangsUpInConfirmedDialog(t *testing.T) {
	fig1, ok := fsm.VariantByName("fig1")
	if !ok {
		t.Fatal("no variant fig1")
	}
	vs := EarlyClientHop(fig1)
	if len(vs) != 2 {
		t.Fatalf("EarlyClientHop(fig1) gave %d variants, want 2 (ok-received, ok-sent)", len(vs))
	}
	for _, v := range vs {
		for _, sender := range []core.Sender{core.SenderCloses, core.SenderHangsUp} {
			for _, cfg := range SetupRotations(Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Hostile: true, Sender: sender}) {
				res, err := Explore(cfg, ExploreOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if !res.OK() {
					t.Errorf("%s, %s, sender %s: %v\n%s", v.Name, cfg.SetupLabel(), sender, res.Violation, FormatTrace(cfg, res.Trace))
				}
			}
		}
		// The blind sender's guard fires early only as a fault step; the whole faulted
		// search is millions of states, its first violation (before the fix) was a few
		// hundred in, so a bounded search is enough to show it.
		for _, cfg := range SetupRotations(Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Sender: core.SenderBlind, Timers: true, FaultBudget: 1}) {
			res, err := Explore(cfg, ExploreOptions{MaxStates: 10_000})
			if err != nil {
				t.Fatal(err)
			}
			if res.Violation != nil {
				t.Errorf("%s, %s, blind sender, one fault step: %v\n%s", v.Name, cfg.SetupLabel(), res.Violation, FormatTrace(cfg, res.Trace))
			}
		}
	}
}

// figureVariants returns the variants of FIG. 1–7, in order.
func figureVariants(t *testing.T) []fsm.Variant {
	t.Helper()
	var figs []fsm.Variant
	for _, name := range []string{"fig1", "fig2", "fig3", "fig4", "fig5", "fig6", "fig7"} {
		v, ok := fsm.VariantByName(name)
		if !ok {
			t.Fatalf("no variant %s", name)
		}
		figs = append(figs, v)
	}
	return figs
}

// falseOverride is a PF-A that records, on every INVITE it receives, that a=setup made it
// the listener against the figure, whatever a=setup said (the mutant
// drop-guard@3cb44f48 records SetupOverridden so, its `if up.overridden` dropped).
type falseOverride struct{ fsm.Role }

func (r falseOverride) Step(ev fsm.Event) ([]fsm.Action, error) {
	acts, err := r.Role.Step(ev)
	if x, ok := ev.(fsm.InviteReceived); ok && err == nil {
		acts = append(acts, fsm.SetupOverridden{Leg: x.Leg, Opens: false})
	}
	return acts, err
}

// TestFalseOverrideFound: in FIG. 1 ClientA opens hop1, so PF-A listens as the figure says;
// a record that a=setup overrode that is false, and it would excuse a ClientA that never
// opens (the order rule clienta-opens-hop1 accepts "PF-A overridden" in place of
// ClientA's link-open). The wire is the same with or without it: only checkOverridden
// tells the planted PF-A from the spec.
func TestFalseOverrideFound(t *testing.T) {
	v, _ := fsm.VariantByName("fig1")
	cfg := Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1}
	plantFindsSaying(t, cfg, fsm.RolePFA, func(r fsm.Role) fsm.Role { return falseOverride{r} }, PropInitiative, "overrode the figure's opener")
}

// activeListener is a role that listens for a link as well where its SDP said
// a=setup:active (the end that opens): in a 200 OK, the mutant drop-and-operand@efee5862
// (accept-up without `not (up.setup is active)`); in an INVITE, accept-down as it was
// before stop 29, which let a client whose offer fixed active listen until the 200 OK.
// Its peer never connects to it, so the runs go on as the spec's; only the listening end,
// which a stranger could connect to, tells.
type activeListener struct{ fsm.Role }

func (r activeListener) Step(ev fsm.Event) ([]fsm.Action, error) {
	acts, err := r.Role.Step(ev)
	for _, a := range acts {
		var own fsm.SDP
		switch x := a.(type) {
		case fsm.SendOK:
			own = x.Answer
		case fsm.SendInvite:
			own = x.Offer
		default:
			continue
		}
		if own.Setup == core.SetupActive {
			acts = append(acts, fsm.AcceptLink{Leg: a.ActionLeg(), Local: own})
			break
		}
	}
	return acts, err
}

// TestActiveListenerFound: in FIG. 3 PF-A answers ClientA's actpass offer active (it opens
// hop1); a PF-A that also listens on hop1 is found by checkListen.
func TestActiveListenerFound(t *testing.T) {
	v, _ := fsm.VariantByName("fig3")
	cfg := Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, SenderSetup: core.ChooseActpass}
	plantFindsSaying(t, cfg, fsm.RolePFA, func(r fsm.Role) fsm.Role { return activeListener{r} }, PropInitiative, "listens for the link of hop1")
}

// TestListenAtStartFound: a violation in the sender's very first step is a counterexample
// of no steps, which replays, not an error of the search.
func TestListenAtStartFound(t *testing.T) {
	v, _ := fsm.VariantByName("fig1")
	cfg := Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, SenderSetup: core.ChooseActive}
	res := plantFinds(t, cfg, ExploreOptions{}, fsm.RoleClientA, func(r fsm.Role) fsm.Role { return activeListener{r} }, PropInitiative)
	if len(res.Path) != 0 || !strings.Contains(res.Violation.Detail, "clientA listens for the link of hop1") {
		t.Fatalf("found %v after %d steps", res.Violation, len(res.Path))
	}
}

// TestLateOpeningFound: roles that run fig7-cf-hop3 with the CF opening hop3 on the SEND,
// held to fig7-cf-hop3's own table (the CF opens on its member's 200 OK). In FIG. 7 the CF
// answers at once, so the SEND may come after that 200 OK: the CF then took a step with
// its trigger held and did not open. With the figure's order rules dropped, only the check
// against the table (initiative) tells; with them, the prompt rule tells too (order,
// TestOrderRulesOfAnExtendingSpec). An opening after the trigger passes checkOpen either way.
func TestLateOpeningFound(t *testing.T) {
	v, _ := fsm.VariantByName("fig7-cf-hop3")
	late := v
	late.Trigger[fsm.Hop3] = fsm.TriggerSendReceived
	for _, order := range []fsm.Order{0, v.Order} {
		v.Order, late.Order = order, order
		cfg := Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1}
		exploreClean(t, cfg, ExploreOptions{}, fsm.RoleCF)
		cfg.codeVariant = &late
		res := exploreFinds(t, cfg, ExploreOptions{}, PropInitiative)
		if !strings.Contains(res.Violation.Detail, "trigger ok-received for hop3") {
			t.Errorf("found %v", res.Violation)
		}
	}
}
