package proptest

import (
	"strings"
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
)

// keepsGuard is a CF that never disarms its guards on hop3: it drops the StopTimer it
// emits there, while its timer machine records the guard stopped, so that it reports
// itself done (Terminal) with a guard still armed on the wire, as a role whose `waiting`
// condition lost an operand does. (A role that keeps a link is found earlier, at the step:
// ended-link holds both ends of a BYE to letting their link go.)
type keepsGuard struct{ fsm.Role }

func (r keepsGuard) Step(ev fsm.Event) ([]fsm.Action, error) {
	acts, err := r.Role.Step(ev)
	out := acts[:0:0]
	for _, a := range acts {
		if _, stop := a.(fsm.StopTimer); stop && strings.Count(string(a.ActionLeg()), "/") == 2 {
			continue
		}
		out = append(out, a)
	}
	return out, err
}

// TestEndStateFindsLeftovers: a CF that says it is done while its guard is still armed
// passes the deadlock check, which asks the roles; the end-state property, which reads the
// wire, finds it, on a counterexample that replays.
func TestEndStateFindsLeftovers(t *testing.T) {
	v, _ := fsm.VariantByName("fig1")
	cfg := Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, plant: func(k fsm.RoleKind, r fsm.Role) fsm.Role {
		if k == fsm.RoleCF {
			return keepsGuard{r}
		}
		return r
	}}
	res := exploreFinds(t, cfg, ExploreOptions{Workers: 1}, PropEndState)
	if !strings.Contains(res.Violation.Detail, "guard timer on hop3 of member 1 armed") {
		t.Fatalf("found %v", res.Violation)
	}
}

// unguarded is a role that never arms a guard timer: it drops every StartTimer.
type unguarded struct{ fsm.Role }

func (r unguarded) Step(ev fsm.Event) ([]fsm.Action, error) {
	acts, err := r.Role.Step(ev)
	out := acts[:0:0]
	for _, a := range acts {
		if _, ok := a.(fsm.StartTimer); !ok {
			out = append(out, a)
		}
	}
	return out, err
}

// TestGuardedWaitFindsUnguardedRoles: a PF-B that arms no guard passes the fault-free
// search, where every peer answers; guarded-wait finds its unguarded INVITE (and a
// ClientA, a member, that arm none, their unguarded waits).
func TestGuardedWaitFindsUnguardedRoles(t *testing.T) {
	v, _ := fsm.VariantByName("fig1")
	for _, k := range []fsm.RoleKind{fsm.RolePFB, fsm.RoleClientA, fsm.RoleClientB} {
		cfg := Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, plant: func(kk fsm.RoleKind, r fsm.Role) fsm.Role {
			if kk == k {
				return unguarded{r}
			}
			return r
		}}
		res, err := Explore(cfg, ExploreOptions{Workers: 1})
		if err != nil || res.Violation == nil || res.Violation.Property != PropGuarded {
			t.Fatalf("%s arming no guard: found %v (err %v), want a %s violation", k, res.Violation, err, PropGuarded)
		}
		t.Logf("%s", res.Violation)
	}
}
