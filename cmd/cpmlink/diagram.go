package main

import (
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
	d := cfg.Diagram(v.Name, steps)
	if !full {
		d = setupOnly(d)
	}
	return d, nil
}

func runDiagram(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("diagram", stderr)
	variant := fs.String("variant", "fig1", "variant `name`")
	specPath := fs.String("spec", "", "spec `file` the variant comes from (default: the embedded spec)")
	format := fs.String("format", "mermaid", "mermaid or svg")
	members := fs.Int("members", 1, "group members")
	pfbs := fs.Int("pfbs", 1, "terminating PFs")
	full := fs.Bool("full", false, "draw everything (MSRP frames, REPORTs, BYE), not only the set-up the figures show")
	out := fs.String("out", "-", "file to write (- for standard output)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	all, err := loadVariants(*specPath)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	vs, err := pickVariants(all, *variant)
	if err != nil || len(vs) != 1 {
		return fail(stderr, "need one variant: %v", err)
	}
	d, err := canonicalDiagram(vs[0], *members, *pfbs, *full)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	var b []byte
	switch strings.ToLower(*format) {
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
