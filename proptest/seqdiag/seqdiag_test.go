package seqdiag

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func sample() *Diagram {
	return &Diagram{
		Title:        "fig1: one member",
		Participants: []string{"ClientA", "PF-A"},
		Arrows: []Arrow{
			{From: "ClientA", To: "PF-A", Label: "INVITE", Style: Solid, Num: "S101"},
			{From: "ClientA", To: "PF-A", Label: "hop1: open link", Style: Dashed, Num: "S105"},
			{From: "ClientA", To: "PF-A", Label: "SEND chunk 1 of 3", Style: Media},
			{From: "ClientA", To: "PF-A", Label: "… 1 chunks …", Style: Elided},
			{From: "CF", To: "CF", Label: "timeout", Style: Note},
			{From: "PF-A", To: "CF", Label: "ACK", Highlight: true, Num: "7"},
		},
		Footer: []string{"deadlock: these roles are not done:", "  CF (hop2)"},
	}
}

func TestMermaid(t *testing.T) {
	got := sample().Mermaid()
	for _, want := range []string{
		"sequenceDiagram\n",
		"participant PF_A as PF-A\n",
		"participant CF as CF\n", // appears although not declared
		"ClientA->>PF_A: S101 INVITE\n",
		"ClientA-->>PF_A: S105 hop1: open link\n",
		"ClientA-)PF_A: SEND chunk 1 of 3\n",
		"Note over ClientA,PF_A: … 1 chunks …\n",
		"Note over CF: timeout\n",
		"    rect rgb(255, 215, 215)\n        PF_A->>CF: 7 ACK\n    end\n",
		"Note over ClientA,CF: deadlock: these roles are not done:\n",
		"Note over ClientA,CF:   CF (hop2)\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Mermaid output lacks %q:\n%s", want, got)
		}
	}
}

// TestMermaidReadsOnATerminal: what a label says reaches the Mermaid text without entity
// codes (#58;) or markup, and still cannot break the statement it is in.
func TestMermaidReadsOnATerminal(t *testing.T) {
	d := &Diagram{Title: "x: y", Arrows: []Arrow{
		{From: "A", To: "B", Label: "sip:m1@b1.example #3; next\nline"},
	}}
	got := d.Mermaid()
	if regexp.MustCompile(`#\w+;|&\w+;|<br`).MatchString(got) {
		t.Errorf("escapes in Mermaid text:\n%s", got)
	}
	if !strings.Contains(got, "A->>B: sip:m1@b1.example #3, next line\n") || !strings.Contains(got, "title x: y\n") {
		t.Errorf("label not kept as written:\n%s", got)
	}
}

func TestSVGIsWellFormedXML(t *testing.T) {
	d := sample()
	d.Arrows = append(d.Arrows, Arrow{From: "PF-A", To: "ClientA", Label: `200 OK <"&">`})
	dec := xml.NewDecoder(bytes.NewReader(d.SVG()))
	for {
		if _, err := dec.Token(); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
	}
	_, st, err := CheckSVG(bytes.NewReader(d.SVG()))
	if err != nil {
		t.Fatal(err)
	}
	// Three lifelines; five arrows drawn as lines (the note is a box), one elided row
	// among them.
	if st.Lifelines != 3 || st.Arrows != 6 || st.StepNumbers != 3 || st.LegendEntries != 6 {
		t.Errorf("counted %+v", st)
	}
}

