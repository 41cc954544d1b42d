package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
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

// TestExploreJSON: every variant explored, one JSON object each with the documented keys,
// exit 0 when every property holds.
func TestExploreJSON(t *testing.T) {
	code, out, stderr := cli(t, "explore", "--variant", "all", "--members", "1", "--pfbs", "1", "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(fsm.Variants) {
		t.Fatalf("%d objects for %d variants", len(lines), len(fsm.Variants))
	}
	for i, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		for _, k := range []string{"variant", "members", "pfbs", "states", "transitions", "result"} {
			if _, ok := m[k]; !ok {
				t.Errorf("line %d lacks %q: %s", i, k, line)
			}
		}
		if m["variant"] != fsm.Variants[i].Name || m["result"] != "ok" || m["states"].(float64) < 100 {
			t.Errorf("line %d: %s", i, line)
		}
	}
}

// TestExploreBrokenSpec: the planted bugs make explore exit 1, naming each property with a
// shortest trace.
func TestExploreBrokenSpec(t *testing.T) {
	code, out, stderr := cli(t, "explore", "--spec", "../../proptest/testdata/broken.yaml", "--variant", "all", "--members", "1", "--pfbs", "1", "--chunks", "2", "--json")
	if code != 1 {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m struct {
			Variant, Result, Expect, Mermaid string
			Trace                            []string
			Path                             []int
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		n++
		if m.Result != m.Expect || len(m.Trace) == 0 || len(m.Path) == 0 || !strings.HasPrefix(m.Mermaid, "sequenceDiagram") {
			t.Errorf("%s: result %q (expected %q), %d trace steps", m.Variant, m.Result, m.Expect, len(m.Trace))
		}
	}
	if n < 4 {
		t.Errorf("only %d broken variants reported", n)
	}
	// The human output prints the replay command; replaying it reproduces the violation.
	_, human, _ := cli(t, "explore", "--spec", "../../proptest/testdata/broken.yaml", "--variant", "ack-before-ok", "--members", "1", "--pfbs", "1")
	i := strings.Index(human, "--replay ")
	if i < 0 {
		t.Fatalf("no replay command in:\n%s", human)
	}
	path := strings.Fields(human[i+len("--replay "):])[0]
	code, mermaid, _ := cli(t, "explore", "--spec", "../../proptest/testdata/broken.yaml", "--variant", "ack-before-ok", "--members", "1", "--pfbs", "1", "--replay", path)
	if code != 1 || !strings.Contains(mermaid, "VIOLATED sip-order") {
		t.Errorf("replay: exit %d\n%s", code, mermaid)
	}
}

func TestDiagramAndGen(t *testing.T) {
	code, out, _ := cli(t, "diagram", "--variant", "fig3")
	if code != 0 || !strings.Contains(out, "ClientB-->>PF_B: hop4") {
		t.Errorf("diagram: exit %d\n%s", code, out)
	}
	svg := filepath.Join(t.TempDir(), "fig3.svg")
	if code, _, stderr := cli(t, "diagram", "--variant", "fig3", "--format", "svg", "--out", svg); code != 0 {
		t.Fatalf("svg: %s", stderr)
	}
	if b, err := os.ReadFile(svg); err != nil || !bytes.HasPrefix(b, []byte("<svg")) {
		t.Errorf("svg file: %v", err)
	}
	if code, _, _ := cli(t, "diagram", "--variant", "nope"); code != 1 {
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
