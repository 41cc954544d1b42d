// Package seqdiag draws message sequence diagrams, as Mermaid text and as standalone SVG,
// in the style of the patent's figures: one lifeline per role, SIP as solid arrows, link
// openings as dashed arrows in the direction of initiative, MSRP as open arrows, each step
// numbered in a left-hand column (S101… in the figures' diagrams, 1, 2, 3… in traces).
//
// It knows nothing about roles or protocols; the explorer, `cpmlink diagram` and the
// runtime's traces feed it arrows. It must never import fsm, runtime or model.
package seqdiag

import (
	"fmt"
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
	// Elided stands for several MSRP requests left out of the drawing ("… 31 chunks …"),
	// drawn dotted between the two ends of their link.
	Elided
)

// Arrow is one step of a diagram.
type Arrow struct {
	From, To string
	Label    string
	Style    Style
	// Num is the step's number, drawn in the left-hand column ("S101", "12"); "" draws
	// none.
	Num string
	// Highlight marks the step a counterexample ends in: the one that broke a property.
	Highlight bool
}

// Diagram is a titled sequence of arrows between participants, drawn left to right in
// the order given.
type Diagram struct {
	Title        string
	Participants []string
	Arrows       []Arrow
	// Footer is text drawn under the last step (a counterexample's verdict), one entry a
	// line.
	Footer []string
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

// mermaidText makes a label safe for Mermaid without entity codes, so that the text reads
// the same on a terminal as rendered: a semicolon ends a statement and a '#' followed by a
// name and a semicolon is an entity, so semicolons become commas (which makes every '#'
// harmless); a line break ends the message, so it becomes a space. Colons need nothing:
// Mermaid takes everything after the first ": " of a message line as its text.
func mermaidText(s string) string {
	return strings.NewReplacer(";", ",", "\n", " ", "\r", " ").Replace(s)
}

// numbered prefixes a label with its step number.
func numbered(a Arrow) string {
	if a.Num == "" {
		return a.Label
	}
	return a.Num + " " + a.Label
}

// LegendItem is one entry of a legend: what an arrow of a style means; Highlight is the
// entry for the step a counterexample ends in.
type LegendItem struct {
	Style     Style
	Highlight bool
	Text      string
}

// Legend says what each arrow style of the diagram means, in the order the SVG draws
// them: SIP, link openings and MSRP always, elided rows, notes and the violating step
// where the diagram has them.
func (d *Diagram) Legend() []LegendItem {
	out := []LegendItem{
		{Style: Solid, Text: "SIP request or response"},
		{Style: Dashed, Text: "MSRP link opening, from the party that opens it"},
		{Style: Media, Text: "MSRP request (SEND, REPORT)"},
	}
	var elided, note, hot bool
	for _, a := range d.Arrows {
		elided = elided || a.Style == Elided
		note = note || a.Style == Note || a.From == a.To
		hot = hot || a.Highlight
	}
	if elided {
		out = append(out, LegendItem{Style: Elided, Text: "MSRP requests left out"})
	}
	if note {
		out = append(out, LegendItem{Style: Note, Text: "event at one role (timer, failure)"})
	}
	if hot {
		out = append(out, LegendItem{Style: Solid, Highlight: true, Text: "the step that broke a property"})
	}
	return out
}

// Mermaid renders the diagram as a Mermaid sequenceDiagram. Step numbers lead the labels;
// a highlighted step is wrapped in a red rect; elided requests are a note over both ends
// of their link; the legend is a comment at the top.
func (d *Diagram) Mermaid() string {
	var b strings.Builder
	b.WriteString("sequenceDiagram\n")
	if d.Title != "" {
		fmt.Fprintf(&b, "    title %s\n", mermaidText(d.Title))
	}
	b.WriteString("    %% ->> SIP, -->> link opening (from the opener), -) MSRP request\n")
	for _, p := range d.participants() {
		fmt.Fprintf(&b, "    participant %s as %s\n", mermaidID(p), mermaidText(p))
	}
	for _, a := range d.Arrows {
		from, to, label := mermaidID(a.From), mermaidID(a.To), mermaidText(numbered(a))
		ind := "    "
		if a.Highlight {
			b.WriteString("    rect rgb(255, 215, 215)\n")
			ind = "        "
		}
		switch {
		case a.Style == Note || a.From == a.To:
			fmt.Fprintf(&b, "%sNote over %s: %s\n", ind, from, label)
		case a.Style == Elided:
			fmt.Fprintf(&b, "%sNote over %s,%s: %s\n", ind, from, to, label)
		case a.Style == Dashed:
			fmt.Fprintf(&b, "%s%s-->>%s: %s\n", ind, from, to, label)
		case a.Style == Media:
			fmt.Fprintf(&b, "%s%s-)%s: %s\n", ind, from, to, label)
		default:
			fmt.Fprintf(&b, "%s%s->>%s: %s\n", ind, from, to, label)
		}
		if a.Highlight {
			b.WriteString("    end\n")
		}
	}
	if len(d.Footer) > 0 {
		parts := d.participants()
		over := mermaidID(parts[0])
		if len(parts) > 1 {
			over += "," + mermaidID(parts[len(parts)-1])
		}
		// One note a line: a <br/> would read as markup on a terminal.
		for _, l := range d.Footer {
			fmt.Fprintf(&b, "    Note over %s: %s\n", over, mermaidText(l))
		}
	}
	return b.String()
}
