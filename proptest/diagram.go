package proptest

import (
	"strings"

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

// Diagram draws steps as a sequence diagram with one lifeline per role instance.
func (c Config) Diagram(title string, steps []Step) *seqdiag.Diagram {
	d := &seqdiag.Diagram{Title: title}
	d.Participants = []string{"ClientA", "PF-A", "CF"}
	for p := 1; p <= c.PFBs; p++ {
		d.Participants = append(d.Participants, c.DisplayName("pfb"+itoa(p)))
	}
	for m := 1; m <= c.Members; m++ {
		d.Participants = append(d.Participants, c.DisplayName("m"+itoa(m)))
	}
	for _, s := range steps {
		a := seqdiag.Arrow{From: c.DisplayName(s.From), To: c.DisplayName(s.To), Label: s.Label}
		switch {
		case s.Note:
			a.Style = seqdiag.Note
		case s.Link:
			a.Style = seqdiag.Dashed
		case s.Media:
			a.Style = seqdiag.Media
		}
		d.Arrows = append(d.Arrows, a)
	}
	return d
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
