package proptest

import (
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
)

func TestExploreSmoke(t *testing.T) {
	for _, v := range fsm.Variants {
		res, err := Explore(Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1}, ExploreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Violation != nil {
			t.Errorf("%s: %v", v.Name, res.Violation)
			for _, s := range res.Trace {
				t.Logf("  %s -> %s: %s", s.From, s.To, s.Label)
			}
			continue
		}
		t.Logf("%s: %d states %d transitions %d end states in %v", v.Name, res.States, res.Transitions, res.EndStates, res.Elapsed)
	}
}
