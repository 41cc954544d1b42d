package seqdiag

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// ErrNotOurs is returned by CheckSVG for a document this package did not draw.
var ErrNotOurs = errors.New("seqdiag: not a sequence diagram of this package")

// SVGStats counts what CheckSVG found in a picture.
type SVGStats struct {
	Lifelines, Arrows, Labels, StepNumbers, LegendEntries, Tooltips int
	// Texts holds every label's text, in order.
	Texts []string
}

// svgText is one <text> with its position.
type svgText struct {
	x, y  float64
	class string
	text  string
}

// svgGroup is one step's <g>: its arrow (or note box) and its label lines.
type svgGroup struct {
	x1, x2, y float64
	arrow     bool
	head      bool
	note      *Box
	// lifeline is the x of a note's lifeline.
	lifeline float64
	texts    []svgText
	title    string
}

// CheckSVG reads a diagram as drawn (the SVG, not the Layout it came from) and checks it
// by geometry: each label's box, from its position and the CharWidth its monospace font
// is laid out with, must cross no lifeline but those of its own arrow's ends (a note's
// own lifeline), and lie on no arrowhead. It returns what is wrong and what it counted.
func CheckSVG(r io.Reader) ([]string, SVGStats, error) {
	var st SVGStats
	dec := xml.NewDecoder(r)
	attr := func(se xml.StartElement, name string) string {
		for _, a := range se.Attr {
			if a.Name.Local == name {
				return a.Value
			}
		}
		return ""
	}
	num := func(se xml.StartElement, name string) float64 {
		f, _ := strconv.ParseFloat(attr(se, name), 64)
		return f
	}
	var lifelines []float64
	var groups []*svgGroup
	var cur *svgGroup
	var text *svgText
	inTitle, inLegend, sawSVG := false, false, false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, st, fmt.Errorf("seqdiag: SVG is not well-formed: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "svg":
				sawSVG = true
			case "g":
				if attr(t, "class") == "legend" {
					inLegend = true
				} else {
					cur = &svgGroup{}
					groups = append(groups, cur)
				}
			case "title":
				inTitle = true
			case "line":
				switch {
				case attr(t, "class") == "lifeline":
					lifelines = append(lifelines, num(t, "x1"))
				case cur != nil:
					cur.x1, cur.x2, cur.y, cur.arrow = num(t, "x1"), num(t, "x2"), num(t, "y1"), true
					cur.head = attr(t, "marker-end") != ""
				}
			case "rect":
				if cur != nil && attr(t, "class") == "note" {
					cur.note = &Box{X: num(t, "x"), Y: num(t, "y"), W: num(t, "width"), H: num(t, "height")}
					cur.lifeline = num(t, "data-lifeline")
				}
			case "text":
				text = &svgText{x: num(t, "x"), y: num(t, "y"), class: attr(t, "class")}
				if text.class == "legend-text" && inLegend {
					st.LegendEntries++
				}
			}
		case xml.CharData:
			if inTitle && cur != nil {
				cur.title += string(t)
			}
			if text != nil {
				text.text += string(t)
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "g":
				if inLegend {
					inLegend = false
				} else {
					cur = nil
				}
			case "title":
				inTitle = false
			case "text":
				if cur != nil && text != nil {
					cur.texts = append(cur.texts, *text)
				}
				text = nil
			}
		}
	}
	if !sawSVG || len(lifelines) == 0 {
		return nil, st, ErrNotOurs
	}
	st.Lifelines = len(lifelines)
	near := func(a, b float64) bool { return math.Abs(a-b) < 0.5 }
	var heads []Box
	for _, g := range groups {
		if g.arrow {
			st.Arrows++
		}
		if g.title != "" {
			st.Tooltips++
		}
		if g.arrow && g.head {
			hx := g.x2 - 10
			if g.x2 < g.x1 {
				hx = g.x2
			}
			heads = append(heads, Box{X: hx, Y: g.y - 4, W: 10, H: 8})
		}
	}
	var out []string
	for _, g := range groups {
		for _, t := range g.texts {
			if t.class == "step" {
				st.StepNumbers++
				continue
			}
			if t.class != "label" {
				continue
			}
			st.Labels++
			st.Texts = append(st.Texts, t.text)
			// Each line's box: the advance the layout reserves, from the ascent of a
			// capital to the lowest descender.
			b := Box{X: t.x, Y: t.y - lineHeight + 3, W: textWidth(t.text), H: lineHeight}
			ends := []float64{g.x1, g.x2}
			if g.note != nil {
				ends = []float64{g.lifeline}
			}
			for _, x := range lifelines {
				own := false
				for _, e := range ends {
					own = own || near(x, e)
				}
				if !own && b.X < x && x < b.Right() {
					out = append(out, fmt.Sprintf("label %q at x %.0f..%.0f crosses a lifeline at x=%.0f", t.text, b.X, b.Right(), x))
				}
			}
			for _, h := range heads {
				if b.intersects(h) {
					out = append(out, fmt.Sprintf("label %q lies on an arrowhead at (%.0f, %.0f)", t.text, h.X, h.Y))
				}
			}
		}
	}
	return out, st, nil
}
