package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/proptest"
)

func init() {
	register("explore", "check variants in every message interleaving, for small groups", runExplore)
}

// exploreJSON is what `explore --json` prints for each variant.
type exploreJSON struct {
	Variant string `json:"variant"`
	Members int    `json:"members"`
	PFBs    int    `json:"pfbs"`
	Chunks  int    `json:"chunks"`
	Setup   string `json:"setup"`
	Sender  string `json:"sender"`
	// Faults is the run's fault budget (explore --faults, or a planted variant's own);
	// MemberFaults the member faults of the configuration reported (none, or e.g.
	// m1:decline-486), FaultSteps the budget left to its fault steps.
	Faults       int    `json:"faults"`
	MemberFaults string `json:"member_faults,omitempty"`
	FaultSteps   int    `json:"fault_steps"`
	States       int    `json:"states"`
	Transitions  int    `json:"transitions"`
	// PlainTransitions is what the plain search takes over the same states; Ratio is
	// Transitions/PlainTransitions (1 with --no-reduce).
	PlainTransitions int      `json:"plain_transitions"`
	Ratio            float64  `json:"reduction_ratio"`
	Collision        float64  `json:"collision_probability"`
	Symmetries       int      `json:"symmetries,omitempty"`
	EndStates        int      `json:"end_states"`
	Result           string   `json:"result"`
	Detail           string   `json:"detail,omitempty"`
	Expect           string   `json:"expect,omitempty"`
	Trace            []string `json:"trace,omitempty"`
	Mermaid          string   `json:"mermaid,omitempty"`
	Path             []int    `json:"path,omitempty"`
	Truncated        bool     `json:"truncated,omitempty"`
	ElapsedMS        int64    `json:"elapsed_ms"`
}

// loadVariants returns the named variants of the embedded spec, or of a spec file.
func loadVariants(specPath string) ([]proptest.NamedVariant, error) {
	if specPath == "" {
		var out []proptest.NamedVariant
		for _, v := range fsm.Variants {
			out = append(out, proptest.NamedVariant{Variant: v})
		}
		return out, nil
	}
	return proptest.LoadVariants(specPath)
}

// pickVariants selects variants by a comma-separated list of names, or all of them when
// allowAll and the list is "all". An unknown name is refused with the known ones.
func pickVariants(all []proptest.NamedVariant, list string, allowAll bool) ([]proptest.NamedVariant, error) {
	if list == "all" && allowAll {
		return all, nil
	}
	var out []proptest.NamedVariant
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, v := range all {
			if v.Name == name {
				out = append(out, v)
				found = true
			}
		}
		if !found {
			return nil, unknownVariant(all, name, allowAll)
		}
	}
	return out, nil
}

// pickVariant selects the one variant a command runs or draws.
func pickVariant(all []proptest.NamedVariant, name string) (proptest.NamedVariant, error) {
	vs, err := pickVariants(all, name, false)
	if err != nil {
		return proptest.NamedVariant{}, err
	}
	if len(vs) != 1 {
		return proptest.NamedVariant{}, errors.New(refuse("variant", name, "names several variants: this command takes one"))
	}
	return vs[0], nil
}

// unknownVariant refuses a variant name, listing the known ones (and all, where accepted).
func unknownVariant(all []proptest.NamedVariant, name string, allowAll bool) error {
	var names []string
	for _, v := range all {
		names = append(names, v.Name)
	}
	known := strings.Join(names, ", ")
	if allowAll {
		known += ", or all"
	} else if name == "all" {
		return errors.New(refuse("variant", name, "is not accepted here: this command takes one variant: "+known))
	}
	return errors.New(refuse("variant", name, "is not a variant of the spec: "+known))
}

func parsePath(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, errors.New(refuse("replay", s, "is not a path: comma-separated choice numbers, as explore prints them, e.g. 0,2,1"))
		}
		out = append(out, n)
	}
	return out, nil
}

// The default group of every command that runs or checks one group (demo, explore,
// diagram): two members over two PF-Bs, the smallest group whose members sit on different
// PF-Bs, so that the CF fans out on hop3 and every hop runs more than once. map, which
// explores every combination of knob values, defaults to one member over one PF-B (at two
// over two it would take hours; it cross-checks a sample at that size); bench takes lists
// of sizes to measure.
const (
	defaultMembers = 2
	defaultPFBs    = 2
)