// crowded is a diagram of the demo's shape with long labels everywhere: arrows between
// neighbours and across many lifelines, both ways, and notes.
func crowded(members int) *Diagram {
	parts := []string{"ClientA", "PF-A", "CF", "PF-B1", "PF-B2"}
	for m := 1; m <= members; m++ {
		parts = append(parts, fmt.Sprintf("ClientB%d", m))
	}
	d := &Diagram{Title: "crowded: what happened", Participants: parts}
	n := 0
	add := func(from, to, label string, s Style) {
		n++
		d.Arrows = append(d.Arrows, Arrow{From: from, To: to, Label: label, Style: s, Num: fmt.Sprint(n)})
	}
	for m := 1; m <= members; m++ {
		b, pfb := fmt.Sprintf("ClientB%d", m), fmt.Sprintf("PF-B%d", (m-1)%2+1)
		add("CF", pfb, "INVITE", Solid)
		add(pfb, b, "INVITE", Solid)
		add(b, pfb, "200 OK", Solid)
		add(pfb, "CF", fmt.Sprintf("hop3: reuse connection for ClientB%d", m), Dashed)
		add("CF", pfb, fmt.Sprintf("SEND chunk 1 of 33 for ClientB%d", m), Media)
		d.Arrows = append(d.Arrows, Arrow{From: "CF", To: pfb, Label: fmt.Sprintf("… 31 chunks for ClientB%d …", m), Style: Elided})
		add(b, "ClientA", fmt.Sprintf("REPORT sip:m%d@b1.example delivered, with a reason that is far too long to fit on two lines of one gap", m), Media)
		add(b, b, "timeout on hop4 of member "+fmt.Sprint(m)+" after the link failed with 408 and nothing else could happen", Note)
	}
	return d
}

// TestLayoutReadable: at 5 and at 20 members, no label crosses a lifeline other than its
// arrow's ends or lies on an arrowhead, in the layout model and in the SVG drawn from it.
func TestLayoutReadable(t *testing.T) {
	for _, members := range []int{5, 20} {
		d := crowded(members)
		if p := d.Layout().Problems(); len(p) > 0 {
			t.Errorf("%d members: layout:\n%s", members, strings.Join(p, "\n"))
		}
		svg := d.SVG()
		p, st, err := CheckSVG(bytes.NewReader(svg))
		if err != nil {
			t.Fatal(err)
		}
		if len(p) > 0 {
			t.Errorf("%d members: picture:\n%s", members, strings.Join(p, "\n"))
		}
		if st.Lifelines != 5+members || st.LegendEntries != 5 || st.StepNumbers != 7*members || st.Tooltips != len(d.Arrows) {
			t.Errorf("%d members: counted %+v", members, st)
		}
		// The REPORT label was cut; its tooltip keeps the whole text.
		if !bytes.Contains(svg, []byte("<title>6 REPORT sip:m1@b1.example delivered, with a reason that is far too long to fit on two lines of one gap</title>")) {
			t.Errorf("%d members: no tooltip with the whole label", members)
		}
		if !strings.Contains(strings.Join(st.Texts, "\n"), "…") {
			t.Errorf("%d members: the long label was not shortened", members)
		}
		renderPNG(t, svg, fmt.Sprintf("crowded-%d", members))
	}
}

// TestProblemsCanFail: a label moved onto a lifeline and onto an arrowhead is reported,
// by the layout check and by the picture check.
func TestProblemsCanFail(t *testing.T) {
	d := crowded(5)
	l := d.Layout()
	r := &l.Rows[0]                     // CF -> PF-B1: INVITE
	r.Label.X = l.Lifelines[r.To+1] - 5 // PF-B2, no end of this arrow
	if p := l.Problems(); len(p) == 0 {
		t.Error("a label on a lifeline went unreported by Problems")
	}
	svg := string(d.SVG())
	// Widen the first label of the picture so that it reaches across the next lifeline.
	svg = strings.Replace(svg, ">INVITE</text>", ">INVITE INVITE INVITE INVITE INVITE INVITE</text>", 1)
	p, _, err := CheckSVG(strings.NewReader(svg))
	if err != nil {
		t.Fatal(err)
	}
	if len(p) == 0 {
		t.Error("a label across a lifeline went unreported by CheckSVG")
	}
	if _, _, err := CheckSVG(strings.NewReader(`<svg xmlns="http://www.w3.org/2000/svg"></svg>`)); !errors.Is(err, ErrNotOurs) {
		t.Errorf("foreign SVG: %v", err)
	}
}

