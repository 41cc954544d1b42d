package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// TestMutateSample is the sample CI runs (docs/mutation.md): the two drop-learn mutants,
// where a role never reads the SDP of the INVITE or of the 200 OK, so that no opener ever
// learns where its peer listens. Both must be killed, on FIG. 1 with the cheapest plan;
// the summary must count them and report the kill rate.
func TestMutateSample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the checkers once per mutant")
	}
	t.Parallel()
	code, out, stderr := cli(t, "mutate", "--operators", "drop-learn", "--variant", "fig1", "--no-faults", "--rapid-checks", "2", "--json", "--timeout", "2m")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("exit %d: want two mutants and a summary, got:\n%s%s", code, out, stderr)
	}
	for _, line := range lines[:2] {
		var m mutantJSON
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		if m.Operator != "drop-learn" || m.Status != "killed" || m.Verdict == nil || m.Verdict.Checker == "" {
			t.Errorf("not killed: %s", line)
		}
	}
	var sum mutateSummary
	if err := json.Unmarshal([]byte(lines[2]), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Checked != 2 || sum.Killed != 2 || sum.KillRate != 1 || sum.NetRate != 1 || sum.Generated < 500 {
		t.Errorf("summary: %s", lines[2])
	}
	if code != 0 {
		t.Errorf("exit %d with every mutant killed", code)
	}
}

// TestMutateRealisticReported: a sample of the hand-made bugs is checked and the text
// report gives their kill rate (the whole set is run by hand: docs/mutation.md).
func TestMutateRealisticReported(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the checkers once per bug")
	}
	t.Parallel()
	_, out, stderr := cli(t, "mutate", "--realistic", "../../proptest/testdata/realistic.yaml", "--sample", "1", "--seed", "3",
		"--variant", "fig1", "--no-faults", "--rapid-checks", "2", "--timeout", "2m")
	if !regexp.MustCompile(`\d+ realistic bugs \(\.\./\.\./proptest/testdata/realistic\.yaml\) generated, 1 checked: [01] killed, [01] survived`).MatchString(out) ||
		!regexp.MustCompile(`kill rate: \d+\.\d% of 1; without the equivalents: \d+\.\d% of 1`).MatchString(out) {
		t.Errorf("no kill rate reported:\n%s%s", out, stderr)
	}
}

func TestMutateRefusals(t *testing.T) {
	for _, args := range [][]string{
		{"mutate", "--sample", "-1"},
		{"mutate", "--variant", "fig99"},
		{"mutate", "--workers", "0"},
	} {
		if code, _, stderr := cli(t, args...); code != 2 || !strings.Contains(stderr, "--") {
			t.Errorf("%v: exit %d, %s", args, code, stderr)
		}
	}
}
