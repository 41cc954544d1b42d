package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/model"
	"github.com/cpmlink/cpmlink/proptest"
)

func init() {
	register("explore", "check variants in every message interleaving, for small groups", runExplore)
}

// exploreJSON is what `explore --json` prints for each variant.
type exploreJSON struct {
	Variant     string   `json:"variant"`
	Members     int      `json:"members"`
	PFBs        int      `json:"pfbs"`
	Chunks      int      `json:"chunks"`
	States      int      `json:"states"`
	Transitions int      `json:"transitions"`
	EndStates   int      `json:"end_states"`
	Result      string   `json:"result"`
	Detail      string   `json:"detail,omitempty"`
	Expect      string   `json:"expect,omitempty"`
	Trace       []string `json:"trace,omitempty"`
	Mermaid     string   `json:"mermaid,omitempty"`
	Path        []int    `json:"path,omitempty"`
	Truncated   bool     `json:"truncated,omitempty"`
	ElapsedMS   int64    `json:"elapsed_ms"`
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
	s, err := model.Load(specPath)
	if err != nil {
		return nil, err
	}
	return proptest.VariantsOf(s)
}

// pickVariants selects variants by a comma-separated list of names, or all.
func pickVariants(all []proptest.NamedVariant, list string) ([]proptest.NamedVariant, error) {
	if list == "all" {
		return all, nil
	}
	var out []proptest.NamedVariant
	for _, name := range strings.Split(list, ",") {
		found := false
		for _, v := range all {
			if v.Name == strings.TrimSpace(name) {
				out = append(out, v)
				found = true
			}
		}
		if !found {
			var names []string
			for _, v := range all {
				names = append(names, v.Name)
			}
			return nil, fmt.Errorf("unknown variant %q (known: %s, or all)", name, strings.Join(names, ", "))
		}
	}
	return out, nil
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
			return nil, fmt.Errorf("bad --replay step %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func runExplore(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("explore", stderr)
	variant := fs.String("variant", "all", "variant `names`, comma-separated, or all")
	specPath := fs.String("spec", "", "spec `file` whose named variants to explore with the generated code (default: the embedded spec)")
	members := fs.Int("members", 2, "group members")
	pfbs := fs.Int("pfbs", 2, "terminating PFs the members are spread over")
	chunks := fs.Int("chunks", 1, "MSRP chunks the message is cut into")
	asJSON := fs.Bool("json", false, "print one JSON object per variant")
	maxStates := fs.Int("max-states", 0, "stop a search after this many states (0: 5 million)")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "variants explored at once")
	replay := fs.String("replay", "", "replay a comma-separated `path` of choices for one variant and print its trace")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	all, err := loadVariants(*specPath)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	vs, err := pickVariants(all, *variant)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	cfgOf := func(v proptest.NamedVariant) proptest.Config {
		return proptest.Config{Variant: v.Variant, Members: *members, PFBs: *pfbs, Chunks: *chunks}
	}
	if *replay != "" {
		if len(vs) != 1 {
			return fail(stderr, "--replay needs one --variant")
		}
		path, err := parsePath(*replay)
		if err != nil {
			return fail(stderr, "%v", err)
		}
		cfg := cfgOf(vs[0])
		steps, v, err := proptest.Replay(cfg, path)
		if err != nil {
			return fail(stderr, "%v", err)
		}
		fmt.Fprint(stdout, cfg.Diagram(vs[0].Name, steps).Mermaid())
		if v != nil {
			fmt.Fprintf(stdout, "%%%% VIOLATED %s\n", v)
			return 1
		}
		return 0
	}

	results := make([]*proptest.ExploreResult, len(vs))
	errs := make([]error, len(vs))
	next := make(chan int)
	var wg sync.WaitGroup
	if *workers < 1 {
		*workers = 1
	}
	for i := 0; i < *workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i], errs[i] = proptest.Explore(cfgOf(vs[i]), proptest.ExploreOptions{MaxStates: *maxStates})
			}
		}()
	}
	for i := range vs {
		next <- i
	}
	close(next)
	wg.Wait()

	status := 0
	enc := json.NewEncoder(stdout)
	for i, v := range vs {
		if errs[i] != nil {
			fmt.Fprintf(stderr, "cpmlink: %s: %v\n", v.Name, errs[i])
			status = 1
			continue
		}
		r := results[i]
		cfg := cfgOf(v)
		if !r.OK() {
			status = 1
		}
		out := exploreJSON{Variant: v.Name, Members: r.Members, PFBs: r.PFBs, Chunks: r.Chunks, States: r.States,
			Transitions: r.Transitions, EndStates: r.EndStates, Result: "ok", Expect: v.Expect, Truncated: r.Truncated,
			ElapsedMS: r.Elapsed.Milliseconds()}
		if r.Truncated && r.Violation == nil {
			out.Result = "truncated"
		}
		if r.Violation != nil {
			out.Result, out.Detail, out.Path = r.Violation.Property, r.Violation.Detail, r.Path
			for _, s := range r.Trace {
				out.Trace = append(out.Trace, fmt.Sprintf("%s -> %s: %s", cfg.DisplayName(s.From), cfg.DisplayName(s.To), s.Label))
			}
			out.Mermaid = cfg.Diagram(v.Name+": "+r.Violation.Property, r.Trace).Mermaid()
		}
		if *asJSON {
			if err := enc.Encode(out); err != nil {
				return fail(stderr, "%v", err)
			}
			continue
		}
		fmt.Fprintf(stdout, "%-22s %d members / %d PF-Bs / %d chunks  %10d states %11d transitions  %-10s %v\n",
			v.Name, r.Members, r.PFBs, r.Chunks, r.States, r.Transitions, out.Result, r.Elapsed.Round(time.Millisecond))
		if r.Violation != nil {
			fmt.Fprintf(stdout, "  %s: %s\n", r.Violation.Property, r.Violation.Detail)
			fmt.Fprintf(stdout, "  shortest counterexample, %d steps; replay with:\n", len(r.Path))
			spec := ""
			if *specPath != "" {
				spec = " --spec " + *specPath
			}
			fmt.Fprintf(stdout, "    cpmlink explore%s --variant %s --members %d --pfbs %d --chunks %d --replay %s\n",
				spec, v.Name, r.Members, r.PFBs, r.Chunks, joinInts(r.Path))
			fmt.Fprintf(stdout, "  ```mermaid\n%s  ```\n", indent(out.Mermaid, "  "))
		}
	}
	return status
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
