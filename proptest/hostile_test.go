package proptest

import (
	"strings"
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
)

// TestHostileInputRefused: on FIG. 1–7 at one member over one PF-B, every role refuses
// every input the wire makes hostile, in every state the search reaches, with each client
// a=setup choice and the sender that waits (`cpmlink mutate` runs every sender).
func TestHostileInputRefused(t *testing.T) {
	for _, v := range figureVariants(t) {
		for _, cfg := range SetupRotations(Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Hostile: true}) {
			for _, s := range []core.Sender{core.SenderWaits} {
				cfg.Sender = s
				res, err := Explore(cfg, ExploreOptions{Workers: 1})
				if err != nil {
					t.Fatalf("%s, %s, sender %s: %v", v.Name, cfg.SetupLabel(), s, err)
				}
				if !res.OK() {
					t.Fatalf("%s, %s, sender %s: %v\n%s", v.Name, cfg.SetupLabel(), s, res.Violation, FormatTrace(cfg, res.Trace))
				}
			}
		}
	}
}

// deaf is a role that takes an input it should refuse as if it were valid: it drops the
// Refuse its machines emit for one kind of input, as a reject cell of the spec made an
// ignore would (the mutants reject-to-ignore and drop-cell of docs/mutation.md).
type deaf struct {
	fsm.Role
	kind string
}

func (d deaf) Step(ev fsm.Event) ([]fsm.Action, error) {
	acts, err := d.Role.Step(ev)
	if ev.Kind() != d.kind {
		return acts, err
	}
	var out []fsm.Action
	for _, a := range acts {
		if _, ok := a.(core.Refuse); !ok {
			out = append(out, a)
		}
	}
	return out, err
}

// TestHostileProbeFindsDeafRoles: a role that ignores an input only a broken peer sends
// (an ACK before any 2xx, a BYE outside a dialog, a non-2xx after a 2xx, a SEND, a
// response or a REPORT on a link that is not up, a second connection for a link that is
// up) passes every other property, and the hostile probes find it, on a counterexample
// that replays. With the probes off, the same search finds nothing.
func TestHostileProbeFindsDeafRoles(t *testing.T) {
	v, _ := fsm.VariantByName("fig1")
	for _, bug := range []struct {
		role fsm.RoleKind
		kind string
	}{
		{fsm.RolePFB, "AckReceived"},
		{fsm.RoleCF, "ByeReceived"},
		{fsm.RoleClientA, "ByeReceived"},
		{fsm.RolePFA, "RejectReceived"},
		{fsm.RoleClientB, "SendReceived"},
		{fsm.RoleCF, "MessageAcked"},
		{fsm.RolePFB, "ReportReceived"},
		{fsm.RolePFA, "LinkUp"},
	} {
		t.Run(bug.role.String()+"-"+bug.kind, func(t *testing.T) {
			probeFinds(t, v, bug.role, func(r fsm.Role) fsm.Role { return deaf{r, bug.kind} }, true)
		})
	}
}

// touchy is a role with no cell for an input it should take quietly: where its machines
// ignore an input of one kind (no action), it fails instead, as a narrowed or dropped
// ignore cell of the spec would (narrow-cell, drop-cell in docs/mutation.md).
type touchy struct {
	fsm.Role
	kind string
}

func (r touchy) Step(ev fsm.Event) ([]fsm.Action, error) {
	acts, err := r.Role.Step(ev)
	if ev.Kind() == r.kind && err == nil && len(acts) == 0 {
		return nil, core.ErrNoCell
	}
	return acts, err
}

// TestHostileProbeFindsTouchyRoles: a role with no cell for what a standard peer may send
// and the search never delivers (a CANCEL that crossed the final response, a SEND still in
// flight when the link was let go, a 2xx retransmitted after the dialog ended, an INVITE
// retransmitted after the final response) passes the fault-free search; the probes find it.
func TestHostileProbeFindsTouchyRoles(t *testing.T) {
	v, _ := fsm.VariantByName("fig1")
	for _, bug := range []struct {
		role fsm.RoleKind
		kind string
	}{
		{fsm.RolePFB, "CancelReceived"},
		{fsm.RoleClientB, "SendReceived"},
		{fsm.RoleCF, "OKReceived"},
		{fsm.RoleClientB, "InviteReceived"},
	} {
		t.Run(bug.role.String()+"-"+bug.kind, func(t *testing.T) {
			probeFinds(t, v, bug.role, func(r fsm.Role) fsm.Role { return touchy{r, bug.kind} }, false)
		})
	}
}

// probeFinds plants wrap around role in v at 1 member / 1 PF-B (with cfg's faults, if
// any): the search without the probes must pass, the search with them must find a
// hostile-refused violation, and replaying its path must give the same one (trace: log
// the counterexample).
func probeFinds(t *testing.T, v fsm.Variant, role fsm.RoleKind, wrap func(fsm.Role) fsm.Role, trace bool, faults ...map[int]Fault) *ExploreResult {
	t.Helper()
	cfg := Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, plant: func(k fsm.RoleKind, r fsm.Role) fsm.Role {
		if k == role {
			return wrap(r)
		}
		return r
	}}
	if len(faults) > 0 {
		cfg.Faults = faults[0]
	}
	clean, err := Explore(cfg, ExploreOptions{Workers: 1})
	if err != nil || !clean.OK() {
		t.Fatalf("without the probes: %v (err %v)", clean.Violation, err)
	}
	cfg.Hostile = true
	res := exploreFinds(t, cfg, ExploreOptions{Workers: 1}, PropHostile)
	if trace {
		t.Logf("%s\n%s", res.Violation, FormatTrace(cfg, res.Trace))
	} else {
		t.Logf("%s", res.Violation)
	}
	return res
}

// TestHostileProbeFindsLateBranch2xx: after a member declined, a forking proxy may still
// forward another branch's 2xx (RFC 3261 §16.7 step 5). A PF-B with no cell for it passes
// the search, which never delivers one; the probe finds it.
func TestHostileProbeFindsLateBranch2xx(t *testing.T) {
	v, _ := fsm.VariantByName("fig1")
	declines := map[int]Fault{0: {Kind: Decline, Status: 486}}
	res := probeFinds(t, v, fsm.RolePFB, func(r fsm.Role) fsm.Role { return touchy{r, "OKReceived"} }, false, declines)
	if !strings.Contains(res.Violation.Detail, "forking proxy") {
		t.Fatalf("found %v, want the late branch's 2xx", res.Violation)
	}
}
