package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cpmlink/cpmlink/model"
	"github.com/cpmlink/cpmlink/proptest"
)

func init() {
	register("mutate", "mutation testing: how many systematic spec mutants the checkers kill", runMutate)
}

// figureVariants are the variants every mutant is checked on by default: FIG. 1-7 of the patent.
const figureVariants = "fig1,fig2,fig3,fig4,fig5,fig6,fig7"

// mutantJSON is one mutant's line of `mutate --json`.
type mutantJSON struct {
	model.Mutant
	// Status: killed, survived, equivalent, stillborn or timeout.
	Status  string                  `json:"status"`
	Why     string                  `json:"why,omitempty"`
	Verdict *proptest.MutantVerdict `json:"verdict,omitempty"`
}

// mutateSummary is the last line of `mutate --json`, and the text report's numbers.
type mutateSummary struct {
	Spec       string              `json:"spec"`
	Set        string              `json:"set"`
	Generated  int                 `json:"generated"`
	Checked    int                 `json:"checked"`
	Killed     int                 `json:"killed"`
	Survived   int                 `json:"survived"`
	Equivalent int                 `json:"equivalent"`
	Stillborn  int                 `json:"stillborn"`
	TimedOut   int                 `json:"timed_out"`
	KillRate   float64             `json:"kill_rate"`
	NetRate    float64             `json:"kill_rate_without_equivalents"`
	ByOperator map[string][3]int   `json:"by_operator"` // killed, survived, equivalent
	Plan       proptest.MutantPlan `json:"plan"`
	ElapsedMS  int64               `json:"elapsed_ms"`
}

