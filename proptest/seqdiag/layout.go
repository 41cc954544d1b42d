package seqdiag

import (
	"fmt"
	"math"
	"strings"
)

// Geometry of the SVG, in pixels. Text is set in a monospace font, whose advance is 0.6 em
// (6.6 px at 11 px) in every common face (DejaVu Sans Mono, Menlo, Consolas, Courier): the
// layout reserves CharWidth a character, so that a box computed here holds its text in any
// of them, and a test can check the picture by arithmetic.
const (
	FontSize   = 11
	CharWidth  = 7.0
	lineHeight = 13.0
	colWidth   = 170.0
	// gutter is the column left of the first lifeline that holds the step numbers.
	gutter = 64.0
	// pad is the least room between a label and a lifeline it does not belong to.
	pad = 10.0
	// headClear keeps a label off the arrowhead (10 px long) at the receiving lifeline.
	headClear = 14.0
	// maxLines bounds a wrapped arrow label; what does not fit ends in "…" and is kept
	// whole in the SVG's <title> tooltip.
	maxLines  = 3
	titleSize = 14
	// titleChar is the advance reserved for a title character (0.6 em at 14 px, rounded up).
	titleChar = 9.0
)

// Box is a rectangle: X, Y its top left corner.
type Box struct{ X, Y, W, H float64 }

// Right and Bottom are the box's far edges.
func (b Box) Right() float64  { return b.X + b.W }
func (b Box) Bottom() float64 { return b.Y + b.H }

// intersects reports whether two boxes share more than an edge.
func (b Box) intersects(o Box) bool {
	return b.W > 0 && o.W > 0 && b.X < o.Right() && o.X < b.Right() && b.Y < o.Bottom() && o.Y < b.Bottom()
}

// Row is where one arrow is drawn.
type Row struct {
	Arrow Arrow
	// Y is the height of the arrow's line; X1 its tail and X2 its head (X1 == X2 for a
	// note).
	Y, X1, X2 float64
	// From and To are the indexes of the arrow's lifelines.
	From, To int
	// Label holds the label's lines, Lines; for a note it is the note's box.
	Label Box
	Lines []string
	// Head is the arrowhead's box (zero for notes and elided rows, which have none).
	Head Box
	// Num holds the step number, in the left-hand column.
	Num Box
}

// LegendEntry is one sample of the legend and its text.
type LegendEntry struct {
	LegendItem
	Box Box
}

// Layout is where everything of a diagram goes: the SVG is drawn from it, and tests check
// it.
type Layout struct {
	Width, Height float64
	Participants  []string
	// Lifelines holds the x of each participant's lifeline, which runs from LifelineTop to
	// LifelineBottom.
	Lifelines                   []float64
	LifelineTop, LifelineBottom float64
	Title                       Box
	Legend                      []LegendEntry
	Rows                        []Row
	Footer                      Box
	FooterLines                 []string
}

// textWidth is the width reserved for a line of text.
func textWidth(s string) float64 { return float64(len([]rune(s))) * CharWidth }

// wrap breaks text into lines of at most width characters, at spaces where it can; past
// maxLines the last line ends in "…".
func wrap(text string, width, lines int) []string {
	if width < 2 {
		width = 2
	}
	var out []string
	cur := ""
	for _, w := range strings.Fields(text) {
		for len([]rune(w)) > width {
			// A word longer than a line is cut.
			if cur != "" {
				out = append(out, cur)
				cur = ""
			}
			r := []rune(w)
			out = append(out, string(r[:width]))
			w = string(r[width:])
		}
		switch {
		case cur == "":
			cur = w
		case len([]rune(cur))+1+len([]rune(w)) <= width:
			cur += " " + w
		default:
			out = append(out, cur)
			cur = w
		}
	}
	if cur != "" || len(out) == 0 {
		out = append(out, cur)
	}
	if len(out) > lines {
		out = out[:lines]
		r := []rune(out[lines-1])
		if len(r) >= width {
			r = r[:width-1]
		}
		out[lines-1] = string(r) + "…"
	}
	return out
}