func runExplore(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("explore", stderr)
	variant := fs.String("variant", "all", "variant `names`, comma-separated, or all")
	specPath := fs.String("spec", "", "spec `file` whose named variants to explore with the generated code (default: the embedded spec)")
	members := intFlag(fs, "members", defaultMembers, "group `members`")
	pfbs := intFlag(fs, "pfbs", defaultPFBs, "terminating `PFs` the members are spread over")
	chunks := intFlag(fs, "chunks", 1, "MSRP `chunks` the message is cut into")
	asJSON := fs.Bool("json", false, "print one JSON object per variant")
	maxStates := intFlag(fs, "max-states", 0, "stop a search after this many `states` (0: 5 million)")
	// One run at a time by default, its levels expanded on every core. Runs side by side
	// share the 1 GB soft memory limit (limitMemory): two at 3 members / 2 PF-Bs held
	// 1.7 GB between them and the collector ran without rest, so FIG. 1-7 took 893 s
	// against 444 s one at a time (2026-12-08), and smaller runs gain nothing from it.
	workers := intFlag(fs, "workers", 1, "`runs` explored at once; the cores left over expand each run's levels in parallel")
	noReduce := fs.Bool("no-reduce", false, "plain search: take every enabled step (no sleep sets, no symmetry)")
	replay := fs.String("replay", "", "replay a comma-separated `path` of choices for one variant and print its trace")
	setup := fs.String("setup", "rotate", "the clients' a=setup `choice` on negotiated hops: rotate (every choice of ClientA, the members taking the others in turn), or ClientA's choice in that rotation (actpass, active, passive, none)")
	faults := intFlag(fs, "faults", 0, "fault `budget` of each run: member faults (a decline, no answer) and fault steps (a guard firing early, a retransmitted 2xx, an ACK lost for good, a refused connection, a link reset mid-message, a host gone on any hop, the network cut between a member and its PF-B or, while the message is not whole there, on any hop); a planted variant of --spec takes at least its own")
	memberFaults := fs.String("member-faults", "none", "with --replay, the member `faults` of the run to replay, as explore prints them (m1:decline-486,m2:silent)")
	senderName := fs.String("sender", "waits", "how the sender ends: `waits` for every outcome, closes (drops its connection and sends BYE after its last 200), hangs-up (BYE after its last 200), blind (Failure-Report: no; BYE when its guard runs out), or all (each in turn, up to the first violation)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if err := errors.Join(atLeast("members", *members, 1, "a group has at least 1 member"),
		atLeast("pfbs", *pfbs, 1, "a group has at least 1 PF-B"),
		atLeast("chunks", *chunks, 1, "a message has at least 1 chunk"),
		atLeast("faults", *faults, 0, "0 (no faults, the default) or more"),
		atLeast("max-states", *maxStates, 0, "0 (the default bound) or more")); err != nil {
		return refusal(stderr, "explore", err)
	}
	senders := core.Senders
	if *senderName != "all" {
		one, err := core.ParseSender(*senderName)
		if err != nil {
			return refusal(stderr, "explore", errors.New(refuse("sender", *senderName, "is not a way to end: waits, closes, hangs-up, blind, or all")))
		}
		senders = []core.Sender{one}
	}
	limitMemory()
	all, err := loadVariants(*specPath)
	if err != nil {
		return fail(stderr, "explore: --spec: %v", err)
	}
	vs, err := pickVariants(all, *variant, true)
	if err != nil {
		return refusal(stderr, "explore", err)
	}
	// Each variant is explored once per client a=setup choice (proptest.SetupRotations),
	// so that the legs where a client fixes its role are checked too; each run tries the
	// senders in turn, up to the first that shows a violation.
	type job struct {
		v   proptest.NamedVariant
		cfg proptest.Config
	}
	var jobs []job
	for _, v := range vs {
		rots := proptest.SetupRotations(proptest.Config{Variant: v.Variant, Members: *members, PFBs: *pfbs, Chunks: *chunks})
		for _, c := range rots {
			if *setup == "rotate" || *setup == c.SenderSetup.String() {
				jobs = append(jobs, job{v, c})
			}
		}
	}
	if len(vs) > 0 && len(jobs) == 0 {
		return fail(stderr, "unknown --setup %q (rotate, actpass, active, passive, none)", *setup)
	}
	if *replay != "" {
		path, err := parsePath(*replay)
		if err != nil {
			return refusal(stderr, "explore", err)
		}
		if len(vs) != 1 {
			return refusal(stderr, "explore", errors.New(refuse("variant", *variant, "names several variants: --replay replays one")))
		}
		if len(jobs) != 1 {
			return refusal(stderr, "explore", errors.New(refuse("setup", *setup, "--replay replays one a=setup choice: actpass, active, passive or none")))
		}
		if len(senders) != 1 {
			return refusal(stderr, "explore", errors.New(refuse("sender", *senderName, "--replay replays one way to end: waits, closes, hangs-up or blind")))
		}
		cfg := jobs[0].cfg
		cfg.Sender = senders[0]
		mf, err := proptest.ParseMemberFaults(*memberFaults)
		if err != nil {
			return refusal(stderr, "explore", errors.New(refuse("member-faults", *memberFaults, err.Error())))
		}
		budget := max(*faults, vs[0].Faults)
		if len(mf) > budget {
			return refusal(stderr, "explore", errors.New(refuse("member-faults", *memberFaults, "spends more than the fault budget (--faults)")))
		}
		if budget > 0 {
			cfg.Timers, cfg.Faults, cfg.FaultBudget = true, mf, budget-len(mf)
		}
		steps, v, err := proptest.Replay(cfg, path)
		if err != nil {
			return fail(stderr, "%v", err)
		}
		fmt.Fprint(stdout, cfg.Counterexample(vs[0].Name, steps, v).Mermaid())
		if v != nil {
			// A comment, so that the output stays a Mermaid diagram; the verdict is also
			// the diagram's last note.
			fmt.Fprintf(stdout, "%%%% VIOLATED %s\n", strings.Join(cfg.Explain(v), "\n%% "))
			return 1
		}
		return 0
	}

	results := make([]*proptest.ExploreResult, len(jobs))
	errs := make([]error, len(jobs))
	used := make([]core.Sender, len(jobs))
	ran := make([]proptest.Config, len(jobs))
	totals := make([]runTotals, len(jobs))
	next := make(chan int)
	var wg sync.WaitGroup
	if *workers < 1 {
		*workers = 1
	}
	// Many variants take minutes: say how far it got, on a terminal only.
	status := newStatusLine(stderr)
	start := time.Now()
	var mu sync.Mutex
	done := 0
	*workers = min(*workers, max(len(jobs), 1))
	perRun := max(1, runtime.GOMAXPROCS(0) / *workers)
	for i := 0; i < *workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				// Each sender in turn, up to the first that shows a violation.
				// With a fault budget, each way of spending it on member faults in turn
				// (proptest.FaultConfigs), up to the first violation.
			senders:
				for _, sender := range senders {
					base := jobs[i].cfg
					base.Sender = sender
					used[i] = sender
					for _, cfg := range proptest.FaultConfigs(base, max(*faults, jobs[i].v.Faults)) {
						ran[i] = cfg
						results[i], errs[i] = proptest.Explore(cfg, proptest.ExploreOptions{MaxStates: *maxStates, NoReduce: *noReduce, Workers: perRun})
						if errs[i] == nil {
							totals[i].add(results[i])
						}
						if errs[i] != nil || !results[i].OK() {
							break senders
						}
					}
				}
				mu.Lock()
				done++
				status.show("explore: %d of %d runs explored (%v)", done, len(jobs), time.Since(start).Round(time.Second))
				mu.Unlock()
			}
		}()
	}
	for i := range jobs {
		next <- i
	}
	close(next)
	wg.Wait()
	status.clear()

	code := 0
	enc := json.NewEncoder(stdout)
	for i, j := range jobs {
		v, cfg := j.v, j.cfg
		if errs[i] != nil {
			fmt.Fprintf(stderr, "cpmlink: %s: %v\n", v.Name, errs[i])
			code = 1
			continue
		}
		r := results[i]
		cfg = ran[i]
		if !r.OK() {
			code = 1
		}
		out := exploreJSON{Variant: v.Name, Members: r.Members, PFBs: r.PFBs, Chunks: r.Chunks, States: r.States,
			Setup: cfg.SetupLabel(), Sender: used[i].String(), Faults: max(*faults, v.Faults), FaultSteps: cfg.FaultBudget, Transitions: r.Transitions, PlainTransitions: r.PlainTransitions, Ratio: ratio(r), Collision: r.Collision, Symmetries: r.Symmetries,
			EndStates: r.EndStates, Result: "ok", Expect: v.Expect, Truncated: r.Truncated,
			ElapsedMS: r.Elapsed.Milliseconds()}
		if len(cfg.Faults) > 0 {
			out.MemberFaults = cfg.FaultLabel()
		}
		if r.Truncated && r.Violation == nil {
			out.Result = "truncated"
		}
		if r.Violation != nil {
			out.Result, out.Detail, out.Path = r.Violation.Property, r.Violation.Detail, r.Path
			d := cfg.Counterexample(v.Name+": "+r.Violation.Property, r.Trace, r.Violation)
			for _, a := range d.Arrows {
				line := fmt.Sprintf("%s -> %s: %s", a.From, a.To, a.Label)
				if a.Highlight {
					line += " (violates " + r.Violation.Property + ")"
				}
				out.Trace = append(out.Trace, line)
			}
			out.Mermaid = d.Mermaid()
		}
		if *asJSON {
			if err := enc.Encode(out); err != nil {
				return fail(stderr, "%v", err)
			}
			continue
		}
		fmt.Fprintf(stdout, "%-22s %-8s %-8s %d members / %d PF-Bs / %d chunks  %10d states %11d transitions (%.2f of those enabled, %d symmetries)  %-10s %v\n",
			v.Name, cfg.SenderSetup, cfg.Sender, r.Members, r.PFBs, r.Chunks, r.States, r.Transitions, out.Ratio, max(r.Symmetries, 1), out.Result, r.Elapsed.Round(time.Millisecond))
		if r.Violation != nil {
			fmt.Fprintf(stdout, "  a=setup: %s\n", cfg.SetupLabel())
			if out.Faults > 0 {
				fmt.Fprintf(stdout, "  faults: budget %d, member faults %s, %d fault steps\n", out.Faults, cfg.FaultLabel(), cfg.FaultBudget)
			}
		}
		if r.Violation != nil {
			for _, line := range cfg.Explain(r.Violation) {
				fmt.Fprintf(stdout, "  %s\n", line)
			}
			fmt.Fprintf(stdout, "  shortest counterexample, %d steps; replay with:\n", len(r.Path))
			spec := ""
			if *specPath != "" {
				spec = " --spec " + *specPath
			}
			if out.Faults > 0 {
				spec += fmt.Sprintf(" --faults %d --member-faults %s", out.Faults, cfg.FaultLabel())
			}
			fmt.Fprintf(stdout, "    cpmlink explore%s --variant %s --members %d --pfbs %d --chunks %d --setup %s --sender %s --replay %s\n",
				spec, v.Name, r.Members, r.PFBs, r.Chunks, cfg.SenderSetup, used[i], joinInts(r.Path))
			fmt.Fprintf(stdout, "  ```mermaid\n%s  ```\n", indent(out.Mermaid, "  "))
		}
	}
	if !*asJSON {
		// Every run counts, with --sender all the senders before the last too.
		var t runTotals
		for _, x := range totals {
			t.states, t.trans, t.plain, t.largest = t.states+x.states, t.trans+x.trans, t.plain+x.plain, max(t.largest, x.largest)
		}
		states, trans, plain := t.states, t.trans, t.plain
		mode := "sleep sets and symmetry; the plain search visits up to 'symmetries' times the states"
		if *noReduce {
			mode = "plain search"
		}
		fmt.Fprintf(stdout, "total: %d states, %d transitions of %d enabled in them (ratio %.2f, %s); 64-bit fingerprints, collision probability <= %.1e per variant\n",
			states, trans, plain, float64(trans)/float64(max(plain, 1)), mode, proptest.CollisionProbability(t.largest, 64))
	}
	return code
}

// limitMemory sets a soft memory limit of 1 GB (unless GOMEMLIMIT sets one), so that the
// collector works harder before explorations running side by side pass it.
func limitMemory() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(960 << 20)
	}
}

// ratio is the share of the plain search's steps the search took.
func ratio(r *proptest.ExploreResult) float64 {
	if r.PlainTransitions == 0 {
		return 1
	}
	return float64(r.Transitions) / float64(r.PlainTransitions)
}

// runTotals adds up the searches of one job (one per sender tried).
type runTotals struct{ states, trans, plain, largest int }

func (t *runTotals) add(r *proptest.ExploreResult) {
	t.states, t.trans, t.plain, t.largest = t.states+r.States, t.trans+r.Transitions, t.plain+r.PlainTransitions, max(t.largest, r.States)
}

func joinInts(p []int) string {
	s := make([]string, len(p))
	for i, n := range p {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}