func runMutate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("mutate", stderr)
	specPath := fs.String("spec", "", "spec `file` to mutate (default: the embedded spec, model/cpmlink.yaml)")
	realistic := fs.String("realistic", "", "check the hand-made bugs of this `file` (proptest/testdata/realistic.yaml) instead of the operators' mutants")
	equivPath := fs.String("equivalents", "proptest/testdata/equivalents.yaml", "`file` of mutants judged equivalent, left out of the kill rate's denominator (- for none)")
	sample := intFlag(fs, "sample", 0, "check a random sample of `N` mutants (0: all)")
	seed := intFlag(fs, "seed", 1, "`seed` of the sample and of rapid's draws")
	ops := fs.String("operators", "", "only mutants of these comma-separated `operators` (default: all)")
	ids := fs.String("id", "", "only the mutants of these comma-separated `IDs` (as --list prints them)")
	variant := fs.String("variant", figureVariants, "variant `names` every mutant is checked on, comma-separated, or all (a mutant of one variant's table is checked on that variant)")
	maxStates := intFlag(fs, "max-states", 200000, "bound of each exhaustive search of 1 member / 1 PF-B, in `states`")
	wide := intFlag(fs, "wide-max-states", 0, "bound of each search of 2 members / 1 PF-B in `states` (0: that stage is off)")
	noFaults := fs.Bool("no-faults", false, "skip the searches of 1 member / 1 PF-B with one member fault each")
	faultSteps := intFlag(fs, "fault-steps", 400000, "bound of each search of 1 member / 1 PF-B with a budget of one fault step, in `states` (0: that stage is off; --no-faults turns it off too)")
	checks := intFlag(fs, "rapid-checks", 10, "rapid `schedules` per variant, with faults, up to 2 members / 2 PF-Bs (0: rapid is off)")
	timeout := durationFlag(fs, "timeout", 5*time.Minute, "give up on one mutant after this `duration` (it counts as surviving)")
	workers := intFlag(fs, "workers", 1, "mutants built and checked at once")
	list := fs.Bool("list", false, "list the mutants and check none")
	asJSON := fs.Bool("json", false, "print one JSON object per mutant, then the summary")
	out := fs.String("out", "-", "`file` to write the report to (- for standard output)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if err := errors.Join(atLeast("sample", *sample, 0, "0 (all) or more"), atLeast("max-states", *maxStates, 1, "a search needs states"),
		atLeast("wide-max-states", *wide, 0, "0 (off) or more"), atLeast("rapid-checks", *checks, 0, "0 (off) or more"),
		atLeast("workers", *workers, 1, "at least one"), positive("timeout", *timeout)); err != nil {
		return refusal(stderr, "mutate", err)
	}
	src, specName := model.DefaultSource(), model.DefaultFile
	if *specPath != "" {
		b, err := os.ReadFile(*specPath)
		if err != nil {
			return fail(stderr, "mutate: --spec: %v", err)
		}
		src, specName = b, *specPath
	}
	base, err := model.Parse(specName, src)
	if err != nil {
		return fail(stderr, "mutate: --spec: %v", err)
	}
	var names []string
	if *variant == "all" {
		for _, v := range base.Variants {
			names = append(names, v.Name)
		}
	} else {
		for _, n := range strings.Split(*variant, ",") {
			n = strings.TrimSpace(n)
			if !slices.ContainsFunc(base.Variants, func(v *model.Variant) bool { return v.Name == n }) {
				return refusal(stderr, "mutate", errors.New(refuse("variant", n, "is not a variant of the spec")))
			}
			names = append(names, n)
		}
	}
	if *noFaults {
		*faultSteps = 0
	}
	plan := proptest.MutantPlan{Variants: names, Figures: names, MaxStates: *maxStates, WideMaxStates: *wide,
		Faults: !*noFaults, FaultSteps: *faultSteps, RapidChecks: *checks, Seed: uint64(*seed)}

	// The mutants: the operators' (model.Mutants), or the hand-made bugs of --realistic.
	var mutants []model.Mutant
	set := "operators"
	if *realistic != "" {
		set = *realistic
		var bugs model.BugSet
		if err := model.LoadYAML(*realistic, &bugs); err != nil {
			return fail(stderr, "mutate: --realistic: %v", err)
		}
		for _, b := range bugs.Bugs {
			s, err := model.ApplyEdits(src, b.Edit)
			if err != nil {
				return fail(stderr, "mutate: --realistic: bug %s: %v", b.Name, err)
			}
			mutants = append(mutants, model.Mutant{ID: b.Name, Operator: "realistic", Location: b.Name, Change: oneLine(b.Doc), Variants: b.Variants, Source: s})
		}
	} else {
		if mutants, err = model.Mutants(src); err != nil {
			return fail(stderr, "mutate: %v", err)
		}
	}
	generated := len(mutants)
	if *ops != "" {
		keep := strings.Split(*ops, ",")
		mutants = slices.DeleteFunc(mutants, func(m model.Mutant) bool { return !slices.Contains(keep, m.Operator) })
	}
	if *ids != "" {
		keep := strings.Split(*ids, ",")
		mutants = slices.DeleteFunc(mutants, func(m model.Mutant) bool { return !slices.Contains(keep, m.ID) })
	}
	if *sample > 0 && *sample < len(mutants) {
		r := rand.New(rand.NewPCG(uint64(*seed), 0x6d757461))
		// In the sample's random order, so that the mutants a stopped run decided are a
		// random sample too.
		idx := r.Perm(len(mutants))[:*sample]
		var picked []model.Mutant
		for _, i := range idx {
			picked = append(picked, mutants[i])
		}
		mutants = picked
	}
	w := stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			return fail(stderr, "mutate: --out: %v", err)
		}
		defer f.Close()
		w = f
	}
	if *list {
		for _, m := range mutants {
			also := ""
			if len(m.Also) > 0 {
				also = " (also checked on " + strings.Join(m.Also, ", ") + ")"
			}
			fmt.Fprintf(w, "%-34s %-40s %s%s\n", m.ID, m.Location, m.Change, also)
		}
		fmt.Fprintf(w, "%d mutants\n", len(mutants))
		return 0
	}

	root, err := proptest.FindModuleRoot(".")
	if err != nil {
		return fail(stderr, "mutate: %v (run it in the repository)", err)
	}
	equiv := map[string]model.Equivalent{}
	if *equivPath != "-" && *realistic == "" {
		// The default path is the repository's file, wherever in it the command runs.
		path := *equivPath
		if _, err := os.Stat(path); err != nil && !filepath.IsAbs(path) {
			path = filepath.Join(root, path)
		}
		var e model.Equivalents
		if err := model.LoadYAML(path, &e); err != nil && !(errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), "no such file")) {
			return fail(stderr, "mutate: --equivalents: %v", err)
		}
		for _, x := range e.Equivalents {
			equiv[x.ID] = x
		}
	}

	runner, err := proptest.NewMutantRunner(root)
	if err != nil {
		return fail(stderr, "mutate: %v", err)
	}
	defer runner.Close()
	if err := runner.SetBase(src); err != nil {
		return fail(stderr, "mutate: %v", err)
	}

	// An interrupted run stops dispatching, reports what it decided and removes its files.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	enc := json.NewEncoder(w)
	results := make([]mutantJSON, len(mutants))
	status := newStatusLine(stderr)
	var mu sync.Mutex
	done := 0
	next := make(chan int)
	var wg sync.WaitGroup
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = checkOne(ctx, runner, mutants[i], plan, equiv, *timeout)
				mu.Lock()
				// JSON lines go out as mutants are decided, so that a stopped run keeps them.
				if *asJSON {
					_ = enc.Encode(results[i])
				}
				done++
				status.show("mutate: %d of %d mutants checked (%v)", done, len(mutants), time.Since(start).Round(time.Second))
				mu.Unlock()
			}
		}()
	}
	decided := len(mutants)
