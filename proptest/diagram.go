package proptest

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/proptest/seqdiag"
)

// DisplayName gives a role instance the name the patent's figures use: ClientA, PF-A,
// CF, PF-B and ClientB, numbered when there are several.
func (c Config) DisplayName(instance string) string {
	switch {
	case instance == "clientA":
		return "ClientA"
	case instance == "pfa":
		return "PF-A"
	case instance == "cf":
		return "CF"
	case strings.HasPrefix(instance, "pfb"):
		if c.PFBs == 1 {
			return "PF-B"
		}
		return "PF-B" + strings.TrimPrefix(instance, "pfb")
	case strings.HasPrefix(instance, "m"):
		if c.Members == 1 {
			return "ClientB"
		}
		return "ClientB" + strings.TrimPrefix(instance, "m")
	}
	return instance
}

// diagram draws steps with one lifeline per role instance; num numbers each step ("" for
// none).
func (c Config) diagram(title string, steps []Step, num func(i int, s Step) string) *seqdiag.Diagram {
	d := &seqdiag.Diagram{Title: title}
	d.Participants = []string{"ClientA", "PF-A", "CF"}
	for p := 1; p <= c.PFBs; p++ {
		d.Participants = append(d.Participants, c.DisplayName("pfb"+itoa(p)))
	}
	for m := 1; m <= c.Members; m++ {
		d.Participants = append(d.Participants, c.DisplayName("m"+itoa(m)))
	}
	for i, s := range steps {
		a := seqdiag.Arrow{From: c.DisplayName(s.From), To: c.DisplayName(s.To), Label: c.shortLabel(s.Label), Num: num(i, s), Highlight: s.Violating}
		switch {
		case s.Note:
			a.Style = seqdiag.Note
		case s.Elided:
			a.Style = seqdiag.Elided
		case s.Link:
			a.Style = seqdiag.Dashed
		case s.Media:
			a.Style = seqdiag.Media
		}
		d.Arrows = append(d.Arrows, a)
	}
	return d
}

// Diagram draws steps as a sequence diagram of a trace: one lifeline per role instance,
// and every step but the opening note and elided rows numbered 1, 2, 3… in order. In a
// counterexample from Replay, step k is the k-th choice of its path.
func (c Config) Diagram(title string, steps []Step) *seqdiag.Diagram {
	n := 0
	return c.diagram(title, steps, func(i int, s Step) string {
		if s.Elided || i == 0 && s.Note {
			return ""
		}
		n++
		return strconv.Itoa(n)
	})
}

// FigureDiagram draws a canonical run the way the patent's figures number it: each SIP
// message and link opening carries the step of the patent's text that sends it (S101…).
func (c Config) FigureDiagram(title string, steps []Step) *seqdiag.Diagram {
	return c.diagram(title, steps, func(_ int, s Step) string { return c.PatentStep(s) })
}

// Counterexample draws the steps that led to a violation, up to and including the step
// that broke the property (highlighted), with the verdict under the diagram.
func (c Config) Counterexample(title string, steps []Step, v *Violation) *seqdiag.Diagram {
	d := c.Diagram(title, steps)
	if v != nil {
		d.Footer = c.Explain(v)
	}
	return d
}

// patentSIP gives the step of US 8,688,848 B2 that sends each SIP message of the set-up,
// by the kinds of its two ends: FIG. 1's steps S101–S111, which the text of the other
// figures takes over ("the media negotiation process … similar to the foregoing").
var patentSIP = map[string]string{
	"clientA>pfa INVITE": "S101",
	"pfa>cf INVITE":      "S102",
	"cf>pfa 200 OK":      "S103",
	"cf>pfb INVITE":      "S103",
	"pfa>clientA 200 OK": "S104",
	"clientA>pfa ACK":    "S105",
	"pfa>cf ACK":         "S106",
	"pfb>m INVITE":       "S107",
	"m>pfb 200 OK":       "S108",
	"pfb>cf 200 OK":      "S109",
	"cf>pfb ACK":         "S110",
	"pfb>m ACK":          "S111",
}

// patentLink gives, per solution of the patent, the step that establishes each hop's
// link (hop1…hop4): solution 1 (FIG. 1, 2) in S105, S106, S110, S111; solution 2 (FIG. 3,
// 4) in S204…S201; solution 3 (FIG. 5–7) in S301…S304.
var patentLink = [4][fsm.NumHops]string{
	1: {"S105", "S106", "S110", "S111"},
	2: {"S204", "S203", "S202", "S201"},
	3: {"S301", "S302", "S303", "S304"},
}

