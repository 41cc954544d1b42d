package proptest

import (
	"strings"
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
)

// keepsLink is a CF that never lets its onward links go: it drops the CloseLink and
// AbortLink it emits on hop3, while its machines record the link closed, so that it
// reports itself done (Terminal) with its link still up on the wire, as a role whose
// `waiting` condition lost an operand does. (Its up link it closes: a role that keeps the
// link of a dialog whose BYE it received is found at that step, by ended-link.)
type keepsLink struct{ fsm.Role }

func (r keepsLink) Step(ev fsm.Event) ([]fsm.Action, error) {
	acts, err := r.Role.Step(ev)
	out := acts[:0:0]
	for _, a := range acts {
		switch a.(type) {
		case fsm.CloseLink, fsm.AbortLink:
			if strings.Count(string(a.ActionLeg()), "/") == 2 {
				continue
			}
		}
		out = append(out, a)
	}
	return out, err
}

// TestEndStateFindsLeftovers: a CF that says it is done while its link is still up
// passes the deadlock check, which asks the roles; the end-state property, which reads the
// wire, finds it, on a counterexample that replays.
func TestEndStateFindsLeftovers(t *testing.T) {
	v, _ := fsm.VariantByName("fig1")
	cfg := Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, plant: func(k fsm.RoleKind, r fsm.Role) fsm.Role {
		if k == fsm.RoleCF {
			return keepsLink{r}
		}
		return r
	}}
	res := exploreFinds(t, cfg, ExploreOptions{Workers: 1}, PropEndState)
	t.Logf("%s", res.Violation)
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
