package model

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// OrderRule is one happens-before constraint a figure of the patent draws: whenever the
// role of Then does it, one of After must have happened already, on the same leg or on a
// leg of the same branch (the upstream leg the role answered, or any of the downstream
// legs it offered). Variants list the rules of their figure by name.
type OrderRule struct {
	Name string `yaml:"name"`
	// Cite names the patent steps (S104, S106 ...) or figures the rule comes from.
	Cite string `yaml:"cite"`
	Doc  string `yaml:"doc"`
	// Then and After are terms "ROLE EVENT at SIDE": a machine event of one of the role's
	// sides ("PFA send-ack at down", "CF recv-200 at down").
	Then  string  `yaml:"then"`
	After StrList `yaml:"after"`
	// Prompt makes a rule whose Then opens a link or sends an ACK say "on" as well as
	// "after": the role does it in its own step in which one of After has happened and it
	// can (for a link: its dialog answered, the peer's SDP in hand, nothing ended; for an
	// ACK: a 2xx received and not yet ACKed, no BYE on the dialog), not in a later step.
	// After then names steps of Then's role only, so that the step is the role's.
	Prompt bool `yaml:"prompt"`
	Pos    Pos  `yaml:"-"`

	// ThenTerm and AfterTerms are Then and After, parsed by validation.
	ThenTerm   OrderTerm   `yaml:"-"`
	AfterTerms []OrderTerm `yaml:"-"`
}

// OrderTerm is one step of a figure: a machine event on one side of a role, which the
// inputs (Events) and outputs (Actions) that fire it make visible.
type OrderTerm struct {
	Text  string
	Role  string
	Event string
	Side  string
	// Hop is the hop of the side; Kinds the input and output types that fire the event there.
	Hop   string
	Kinds []string
}

func (r *OrderRule) UnmarshalYAML(n *yaml.Node) error {
	type plain OrderRule
	return strictDecode(n, (*plain)(r), &r.Pos)
}

// Order returns the order rule with the given name, or nil.
func (s *Spec) Order(name string) *OrderRule {
	for _, o := range s.Orders {
		if o.Name == name {
			return o
		}
	}
	return nil
}

// parseTerm reads "ROLE EVENT at SIDE" against the spec.
func (s *Spec) parseTerm(text string) (OrderTerm, error) {
	f := strings.Fields(text)
	if len(f) != 4 || f[2] != "at" {
		return OrderTerm{}, fmt.Errorf("%q: write a step as ROLE EVENT at SIDE (\"PFA send-ack at down\")", text)
	}
	t := OrderTerm{Text: strings.Join(f, " "), Role: f[0], Event: f[1], Side: f[3]}
	r := s.Role(t.Role)
	switch {
	case r == nil:
		return t, fmt.Errorf("%q: unknown role %q", text, t.Role)
	case t.Side != SideUp && t.Side != SideDown:
		return t, fmt.Errorf("%q: the side is up or down, not %q", text, t.Side)
	case !r.HasSide(t.Side):
		return t, fmt.Errorf("%q: %s has no %s side", text, t.Role, t.Side)
	case s.ColumnOf(t.Side, t.Event) == "":
		return t, fmt.Errorf("%q: no machine of the %s side has the event %q", text, t.Side, t.Event)
	}
	t.Hop = s.HopOf(t.Role, t.Side).Name
	for _, e := range s.Events {
		if e.Fires == t.Event && (e.At == t.Side || e.At == AtAny) {
			t.Kinds = append(t.Kinds, e.Name)
		}
	}
	for _, a := range s.Actions {
		if a.Fires == t.Event && (a.At == t.Side || a.At == AtAny) {
			t.Kinds = append(t.Kinds, a.Name)
		}
	}
	if len(t.Kinds) == 0 {
		return t, fmt.Errorf("%q: no input or output fires %s on a %s side, so no run shows it", text, t.Event, t.Side)
	}
	return t, nil
}

// orders validates the order rules: each names a step, and each step is one the checkers
// can see. A step of another role than Then's must be on Then's hop: the checker then
// reads only the leg the step is on, and the role's own legs (docs/architecture.md, "Sleep
// sets", relies on it).
func (v *validator) orders() {
	names(v, "order rule", v.s.Orders, func(o *OrderRule) (string, Pos) { return o.Name, o.Pos })
	if len(v.s.Orders) > 64 {
		v.errf(v.s.Orders[64].Pos, "%d order rules; a variant keeps 64", len(v.s.Orders))
	}
	for _, o := range v.s.Orders {
		t, err := v.s.parseTerm(o.Then)
		if err != nil {
			v.errf(o.Pos, "order rule %s: then %v", o.Name, err)
			continue
		}
		o.ThenTerm = t
		o.AfterTerms = nil
		if o.Prompt && t.Event != "link-open" && t.Event != "send-ack" {
			v.errf(o.Pos, "order rule %s: prompt, but its then is %q; only a link opening or an ACK can be held to its trigger", o.Name, o.Then)
		}
		if len(o.After) == 0 {
			v.errf(o.Pos, "order rule %s: after names no step", o.Name)
		}
		for _, a := range o.After {
			at, err := v.s.parseTerm(a)
			if err != nil {
				v.errf(o.Pos, "order rule %s: after %v", o.Name, err)
				continue
			}
			if at.Role != t.Role && at.Hop != t.Hop {
				v.errf(o.Pos, "order rule %s: %q is another role's step on another hop than %q; name the step of %s that it causes", o.Name, a, o.Then, t.Role)
				continue
			}
			if o.Prompt && at.Role != t.Role {
				v.errf(o.Pos, "order rule %s: prompt, but %q is another role's step; a prompt rule's after steps are %s's own", o.Name, a, t.Role)
				continue
			}
			o.AfterTerms = append(o.AfterTerms, at)
		}
	}
}

// resolveOrder applies a variant's base chain to its order list: a variant states the
// rules of its figure, or inherits its base's and adds rules by name or drops one with
// "not NAME".
func (s *Spec) resolveOrder(x *Variant, seen []string, inherited []*Variant) ([]string, *Error) {
	if slices.Contains(seen, x.Name) {
		return nil, nil // resolve reports the cycle
	}
	var out []string
	if x.Base != "" {
		b := s.Variant(x.Base)
		if b == nil {
			for _, iv := range inherited {
				if iv.Name == x.Base {
					b = iv
				}
			}
		}
		if b != nil {
			base, err := s.resolveOrder(b, append(seen, x.Name), inherited)
			if err != nil {
				return nil, err
			}
			out = append(out, base...)
		}
	}
	for _, n := range x.Order {
		drop, name := false, n
		if rest, ok := strings.CutPrefix(n, "not "); ok {
			drop, name = true, strings.TrimSpace(rest)
		}
		if s.Order(name) == nil {
			return nil, &Error{Pos: x.Pos, Msg: fmt.Sprintf("variant %s: unknown order rule %q", x.Name, name)}
		}
		i := slices.Index(out, name)
		switch {
		case drop && i < 0:
			return nil, &Error{Pos: x.Pos, Msg: fmt.Sprintf("variant %s: drops order rule %q, which it does not inherit", x.Name, name)}
		case drop:
			out = slices.Delete(out, i, i+1)
		case i < 0:
			out = append(out, name)
		}
	}
	return out, nil
}
