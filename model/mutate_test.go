package model

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestMutantsCoverOperators checks that every operator of docs/mutation.md makes mutants
// of the spec, that each mutant differs from the spec and has an ID of its own, and that
// a sample of them is parsed as a spec would be.
func TestMutantsCoverOperators(t *testing.T) {
	src := DefaultSource()
	ms, err := Mutants(src)
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	ids := map[string]bool{}
	for _, m := range ms {
		ops[m.Operator]++
		if ids[m.ID] {
			t.Errorf("two mutants have the ID %s", m.ID)
		}
		ids[m.ID] = true
		if bytes.Equal(m.Source, src) {
			t.Errorf("%s (%s) is the spec itself", m.ID, m.Location)
		}
	}
	for _, op := range []string{"drop-cell", "narrow-cell", "transition-to-ignore", "widen-reject", "reject-to-ignore",
		"drop-rule", "drop-reaction", "drop-role", "drop-statement", "drop-learn", "drop-guard", "invert-guard",
		"drop-and-operand", "drop-or-operand", "swap-sdp", "swap-party", "swap-outcome", "change-status",
		"flip-opener", "flip-trigger", "flip-knob", "swap-trigger-ends"} {
		if ops[op] == 0 {
			t.Errorf("operator %s made no mutant", op)
		}
	}
	// Every 40th mutant is parsed: most are specs the validator takes.
	parsed := 0
	for i := 0; i < len(ms); i += 40 {
		if _, err := Parse("mutant.yaml", ms[i].Source); err == nil {
			parsed++
		}
	}
	if parsed*4 < len(ms)/40*3 {
		t.Errorf("only %d of %d sampled mutants are valid specs", parsed, len(ms)/40+1)
	}
}

// TestTriggerMutantsNameTheirUsers checks that a mutant of a trigger's definition is also
// checked where the trigger is used: on the first variant in which an offerer, and the
// first in which an answerer, opens a hop on it (each must use it so; a trigger no named
// variant uses gets none), and that mutants of anything else name no extra variant.
func TestTriggerMutantsNameTheirUsers(t *testing.T) {
	src := DefaultSource()
	spec, err := Parse("spec", src)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*Variant{}
	used := map[string]bool{} // ok-sent is used by no named variant (mutate's coverage points are)
	for _, v := range spec.Variants {
		byName[v.Name] = v
		for key, val := range v.Resolved {
			used[val] = used[val] || strings.HasPrefix(key, "trigger.")
		}
	}
	ms, err := Mutants(src)
	if err != nil {
		t.Fatal(err)
	}
	trigger := 0
	for _, m := range ms {
		name, ok := strings.CutPrefix(m.Location, "trigger ")
		if !ok {
			if len(m.Also) > 0 {
				t.Errorf("%s (%s) names extra variants %v", m.ID, m.Location, m.Also)
			}
			continue
		}
		trigger++
		name, _, _ = strings.Cut(name, ",")
		if len(m.Also) == 0 && used[name] {
			t.Errorf("%s (%s) names no variant that uses trigger %s", m.ID, m.Location, name)
		}
		for _, vn := range m.Also {
			v := byName[vn]
			uses := false
			for key, val := range v.Resolved {
				uses = uses || strings.HasPrefix(key, "trigger.") && val == name
			}
			if !uses {
				t.Errorf("%s: variant %s does not use trigger %s", m.ID, vn, name)
			}
		}
	}
	if trigger == 0 {
		t.Fatal("no mutant of a trigger")
	}
	// send-received opens hops in named variants only outside the figures; both of its
	// ends must be covered by some variant that uses it with that opener.
	for _, m := range ms {
		if m.Operator == "swap-trigger-ends" && m.Location == "trigger send-received" {
			ends := map[string]bool{}
			for _, vn := range m.Also {
				for key, val := range byName[vn].Resolved {
					if hop, ok := strings.CutPrefix(key, "trigger."); ok && val == "send-received" {
						ends[byName[vn].Resolved["opener."+hop]] = true
					}
				}
			}
			if !ends["offerer"] {
				t.Errorf("send-received's swap is checked on %v, none with an offerer opening on it", m.Also)
			}
		}
	}
}

// TestRealisticBugsApply checks that each hand-made bug of proptest/testdata/realistic.yaml
// still applies to the spec (its finds occur once) and gives a valid spec.
func TestRealisticBugsApply(t *testing.T) {
	var set BugSet
	if err := LoadYAML(filepath.Join("..", "proptest", "testdata", "realistic.yaml"), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Bugs) < 15 {
		t.Fatalf("%d realistic bugs, want at least 15", len(set.Bugs))
	}
	for _, b := range set.Bugs {
		src, err := ApplyEdits(DefaultSource(), b.Edit)
		if err != nil {
			t.Errorf("%s: %v", b.Name, err)
			continue
		}
		if _, err := Parse(b.Name+".yaml", src); err != nil {
			t.Errorf("%s: the bug is no valid spec: %v", b.Name, err)
		}
	}
}

func TestApplyEditsRefusesAmbiguousFind(t *testing.T) {
	_, err := ApplyEdits([]byte("a a"), []Edit{{Find: "a", Replace: "b"}})
	if !errors.Is(err, ErrMutate) {
		t.Fatalf("got %v, want ErrMutate", err)
	}
	out, err := ApplyEdits([]byte("a b"), []Edit{{Find: "b", Replace: "c"}})
	if err != nil || string(out) != "a c" {
		t.Fatalf("got %q, %v", out, err)
	}
}

// TestEquivalentsName checks that every entry of proptest/testdata/equivalents.yaml names
// a mutant the operators make, with its change, and says why it is equivalent.
func TestEquivalentsName(t *testing.T) {
	var e Equivalents
	if err := LoadYAML(filepath.Join("..", "proptest", "testdata", "equivalents.yaml"), &e); err != nil {
		t.Fatal(err)
	}
	ms, err := Mutants(DefaultSource())
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]Mutant{}
	for _, m := range ms {
		byID[m.ID] = m
	}
	for _, x := range e.Equivalents {
		m, ok := byID[x.ID]
		switch {
		case !ok:
			t.Errorf("%s: no such mutant (stale entry?)", x.ID)
		case m.Change != x.Change:
			t.Errorf("%s: change %q, the mutant's is %q (stale entry?)", x.ID, x.Change, m.Change)
		case len(x.Why) < 20:
			t.Errorf("%s: no reason given", x.ID)
		}
	}
}

// TestRequiresDefect: or binds looser than and, so a defect operand of one disjunct does
// not make the whole condition a defect's (the CF's at-once answer is no defect's body).
func TestRequiresDefect(t *testing.T) {
	for expr, want := range map[string]bool{
		"defect.live-relay":              true,
		"not defect.live-relay":          false,
		"up.link is up and defect.x":     true,
		"up.link is up and not defect.x": false,
		"role is CF and knob.a is b or role is PFB and defect.early-answer": false,
		"role is CF and defect.a or defect.b":                               true,
		"(up.link is up or defect.x)":                                       false,
	} {
		if got := requiresDefect(expr); got != want {
			t.Errorf("requiresDefect(%q) = %v, want %v", expr, got, want)
		}
	}
}
