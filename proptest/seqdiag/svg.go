package seqdiag

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// fontFamily lists monospace faces only: the layout reserves CharWidth a character.
const fontFamily = `DejaVu Sans Mono, Menlo, Consolas, Liberation Mono, monospace`

// SVG renders the diagram as a standalone SVG document, from its Layout. Every label and
// note carries its whole text in a <title>, which viewers show as a tooltip when the label
// had to be wrapped or cut.
func (d *Diagram) SVG() []byte {
	l := d.Layout()
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="%s" font-size="%d">`+"\n",
		l.Width, l.Height, l.Width, l.Height, fontFamily, FontSize)
	b.WriteString(`<defs><marker id="solid" markerWidth="10" markerHeight="7" refX="10" refY="3.5" orient="auto"><polygon points="0 0, 10 3.5, 0 7"/></marker>` +
		`<marker id="open" markerWidth="10" markerHeight="7" refX="10" refY="3.5" orient="auto"><polyline points="0 0, 10 3.5, 0 7" fill="none" stroke="#246"/></marker>` +
		`<marker id="hot" markerWidth="10" markerHeight="7" refX="10" refY="3.5" orient="auto"><polygon points="0 0, 10 3.5, 0 7" fill="#c00"/></marker></defs>` + "\n")
	fmt.Fprintf(&b, `<rect width="%.0f" height="%.0f" fill="white"/>`+"\n", l.Width, l.Height)
	if d.Title != "" {
		fmt.Fprintf(&b, `<text class="title" x="%.1f" y="%.1f" font-size="%d" font-weight="bold">%s</text>`+"\n", l.Title.X, l.Title.Bottom()-4, titleSize, esc(d.Title))
	}
	b.WriteString(`<g class="legend">` + "\n")
	for _, e := range l.Legend {
		y := e.Box.Y + e.Box.H/2
		x := e.Box.X
		switch e.Style {
		case Note:
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="36" height="%.0f" fill="#ffd" stroke="#aa8"/>`+"\n", x, e.Box.Y, e.Box.H)
		default:
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" %s/>`+"\n", x, y, x+36, y, lineAttrs(e.Style, e.Highlight))
		}
		fmt.Fprintf(&b, `<text class="legend-text" x="%.1f" y="%.1f">%s</text>`+"\n", x+44, e.Box.Bottom()-3, esc(e.Text))
	}
	b.WriteString("</g>\n")
	// Highlighted rows get a band behind everything else.
	for _, r := range l.Rows {
		if r.Arrow.Highlight {
			top := math.Min(r.Label.Y, r.Y-6) - 3
			fmt.Fprintf(&b, `<rect class="highlight" x="2" y="%.1f" width="%.1f" height="%.1f" fill="#fdd"/>`+"\n", top, l.Width-4, r.Y+8-top)
		}
	}
	for i, p := range l.Participants {
		x := l.Lifelines[i]
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.0f" height="24" fill="#eef" stroke="black"/>`+"\n", x-colWidth/2+10, l.LifelineTop-24, colWidth-20)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, l.LifelineTop-8, esc(p))
		fmt.Fprintf(&b, `<line class="lifeline" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#888"/>`+"\n", x, l.LifelineTop, x, l.LifelineBottom)
	}
	for _, r := range l.Rows {
		a := r.Arrow
		fmt.Fprintf(&b, "<g><title>%s</title>\n", esc(numbered(a)))
		if r.Num.W > 0 {
			fmt.Fprintf(&b, `<text class="step" x="%.1f" y="%.1f" fill="#555">%s</text>`+"\n", r.Num.X, r.Num.Bottom()-3, esc(a.Num))
		}
		weight := ""
		if a.Highlight {
			weight = ` font-weight="bold" fill="#c00"`
		}
		if r.X1 == r.X2 {
			stroke := "#aa8"
			if a.Highlight {
				stroke = "#c00"
			}
			// data-lifeline names the lifeline the note belongs to: a note next to the page's
			// edge is pushed off its centre.
			fmt.Fprintf(&b, `<rect class="note" data-lifeline="%.1f" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#ffd" stroke="%s"/>`+"\n", r.X1, r.Label.X, r.Label.Y, r.Label.W, r.Label.H, stroke)
			for k, s := range r.Lines {
				fmt.Fprintf(&b, `<text class="label" x="%.1f" y="%.1f"%s>%s</text>`+"\n", r.Label.X+6, r.Label.Y+3+float64(k+1)*lineHeight-3, weight, esc(s))
			}
			b.WriteString("</g>\n")
			continue
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" %s/>`+"\n", r.X1, r.Y, r.X2, r.Y, lineAttrs(a.Style, a.Highlight))
		for k, s := range r.Lines {
			fmt.Fprintf(&b, `<text class="label" x="%.1f" y="%.1f"%s>%s</text>`+"\n", r.Label.X, r.Label.Y+float64(k+1)*lineHeight-3, weight, esc(s))
		}
		b.WriteString("</g>\n")
	}
	if len(l.FooterLines) > 0 {
		fmt.Fprintf(&b, `<rect class="footer" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#fdd" stroke="#c00"/>`+"\n", l.Footer.X, l.Footer.Y, l.Footer.W, l.Footer.H)
		for k, s := range l.FooterLines {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", l.Footer.X+6, l.Footer.Y+4+float64(k+1)*lineHeight-3, esc(s))
		}
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

// lineAttrs is how an arrow of a style is stroked.
func lineAttrs(s Style, hot bool) string {
	color, head := "black", "url(#solid)"
	if hot {
		color, head = "#c00", "url(#hot)"
	}
	switch s {
	case Dashed:
		return fmt.Sprintf(`stroke="%s" stroke-dasharray="6,4" marker-end="%s"`, color, head)
	case Media:
		if !hot {
			color, head = "#246", "url(#open)"
		}
		return fmt.Sprintf(`stroke="%s" marker-end="%s"`, color, head)
	case Elided:
		return `stroke="#246" stroke-dasharray="1,4" stroke-width="2"`
	}
	return fmt.Sprintf(`stroke="%s" marker-end="%s"`, color, head)
}

func esc(s string) string { return html.EscapeString(s) }