// Layout places the diagram: lifelines in columns, the legend under the title, one row
// per arrow with its label inside the gap next to the sender (so that it crosses no
// lifeline and stays clear of the arrowhead), wrapped to fit.
func (d *Diagram) Layout() *Layout {
	parts := d.participants()
	l := &Layout{Participants: parts}
	col := map[string]int{}
	for i, p := range parts {
		col[p] = i
		l.Lifelines = append(l.Lifelines, gutter+float64(i)*colWidth+colWidth/2)
	}
	l.Width = gutter + float64(len(parts))*colWidth + 20
	y := 10.0
	if d.Title != "" {
		l.Title = Box{X: 12, Y: y, W: float64(len([]rune(d.Title))) * titleChar, H: titleSize + 4}
		l.Width = math.Max(l.Width, l.Title.Right()+12)
		y = l.Title.Bottom() + 8
	}
	// The legend flows left to right and wraps at the width of the lifelines.
	x := 12.0
	for _, e := range d.Legend() {
		w := 44 + textWidth(e.Text)
		if x > 12 && x+w > l.Width-12 {
			x, y = 12, y+lineHeight+5
		}
		l.Legend = append(l.Legend, LegendEntry{LegendItem: e, Box: Box{X: x, Y: y, W: w, H: lineHeight}})
		x += w + 24
	}
	y += lineHeight + 14
	l.LifelineTop = y + 24
	y = l.LifelineTop + 6
	for _, a := range d.Arrows {
		r := Row{Arrow: a, From: col[a.From], To: col[a.To]}
		xf, xt := l.Lifelines[r.From], l.Lifelines[r.To]
		text := a.Label
		if a.Style == Note || a.From == a.To {
			// A note sits on its lifeline and reaches at most pad short of its neighbours
			// (of the first lifeline, short of the step numbers); it is centred where
			// there is room, and pushed inwards where there is not.
			lo, hi := gutter, xf+colWidth-pad
			if r.From > 0 {
				lo = l.Lifelines[r.From-1] + pad
			}
			if r.From+1 < len(l.Lifelines) {
				hi = l.Lifelines[r.From+1] - pad
			}
			maxW := math.Min(hi-lo, 2*colWidth-2*pad)
			r.Lines = wrap(text, int((maxW-12)/CharWidth), maxLines)
			w := 12.0
			for _, s := range r.Lines {
				w = math.Max(w, textWidth(s)+12)
			}
			x := math.Max(lo, math.Min(xf-w/2, hi-w))
			r.Label = Box{X: x, Y: y + 3, W: w, H: float64(len(r.Lines))*lineHeight + 6}
			l.Width = math.Max(l.Width, r.Label.Right()+12)
			r.X1, r.X2, r.To = xf, xf, r.From
			r.Y = r.Label.Y + r.Label.H/2
			y = r.Label.Bottom() + 5
		} else {
			// The label goes in the gap between the sender and its neighbour towards the
			// receiver; in the last gap before the receiver it keeps clear of the head.
			var left, right float64
			if r.To > r.From {
				left, right = xf+pad, l.Lifelines[r.From+1]-pad
				if r.To == r.From+1 {
					right = xt - headClear
				}
			} else {
				left, right = l.Lifelines[r.From-1]+pad, xf-pad
				if r.To == r.From-1 {
					left = xt + headClear
				}
			}
			r.Lines = wrap(text, int((right-left)/CharWidth), maxLines)
			w := 0.0
			for _, s := range r.Lines {
				w = math.Max(w, textWidth(s))
			}
			h := float64(len(r.Lines)) * lineHeight
			r.Label = Box{X: (left+right)/2 - w/2, Y: y + 4, W: w, H: h}
			// The label's lowest descender stays 5 px above the line; the arrowhead
			// reaches 3.5 px above it.
			r.Y = r.Label.Bottom() + 6
			r.X1, r.X2 = xf, xt
			if a.Style != Elided {
				hx := xt - 10
				if xt < xf {
					hx = xt
				}
				r.Head = Box{X: hx, Y: r.Y - 4, W: 10, H: 8}
			}
			y = r.Y + 6
		}
		if a.Num != "" {
			r.Num = Box{X: 8, Y: r.Y - lineHeight + 1, W: textWidth(a.Num), H: lineHeight}
		}
		l.Rows = append(l.Rows, r)
	}
	l.LifelineBottom = y + 10
	y = l.LifelineBottom + 10
	if len(d.Footer) > 0 {
		w := 0.0
		for _, s := range d.Footer {
			for _, line := range wrap(s, int((l.Width-40)/CharWidth), 8) {
				l.FooterLines = append(l.FooterLines, line)
				w = math.Max(w, textWidth(line))
			}
		}
		l.Footer = Box{X: 12, Y: y, W: w + 12, H: float64(len(l.FooterLines))*lineHeight + 8}
		y = l.Footer.Bottom() + 10
	}
	l.Height = y + 10
	return l
}

// Problems lists what a reader would stumble on, by geometry: a label that crosses a
// lifeline other than its arrow's ends, a label on an arrowhead, on another row's arrow
// or label, a step number in the drawing, anything off the page. An empty list is a
// readable diagram.
func (l *Layout) Problems() []string {
	var out []string
	page := Box{W: l.Width, H: l.Height}
	for i, r := range l.Rows {
		name := fmt.Sprintf("row %d (%s -> %s: %q)", i, r.Arrow.From, r.Arrow.To, r.Arrow.Label)
		for j, x := range l.Lifelines {
			if j == r.From || j == r.To {
				continue
			}
			if r.Label.X < x && x < r.Label.Right() {
				out = append(out, fmt.Sprintf("%s: label [%.0f,%.0f] crosses the lifeline of %s at x=%.0f", name, r.Label.X, r.Label.Right(), l.Participants[j], x))
			}
		}
		if r.Label.X < 0 || r.Label.Right() > page.W || r.Label.Y < l.LifelineTop || r.Label.Bottom() > l.LifelineBottom {
			out = append(out, fmt.Sprintf("%s: label %+v is off the drawing", name, r.Label))
		}
		if r.Num.W > 0 && r.Num.Right() > l.Lifelines[0]-colWidth/2 {
			out = append(out, fmt.Sprintf("%s: step number reaches into the drawing", name))
		}
		for k, o := range l.Rows {
			if r.Label.intersects(o.Head) {
				out = append(out, fmt.Sprintf("%s: label lies on the arrowhead of row %d", name, k))
			}
			if k != i && r.Label.intersects(o.Label) {
				out = append(out, fmt.Sprintf("%s: label overlaps the label of row %d", name, k))
			}
			if k != i && o.X1 != o.X2 {
				line := Box{X: math.Min(o.X1, o.X2), Y: o.Y - 0.5, W: math.Abs(o.X2 - o.X1), H: 1}
				if r.Label.intersects(line) {
					out = append(out, fmt.Sprintf("%s: label lies on the arrow of row %d", name, k))
				}
			}
		}
	}
	return out
}
