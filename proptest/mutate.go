package proptest

import (
	"fmt"
	"slices"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"pgregory.net/rapid"
)

// Mutation testing (docs/mutation.md) runs the checkers of this package on the code
// generated from a mutated spec. CheckMutant is what runs inside the process built with
// that code (proptest/mutrun); MutantRunner, in mutrun.go, builds and starts it.

// MutantPlan bounds the checkers run on one mutant.
type MutantPlan struct {
	// Variants names the variants to check, in order; empty: every named variant.
	Variants []string `json:"variants,omitempty"`
	// Figures names the variants the costlier stages (faults, rapid, two members) run on.
	Figures []string `json:"figures,omitempty"`
	// MaxStates bounds each exhaustive search of one member over one PF-B.
	MaxStates int `json:"max_states"`
	// WideMaxStates bounds each search of two members over one PF-B (0: that stage is off).
	WideMaxStates int `json:"wide_max_states"`
	// Faults runs the one-member search once per fault kind, with guard timers.
	Faults bool `json:"faults"`
	// FaultSteps bounds each search of one member over one PF-B with a budget of one
	// fault step (FaultConfigs: an early guard timer, the sender's CANCEL among them, a
	// duplicated 2xx, a refused connection, a reset link), in states (0: that stage is off).
	FaultSteps int `json:"fault_steps,omitempty"`
	// RapidChecks is the number of rapid schedules per figure (0: rapid is off).
	RapidChecks int `json:"rapid_checks"`
	// Seed makes rapid's draws repeatable.
	Seed uint64 `json:"seed"`
}

// MutantVerdict is what the checkers made of one mutant.
type MutantVerdict struct {
	Killed bool `json:"killed"`
	// Checker is the stage that killed it: "explore 1/1", "explore 1/1 faults",
	// "explore 2/1 faults", "explore 1/1 fault steps", "explore 1/1 named variants",
	// "explore 2/1", "rapid" or "crash".
	Checker  string `json:"checker,omitempty"`
	Variant  string `json:"variant,omitempty"`
	Run      string `json:"run,omitempty"`
	Property string `json:"property,omitempty"`
	Detail   string `json:"detail,omitempty"`
	// Ran lists the stages that ran to the end without a violation.
	Ran []string `json:"ran,omitempty"`
	// Truncated counts the searches cut short by their bound (they prove nothing).
	Truncated int   `json:"truncated,omitempty"`
	Runs      int   `json:"runs"`
	ElapsedMS int64 `json:"elapsed_ms"`
}

// rotationFaultSteps bounds the fault-step searches under the a=setup rotations
// (CheckMutant).
const rotationFaultSteps = 20000

// wideFaultSteps bounds the fault-step searches of two members over one PF-B: a guard
// that gives up one branch early while the other is pending (a CF that then gives up on
// the whole group, best-final) is a few steps from the start.
const wideFaultSteps = 10000

// mutantFaults are the member faults the one-member search is run with, one at a time.
var mutantFaults = []Fault{
	{Kind: Decline, Status: 486}, {Kind: Silent}, {Kind: RefuseHop3}, {Kind: RefuseHop4}, {Kind: BreakHop4, After: 1}, {Kind: HangUp},
}

