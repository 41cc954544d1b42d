package proptest

import (
	"hash/maphash"
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
)

// TestSymmetryClassesAreConsistent walks every state of the plain search (its own
// breadth-first walk, not Explore's) and hashes each up to symmetry: every state of one
// class must have as many choices and the same end verdict, and the reduced search must
// visit exactly one state per class.
// With member faults (both members alike, so that they stay interchangeable) and guard
// timers, the classes must be consistent too.
func TestSymmetryClassesAreConsistent(t *testing.T) {
	silent := map[int]Fault{0: {Kind: Silent}, 1: {Kind: Silent}}
	declined := map[int]Fault{0: {Kind: Decline, Status: 486}, 1: {Kind: Decline, Status: 486}}
	for _, tc := range []struct {
		name   string
		faults map[int]Fault
	}{{"fig1", nil}, {"fig5", nil}, {"fig1", silent}, {"fig2", declined}} {
		name := tc.name
		v, _ := fsm.VariantByName(name)
		cfg := Config{Variant: v, Members: 2, PFBs: 2, Chunks: 1, Faults: tc.faults, Timers: tc.faults != nil}
		w, err := NewWorld(cfg)
		if err != nil {
			t.Fatal(err)
		}
		seed := maphash.MakeSeed()
		c := newCanon(w, seed)
		if c == nil || len(c.syms) != 2 {
			t.Fatalf("%s: no symmetry found at 2 members over 2 PF-Bs", name)
		}
		table := newSnapTable()
		type class struct {
			choices int
			end     string
		}
		classes := map[uint64]class{}
		seen := map[string]bool{}
		frontier := [][]byte{w.Save(nil)}
		seen[string(frontier[0])] = true
		for len(frontier) > 0 {
			var next [][]byte
			for _, st := range frontier {
				if err := w.Load(st); err != nil {
					t.Fatal(err)
				}
				ids := make([]int32, len(w.snaps))
				for i, s := range w.snaps {
					ids[i] = table.id(s)
				}
				fp, ok := c.fingerprint(ids, w.saveNet(nil))
				if !ok {
					t.Fatalf("%s: a state could not be renamed", name)
				}
				choices := w.Choices()
				k := class{choices: len(choices)}
				if len(choices) == 0 {
					if v := w.quiescent(); v != nil {
						k.end = v.Error()
					}
				}
				if old, ok := classes[fp]; ok && old != k {
					t.Fatalf("%s: one class holds states with %+v and %+v", name, old, k)
				}
				classes[fp] = k
				for i := range choices {
					if err := w.Load(st); err != nil {
						t.Fatal(err)
					}
					if v := w.Apply(w.Choices()[i]); v != nil {
						t.Fatalf("%s: %v", name, v)
					}
					b := w.Save(nil)
					if !seen[string(b)] {
						seen[string(b)] = true
						next = append(next, b)
					}
				}
			}
			frontier = next
		}
		red, err := Explore(cfg, ExploreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if red.States != len(classes) || len(classes) >= len(seen) {
			t.Errorf("%s: %d states, %d classes, the reduced search visited %d", name, len(seen), len(classes), red.States)
		}
	}
}

// TestSymmetryNeedsAlikeConfigs: members configured differently (one declines) are not
// swapped.
func TestSymmetryNeedsAlikeConfigs(t *testing.T) {
	v, _ := fsm.VariantByName("fig1")
	w, err := NewWorld(Config{Variant: v, Members: 2, PFBs: 1, Chunks: 1})
	if err != nil {
		t.Fatal(err)
	}
	if syms := symmetries(w); len(syms) != 2 {
		t.Fatalf("%d symmetries for two alike members", len(syms))
	}
	w.roles[w.cfg.memberIdx(1)].Config().Answer = core.Answer{Mode: core.AnswerDecline, Status: 486}
	if syms := symmetries(w); syms != nil {
		t.Fatalf("%d symmetries for members that answer differently", len(syms))
	}
}

// TestSymmetryKeepsFaultBudget: the fault budget left and whether a fault harmed the run
// are part of a state's class: states that differ only in them are not merged.
func TestSymmetryKeepsFaultBudget(t *testing.T) {
	v, _ := fsm.VariantByName("fig1")
	w, err := NewWorld(Config{Variant: v, Members: 2, PFBs: 2, Chunks: 1, Timers: true, FaultBudget: 1})
	if err != nil {
		t.Fatal(err)
	}
	c := newCanon(w, maphash.MakeSeed())
	if c == nil {
		t.Fatal("no symmetry at 2 members over 2 PF-Bs with a fault budget")
	}
	table := newSnapTable()
	fp := func() uint64 {
		ids := make([]int32, len(w.snaps))
		for i, s := range w.snaps {
			ids[i] = table.id(s)
		}
		h, ok := c.fingerprint(ids, w.saveNet(nil))
		if !ok {
			t.Fatal("the state could not be renamed")
		}
		return h
	}
	base := fp()
	w.net.faultsLeft = 0
	spent := fp()
	w.net.harmed = true
	harmed := fp()
	if base == spent || spent == harmed || base == harmed {
		t.Errorf("fingerprints %x (budget 1), %x (spent), %x (harmed): states merged", base, spent, harmed)
	}
}
