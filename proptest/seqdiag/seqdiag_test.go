package seqdiag

import (
	"encoding/xml"
	"strings"
	"testing"
)

func sample() *Diagram {
	return &Diagram{
		Title:        "fig1: one member",
		Participants: []string{"ClientA", "PF-A"},
		Arrows: []Arrow{
			{From: "ClientA", To: "PF-A", Label: "INVITE", Style: Solid},
			{From: "ClientA", To: "PF-A", Label: "hop1: open link", Style: Dashed},
			{From: "ClientA", To: "PF-A", Label: "SEND chunk 1$", Style: Media},
			{From: "CF", To: "CF", Label: "timeout", Style: Note},
		},
	}
}

func TestMermaid(t *testing.T) {
	got := sample().Mermaid()
	for _, want := range []string{
		"sequenceDiagram\n",
		"participant PF_A as PF-A\n",
		"participant CF as CF\n", // appears although not declared
		"ClientA->>PF_A: INVITE\n",
		"ClientA-->>PF_A: hop1#58; open link\n",
		"ClientA-)PF_A: SEND chunk 1$\n",
		"Note over CF: timeout\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Mermaid output lacks %q:\n%s", want, got)
		}
	}
}

func TestSVGIsWellFormedXML(t *testing.T) {
	d := sample()
	d.Arrows = append(d.Arrows, Arrow{From: "PF-A", To: "ClientA", Label: `200 OK <"&">`})
	dec := xml.NewDecoder(strings.NewReader(string(d.SVG())))
	lines := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "line" {
			lines++
		}
	}
	// Three lifelines, four arrows drawn as lines (the note is a box).
	if lines != 3+4 {
		t.Errorf("%d lines, want 7", lines)
	}
}
