package proptest

import (
	"reflect"
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/model"
)

// TestExploreNamedVariants explores every named variant in every interleaving: one member
// with a two-chunk message, and two members over two PF-Bs. `cpmlink explore` goes to
// three members.
func TestExploreNamedVariants(t *testing.T) {
	for _, size := range []struct{ members, pfbs, chunks int }{{1, 1, 2}, {2, 2, 1}} {
		for _, v := range fsm.Variants {
			cfg := Config{Variant: v, Members: size.members, PFBs: size.pfbs, Chunks: size.chunks}
			res, err := Explore(cfg, ExploreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !res.OK() {
				t.Errorf("%s, %d members over %d PF-Bs: %v\n%s", v.Name, size.members, size.pfbs, res.Violation, FormatTrace(cfg, res.Trace))
				continue
			}
			if res.EndStates == 0 {
				t.Errorf("%s: no end state was reached", v.Name)
			}
		}
	}
}

// TestExploreFindsPlantedBugs shows that the explorer's checkers fail when they should:
// each variant of testdata/broken.yaml plants one bug, and the explorer must report the
// property it breaks, with a shortest counterexample that replays.
func TestExploreFindsPlantedBugs(t *testing.T) {
	s, err := model.Load("testdata/broken.yaml")
	if err != nil {
		t.Fatal(err)
	}
	broken, err := VariantsOf(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(broken) < 4 {
		t.Fatalf("only %d planted bugs", len(broken))
	}
	for _, v := range broken {
		t.Run(v.Name, func(t *testing.T) {
			cfg := Config{Variant: v.Variant, Members: 1, PFBs: 1, Chunks: 2}
			res, err := Explore(cfg, ExploreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Violation == nil {
				t.Fatalf("the explorer missed the planted bug (%d states)", res.States)
			}
			if res.Violation.Property != v.Expect {
				t.Errorf("found %v, want a %s violation", res.Violation, v.Expect)
			}
			steps, again, err := Replay(cfg, res.Path)
			if err != nil || again == nil || *again != *res.Violation {
				t.Errorf("replaying %v gave %v (err %v), want %v", res.Path, again, err, res.Violation)
			}
			if !reflect.DeepEqual(steps, res.Trace) {
				t.Errorf("the replayed trace differs from the reported one")
			}
			// Breadth first: no shorter path reaches a violation. Every proper prefix of the
			// path must end violation-free.
			for n := 0; n < len(res.Path); n++ {
				if _, v, err := Replay(cfg, res.Path[:n]); err != nil || v != nil {
					t.Fatalf("prefix of %d steps already violates: %v (err %v)", n, v, err)
				}
			}
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