func TestWrap(t *testing.T) {
	for _, c := range []struct {
		in    string
		width int
		want  []string
	}{
		{"SEND chunk 1 of 33", 20, []string{"SEND chunk 1 of 33"}},
		{"hop3: reuse connection for ClientB4", 20, []string{"hop3: reuse", "connection for", "ClientB4"}},
		{"a b c d e f g h", 3, []string{"a b", "c d", "e …"}},
		{"abcdefgh", 3, []string{"abc", "def", "gh"}},
		{"", 5, []string{""}},
	} {
		if got := wrap(c.in, c.width, 3); strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("wrap(%q, %d) = %q, want %q", c.in, c.width, got, c.want)
		}
	}
}

// renderPNG renders an SVG to PNG with rsvg-convert, where it is installed, and checks that
// a renderer takes it at the size the layout gave; the PNG is kept under
// $SEQDIAG_PNG_DIR when that is set, for a person to look at.
func renderPNG(t *testing.T, svg []byte, name string) {
	t.Helper()
	bin, err := exec.LookPath("rsvg-convert")
	if err != nil {
		t.Logf("rsvg-convert not installed: %s not rendered", name)
		return
	}
	dir := os.Getenv("SEQDIAG_PNG_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	in, out := filepath.Join(dir, name+".svg"), filepath.Join(dir, name+".png")
	if err := os.WriteFile(in, svg, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(bin, in, "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("rsvg-convert %s: %v\n%s", name, err, b)
	}
	png, err := os.ReadFile(out)
	if err != nil || len(png) < 24 || string(png[1:4]) != "PNG" {
		t.Fatalf("%s: no PNG (%v)", name, err)
	}
	w := int(png[16])<<24 | int(png[17])<<16 | int(png[18])<<8 | int(png[19])
	h := int(png[20])<<24 | int(png[21])<<16 | int(png[22])<<8 | int(png[23])
	m := regexp.MustCompile(`width="(\d+)" height="(\d+)"`).FindSubmatch(svg)
	if m == nil || fmt.Sprint(w) != string(m[1]) || fmt.Sprint(h) != string(m[2]) {
		t.Errorf("%s: PNG is %dx%d, the SVG says %s", name, w, h, m)
	}
}

// TestLegendNamesWhatIsDrawn: SIP, link openings and MSRP always; elided rows, notes and
// the violating step only where the diagram has them.
func TestLegendNamesWhatIsDrawn(t *testing.T) {
	d := &Diagram{Arrows: []Arrow{{From: "A", To: "B", Label: "INVITE"}}}
	if n := len(d.Legend()); n != 3 {
		t.Errorf("plain diagram: %d legend entries, want 3", n)
	}
	if n := len(sample().Legend()); n != 6 {
		t.Errorf("sample: %d legend entries, want 6", n)
	}
}

// TestNoteAtTheEdge: a long note on the first lifeline is pushed inwards, off its centre,
// and still belongs to its lifeline and reaches no other.
func TestNoteAtTheEdge(t *testing.T) {
	d := &Diagram{Participants: []string{"A", "B", "C"}, Arrows: []Arrow{
		{From: "A", To: "A", Label: "a note far too long to sit centred on the first lifeline of all", Style: Note},
		{From: "C", To: "C", Label: "a note far too long to sit centred on the last lifeline of all", Style: Note},
	}}
	l := d.Layout()
	if r := l.Rows[0]; r.Label.X+r.Label.W/2 == l.Lifelines[0] {
		t.Fatalf("the note was not pushed: %+v", r.Label)
	}
	if p := l.Problems(); len(p) > 0 {
		t.Errorf("layout: %q", p)
	}
	if p, _, err := CheckSVG(bytes.NewReader(d.SVG())); err != nil || len(p) > 0 {
		t.Errorf("picture: %v %q", err, p)
	}
}
