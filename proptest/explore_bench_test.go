package proptest

import (
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
)

// BenchmarkExplore measures the exhaustive search on the configurations issue 9 sets its
// speed goals on: FIG. 1 with ClientA's actpass rotation (as CI explores it), whole at
// 2 members / 2 PF-Bs, and at 3 / 2 its first 100,000 states, so that one op takes
// seconds, not minutes. states/s is the figure to compare between builds; the goal itself
// (FIG. 1–7 at 3 / 2 in 10 s) is measured by `cpmlink explore`, as docs/architecture.md
// says.
func BenchmarkExplore(b *testing.B) {
	for _, c := range []struct {
		name          string
		members, pfbs int
		maxStates     int
	}{
		{"fig1-2x2", 2, 2, 0},
		{"fig1-3x2-first100k", 3, 2, 100_000},
	} {
		b.Run(c.name, func(b *testing.B) {
			v, ok := fsm.VariantByName("fig1")
			if !ok {
				b.Fatal("no variant fig1")
			}
			cfg := SetupRotations(Config{Variant: v, Members: c.members, PFBs: c.pfbs, Chunks: 1})[0]
			states := 0
			for b.Loop() {
				r, err := Explore(cfg, ExploreOptions{MaxStates: c.maxStates})
				if err != nil {
					b.Fatal(err)
				}
				if r.Violation != nil || r.Truncated != (c.maxStates > 0) {
					b.Fatalf("fig1 %d/%d: violation %v, truncated %v", c.members, c.pfbs, r.Violation, r.Truncated)
				}
				states += r.States
			}
			b.ReportMetric(float64(states)/b.Elapsed().Seconds(), "states/s")
		})
	}
}
