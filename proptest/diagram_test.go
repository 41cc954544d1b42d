package proptest

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/proptest/seqdiag"
)

// planted returns a variant of testdata/broken.yaml by name.
func planted(t *testing.T, name string) NamedVariant {
	t.Helper()
	vs, err := LoadVariants("testdata/broken.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no planted variant %s", name)
	return NamedVariant{}
}

// TestCounterexampleDrawsViolatingStep: a counterexample ends in the step that broke the
// property, highlighted and numbered after the path's last choice, and names legs in
// words.
func TestCounterexampleDrawsViolatingStep(t *testing.T) {
	for _, c := range []struct {
		variant  string
		from, to string
		label    string
	}{
		// The CF sends an ACK on a leg whose 200 OK has not come: never on the wire.
		{"ack-before-ok", "CF", "PF-B", "ACK"},
		// The CF opens hop3 before it learned where PF-B listens.
		{"unlearned-parameters", "CF", "PF-B", "hop3: open link"},
		// PF-B takes a chunk that skips the first: the delivery itself (our sender asks for a
		// success REPORT, and the label says so).
		{"late-member-dropped", "CF", "PF-B", "SEND last chunk 2 Success-Report for member 1"},
	} {
		v := planted(t, c.variant)
		cfg := Config{Variant: v.Variant, Members: 1, PFBs: 1, Chunks: 2}
		res, err := Explore(cfg, ExploreOptions{})
		if err != nil || res.Violation == nil {
			t.Fatalf("%s: %v %v", c.variant, err, res.Violation)
		}
		d := cfg.Counterexample(c.variant, res.Trace, res.Violation)
		last := d.Arrows[len(d.Arrows)-1]
		if !last.Highlight || last.From != c.from || last.To != c.to || last.Label != c.label {
			t.Errorf("%s: ends in %+v, want %s -> %s: %s highlighted", c.variant, last, c.from, c.to, c.label)
		}
		for _, a := range d.Arrows[:len(d.Arrows)-1] {
			if a.Highlight {
				t.Errorf("%s: %+v highlighted too", c.variant, a)
			}
		}
		// Step k is the k-th choice of the path; an attempt comes after the last.
		want := len(res.Path)
		if c.variant != "late-member-dropped" {
			want++
		}
		if last.Num != strconv.Itoa(want) {
			t.Errorf("%s: violating step numbered %q, path has %d choices", c.variant, last.Num, len(res.Path))
		}
		mm := d.Mermaid()
		if strings.Contains(mm, "clientA-1") || strings.Contains(mm, "#58;") || !strings.Contains(mm, "rect rgb") {
			t.Errorf("%s: Mermaid:\n%s", c.variant, mm)
		}
		if !strings.Contains(strings.Join(d.Footer, "\n"), "hop3 of member 1") {
			t.Errorf("%s: verdict %q names no leg in words", c.variant, d.Footer)
		}
		// Drawn, the counterexample is as readable as the demo's diagram.
		p, st, err := seqdiag.CheckSVG(bytes.NewReader(d.SVG()))
		if err != nil || len(p) > 0 || st.StepNumbers != len(d.Arrows)-1 {
			t.Errorf("%s: picture: %v %q %+v", c.variant, err, p, st)
		}
	}
}

// TestDeadlockOneRolePerLine: a deadlock's verdict lists each role that is not done on a
// line of its own, by the figures' names, legs in words.
func TestDeadlockOneRolePerLine(t *testing.T) {
	v := planted(t, "forgotten-member")
	cfg := Config{Variant: v.Variant, Members: 2, PFBs: 1, Chunks: 1}
	res, err := Explore(cfg, ExploreOptions{})
	if err != nil || res.Violation == nil || res.Violation.Property != PropDeadlock {
		t.Fatalf("%v %v", err, res.Violation)
	}
	lines := cfg.Explain(res.Violation)
	if len(lines) < 3 {
		t.Fatalf("deadlock on %d lines: %q", len(lines), lines)
	}
	role := regexp.MustCompile(`^  (ClientA|PF-A|CF|PF-B|ClientB\d) \(`)
	for _, l := range lines[1:] {
		if !role.MatchString(l) || strings.Contains(l, ";") || strings.Contains(l, "clientA-1") {
			t.Errorf("not one role in words: %q", l)
		}
	}
	if !strings.Contains(strings.Join(lines, "\n"), "hop3 of member 2") {
		t.Errorf("the forgotten member's leg is not named: %q", lines)
	}
}

func TestWords(t *testing.T) {
	cfg := Config{Members: 2, PFBs: 2}
	for in, want := range map[string]string{
		"cf on leg clientA-1/0/1: ACK before the 200 OK":            "CF on hop3 of member 2: ACK before the 200 OK",
		"cf opened hop3 (leg clientA-1/0/0) with parameters":        "CF opened hop3 of member 1 with parameters",
		"SEND chunk 3$ (clientA-1/0/1/0)":                           "SEND last chunk 3 (hop4 of member 2)",
		"leg clientA-1 of the sender never came up":                 "hop1 of the sender never came up",
		"member sip:m1@b1.example stored chunk 2, pfb2 (x); m1 (y)": "member sip:m1@b1.example stored chunk 2, PF-B2 (x); ClientB1 (y)",
		"timeout clientA-1/0":                                       "timeout hop2",
	} {
		if got := cfg.Words(in); got != want {
			t.Errorf("Words(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFigureStepNumbers: the canonical diagrams number the set-up as the patent's text
// does: FIG. 1's S101–S111 for the SIP messages, and each solution's own steps for the
// link openings.
func TestFigureStepNumbers(t *testing.T) {
	for _, c := range []struct {
		fig  string
		want []string
	}{
		{"fig1", []string{"S101 ClientA -> PF-A: INVITE", "S103 CF -> PF-B: INVITE", "S105 ClientA -> PF-A: hop1: open link", "S110 CF -> PF-B: hop3: open link", "S111 PF-B -> ClientB: ACK"}},
		{"fig3", []string{"S201 ClientB -> PF-B: hop4: open link", "S202 PF-B -> CF: hop3: open link", "S203 CF -> PF-A: hop2: open link", "S204 PF-A -> ClientA: hop1: open link"}},
		{"fig5", []string{"S301 ClientA -> PF-A: hop1: open link", "S302 PF-A -> CF: hop2: open link", "S303 PF-B -> CF: hop3: open link", "S304 ClientB -> PF-B: hop4: open link"}},
	} {
		v, _ := fsm.VariantByName(c.fig)
		cfg := Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1}
		steps, viol, err := Canonical(cfg)
		if err != nil || viol != nil {
			t.Fatalf("%s: %v %v", c.fig, err, viol)
		}
		d := cfg.FigureDiagram(c.fig, steps)
		var got []string
		for _, a := range d.Arrows {
			if a.Style == seqdiag.Dashed || a.Style == seqdiag.Solid && (a.Label == "INVITE" || a.Label == "200 OK" || a.Label == "ACK") {
				if a.Num == "" {
					t.Errorf("%s: %s -> %s: %s has no step number", c.fig, a.From, a.To, a.Label)
				}
			}
			got = append(got, a.Num+" "+a.From+" -> "+a.To+": "+a.Label)
		}
		all := strings.Join(got, "\n")
		for _, w := range c.want {
			if !strings.Contains(all, w) {
				t.Errorf("%s lacks %q:\n%s", c.fig, w, all)
			}
		}
	}
}