// solution says which of the patent's three solutions a variant follows: the answerer
// opens hop1 only in solution 2 (the INVITE's receivers open), and the member opens hop4
// under a sender that opens hop1 only in solution 3 (the clients open).
func solution(v fsm.Variant) int {
	switch {
	case v.Opener[fsm.Hop1].String() == "answerer":
		return 2
	case v.Opener[fsm.Hop4].String() == "answerer":
		return 3
	}
	return 1
}

// kindOf is the role kind of an instance name.
func kindOf(instance string) string {
	switch {
	case strings.HasPrefix(instance, "pfb"):
		return "pfb"
	case instance != "" && instance[0] == 'm' && len(instance) > 1 && instance[1] >= '0' && instance[1] <= '9':
		return "m"
	}
	return instance
}

// PatentStep names the step of the patent that a step of the set-up carries out ("S103"),
// or "" for what the figures do not number (MSRP requests, BYE, notes). A link opening
// takes the step of the variant's solution that establishes its hop's link; the
// alternatives the text names (the CF opening hop2 in FIG. 5–7, say) keep their hop's
// step.
func (c Config) PatentStep(s Step) string {
	if s.Note || s.Media || s.Elided {
		return ""
	}
	if s.Link {
		for h := fsm.Hop(0); h < fsm.NumHops; h++ {
			if strings.HasPrefix(s.Label, h.String()+":") {
				return patentLink[solution(c.Variant)][h]
			}
		}
		return ""
	}
	return patentSIP[kindOf(s.From)+">"+kindOf(s.To)+" "+s.Label]
}

var (
	legRE      = regexp.MustCompile(`clientA-\d+(?:/\d+)*`)
	hopLegRE   = regexp.MustCompile(`hop\d \(leg (clientA-\d+(?:/\d+)*)\)`)
	legWordRE  = regexp.MustCompile(`\bleg (clientA-\d+(?:/\d+)*)`)
	lastRE     = regexp.MustCompile(`chunk (\d+)\$`)
	instanceRE = regexp.MustCompile(`(^|[\s(])(clientA|pfa|cf|pfb\d+|m\d+)\b`)
)

// LegName names a leg in words, by the hop it is and the member it serves: "hop1",
// "hop2", "hop3 of member 2", "hop4 of member 2". A leg it cannot place keeps its id.
func (c Config) LegName(leg core.LegID) string {
	parts := strings.Split(string(leg), "/")
	if !legRE.MatchString(parts[0]) {
		return string(leg)
	}
	switch len(parts) {
	case 1:
		return "hop1"
	case 2:
		return "hop2"
	case 3, 4:
		m, err := strconv.Atoi(parts[2])
		if err != nil {
			return string(leg)
		}
		return fmt.Sprintf("hop%d of member %d", len(parts), m+1)
	}
	return string(leg)
}

// Words rewrites a label or a violation's detail for a reader: legs named by hop and
// member instead of by id, role instances by the figures' names, and the last chunk of
// a message called so instead of flagged with MSRP's '$'.
func (c Config) Words(s string) string {
	leg := func(id string) string { return c.LegName(core.LegID(id)) }
	s = hopLegRE.ReplaceAllStringFunc(s, func(m string) string { return leg(hopLegRE.FindStringSubmatch(m)[1]) })
	s = legWordRE.ReplaceAllStringFunc(s, func(m string) string { return leg(legWordRE.FindStringSubmatch(m)[1]) })
	s = legRE.ReplaceAllStringFunc(s, leg)
	s = lastRE.ReplaceAllString(s, "last chunk $1")
	return instanceRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := instanceRE.FindStringSubmatch(m)
		return sub[1] + c.DisplayName(sub[2])
	})
}

var (
	bindRE   = regexp.MustCompile(`\(bind, hop\d(?: of (member \d+))?\)`)
	onHopRE  = regexp.MustCompile(` \(hop\d\)$`)
	onLegRE  = regexp.MustCompile(` \(hop\d of (member \d+)\)$`)
	memberRE = regexp.MustCompile(`\bsips?:(m\d+)@[\w.-]+`)
)