// CheckMutant runs the checkers on the named variants of the generated code, cheapest
// first, and stops at the first violation. The code under test is whatever package fsm
// this binary was built with.
func CheckMutant(all []fsm.Variant, p MutantPlan) (out MutantVerdict) {
	start := time.Now()
	defer func() { out.ElapsedMS = time.Since(start).Milliseconds() }()
	pick := func(names []string) []fsm.Variant {
		if len(names) == 0 {
			return all
		}
		var vs []fsm.Variant
		for _, n := range names {
			for _, v := range all {
				if v.Name == n {
					vs = append(vs, v)
				}
			}
		}
		return vs
	}
	vs := pick(p.Variants)
	figs := vs
	if len(p.Figures) > 0 {
		figs = nil
		for _, v := range pick(p.Figures) {
			if len(p.Variants) == 0 || slices.Contains(p.Variants, v.Name) {
				figs = append(figs, v)
			}
		}
	}
	senders := core.Senders
	// exploreBut kills the mutant on any violation but one of the property expected (none:
	// every violation kills).
	exploreBut := func(stage string, cfg Config, max int, expected string) bool {
		out.Runs++
		r, err := Explore(cfg, ExploreOptions{MaxStates: max, Workers: 1})
		if err != nil {
			out.Killed, out.Checker, out.Variant, out.Property, out.Detail = true, stage, cfg.Variant.Name, "error", err.Error()
			return true
		}
		if r.Truncated {
			out.Truncated++
		}
		if r.Violation != nil && r.Violation.Property != expected {
			out.Killed, out.Checker, out.Variant, out.Property, out.Detail = true, stage, cfg.Variant.Name, r.Violation.Property, r.Violation.Detail
			out.Run = fmt.Sprintf("a=setup %s, sender %s, faults %v", cfg.SetupLabel(), cfg.Sender, cfg.Faults)
			return true
		}
		return false
	}
	explore := func(stage string, cfg Config, max int) bool { return exploreBut(stage, cfg, max, "") }
	// The figures first: most mutants break them, and the other variants cost as much each.
	order := append(slices.Clone(figs), slices.DeleteFunc(slices.Clone(vs), func(v fsm.Variant) bool {
		return slices.ContainsFunc(figs, func(f fsm.Variant) bool { return f.Name == v.Name })
	})...)
	for _, v := range order {
		for _, cfg := range SetupRotations(Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Hostile: true}) {
			for _, s := range senders {
				cfg.Sender = s
				if explore("explore 1/1", cfg, p.MaxStates) {
					return out
				}
			}
		}
	}
	// The ways of opening a hop that no named variant uses (TriggerCoverage): a condition
	// of the spec that only they evaluate is checked nowhere else. A few thousand states
	// each.
	for _, v := range TriggerCoverage(all, figs) {
		for _, cfg := range SetupRotations(Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Hostile: true}) {
			for _, s := range senders {
				cfg.Sender = s
				if explore("explore 1/1", cfg, p.MaxStates) {
					return out
				}
			}
		}
	}
	// The way of opening that deadlocks by design (DeadTrigger): a condition that opens
	// that hop all the same opens it before its trigger could hold.
	if v, ok := DeadTrigger(figs); ok {
		for _, cfg := range SetupRotations(Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Hostile: true}) {
			for _, s := range senders {
				cfg.Sender = s
				if exploreBut("explore 1/1", cfg, p.MaxStates, PropDeadlock) {
					return out
				}
			}
		}
	}
	// A message of two chunks, to a sender that asks for success REPORTs: a member must
	// not take a part for the whole (drop-guard@3574f2e7 recorded delivered on every chunk
	// and reported the first), which one chunk cannot show. A few thousand states each.
	for _, v := range figs {
		if explore("explore 1/1", Config{Variant: v, Members: 1, PFBs: 1, Chunks: 2, Hostile: true}, p.MaxStates) {
			return out
		}
	}
	// A group the CF cannot serve (none by that name; the sender may not write to it):
	// a handful of states each.
	for _, v := range figs {
		for _, g := range []core.GroupStatus{core.GroupUnknown, core.GroupForbidden} {
			if explore("explore 1/1", Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Hostile: true, Group: g}, p.MaxStates) {
				return out
			}
		}
	}
	out.Ran = append(out.Ran, "explore 1/1")
	if p.Faults {
		// With cpmlink's sender, and with a blind one (Failure-Report: no), whose guard
		// ends its session: a member's failure REPORT must stop at PF-A (RFC 4975
		// §7.1.2), and a guard that fires before the message is out is a failure.
		for _, v := range figs {
			for _, s := range []core.Sender{core.SenderWaits, core.SenderBlind} {
				for _, f := range mutantFaults {
					cfg := Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Timers: true, Hostile: true, Faults: map[int]Fault{0: f}, Sender: s}
					if explore("explore 1/1 faults", cfg, p.MaxStates) {
						return out
					}
				}
			}
		}
		out.Ran = append(out.Ran, "explore 1/1 faults")
		// Two members behind one PF-B, the first faulty and the second healthy: what one
		// member's failure must not do to the other (a CF that gives up on the group at the
		// first decline). A few thousand states each.
		for _, v := range figs {
			for _, f := range mutantFaults[:2] {
				cfg := Config{Variant: v, Members: 2, PFBs: 1, Chunks: 1, Timers: true, Hostile: true, Faults: map[int]Fault{0: f}}
				if explore("explore 2/1 faults", cfg, p.MaxStates) {
					return out
				}
			}
		}
		out.Ran = append(out.Ran, "explore 2/1 faults")
	}
	if p.RapidChecks > 0 {
		for _, v := range figs {
			out.Runs++
			if viol, msg := rapidCheck(v, p.RapidChecks, p.Seed); viol != "" {
				out.Killed, out.Checker, out.Variant, out.Property, out.Detail = true, "rapid", v.Name, viol, msg
				return out
			}
		}
		out.Ran = append(out.Ran, "rapid")
	}
	if p.FaultSteps > 0 {
		for _, v := range figs {
			for _, cfg := range FaultConfigs(Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Hostile: true}, 1) {
				// The member faults alone ran in the stage above (one decline status
				// stands for the others there; the budget's own configurations run here).
				if cfg.FaultBudget == 0 && (cfg.Faults[0].Status == 486 || cfg.Faults[0].Kind == Silent || cfg.Faults[0].Kind == HangUp) {
					continue
				}
				if explore("explore 1/1 fault steps", cfg, p.FaultSteps) {
					return out
				}
			}
			// The fault step under the a=setup rotations (the search above leaves every
			// client at actpass), bounded lower: a client that fixes its role meets a guard
			// that gives up its leg early (a 200 that crosses the CANCEL settles the party
			// of a link already aborted) near the start of the run, which a breadth-first
			// search reaches within a few hundred states.
			for _, rc := range SetupRotations(Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Hostile: true}) {
				for _, cfg := range FaultConfigs(rc, 1) {
					if cfg.FaultBudget == 0 {
						continue
					}
					if explore("explore 1/1 fault steps", cfg, min(p.FaultSteps, rotationFaultSteps)) {
						return out
					}
				}
			}
			// A blind sender (Failure-Report: no) with one fault step: a guard that fires
			// before its message is out must still record every member failed
			// (drop-and-operand@fa482c35). Bounded as the rotations: it fires near the start.
			blind := Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Hostile: true, Sender: core.SenderBlind, Timers: true, FaultBudget: 1}
			if explore("explore 1/1 fault steps", blind, min(p.FaultSteps, rotationFaultSteps)) {
				return out
			}
		}
		// A blind sender whose guard fires early where PF-A opens hop1 on a 200 OK, so the
		// message may be out before the sender's dialog is confirmed (EarlyClientHop): its
		// BYE must wait for that 200 OK (the sender's fire rule). Bounded as the rotations.
		var early []fsm.Variant
		if len(figs) > 0 {
			early = EarlyClientHop(figs[0])
		}
		for _, v := range early {
			for _, cfg := range SetupRotations(Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Sender: core.SenderBlind, Timers: true, FaultBudget: 1}) {
				if explore("explore 1/1 fault steps", cfg, min(p.FaultSteps, rotationFaultSteps)) {
					return out
				}
			}
		}
		out.Ran = append(out.Ran, "explore 1/1 fault steps")
		// Two members behind one PF-B, with and without a decline of the first: a fault
		// step meets a relay with one branch over and another pending (a CANCEL from
		// upstream must go to the pending branch only).
		for _, v := range figs {
			for _, mf := range []map[int]Fault{nil, {0: mutantFaults[0]}} {
				cfg := Config{Variant: v, Members: 2, PFBs: 1, Chunks: 1, Timers: true, Hostile: true, FaultBudget: 1, Faults: mf}
				if explore("explore 2/1 fault steps", cfg, min(p.FaultSteps, wideFaultSteps)) {
					return out
				}
			}
		}
		out.Ran = append(out.Ran, "explore 2/1 fault steps")
	}
	// Every other named variant once, cpmlink's sender and its clients at actpass: a
	// condition that only a variant outside the plan reaches (drop-and-operand@51894819
	// let the CF open hop3 before the member's 200 OK told it where, which only a CF that
	// opens on the upstream ACK can do: fig1-cf-on-ack). About a thousand states each, and
	// last, so that only the mutants every other stage let through pay for it.
	for _, v := range all {
		if slices.ContainsFunc(vs, func(x fsm.Variant) bool { return x.Name == v.Name }) {
			continue
		}
		if explore("explore 1/1 named variants", Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Hostile: true}, p.MaxStates) {
			return out
		}
	}
	out.Ran = append(out.Ran, "explore 1/1 named variants")
	if p.WideMaxStates > 0 {
		for _, v := range figs {
			for _, s := range senders {
				cfg := Config{Variant: v, Members: 2, PFBs: 1, Chunks: 1, Sender: s}
				if explore("explore 2/1", cfg, p.WideMaxStates) {
					return out
				}
			}
		}
		out.Ran = append(out.Ran, "explore 2/1")
	}
	return out
}

