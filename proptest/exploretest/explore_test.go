package exploretest

import (
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/proptest"
)

// TestExploreNamedVariants explores every named variant in every interleaving: one member
// with a two-chunk message under every rotation of the clients' a=setup choices and with
// each way of ending the sender has, and two members over two PF-Bs with clients that
// leave the choice. `cpmlink explore` goes to three members.
func TestExploreNamedVariants(t *testing.T) {
	for _, size := range []struct {
		members, pfbs, chunks int
		sender                core.Sender
	}{{1, 1, 2, core.SenderWaits}, {1, 1, 2, core.SenderCloses}, {1, 1, 2, core.SenderHangsUp}, {2, 2, 1, core.SenderWaits}} {
		for _, v := range fsm.Variants {
			cfgs := proptest.SetupRotations(proptest.Config{Variant: v, Members: size.members, PFBs: size.pfbs, Chunks: size.chunks, Sender: size.sender})
			if size.members > 1 {
				cfgs = []proptest.Config{{Variant: v, Members: size.members, PFBs: size.pfbs, Chunks: size.chunks, Sender: size.sender}}
			}
			for _, cfg := range cfgs {
				res, err := proptest.Explore(cfg, proptest.ExploreOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if !res.OK() {
					t.Errorf("%s, %d members over %d PF-Bs, a=setup %s, sender %s: %v\n%s", v.Name, size.members, size.pfbs, cfg.SetupLabel(), size.sender, res.Violation, proptest.FormatTrace(cfg, res.Trace))
					continue
				}
				if res.EndStates == 0 {
					t.Errorf("%s: no end state was reached", v.Name)
				}
			}
		}
	}
}

// TestWorkersDoNotChangeResults: one worker and several find the same states,
// transitions, end states and counterexample paths, on a named variant and on every
// planted defect.
func TestWorkersDoNotChangeResults(t *testing.T) {
	vs, err := proptest.LoadVariants("../testdata/broken.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fig5, _ := fsm.VariantByName("fig5")
	vs = append(vs, proptest.NamedVariant{Variant: fig5})
	for _, v := range vs {
		if v.Faults > 0 {
			continue // without its faults, its base figure's space: fig5 stands for those
		}
		cfg := proptest.Config{Variant: v.Variant, Members: 2, PFBs: 2, Chunks: 1}
		one, err := proptest.Explore(cfg, proptest.ExploreOptions{Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		four, err := proptest.Explore(cfg, proptest.ExploreOptions{Workers: 4})
		if err != nil {
			t.Fatal(err)
		}
		if one.States != four.States || one.EndStates != four.EndStates || one.PlainTransitions != four.PlainTransitions ||
			(one.Violation == nil) != (four.Violation == nil) || one.Violation != nil && *one.Violation != *four.Violation ||
			len(one.Path) != len(four.Path) {
			t.Errorf("%s: one worker %d states, %d end states, %v %v; four workers %d, %d, %v %v", v.Name,
				one.States, one.EndStates, one.Violation, one.Path, four.States, four.EndStates, four.Violation, four.Path)
		}
	}
}
