package model

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// Stmt is one statement of a rule, a reaction or a cell. Its form in the file is a mapping
// with one key that names it (plus do/else for blocks):
//
//   - SendOK: up                                   emit an action on a side
//   - SendReject: {to: up, status: 486}            ... with arguments
//   - SendReport: {to: up, about: down}
//   - learn: up                                    store the peer's MSRP parameters from SDP
//   - party: {side: up, is: active}                settle who opens the side's link (also
//     passive, or preset: what the variant's opener knob names)
//   - open: down                                   open (or reuse) the side's link
//   - skip: down                                   mark pending chunks as relayed without sending
//   - set: flag.streamed / clear: flag.streamed
//   - outcome: {side: down, is: failed, status: event}
//   - outcome: {side: down, from: event}
//   - record: event / record: {fail-all: 408}      the transmitter's per-member results
//   - each: down                                   for every down side
//     do: [...]
//   - if: CONDITION
//     do: [...]
//     else: [...]
type Stmt struct {
	Kind string
	// Action is the emitted action (Kind emit).
	Action string
	// Side is the side the statement acts on.
	Side string
	// Status is a status source: a number, "event", "policy" or "best(down)".
	Status string
	// About is the side (or "event") whose outcome a SendReport carries.
	About string
	// Is is the outcome a Kind outcome statement sets (delivered or failed), or the party
	// a Kind party statement settles (active, passive or preset).
	Is string
	// From is "event" when the outcome is copied from the event.
	From string
	// Flag is the flag a set or clear statement changes.
	Flag string
	// FailAll is the status source of record {fail-all: ...}.
	FailAll string
	Cond    Expr
	Do      []*Stmt
	Else    []*Stmt
	Pos     Pos
}

// Statement kinds.
const (
	StmtEmit    = "emit"
	StmtLearn   = "learn"
	StmtParty   = "party"
	StmtOpen    = "open"
	StmtSkip    = "skip"
	StmtSet     = "set"
	StmtClear   = "clear"
	StmtOutcome = "outcome"
	StmtRecord  = "record"
	StmtEach    = "each"
	StmtIf      = "if"
)

var blockKeys = map[string]bool{"do": true, "else": true}

