package rapidtest

import (
	"flag"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/proptest"
	"pgregory.net/rapid"
)

// Groups larger than the explorer covers: up to 8 members over 3 PF-Bs.
var large = proptest.Sizes{MaxMembers: 8, MaxPFBs: 3, MaxChunks: 3}

// TestRapidVariants checks every named variant under schedules, SIP retransmissions and
// delays that rapid chooses (100 checks each by default; -rapid.checks raises it).
func TestRapidVariants(t *testing.T) {
	for _, v := range fsm.Variants {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			rapid.Check(t, proptest.CheckVariant(v, large))
		})
	}
}

// TestRapidFaults checks every named variant with member faults: declines, members that
// never answer, links that cannot be opened or break mid-message. Every other member must
// still get the message, every role must end, and the sender must learn every outcome.
func TestRapidFaults(t *testing.T) {
	sizes := large
	sizes.Faults = true
	for _, v := range fsm.Variants {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			rapid.Check(t, proptest.CheckVariant(v, sizes))
		})
	}
}

// recorder is a rapid.TB that records a failure instead of failing the test, so that a
// test can assert that rapid finds a planted bug.
type recorder struct {
	mu     sync.Mutex
	name   string
	failed bool
	out    strings.Builder
}

func (r *recorder) Helper()      {}
func (r *recorder) Name() string { return r.name }
func (r *recorder) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(&r.out, format+"\n", args...)
}
func (r *recorder) Log(args ...any) { r.Logf("%s", fmt.Sprint(args...)) }
func (r *recorder) Skipf(format string, args ...any) {
	r.Logf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Skip(args ...any) { r.Skipf("%s", fmt.Sprint(args...)) }
func (r *recorder) SkipNow()         { runtime.Goexit() }
func (r *recorder) Errorf(format string, args ...any) {
	r.Logf(format, args...)
	r.Fail()
}
func (r *recorder) Error(args ...any) { r.Errorf("%s", fmt.Sprint(args...)) }
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }
func (r *recorder) FailNow()          { r.Fail(); runtime.Goexit() }
func (r *recorder) Fail() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
}
func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// plantedSeed is the seed TestRapidFindsPlantedBug uses when -rapid.seed does not name one.
const plantedSeed = "1"

// TestRapidFindsPlantedBug shows that the rapid property fails when it should: on each
// planted bug of testdata/broken.yaml it must find a counterexample and shrink it to a
// small group.
func TestRapidFindsPlantedBug(t *testing.T) {
	broken, err := proptest.LoadVariants("../testdata/broken.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The search must not leave fail files behind for the recorder's made-up test name.
	// Where the shrinker stops depends on the seed and on its time budget: with a budget a
	// slow or busy machine stops early, at a larger group, and the verdict would depend
	// on the machine. So the seed is fixed (unless -rapid.seed names one) and the budget
	// is far above what shrinking needs, so that it ends only when it can shrink no more.
	// (The test is not parallel at the top, so no other test's rapid check reads the flags
	// meanwhile; its own bugs run in parallel with each other, each check single-threaded,
	// and the flags are restored once the last of them has ended.)
	settings := map[string]string{"rapid.nofailfile": "true", "rapid.shrinktime": "30m"}
	// The clients' a=setup choices and the sender's way of ending multiply the draws: a
	// bug that needs a foreign sender and a REPORT racing its hang-up (sender-told-unasked)
	// takes a few hundred runs to meet. A run without a violation takes about a
	// millisecond, so the larger budget costs little.
	if flag.Lookup("rapid.checks").Value.String() == "100" {
		settings["rapid.checks"] = "1000"
	}
	if flag.Lookup("rapid.seed").Value.String() == "0" {
		settings["rapid.seed"] = plantedSeed
	}
	for name, value := range settings {
		old := flag.Lookup(name).Value.String()
		flag.Set(name, value)
		t.Cleanup(func() { flag.Set(name, old) })
	}
	for _, v := range broken {
		if v.Faults > 0 {
			// Fault-path bugs are the exhaustive search's (TestExploreFindsFaultBugs): rapid
			// draws faults at random and is not required to meet them.
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{name: "planted/" + v.Name}
			done := make(chan struct{})
			go func() {
				defer close(done)
				rapid.Check(rec, proptest.CheckVariant(v.Variant, proptest.Sizes{MaxMembers: 3, MaxPFBs: 2, MinChunks: 2, MaxChunks: 3}))
			}()
			<-done
			out := rec.out.String()
			if !rec.Failed() {
				t.Fatalf("rapid did not find the planted bug of %s:\n%s", v.Name, firstLines(out, 8))
			}
			// The explorer test pins the exact property; rapid may shrink to a smaller
			// counterexample that shows the same bug as another property, one of liveness (a
			// member that missed every chunk waits for ever: a deadlock rather than a gap; a
			// relay that ends its onward dialog on the sender's BYE leaves that hop down).
			if !strings.Contains(out, v.Expect+":") && !strings.Contains(out, proptest.PropDeadlock+":") && !strings.Contains(out, proptest.PropHopsUp+":") {
				t.Errorf("rapid failed %s without naming %s:\n%s", v.Name, v.Expect, out)
			}
			// Shrinking brings the group down to the smallest that shows the bug.
			if !strings.Contains(out, "with 1 members over 1 PF-Bs") {
				t.Errorf("the counterexample for %s was not shrunk to one member:\n%s", v.Name, firstLines(out, 5))
			}
		})
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