dispatch:
	for i := range mutants {
		select {
		case next <- i:
		case <-ctx.Done():
			decided = i
			break dispatch
		}
	}
	close(next)
	wg.Wait()
	status.clear()
	results = results[:decided]
	for i := range results {
		if results[i].Status == "" {
			results[i].Status = "timeout"
		}
	}

	sum := mutateSummary{Spec: specName, Set: set, Generated: generated, Checked: len(results), ByOperator: map[string][3]int{}, Plan: plan}
	for _, r := range results {
		c := sum.ByOperator[r.Operator]
		switch r.Status {
		case "killed":
			sum.Killed++
			c[0]++
		case "survived":
			sum.Survived++
			c[1]++
		case "timeout":
			sum.TimedOut++
			c[1]++
		case "equivalent":
			sum.Equivalent++
			c[2]++
		case "stillborn":
			sum.Stillborn++
		}
		sum.ByOperator[r.Operator] = c
	}
	sum.KillRate = killRate(sum.Killed, sum.Killed+sum.Survived+sum.TimedOut+sum.Equivalent)
	sum.NetRate = killRate(sum.Killed, sum.Killed+sum.Survived+sum.TimedOut)
	sum.ElapsedMS = time.Since(start).Milliseconds()

	if *asJSON {
		if err := enc.Encode(sum); err != nil {
			return fail(stderr, "%v", err)
		}
	} else {
		writeMutateText(w, sum, results)
	}
	if sum.Survived+sum.TimedOut > 0 {
		return 1
	}
	return 0
}

// checkOne checks one mutant within its time limit.
func checkOne(ctx context.Context, r *proptest.MutantRunner, m model.Mutant, plan proptest.MutantPlan, equiv map[string]model.Equivalent, limit time.Duration) mutantJSON {
	out := mutantJSON{Mutant: m}
	if e, ok := equiv[m.ID]; ok && e.Change == m.Change {
		out.Status, out.Why = "equivalent", e.Why
		return out
	}
	for _, v := range slices.Concat(m.Variants, m.Also) {
		if !slices.Contains(plan.Variants, v) {
			plan.Variants = append(plan.Variants, v)
			plan.Figures = append(plan.Figures, v)
		}
	}
	if len(m.Variants) > 0 && m.Operator != "realistic" {
		// A change to one variant's table can only show in that variant.
		plan.Variants, plan.Figures = m.Variants, m.Variants
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	v, err := r.Check(ctx, m.Source, plan)
	switch {
	case errors.Is(err, proptest.ErrSameCode):
		out.Status, out.Why = "equivalent", "compiles to the spec's own code"
	case errors.Is(err, proptest.ErrStillborn):
		out.Status, out.Why = "stillborn", oneLine(err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		out.Status, out.Why = "timeout", "not decided within --timeout"
	case err != nil:
		out.Status, out.Why = "timeout", oneLine(err.Error())
	case v.Killed:
		out.Status, out.Verdict = "killed", &v
	default:
		out.Status, out.Verdict = "survived", &v
	}
	return out
}

func writeMutateText(w io.Writer, sum mutateSummary, results []mutantJSON) {
	for _, r := range results {
		switch r.Status {
		case "survived", "timeout":
			ran := "none"
			if r.Verdict != nil && len(r.Verdict.Ran) > 0 {
				ran = strings.Join(r.Verdict.Ran, ", ")
			}
			fmt.Fprintf(w, "SURVIVED %-20s %s (%s:%d): %s [ran: %s]\n", r.Operator, r.Location, sum.Spec, r.Line, r.Change, ran)
			if r.Status == "timeout" {
				fmt.Fprintf(w, "  %s\n", r.Why)
			}
		}
	}
	fmt.Fprintf(w, "\n%-22s %7s %8s %10s\n", "operator", "killed", "survived", "equivalent")
	var opNames []string
	for op := range sum.ByOperator {
		opNames = append(opNames, op)
	}
	sort.Strings(opNames)
	for _, op := range opNames {
		c := sum.ByOperator[op]
		if c == [3]int{} {
			continue
		}
		fmt.Fprintf(w, "%-22s %7d %8d %10d\n", op, c[0], c[1], c[2])
	}
	what := "mutants"
	if sum.Set != "operators" {
		what = "realistic bugs (" + sum.Set + ")"
	}
	fmt.Fprintf(w, "\n%d %s generated, %d checked: %d killed, %d survived, %d timed out, %d equivalent, %d stillborn (%v)\n",
		sum.Generated, what, sum.Checked, sum.Killed, sum.Survived, sum.TimedOut, sum.Equivalent, sum.Stillborn, time.Duration(sum.ElapsedMS)*time.Millisecond)
	fmt.Fprintf(w, "kill rate: %.1f%% of %d; without the equivalents: %.1f%% of %d\n",
		100*sum.KillRate, sum.Killed+sum.Survived+sum.TimedOut+sum.Equivalent, 100*sum.NetRate, sum.Killed+sum.Survived+sum.TimedOut)
}

func killRate(k, n int) float64 {
	if n == 0 {
		return 1
	}
	return float64(k) / float64(n)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
