package proptest

import (
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
)

// TestWorkersDoNotChangeResults: one worker and several find the same states,
// transitions, end states and counterexample paths, on a named variant and on every
// planted defect.
func TestWorkersDoNotChangeResults(t *testing.T) {
	vs, err := LoadVariants("testdata/broken.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fig5, _ := fsm.VariantByName("fig5")
	vs = append(vs, NamedVariant{Variant: fig5})
	for _, v := range vs {
		if v.Faults > 0 {
			continue // without its faults, its base figure's space: fig5 stands for those
		}
		cfg := Config{Variant: v.Variant, Members: 2, PFBs: 2, Chunks: 1}
		one, err := Explore(cfg, ExploreOptions{Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		four, err := Explore(cfg, ExploreOptions{Workers: 4})
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
