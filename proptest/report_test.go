package proptest

import (
	"slices"
	"strings"
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
)

// mute is a member that never sends the success REPORT its sender asked for
// (invert-guard@78cf6da3: with one chunk its outcome never becomes delivered, so nothing
// is reported; the sender still learns delivered from PF-B, which counts the 200s).
type mute struct{ fsm.Role }

func (r mute) Step(ev fsm.Event) ([]fsm.Action, error) {
	acts, err := r.Role.Step(ev)
	return slices.DeleteFunc(acts, func(a fsm.Action) bool {
		_, ok := a.(fsm.ReportStatus)
		return ok
	}), err
}

// hasty is a member that reports the message delivered at its first chunk.
type hasty struct{ fsm.Role }

func (r hasty) Step(ev fsm.Event) ([]fsm.Action, error) {
	acts, err := r.Role.Step(ev)
	if x, ok := ev.(fsm.SendReceived); ok && x.Chunk == 1 && !x.Last && x.SuccessReport {
		acts = append(acts, fsm.ReportStatus{Leg: x.Leg, Outcome: core.Outcome{Kind: core.Delivered}})
	}
	return acts, err
}

// TestSuccessReportOwed: a member asked for a success REPORT sends it in the step that
// completes the message, and not before it holds the whole message (RFC 4975 §7.1.2). No
// other property sees either bug: the sender's outcome comes from PF-B's count of 200s.
func TestSuccessReportOwed(t *testing.T) {
	v, _ := fsm.VariantByName("fig1")
	for _, c := range []struct {
		name   string
		chunks int
		wrap   func(fsm.Role) fsm.Role
		detail string
	}{
		{"mute", 1, func(r fsm.Role) fsm.Role { return mute{r} }, "sent none"},
		{"hasty", 2, func(r fsm.Role) fsm.Role { return hasty{r} }, "holding 1 of the message's 2 chunks"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Variant: v, Members: 1, PFBs: 1, Chunks: c.chunks}
			res := plantFinds(t, cfg, ExploreOptions{Workers: 1}, fsm.RoleClientB, c.wrap, PropReports)
			if !strings.Contains(res.Violation.Detail, c.detail) {
				t.Errorf("detail %q, want %q", res.Violation.Detail, c.detail)
			}
			checkCounterexample(t, withPlant(cfg, fsm.RoleClientB, c.wrap), res)
		})
	}
}
