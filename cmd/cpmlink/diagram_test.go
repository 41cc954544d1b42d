package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/proptest"
	"github.com/cpmlink/cpmlink/proptest/seqdiag"
)

// TestDemoDiagramReadable runs the demo at 5 and at 20 members and checks what it draws,
// as a picture: in the SVG it wrote, no label crosses a lifeline other than its arrow's
// ends or lies on an arrowhead; there is a legend and every drawn step is numbered; the
// chunks between the first and the last are an explicit row; no '$' flag or entity code
// is left for a reader. It also checks the hop table names members by address of record,
// aligned.
func TestDemoDiagramReadable(t *testing.T) {
	for _, c := range []struct {
		variant string
		members int
	}{{"fig3", 5}, {"fig5", 20}} {
		t.Run(fmt.Sprintf("%s-%d", c.variant, c.members), func(t *testing.T) {
			dir := t.TempDir()
			// Five chunks of the default 64 KiB: three of them elided on every link.
			code, out, stderr := cli(t, "demo", "--variant", c.variant, "--members", strconv.Itoa(c.members), "--size", "327680", "--out", dir)
			if code != 0 {
				t.Fatalf("demo: exit %d\n%s%s", code, out, stderr)
			}
			checkHopTable(t, out, c.members)

			svg, err := os.ReadFile(filepath.Join(dir, "sequence.svg"))
			if err != nil {
				t.Fatal(err)
			}
			problems, st, err := seqdiag.CheckSVG(bytes.NewReader(svg))
			if err != nil {
				t.Fatal(err)
			}
			if len(problems) > 0 {
				t.Errorf("%d problems in the picture:\n%s", len(problems), strings.Join(problems, "\n"))
			}
			if st.LegendEntries < 3 || st.Lifelines != 3+2+c.members {
				t.Errorf("counted %d legend entries, %d lifelines", st.LegendEntries, st.Lifelines)
			}

			// The same diagram, from the trace the demo wrote, in the layout model.
			v, _ := fsm.VariantByName(c.variant)
			f, err := os.Open(filepath.Join(dir, "trace.ndjson"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			trace, err := proptest.ReadTrace(f)
			if err != nil {
				t.Fatal(err)
			}
			if trace.Chunks < 3 {
				t.Fatalf("%d chunks: nothing to elide", trace.Chunks)
			}
			d := trace.Diagram(proptest.Config{Variant: v, Members: c.members, PFBs: 2, Chunks: trace.Chunks}, "x")
			if p := d.Layout().Problems(); len(p) > 0 {
				t.Errorf("layout:\n%s", strings.Join(p, "\n"))
			}
			numbered, elided, last := 0, 0, 0
			for _, a := range d.Arrows {
				switch {
				case a.Style == seqdiag.Elided:
					elided++
					if want := fmt.Sprintf("… %d chunks", trace.Chunks-2); !strings.HasPrefix(a.Label, want) {
						t.Errorf("elided row %q, want %q…", a.Label, want)
					}
				case a.Num != "":
					numbered++
				default:
					t.Errorf("step %s -> %s: %s has no number", a.From, a.To, a.Label)
				}
				if strings.Contains(a.Label, "$") {
					t.Errorf("a '$' flag in %q", a.Label)
				}
				if strings.Contains(a.Label, "last chunk") {
					last++
				}
			}
			// hop1, hop2, and hop3 and hop4 of every member: one elided row and one last
			// chunk each.
			if links := 2 + 2*c.members; elided != links || last != links {
				t.Errorf("%d elided rows and %d last chunks for %d links", elided, last, links)
			}
			if st.StepNumbers != numbered {
				t.Errorf("the picture numbers %d steps, the diagram %d", st.StepNumbers, numbered)
			}
			mmd, err := os.ReadFile(filepath.Join(dir, "sequence.mmd"))
			if err != nil || regexp.MustCompile(`#\d+;`).Match(mmd) {
				t.Errorf("entity codes in sequence.mmd (%v)", err)
			}
			renderPNG(t, svg, filepath.Join(dir, "sequence.png"))
		})
	}
}

// checkHopTable checks the demo's per-hop table: every member by its address of record
// (no contact address with a port), and every column starting where its heading does.
func checkHopTable(t *testing.T, out string, members int) {
	t.Helper()
	var head string
	var rows []string
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, "hop "):
			head = l
		case regexp.MustCompile(`^hop\d `).MatchString(l):
			rows = append(rows, l)
		}
	}
	if head == "" || len(rows) != 2+2*members {
		t.Fatalf("hop table: heading %q, %d rows:\n%s", head, len(rows), out)
	}
	var starts []int
	for _, h := range []string{"for member", "opener", "peer", "trigger", "connection"} {
		starts = append(starts, strings.Index(head, h))
	}
	aor := regexp.MustCompile(`^sip:m\d+@b\d+\.example$`)
	for _, r := range rows {
		for _, s := range starts {
			if s <= 0 || s >= len(r) || r[s-1] != ' ' || r[s] == ' ' {
				t.Errorf("row not aligned with the heading at column %d:\n%s\n%s", s, head, r)
				break
			}
		}
		m := strings.Fields(r[starts[0]:])[0]
		if m != "(all)" && !aor.MatchString(m) {
			t.Errorf("member %q is not an address of record: %s", m, r)
		}
	}
}

// renderPNG renders an SVG with rsvg-convert, where it is installed, and checks that it
// renders at the size the SVG declares.
func renderPNG(t *testing.T, svg []byte, out string) {
	t.Helper()
	bin, err := exec.LookPath("rsvg-convert")
	if err != nil {
		t.Logf("rsvg-convert not installed: not rendered")
		return
	}
	in := out + ".svg"
	if err := os.WriteFile(in, svg, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(bin, in, "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("rsvg-convert: %v\n%s", err, b)
	}
	png, err := os.ReadFile(out)
	if err != nil || len(png) < 24 || string(png[1:4]) != "PNG" {
		t.Fatalf("no PNG (%v)", err)
	}
	w := int(png[16])<<24 | int(png[17])<<16 | int(png[18])<<8 | int(png[19])
	h := int(png[20])<<24 | int(png[21])<<16 | int(png[22])<<8 | int(png[23])
	m := regexp.MustCompile(`width="(\d+)" height="(\d+)"`).FindSubmatch(svg)
	if m == nil || strconv.Itoa(w) != string(m[1]) || strconv.Itoa(h) != string(m[2]) {
		t.Errorf("PNG is %dx%d, the SVG says %s", w, h, m)
	}
}

// TestDiagramNumbersFigures: `cpmlink diagram` prints a figure's set-up numbered as the
// patent numbers it, with no entity codes.
func TestDiagramNumbersFigures(t *testing.T) {
	code, out, _ := cli(t, "diagram", "--variant", "fig3", "--members", "1", "--pfbs", "1")
	if code != 0 || !strings.Contains(out, "ClientA->>PF_A: S101 INVITE") || !strings.Contains(out, "ClientB-->>PF_B: S201 hop4: open link") ||
		strings.Contains(out, "#58;") {
		t.Errorf("diagram: exit %d\n%s", code, out)
	}
}