// UnmarshalYAML decodes one statement.
func (s *Stmt) UnmarshalYAML(n *yaml.Node) error {
	s.Pos = Pos{n.Line, n.Column}
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		return errAt(n, "expected a statement (a mapping such as {SendOK: up}), found %s", kindName(n))
	}
	keys := map[string]*yaml.Node{}
	var head *yaml.Node
	var headVal *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if prev, dup := keys[k.Value]; dup {
			return errAt(k, "key %q already set at line %d", k.Value, prev.Line)
		}
		keys[k.Value] = k
		if blockKeys[k.Value] {
			continue
		}
		if head != nil {
			return errAt(k, "a statement has one verb; found %q and %q", head.Value, k.Value)
		}
		head, headVal = k, v
	}
	if head == nil {
		return errAt(n, "statement has only do/else and no verb")
	}
	decodeBlock := func(key string, dst *[]*Stmt) error {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i+1].Decode(dst)
			}
		}
		return nil
	}
	verb := head.Value
	switch verb {
	case StmtEach, StmtIf:
		s.Kind = verb
		if headVal.Kind != yaml.ScalarNode {
			return errAt(headVal, "%s: expected a scalar, found %s", verb, kindName(headVal))
		}
		if verb == StmtEach {
			s.Side = headVal.Value
		} else if err := s.Cond.UnmarshalYAML(headVal); err != nil {
			return err
		}
		if keys["do"] == nil {
			return errAt(head, "%s needs a do: block", verb)
		}
		if err := decodeBlock("do", &s.Do); err != nil {
			return err
		}
		if keys["else"] != nil {
			if verb != StmtIf {
				return errAt(keys["else"], "only if takes an else: block")
			}
			return decodeBlock("else", &s.Else)
		}
		return nil
	}
	if len(keys) > 1 {
		for k, kn := range keys {
			if blockKeys[k] {
				return errAt(kn, "%q takes no %s: block", verb, k)
			}
		}
	}
	switch verb {
	case StmtLearn, StmtOpen, StmtSkip:
		s.Kind = verb
		return scalarInto(headVal, verb, &s.Side)
	case StmtSet, StmtClear:
		s.Kind = verb
		var f string
		if err := scalarInto(headVal, verb, &f); err != nil {
			return err
		}
		name, ok := strings.CutPrefix(f, "flag.")
		if !ok {
			return errAt(headVal, "%s: expected flag.NAME, found %q", verb, f)
		}
		s.Flag = name
		return nil
	case StmtOutcome:
		s.Kind = verb
		args, err := argMap(headVal, verb, "side", "is", "status", "from")
		if err != nil {
			return err
		}
		s.Side, s.Is, s.Status, s.From = args["side"], args["is"], args["status"], args["from"]
		switch {
		case s.Side == "":
			return errAt(headVal, "outcome needs side:")
		case s.From != "" && (s.Is != "" || s.Status != ""):
			return errAt(headVal, "outcome takes either from: or is:/status:")
		case s.From == "" && s.Is == "":
			return errAt(headVal, "outcome needs is: (delivered or failed) or from: event")
		case s.From != "" && s.From != "event":
			return errAt(headVal, "outcome from: must be event, found %q", s.From)
		case s.Is != "" && s.Is != "delivered" && s.Is != "failed":
			return errAt(headVal, "outcome is: must be delivered or failed, found %q", s.Is)
		case s.Is == "failed" && s.Status == "":
			return errAt(headVal, "a failed outcome needs status:")
		}
		return nil
	case StmtParty:
		s.Kind = verb
		args, err := argMap(headVal, verb, "side", "is")
		if err != nil {
			return err
		}
		s.Side, s.Is = args["side"], args["is"]
		switch {
		case s.Side == "":
			return errAt(headVal, "party needs side:")
		case s.Is != "active" && s.Is != "passive" && s.Is != "preset":
			return errAt(headVal, "party is: must be active, passive or preset, found %q", s.Is)
		}
		return nil
	case StmtRecord:
		s.Kind = verb
		if headVal.Kind == yaml.ScalarNode {
			if headVal.Value != "event" {
				return errAt(headVal, "record: expected event or {fail-all: STATUS}, found %q", headVal.Value)
			}
			s.From = "event"
			return nil
		}
		args, err := argMap(headVal, verb, "fail-all")
		if err != nil {
			return err
		}
		if args["fail-all"] == "" {
			return errAt(headVal, "record needs fail-all:")
		}
		s.FailAll = args["fail-all"]
		return nil
	}
	// Anything else names an action; validation checks that it exists.
	s.Kind = StmtEmit
	s.Action = verb
	if headVal.Kind == yaml.ScalarNode {
		s.Side = headVal.Value
		return nil
	}
	args, err := argMap(headVal, verb, "to", "status", "about")
	if err != nil {
		return err
	}
	s.Side, s.Status, s.About = args["to"], args["status"], args["about"]
	if s.Side == "" {
		return errAt(headVal, "%s needs to: SIDE", verb)
	}
	return nil
}

func scalarInto(n *yaml.Node, verb string, dst *string) error {
	if n.Kind != yaml.ScalarNode {
		return errAt(n, "%s: expected a name, found %s", verb, kindName(n))
	}
	*dst = n.Value
	return nil
}

func argMap(n *yaml.Node, verb string, allowed ...string) (map[string]string, error) {
	if n.Kind != yaml.MappingNode {
		return nil, errAt(n, "%s: expected a side or a mapping of arguments, found %s", verb, kindName(n))
	}
	out := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ok := false
		for _, a := range allowed {
			ok = ok || a == k.Value
		}
		if !ok {
			return nil, errAt(k, "%s: unknown argument %q (allowed: %s)", verb, k.Value, strings.Join(allowed, ", "))
		}
		if _, dup := out[k.Value]; dup {
			return nil, errAt(k, "%s: argument %q given twice", verb, k.Value)
		}
		if v.Kind != yaml.ScalarNode {
			return nil, errAt(v, "%s: argument %q: expected a scalar, found %s", verb, k.Value, kindName(v))
		}
		out[k.Value] = v.Value
	}
	return out, nil
}

// WalkStmts calls f for every statement in list and in its nested blocks, depth first.
func WalkStmts(list []*Stmt, f func(*Stmt)) {
	for _, s := range list {
		f(s)
		WalkStmts(s.Do, f)
		WalkStmts(s.Else, f)
	}
}
