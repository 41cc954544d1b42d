// Package seqdiag draws message sequence diagrams, as Mermaid text and as standalone SVG,
// in the style of the patent's figures: one lifeline per role, SIP as solid arrows, link
// openings as dashed arrows in the direction of initiative, MSRP as open arrows.
//
// It knows nothing about roles or protocols; the explorer, `cpmlink diagram` and the
// runtime's traces feed it arrows. It must never import fsm, runtime or model.
package seqdiag

import (
	"fmt"
	"html"
	"strings"
)

// Style is how an arrow is drawn.
type Style uint8

// Styles.
const (
	// Solid is a SIP message.
	Solid Style = iota
	// Dashed is a link opening, drawn from the party that takes the initiative.
	Dashed
	// Media is an MSRP request on a link.
	Media
	// Note is a remark over one lifeline (a timer, a dropped frame).
	Note
)

// Arrow is one step of a diagram.
type Arrow struct {
	From, To string
	Label    string
	Style    Style
}

// Diagram is a titled sequence of arrows between participants, drawn left to right in
// the order given.
type Diagram struct {
	Title        string
	Participants []string
	Arrows       []Arrow
}

// participants returns the declared participants, then any other in order of appearance.
func (d *Diagram) participants() []string {
	out := append([]string(nil), d.Participants...)
	seen := map[string]bool{}
	for _, p := range out {
		seen[p] = true
	}
	for _, a := range d.Arrows {
		for _, p := range []string{a.From, a.To} {
			if p != "" && !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// mermaidID makes a name usable as a Mermaid participant id.
func mermaidID(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// mermaidText escapes what Mermaid would read as syntax in a label.
func mermaidText(s string) string {
	r := strings.NewReplacer(";", ",", "#", "#35;", "\n", " ", ":", "#58;")
	return r.Replace(s)
}

// Mermaid renders the diagram as a Mermaid sequenceDiagram.
func (d *Diagram) Mermaid() string {
	var b strings.Builder
	b.WriteString("sequenceDiagram\n")
	if d.Title != "" {
		fmt.Fprintf(&b, "    title %s\n", mermaidText(d.Title))
	}
	for _, p := range d.participants() {
		fmt.Fprintf(&b, "    participant %s as %s\n", mermaidID(p), mermaidText(p))
	}
	for _, a := range d.Arrows {
		from, to, label := mermaidID(a.From), mermaidID(a.To), mermaidText(a.Label)
		switch a.Style {
		case Note:
			fmt.Fprintf(&b, "    Note over %s: %s\n", from, label)
		case Dashed:
			fmt.Fprintf(&b, "    %s-->>%s: %s\n", from, to, label)
		case Media:
			fmt.Fprintf(&b, "    %s-)%s: %s\n", from, to, label)
		default:
			fmt.Fprintf(&b, "    %s->>%s: %s\n", from, to, label)
		}
	}
	return b.String()
}

// Layout of the SVG, in pixels.
const (
	colWidth  = 150
	rowHeight = 26
	top       = 70
	margin    = 40
)

// SVG renders the diagram as a standalone SVG document.
func (d *Diagram) SVG() []byte {
	parts := d.participants()
	col := map[string]int{}
	for i, p := range parts {
		col[p] = i
	}
	x := func(p string) int { return margin + col[p]*colWidth + colWidth/2 }
	width := margin*2 + len(parts)*colWidth
	height := top + (len(d.Arrows)+1)*rowHeight + margin
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	b.WriteString(`<defs><marker id="solid" markerWidth="10" markerHeight="7" refX="10" refY="3.5" orient="auto"><polygon points="0 0, 10 3.5, 0 7"/></marker>` +
		`<marker id="open" markerWidth="10" markerHeight="7" refX="10" refY="3.5" orient="auto"><polyline points="0 0, 10 3.5, 0 7" fill="none" stroke="black"/></marker></defs>` + "\n")
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	if d.Title != "" {
		fmt.Fprintf(&b, `<text x="%d" y="22" font-size="14" font-weight="bold">%s</text>`+"\n", margin, html.EscapeString(d.Title))
	}
	for _, p := range parts {
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="24" fill="#eef" stroke="black"/>`+"\n", x(p)-colWidth/2+10, top-40, colWidth-20)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", x(p), top-24, html.EscapeString(p))
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#888"/>`+"\n", x(p), top-16, x(p), height-margin)
	}
	for i, a := range d.Arrows {
		y := top + (i+1)*rowHeight
		label := html.EscapeString(a.Label)
		if a.Style == Note || a.From == a.To {
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="18" fill="#ffd" stroke="#aa8"/>`+"\n", x(a.From)-colWidth/2+6, y-13, colWidth-12)
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", x(a.From), y, label)
			continue
		}
		x1, x2 := x(a.From), x(a.To)
		attrs := `stroke="black" marker-end="url(#solid)"`
		switch a.Style {
		case Dashed:
			attrs = `stroke="black" stroke-dasharray="6,4" marker-end="url(#solid)"`
		case Media:
			attrs = `stroke="#246" marker-end="url(#open)"`
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" %s/>`+"\n", x1, y, x2, y, attrs)
		mid := (x1 + x2) / 2
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", mid, y-4, label)
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}