// rapidCheck runs rapid's search on a variant with faults for up to two members over two
// PF-Bs, and returns the property violated ("panic" for a crash) and its message. The
// number of checks and the seed are rapid's flags, which the caller sets (rapid reads
// them from the command line: see proptest/mutrun).
func rapidCheck(v fsm.Variant, checks int, seed uint64) (string, string) {
	tb := &mutantTB{}
	var found *Violation
	func() {
		defer func() {
			if r := recover(); r != nil {
				tb.failed, tb.msg = true, fmt.Sprint(r)
			}
		}()
		rapid.Check(tb, func(t *rapid.T) {
			cfg := DrawConfig(t, v, Sizes{MaxMembers: 2, MaxPFBs: 2, MaxChunks: 2, MinChunks: 1, Faults: true})
			_, viol := RunDrawn(t, cfg)
			if viol != nil {
				found = viol
				t.Fatalf("%s: %s", viol.Property, viol.Detail)
			}
		})
	}()
	if !tb.failed {
		return "", ""
	}
	if found != nil {
		return found.Property, found.Detail
	}
	return "panic", tb.msg
}

// mutantTB is the testing.TB rapid reports to outside a test: it keeps the first failure.
type mutantTB struct {
	failed bool
	msg    string
}

func (t *mutantTB) Helper()                   {}
func (t *mutantTB) Name() string              { return "mutant" }
func (t *mutantTB) Logf(string, ...any)       {}
func (t *mutantTB) Log(...any)                {}
func (t *mutantTB) Skipf(string, ...any)      {}
func (t *mutantTB) Skip(...any)               {}
func (t *mutantTB) SkipNow()                  {}
func (t *mutantTB) Errorf(f string, a ...any) { t.fail(fmt.Sprintf(f, a...)) }
func (t *mutantTB) Error(a ...any)            { t.fail(fmt.Sprint(a...)) }
func (t *mutantTB) Fatalf(f string, a ...any) { t.fail(fmt.Sprintf(f, a...)) }
func (t *mutantTB) Fatal(a ...any)            { t.fail(fmt.Sprint(a...)) }
func (t *mutantTB) FailNow()                  { t.fail("") }
func (t *mutantTB) Fail()                     { t.fail("") }
func (t *mutantTB) Failed() bool              { return t.failed }
func (t *mutantTB) fail(msg string) {
	if !t.failed || t.msg == "" {
		t.msg = msg
	}
	t.failed = true
}