// shortLabel is Words for a label that must fit between two lifelines: the arrow's ends
// say which hop it is on, so only the member a leg serves is kept, and a member's URI is
// shortened to its user part.
func (c Config) shortLabel(s string) string {
	s = c.Words(s)
	s = bindRE.ReplaceAllStringFunc(s, func(m string) string {
		if who := bindRE.FindStringSubmatch(m)[1]; who != "" {
			return "(bind) for " + who
		}
		return "(bind)"
	})
	s = onHopRE.ReplaceAllString(s, "")
	if strings.HasPrefix(s, "REPORT ") {
		// A REPORT names its member itself.
		s = onLegRE.ReplaceAllString(s, "")
	}
	s = onLegRE.ReplaceAllString(s, " for $1")
	return memberRE.ReplaceAllString(s, "$1")
}

// Explain renders a violation for a reader, one line each: the property and what broke
// it in words, and for a deadlock each role that is not done on a line of its own.
func (c Config) Explain(v *Violation) []string {
	detail := c.Words(v.Detail)
	const stuck = "not done: "
	if i := strings.Index(detail, stuck); i >= 0 {
		out := []string{v.Property + ": " + strings.TrimSpace(detail[:i+len(stuck)])}
		for _, r := range strings.Split(detail[i+len(stuck):], "; ") {
			out = append(out, "  "+r)
		}
		return out
	}
	return []string{v.Property + ": " + detail}
}

// attemptStep is the step a role tried to take when its action broke a property: the
// message it sent, from it to the other end of the leg, or a note over it for what is no
// message.
func (w *World) attemptStep(r int, a fsm.Action) Step {
	leg := a.ActionLeg()
	peer := -1
	if le := w.dialog(leg); le != nil {
		peer = le.ends[0]
		if peer == r {
			peer = le.ends[1]
		}
	}
	s := Step{From: w.names[r], To: w.nameOf(peer)}
	hop := func() string {
		if h, ok := w.hopOf(leg); ok {
			return h.String()
		}
		return string(leg)
	}
	switch x := a.(type) {
	case fsm.SendInvite:
		s.Label = "INVITE"
		if to, ok := w.route(r, x.Target); ok {
			s.To = w.names[to]
		}
	case fsm.SendOK:
		s.Label = "200 OK"
	case fsm.SendReject:
		s.Label = strconv.Itoa(x.Status)
	case fsm.SendAck:
		s.Label = "ACK"
	case fsm.SendCancel:
		s.Label = "CANCEL"
	case fsm.SendBye:
		s.Label = "BYE"
	case fsm.OpenLink:
		s.Label, s.Link = hop()+": open link", true
		if to, ok := w.byHost(x.Peer.Host); ok {
			s.To = w.names[to]
		}
	case fsm.ReuseLink:
		s.Label, s.Link = hop()+": reuse connection "+string(x.Conn), true
		if to, ok := w.byHost(x.Peer.Host); ok {
			s.To = w.names[to]
		}
	case fsm.RelayChunk:
		s.Label, s.Media = fmt.Sprintf("SEND chunk %d (%s)", x.First, leg), true
	case fsm.SendReport:
		s.Label, s.Media = fmt.Sprintf("REPORT %s %s (%s)", x.Member, x.Outcome, leg), true
	default:
		s.To, s.Note = s.From, true
		s.Label = a.Kind() + " (" + string(leg) + ")"
	}
	if s.To == "nowhere" {
		s.To, s.Note = s.From, true
	}
	return s
}

// blame marks the step a violation happened at: the attempt that step() recorded, or
// else the delivery taken last.
func (w *World) blame() {
	if w.log == nil || len(*w.log) == 0 {
		return
	}
	l := *w.log
	if !l[len(l)-1].Violating {
		l[len(l)-1].Violating = true
	}
}

// recordAttempt logs the action that broke a property as the step a counterexample ends
// in.
func (w *World) recordAttempt(r int, a fsm.Action) {
	if w.log == nil {
		return
	}
	s := w.attemptStep(r, a)
	s.Violating = true
	w.record(s)
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

// Canonical runs a configuration with the canonical schedule (what was sent first is
// delivered first) and returns the steps: the message sequence a figure draws.
func Canonical(cfg Config) ([]Step, *Violation, error) {
	w, err := NewWorld(cfg)
	if err != nil {
		return nil, nil, err
	}
	log := []Step{{From: "clientA", To: "clientA", Label: "send the message to the group", Note: true}}
	w.SetLog(&log)
	v := Run(w, func(w *World, c []Choice) int { return w.Earliest(c) }, 100000)
	return log, v, nil
}
