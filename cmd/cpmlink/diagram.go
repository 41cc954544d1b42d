package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cpmlink/cpmlink/proptest"
	"github.com/cpmlink/cpmlink/proptest/seqdiag"
)

func init() {
	register("diagram", "draw the canonical message sequence of a variant (Mermaid or SVG)", runDiagram)
}

// setupOnly keeps what the patent's figures draw: INVITE, 200 OK and ACK on every leg, and
// the link openings, dashed in the direction of initiative.
func setupOnly(d *seqdiag.Diagram) *seqdiag.Diagram {
	out := *d
	out.Arrows = nil
	for _, a := range d.Arrows {
		switch {
		case a.Style == seqdiag.Dashed:
		case a.Style == seqdiag.Solid && (a.Label == "INVITE" || a.Label == "200 OK" || a.Label == "ACK"):
		default:
			continue
		}
		out.Arrows = append(out.Arrows, a)
	}
	return &out
}

// canonicalDiagram runs a variant with the canonical schedule and draws it.
func canonicalDiagram(v proptest.NamedVariant, members, pfbs int, full bool) (*seqdiag.Diagram, error) {
	cfg := proptest.Config{Variant: v.Variant, Members: members, PFBs: pfbs, Chunks: 1}
	steps, viol, err := proptest.Canonical(cfg)
	if err != nil {
		return nil, err
	}
	if viol != nil {
		return nil, fmt.Errorf("%s: the canonical run violates %v", v.Name, viol)
	}
	// Numbered as the patent numbers its figures' steps (S101…).
	d := cfg.FigureDiagram(v.Name, steps)
	if !full {
		d = setupOnly(d)
	}
	return d, nil
}

func runDiagram(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("diagram", stderr)
	variant := fs.String("variant", "fig1", "variant `name` (one; docs/variants.md lists them)")
	specPath := fs.String("spec", "", "spec `file` the variant comes from (default: the embedded spec)")
	format := fs.String("format", "mermaid", "output `format`: mermaid or svg")
	members := intFlag(fs, "members", defaultMembers, "group `members`")
	pfbs := intFlag(fs, "pfbs", defaultPFBs, "terminating `PFs` the members are spread over")
	full := fs.Bool("full", false, "draw everything (MSRP frames, REPORTs, BYE), not only the set-up the figures show")
	out := fs.String("out", "-", "file to write (- for standard output)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	*format = strings.ToLower(*format)
	if err := errors.Join(atLeast("members", *members, 1, "a group has at least 1 member"),
		atLeast("pfbs", *pfbs, 1, "a group has at least 1 PF-B"), oneOf("format", *format, "mermaid", "svg")); err != nil {
		return refusal(stderr, "diagram", err)
	}
	all, err := loadVariants(*specPath)
	if err != nil {
		return fail(stderr, "diagram: --spec: %v", err)
	}
	v, err := pickVariant(all, *variant)
	if err != nil {
		return refusal(stderr, "diagram", err)
	}
	d, err := canonicalDiagram(v, *members, *pfbs, *full)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	var b []byte
	switch *format {
	case "mermaid":
		b = []byte(d.Mermaid())
	case "svg":
		b = d.SVG()
	default:
		return fail(stderr, "unknown --format %q (mermaid or svg)", *format)
	}
	if *out == "-" {
		_, err = stdout.Write(b)
	} else {
		err = os.WriteFile(*out, b, 0o644)
	}
	if err != nil {
		return fail(stderr, "%v", err)
	}
	return 0
}
