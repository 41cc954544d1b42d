package proptest

import (
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
)

// wrongStatus is a role that rejects with the wrong status: it rewrites the status of
// every SendReject it emits with status from to status to.
type wrongStatus struct {
	fsm.Role
	from, to int
}

func (r wrongStatus) Step(ev fsm.Event) ([]fsm.Action, error) {
	acts, err := r.Role.Step(ev)
	for i, a := range acts {
		if x, ok := a.(fsm.SendReject); ok && x.Status == r.from {
			x.Status = r.to
			acts[i] = x
		}
	}
	return acts, err
}

// TestCancelAnswered487: a relay that answers the INVITE a CANCEL ended with 481 instead
// of 487 (RFC 3261 §9.2) is found by the cancel-487 property with a budget of one fault
// step (the sender's CANCEL is an early timer on its INVITE's guard), on a counterexample
// that replays. The realistic bug cancel-wrong-status is this one in the spec.
func TestCancelAnswered487(t *testing.T) {
	v, _ := fsm.VariantByName("fig2")
	cfg := Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Timers: true, FaultBudget: 1}
	cfg.plant = func(k fsm.RoleKind, r fsm.Role) fsm.Role {
		if k == fsm.RolePFA {
			return wrongStatus{r, 487, 481}
		}
		return r
	}
	res := exploreFinds(t, cfg, ExploreOptions{}, PropCancel487)
	t.Logf("%s\n%s", res.Violation, FormatTrace(cfg, res.Trace))
}

// TestGroupRefused: on FIG. 1–7, a sender writing to a group that does not exist is
// refused with 404, and one that may not write to the group with 403, and no member is
// invited; a CF that answers 500 instead of 404 or 403 is found.
func TestGroupRefused(t *testing.T) {
	for _, v := range figureVariants(t) {
		for _, g := range []core.GroupStatus{core.GroupUnknown, core.GroupForbidden} {
			cfg := Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Group: g, Hostile: true}
			res, err := Explore(cfg, ExploreOptions{Workers: 1})
			if err != nil || !res.OK() || res.EndStates == 0 {
				t.Fatalf("%s, group status %d: %v (err %v)\n%s", v.Name, g, res.Violation, err, FormatTrace(cfg, res.Trace))
			}
		}
	}
	v, _ := fsm.VariantByName("fig1")
	for _, bug := range []struct {
		g    core.GroupStatus
		from int
	}{{core.GroupUnknown, 404}, {core.GroupForbidden, 403}} {
		cfg := Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Group: bug.g, plant: func(k fsm.RoleKind, r fsm.Role) fsm.Role {
			if k == fsm.RoleCF {
				return wrongStatus{r, bug.from, 500}
			}
			return r
		}}
		res, err := Explore(cfg, ExploreOptions{Workers: 1})
		if err != nil || res.Violation == nil || res.Violation.Property != PropOutcome {
			t.Errorf("a CF answering 500 for %d: found %v (err %v), want an %s violation", bug.from, res.Violation, err, PropOutcome)
		}
	}
}

// noTimerC is a PF that, when its guard on the downstream INVITE fires, does not answer
// upstream (status 0: it drops the 408 it sends there) or answers with another status.
type noTimerC struct {
	fsm.Role
	status int
}

func (r noTimerC) Step(ev fsm.Event) ([]fsm.Action, error) {
	acts, err := r.Role.Step(ev)
	if _, ok := ev.(fsm.Timeout); !ok {
		return acts, err
	}
	out := acts[:0:0]
	for _, a := range acts {
		if x, ok := a.(fsm.SendReject); ok && x.Status == 408 {
			if r.status == 0 {
				continue
			}
			x.Status = r.status
			a = x
		}
		out = append(out, a)
	}
	return out, err
}

