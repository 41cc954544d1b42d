package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/proptest"
)

func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsage(t *testing.T) {
	if code, _, stderr := cli(t); code != 2 || !strings.Contains(stderr, "explore") {
		t.Errorf("no arguments: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := cli(t, "frobnicate"); code != 2 || !strings.Contains(stderr, "unknown command") {
		t.Errorf("unknown command: exit %d\n%s", code, stderr)
	}
	if code, _, _ := cli(t, "explore", "-h"); code != 0 {
		t.Errorf("explore -h: exit %d", code)
	}
	if code, _, _ := cli(t, "explore", "--members"); code != 2 {
		t.Errorf("bad flag: exit %d", code)
	}
}

// TestExploreJSON: every variant explored under each client a=setup rotation, one JSON
// object each with the documented keys, exit 0 when every property holds.
func TestExploreJSON(t *testing.T) {
	code, out, stderr := cli(t, "explore", "--variant", "all", "--members", "1", "--pfbs", "1", "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	rots := len(core.SetupChoices)
	if len(lines) != rots*len(fsm.Variants) {
		t.Fatalf("%d objects for %d variants in %d a=setup rotations", len(lines), len(fsm.Variants), rots)
	}
	for i, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		for _, k := range []string{"variant", "members", "pfbs", "setup", "sender", "states", "transitions", "plain_transitions", "reduction_ratio", "collision_probability", "result"} {
			if _, ok := m[k]; !ok {
				t.Errorf("line %d lacks %q: %s", i, k, line)
			}
		}
		if m["variant"] != fsm.Variants[i/rots].Name || m["result"] != "ok" || m["states"].(float64) < 100 {
			t.Errorf("line %d: %s", i, line)
		}
	}
}

// TestExploreNoReduce: --no-reduce takes every step (ratio 1) and visits the same states
// as the reduced search, which takes no more steps (one a=setup rotation: one JSON line).
func TestExploreNoReduce(t *testing.T) {
	run := func(args ...string) map[string]any {
		code, out, stderr := cli(t, append([]string{"explore", "--variant", "fig5", "--members", "1", "--pfbs", "1", "--chunks", "2", "--setup", "actpass", "--json"}, args...)...)
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, stderr)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	plain, red := run("--no-reduce"), run()
	if plain["reduction_ratio"].(float64) != 1 || plain["transitions"] != plain["plain_transitions"] {
		t.Errorf("--no-reduce: %v", plain)
	}
	if red["states"] != plain["states"] || red["plain_transitions"] != plain["transitions"] || red["transitions"].(float64) >= plain["transitions"].(float64) {
		t.Errorf("reduced %v, plain %v", red, plain)
	}
}

// TestExploreBrokenSpec: the planted bugs make explore exit 1, naming each property with a
// shortest trace. The fault-free ones: those that need a fault budget are found by
// proptest's TestExploreFindsFaultBugs, and through this command by TestExploreFaults
// (with every a=setup rotation and sender, their fault searches alone took this test
// past go test's 10 minutes on a loaded machine).
func TestExploreBrokenSpec(t *testing.T) {
	planted, err := proptest.LoadVariants("../../proptest/testdata/broken.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range planted {
		if v.Faults == 0 {
			names = append(names, v.Name)
		}
	}
	code, out, stderr := cli(t, "explore", "--spec", "../../proptest/testdata/broken.yaml", "--variant", strings.Join(names, ","), "--members", "1", "--pfbs", "1", "--chunks", "2", "--sender", "all", "--json")
	if code != 1 {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	// Each planted bug is explored under every client a=setup rotation: a bug that needs
	// a client to fix its role shows only in some; none may show as another property.
	found := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m struct {
			Variant, Result, Expect, Mermaid, Setup string
			Trace                                   []string
			Path                                    []int
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := found[m.Variant]; !ok {
			found[m.Variant] = false
		}
		if m.Result == "ok" {
			continue
		}
		found[m.Variant] = true
		if m.Result != m.Expect || len(m.Trace) == 0 || len(m.Path) == 0 || !strings.HasPrefix(m.Mermaid, "sequenceDiagram") {
			t.Errorf("%s (a=setup %s): result %q (expected %q), %d trace steps", m.Variant, m.Setup, m.Result, m.Expect, len(m.Trace))
		}
	}
	if len(found) < 6 {
		t.Errorf("only %d broken variants reported", len(found))
	}
	for v, ok := range found {
		if !ok {
			t.Errorf("%s: no a=setup rotation showed the planted bug", v)
		}
	}
	// The human output prints the replay command; replaying it reproduces the violation.
	_, human, _ := cli(t, "explore", "--spec", "../../proptest/testdata/broken.yaml", "--variant", "ack-before-ok", "--members", "1", "--pfbs", "1")
	i := strings.Index(human, "--replay ")
	if i < 0 {
		t.Fatalf("no replay command in:\n%s", human)
	}
	path := strings.Fields(human[i+len("--replay "):])[0]
	j := strings.Index(human, "--setup ")
	if j < 0 {
		t.Fatalf("no --setup in the replay command of:\n%s", human)
	}
	setup := strings.Fields(human[j+len("--setup "):])[0]
	code, mermaid, _ := cli(t, "explore", "--spec", "../../proptest/testdata/broken.yaml", "--variant", "ack-before-ok", "--members", "1", "--pfbs", "1", "--setup", setup, "--replay", path)
	if code != 1 || !strings.Contains(mermaid, "VIOLATED sip-order") {
		t.Errorf("replay: exit %d\n%s", code, mermaid)
	}
}

// TestExploreFaults: with a fault budget, explore finds a planted fault-path bug, prints
// the member faults and the budget in its replay command, and replaying that command
// reproduces the violation; a budget below 0 is refused.
func TestExploreFaults(t *testing.T) {
	for _, tc := range []struct{ variant, prop string }{{"decline-swallowed", "decline-status"}, {"retransmission-not-acked", "ack-per-2xx"}} {
		code, human, stderr := cli(t, "explore", "--spec", "../../proptest/testdata/broken.yaml", "--variant", tc.variant, "--members", "1", "--pfbs", "1", "--setup", "actpass", "--faults", "1")
		if code != 1 || !strings.Contains(human, tc.prop+":") {
			t.Fatalf("%s: exit %d\n%s%s", tc.variant, code, human, stderr)
		}
		i := strings.Index(human, "cpmlink explore --spec")
		if i < 0 {
			t.Fatalf("no replay command in:\n%s", human)
		}
		args := strings.Fields(strings.SplitN(human[i:], "\n", 2)[0])[1:]
		for k, a := range args {
			if a == "--spec" {
				args[k+1] = "../../proptest/testdata/broken.yaml"
			}
		}
		if !strings.Contains(strings.Join(args, " "), "--faults 1 --member-faults ") {
			t.Errorf("the replay command names no fault budget: %v", args)
		}
		code, mermaid, _ := cli(t, args...)
		if code != 1 || !strings.Contains(mermaid, "VIOLATED "+tc.prop) {
			t.Errorf("%s: replay %v: exit %d\n%s", tc.variant, args, code, mermaid)
		}
	}
	if code, _, _ := cli(t, "explore", "--variant", "fig1", "--faults", "-1"); code != 2 {
		t.Errorf("--faults -1: exit %d, want 2", code)
	}
}

func TestDiagramAndGen(t *testing.T) {
	code, out, _ := cli(t, "diagram", "--variant", "fig3", "--members", "1", "--pfbs", "1")
	if code != 0 || !strings.Contains(out, "ClientB-->>PF_B: S201 hop4") {
		t.Errorf("diagram: exit %d\n%s", code, out)
	}
	svg := filepath.Join(t.TempDir(), "fig3.svg")
	if code, _, stderr := cli(t, "diagram", "--variant", "fig3", "--format", "svg", "--out", svg); code != 0 {
		t.Fatalf("svg: %s", stderr)
	}
	if b, err := os.ReadFile(svg); err != nil || !bytes.HasPrefix(b, []byte("<svg")) {
		t.Errorf("svg file: %v", err)
	}
	if code, _, _ := cli(t, "diagram", "--variant", "nope"); code != 2 {
		t.Errorf("unknown variant: exit %d", code)
	}
	dir := t.TempDir()
	if code, out, stderr := cli(t, "gen", "--spec", "../../gen/testdata/tiny/spec.yaml", "--out", dir, "--package", "tiny"); code != 0 || !strings.Contains(out, "role_caller_gen.go") {
		t.Fatalf("gen: exit %d\n%s%s", code, out, stderr)
	}
	if code, _, stderr := cli(t, "gen", "--spec", "../../proptest/testdata/nonexistent.yaml"); code != 1 || !strings.Contains(stderr, "no such file") {
		t.Errorf("gen of a missing spec: exit %d %s", code, stderr)
	}
}

// TestDocsCurrent: docs/variants.md is what `cpmlink docs` writes now.
func TestDocsCurrent(t *testing.T) {
	want, err := variantsDoc()
	if err != nil {
		t.Fatal(err)
	}
	have, err := os.ReadFile("../../docs/variants.md")
	if err != nil || string(have) != want {
		t.Errorf("docs/variants.md is stale: run go generate ./... (err %v)", err)
	}
}

// TestMapStreamsClasses: map writes each combination's class to the stream file as it is
// found, one line per combination, and the map itself at the end.
func TestMapStreamsClasses(t *testing.T) {
	dir := t.TempDir()
	out := dir + "/map.md"
	code, _, stderr := cli(t, "map", "--members", "2", "--pfbs", "2", "--first", "2", "--cross-check-every", "0", "-q", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	b, err := os.ReadFile(out + ".classes")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "2 members over 2 PF-Bs") {
		t.Fatalf("stream:\n%s", b)
	}
	for _, l := range lines[1:] {
		if f := strings.Split(l, "\t"); len(f) < 4 || f[1] != "live" && f[1] != "deadlock" {
			t.Errorf("line %q", l)
		}
	}
	doc, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(doc), "explored with 2 member(s) over 2 PF-B(s)") {
		t.Errorf("map: %v\n%s", err, doc)
	}
}
