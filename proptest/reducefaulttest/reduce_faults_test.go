package reducefaulttest

import (
	"fmt"
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/proptest"
	"github.com/cpmlink/cpmlink/proptest/reducetest"
)

// TestReductionKeepsVerdictsWithFaults is reducetest's TestReductionKeepsVerdicts with
// faults: the plain and the reduced search must agree, on every planted fault-path bug and
// on every named variant, with each way of spending a budget of one fault (FaultConfigs).
// The planted bugs run with the fault steps (their searches stop at the violation); the
// named variants with the member faults (a decline, no answer), at one member, and FIG. 1
// and 5 with both members of one PF-B faulty alike, which the symmetry reduction swaps.
// The fault steps' share of the named variants' runs is proptest's
// TestExploreNamedVariantsWithFaults.
func TestReductionKeepsVerdictsWithFaults(t *testing.T) {
	type run struct {
		name string
		cfg  proptest.Config
	}
	bugs, err := proptest.LoadVariants("../testdata/broken.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var runs []run
	for _, v := range bugs {
		if v.Faults == 0 {
			continue // reducetest compares the planted bugs that need no fault
		}
		for _, c := range proptest.FaultConfigs(proptest.Config{Variant: v.Variant, Members: 1, PFBs: 1, Chunks: 1}, v.Faults) {
			runs = append(runs, run{v.Name, c})
		}
	}
	if len(runs) < 7 {
		t.Fatalf("only %d runs of planted fault-path bugs", len(runs))
	}
	// One decline status stands for the others (they differ only in the number carried).
	for _, v := range fsm.Variants {
		for _, f := range []proptest.Fault{{Kind: proptest.Decline, Status: 486}, {Kind: proptest.Silent}} {
			runs = append(runs, run{v.Name, proptest.Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, Timers: true, Faults: map[int]proptest.Fault{0: f}}})
			if (v.Name == "fig1" || v.Name == "fig5") && !testing.Short() {
				runs = append(runs, run{v.Name, proptest.Config{Variant: v, Members: 2, PFBs: 1, Chunks: 1, Timers: true, Faults: map[int]proptest.Fault{0: f, 1: f}}})
			}
		}
	}
	symmetric := 0
	for _, r := range runs {
		plain, red, err := reducetest.PlainAndReduced(r.cfg)
		if err != nil {
			t.Fatal(err)
		}
		reducetest.Compare(t, fmt.Sprintf("%s %d/%d, member faults %s, %d fault steps", r.name, r.cfg.Members, r.cfg.PFBs, r.cfg.FaultLabel(), r.cfg.FaultBudget), plain, red)
		if red.Symmetries >= 2 {
			symmetric++
		}
	}
	if !testing.Short() && symmetric == 0 {
		t.Error("no search with member faults used a symmetry")
	}
}