// TestTimerCAnswersUpstream: FIG. 1 with a member that never answers passes; a PF-B that
// leaves the CF's INVITE unanswered when its guard on the member's INVITE fires (the CF's
// own guard later ends it, with the same 408 for the sender) is found by timer-c, and so
// is one that answers it 480 (the sample mutant change-status@f7b2fdb4: the sender is
// told a status no member gave, which nothing else compares).
func TestTimerCAnswersUpstream(t *testing.T) {
	v, _ := fsm.VariantByName("fig1")
	cfg := Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Timers: true, Faults: map[int]Fault{0: {Kind: Silent}}}
	if res, err := Explore(cfg, ExploreOptions{Workers: 1}); err != nil || !res.OK() {
		t.Fatalf("fig1 with a silent member: %v (err %v)", res.Violation, err)
	}
	for _, status := range []int{0, 480} {
		cfg.plant = func(k fsm.RoleKind, r fsm.Role) fsm.Role {
			if k == fsm.RolePFB {
				return noTimerC{r, status}
			}
			return r
		}
		res, err := Explore(cfg, ExploreOptions{Workers: 1})
		if err != nil || res.Violation == nil || res.Violation.Property != PropTimerC {
			t.Fatalf("status %d: found %v (err %v), want a %s violation", status, res.Violation, err, PropTimerC)
		}
		t.Logf("%s", res.Violation)
	}
}

// giveUpEarly is a CF that answers its upstream INVITE 408 as soon as its guard gives up
// one member's pending INVITE (the CANCEL it sends), although other members may still
// answer: the mutant drop-and-operand@6f12056c's behaviour.
type giveUpEarly struct{ fsm.Role }

func (r giveUpEarly) Step(ev fsm.Event) ([]fsm.Action, error) {
	acts, err := r.Role.Step(ev)
	if _, ok := ev.(fsm.Timeout); !ok {
		return acts, err
	}
	for _, a := range acts {
		if x, ok := a.(fsm.SendCancel); ok {
			if up, ok := parentLeg(x.Leg); ok {
				return append(acts, fsm.SendReject{Leg: up, Status: 408}), err
			}
		}
	}
	return acts, err
}

// TestProxyWaitsForEveryBranch: in FIG. 5 the CF answers upstream only on a member's 200
// or once every member failed; a guard that fires early on one member's INVITE (one fault
// step) must not end the others' chance. The first 60,000 states of 2 members over 1
// PF-B pass; a CF that gives up on the first expired branch is found by best-final.
func TestProxyWaitsForEveryBranch(t *testing.T) {
	v, _ := fsm.VariantByName("fig5")
	cfg := Config{Variant: v, Members: 2, PFBs: 1, Chunks: 1, Timers: true, FaultBudget: 1}
	res, err := Explore(cfg, ExploreOptions{MaxStates: 60_000})
	if err != nil || res.Violation != nil {
		t.Fatalf("fig5: %v (err %v)", res.Violation, err)
	}
	cfg.plant = func(k fsm.RoleKind, r fsm.Role) fsm.Role {
		if k == fsm.RoleCF {
			return giveUpEarly{r}
		}
		return r
	}
	res, err = Explore(cfg, ExploreOptions{MaxStates: 60_000})
	if err != nil || res.Violation == nil || res.Violation.Property != PropBestFinal {
		t.Fatalf("found %v (err %v), want a %s violation", res.Violation, err, PropBestFinal)
	}
	t.Logf("%s", res.Violation)
}

// stuckGuard is a role whose guard timer, when it fires, changes nothing and is armed
// again: the wait it guards never ends.
type stuckGuard struct{ fsm.Role }

func (r stuckGuard) Step(ev fsm.Event) ([]fsm.Action, error) {
	x, ok := ev.(fsm.Timeout)
	if !ok {
		return r.Role.Step(ev)
	}
	snap := r.Snapshot(nil)
	if _, err := r.Role.Step(ev); err != nil {
		return nil, err
	}
	if err := r.Restore(snap); err != nil {
		return nil, err
	}
	return []fsm.Action{fsm.StartTimer{Leg: x.Leg}}, nil
}

// TestGuardFiresFindsStuckGuard: a CF whose guard on a silent member's INVITE fires,
// changes nothing and is armed again is found by guard-fires.
func TestGuardFiresFindsStuckGuard(t *testing.T) {
	v, _ := fsm.VariantByName("fig1")
	cfg := Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Timers: true, Faults: map[int]Fault{0: {Kind: Silent}}}
	cfg.plant = func(k fsm.RoleKind, r fsm.Role) fsm.Role {
		if k == fsm.RoleCF {
			return stuckGuard{r}
		}
		return r
	}
	res, err := Explore(cfg, ExploreOptions{Workers: 1})
	if err != nil || res.Violation == nil || res.Violation.Property != PropGuardFires {
		t.Fatalf("found %v (err %v), want a %s violation", res.Violation, err, PropGuardFires)
	}
	t.Logf("%s", res.Violation)
}
