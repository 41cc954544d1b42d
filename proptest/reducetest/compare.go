package reducetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/proptest"
)

// Size is one group size both searches run at.
type Size struct{ Members, PFBs, Chunks int }

// KeepsVerdicts runs the plain search and the reduced one on every named variant and every
// planted defect of the spec file planted, at each of sizes (at more than one member, the
// seven figures only), under the clients' a=setup rotations and the sender's ways of
// ending, and requires of each pair what Compare does. It is the body of this package's
// test and of widetest's, which split the sizes between two packages so that each stays
// within go test's ten minutes.
func KeepsVerdicts(t *testing.T, planted string, sizes ...Size) {
	t.Helper()
	vs, err := proptest.LoadVariants(planted)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range fsm.Variants {
		vs = append(vs, proptest.NamedVariant{Variant: v})
	}
	pruned, symmetric, wide := 0, 0, false
	for _, size := range sizes {
		wide = wide || size.Members > 1
		for _, v := range vs {
			// Larger sizes are where the symmetries are: there the seven figures, every
			// verdict and planted defect having been compared at one member (the defects'
			// counterexamples are all one-member ones).
			if size.Members > 1 && !isFigure(v.Name) {
				continue
			}
			// A planted bug that shows only under faults is, without them, its base figure
			// again; reducefaulttest compares it with its faults.
			if v.Faults > 0 {
				continue
			}
			// The clients' a=setup choices and the sender's way of ending are dimensions the
			// explorer covers (proptest's TestExploreFindsPlantedBugs): at one member every sender under
			// every a=setup rotation (the blind sender, which differs from one that hangs up
			// only in what it asks for and when it ends, under the first: the package must
			// stay within go test's ten minutes); larger, clients that leave the choice and a
			// sender that waits (symmetric), and one rotation with fixed roles and a sender
			// that closes (no symmetry).
			base := proptest.Config{Variant: v.Variant, Members: size.Members, PFBs: size.PFBs, Chunks: size.Chunks}
			var cfgs []proptest.Config
			if size.Members == 1 {
				for _, sender := range core.Senders {
					c := base
					c.Sender = sender
					rots := proptest.SetupRotations(c)
					if sender == core.SenderBlind {
						rots = rots[:1]
					}
					cfgs = append(cfgs, rots...)
				}
			} else {
				cfgs = append(cfgs, base)
				if size.PFBs == 1 {
					fixed := proptest.SetupRotations(base)[1]
					fixed.Sender = core.SenderCloses
					cfgs = append(cfgs, fixed)
				}
			}
			var first *proptest.Violation
			for _, cfg := range cfgs {
				plain, red, err := PlainAndReduced(cfg)
				if err != nil {
					t.Fatal(err)
				}
				Compare(t, fmt.Sprintf("%s %d/%d (%s, sender %s)", v.Name, size.Members, size.PFBs, cfg.SetupLabel(), cfg.Sender), plain, red)
				if first == nil {
					first = red.Violation
				}
				pruned += red.Asleep
				if red.Symmetries >= 2 {
					symmetric++
				}
			}
			// A planted bug must be found, as its property, by the first configuration that
			// shows one (in the order TestExploreFindsPlantedBugs tries them).
			if v.Expect != "" && v.Faults == 0 && size.Chunks == 2 && (first == nil || first.Property != v.Expect) {
				t.Errorf("%s 1/1: reduced search found %v first, want %s", v.Name, first, v.Expect)
			}
		}
	}
	if pruned == 0 {
		t.Error("the sleep sets never pruned a step")
	}
	if wide && symmetric == 0 {
		t.Error("no search used a symmetry")
	}
}

// Compare fails t unless the reduced search's result red keeps the verdict of the plain
// search's plain on the configuration called name: the same verdict, a counterexample of
// the same length, and no more steps taken. Without symmetries the reduced search visits
// the same states and end states and counts the same plain steps (sleep sets prune steps,
// never states); with them, no more states and end states, some end state, and at least
// the plain search's states divided by the number of symmetries.
func Compare(t *testing.T, name string, plain, red *proptest.ExploreResult) {
	t.Helper()
	switch {
	case (plain.Violation == nil) != (red.Violation == nil):
		t.Errorf("%s: plain found %v, reduced found %v", name, plain.Violation, red.Violation)
	case plain.Violation != nil && plain.Violation.Property != red.Violation.Property:
		t.Errorf("%s: plain found %v, reduced found %v", name, plain.Violation, red.Violation)
	case len(plain.Path) != len(red.Path):
		t.Errorf("%s: counterexamples of %d and %d steps", name, len(plain.Path), len(red.Path))
	case plain.Violation == nil && red.Symmetries < 2 && (plain.States != red.States || plain.EndStates != red.EndStates):
		t.Errorf("%s: plain %d states / %d end states, reduced %d / %d", name, plain.States, plain.EndStates, red.States, red.EndStates)
	case plain.Violation == nil && red.Symmetries >= 2 && (red.States > plain.States || red.States*red.Symmetries < plain.States ||
		red.EndStates > plain.EndStates || red.EndStates == 0):
		t.Errorf("%s: plain %d states / %d end states, reduced %d / %d with %d symmetries", name, plain.States, plain.EndStates, red.States, red.EndStates, red.Symmetries)
	case plain.Violation == nil && red.Symmetries < 2 && plain.Transitions != red.PlainTransitions:
		t.Errorf("%s: plain took %d steps, the reduced search counts %d", name, plain.Transitions, red.PlainTransitions)
	case red.Transitions > plain.Transitions:
		t.Errorf("%s: the reduced search took more steps (%d > %d)", name, red.Transitions, plain.Transitions)
	}
}

// PlainAndReduced explores cfg with the plain and with the reduced search, side by side:
// they share nothing, and one at a time the package would not stay within go test's ten
// minutes on two cores (each search takes one core here).
func PlainAndReduced(cfg proptest.Config) (plain, red *proptest.ExploreResult, err error) {
	var perr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		plain, perr = proptest.Explore(cfg, proptest.ExploreOptions{NoReduce: true})
	}()
	red, err = proptest.Explore(cfg, proptest.ExploreOptions{})
	<-done
	return plain, red, errors.Join(perr, err)
}

// isFigure reports whether name is one of the patent's seven figures (fig1 ... fig7), not
// an alternative derived from one.
func isFigure(name string) bool {
	return len(name) == 4 && strings.HasPrefix(name, "fig") && name[3] >= '1' && name[3] <= '7'
}
