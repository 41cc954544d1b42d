package proptest

import (
	"fmt"
	"strings"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"pgregory.net/rapid"
)

// Sizes bound the configurations rapid draws.
type Sizes struct {
	MaxMembers, MaxPFBs, MaxChunks int
	// MinChunks is at least 1; a message of two chunks or more shows order and gaps.
	MinChunks int
	// Faults lets rapid inject member faults (and turns guard timers on).
	Faults bool
}

// DrawConfig draws a configuration for a variant: group size, PF-Bs, chunks and, when
// asked, a fault per member.
func DrawConfig(t *rapid.T, v fsm.Variant, s Sizes) Config {
	members := rapid.IntRange(1, s.MaxMembers).Draw(t, "members")
	cfg := Config{
		Variant: v,
		Members: members,
		PFBs:    rapid.IntRange(1, min(s.MaxPFBs, members)).Draw(t, "pfbs"),
		Chunks:  rapid.IntRange(max(1, s.MinChunks), s.MaxChunks).Draw(t, "chunks"),
		// Our own sender waits for every outcome; a foreign one hangs up after its last
		// 200 (dropping its connection, or only with BYE), or, blind, asks for nothing and
		// hangs up when its guard runs out; every member must still get what it handed over.
		Sender: core.Senders[rapid.IntRange(0, len(core.Senders)-1).Draw(t, "sender")],
		// Members offered a fixed a=setup by an offerer of another make (foreign.go).
		ForeignOffers: true,
	}
	// The clients' a=setup on negotiated hops: standard clients may leave the choice
	// (actpass, what shrinking tends to) or fix their role (RFC 6135, RFC 4975 §5.4).
	choices := core.SetupChoices
	cfg.SenderSetup = choices[rapid.IntRange(0, len(choices)-1).Draw(t, "setupA")]
	// One choice per member the sizes allow, whatever the group drawn: the draws after
	// these stay where they were when shrinking takes a member away, so that a
	// counterexample shrinks to the smallest group (members beyond the group are unused).
	for m := 0; m < max(members, s.MaxMembers); m++ {
		cfg.MemberSetups = append(cfg.MemberSetups, choices[rapid.IntRange(0, len(choices)-1).Draw(t, fmt.Sprintf("setup%d", m))])
	}
	if s.Faults {
		cfg.Timers = true
		cfg.Faults = map[int]Fault{}
		for m := 0; m < members; m++ {
			// Mostly healthy members, so that every fault meets healthy peers.
			k := FaultKind(rapid.IntRange(0, 12).Draw(t, fmt.Sprintf("fault%d", m)))
			if k > HangUp {
				continue
			}
			f := Fault{Kind: k}
			switch k {
			case NoFault:
				continue
			case Decline:
				f.Status = rapid.SampledFrom([]int{480, 486, 603}).Draw(t, fmt.Sprintf("status%d", m))
			case BreakHop4:
				f.After = rapid.IntRange(1, cfg.Chunks+1).Draw(t, fmt.Sprintf("after%d", m))
			}
			cfg.Faults[m] = f
		}
	}
	return cfg
}

// RunDrawn runs a world with a schedule rapid draws: at each step it delivers one of the
// choices, and may first duplicate a SIP message (a UDP retransmission) or hold one back
// for a while (a delay). It returns the steps taken and the violation found, if any.
func RunDrawn(t *rapid.T, cfg Config) ([]Step, *Violation) {
	w, err := NewWorld(cfg)
	if err != nil {
		t.Fatalf("world: %v", err)
	}
	var log []Step
	w.SetLog(&log)
	dups := 0
	held := map[string]int{}
	v := Run(w, func(w *World, choices []Choice) int {
		switch rapid.IntRange(0, 19).Draw(t, "action") {
		case 0:
			if dups < 8 {
				c := choices[rapid.IntRange(0, len(choices)-1).Draw(t, "dup")]
				if w.Duplicate(c) {
					dups++
					return -1
				}
			}
		case 1:
			c := choices[rapid.IntRange(0, len(choices)-1).Draw(t, "hold")]
			held[w.choiceKey(c)] = rapid.IntRange(1, 8).Draw(t, "for")
		}
		if len(held) == 0 {
			return rapid.IntRange(0, len(choices)-1).Draw(t, "pick")
		}
		// A held choice is not picked while its hold lasts, unless nothing else can happen.
		var open []int
		for i, c := range choices {
			if held[w.choiceKey(c)] == 0 {
				open = append(open, i)
			}
		}
		for k, n := range held {
			if n <= 1 {
				delete(held, k)
			} else {
				held[k] = n - 1
			}
		}
		if len(open) == 0 {
			return rapid.IntRange(0, len(choices)-1).Draw(t, "pick")
		}
		return open[rapid.IntRange(0, len(open)-1).Draw(t, "pick")]
	}, 50000)
	return log, v
}

// FormatTrace renders steps one per line, for failure reports, numbered as Diagram numbers
// them, legs named in words; the step that broke a property is marked.
func FormatTrace(cfg Config, steps []Step) string {
	var b strings.Builder
	d := cfg.Diagram("", steps)
	for i, s := range steps {
		mark := ""
		if s.Violating {
			mark = "   <- violates"
		}
		fmt.Fprintf(&b, "%4s  %s -> %s: %s%s\n", d.Arrows[i].Num, d.Arrows[i].From, d.Arrows[i].To, d.Arrows[i].Label, mark)
	}
	return b.String()
}

// CheckVariant is the rapid property: a drawn configuration of the variant, run under a
// drawn schedule, violates no property.
func CheckVariant(v fsm.Variant, s Sizes) func(*rapid.T) {
	return func(t *rapid.T) {
		cfg := DrawConfig(t, v, s)
		steps, viol := RunDrawn(t, cfg)
		if viol != nil {
			t.Fatalf("%s with %d members over %d PF-Bs, %d chunks, faults %v, a=setup %s, sender %s:\n%v\ntrace:\n%s",
				v.Name, cfg.Members, cfg.PFBs, cfg.Chunks, cfg.Faults, cfg.SetupLabel(), cfg.Sender, strings.Join(cfg.Explain(viol), "\n"), FormatTrace(cfg, steps))
		}
	}
}
