package model

import (
	"sort"
)

// Spec is one decoded and validated spec file.
type Spec struct {
	Name string `yaml:"name"`
	Doc  string `yaml:"doc"`
	// Extends names a spec this file adds variants to: "default" (the embedded spec) or a
	// path relative to this file. An extending file declares only name, doc and variants.
	Extends   string          `yaml:"extends"`
	Roles     []*Role         `yaml:"roles"`
	Hops      []*Hop          `yaml:"hops"`
	Sides     Sides           `yaml:"sides"`
	Machines  []*Machine      `yaml:"machines"`
	Events    []*Event        `yaml:"events"`
	Actions   []*Action       `yaml:"actions"`
	Triggers  []*Trigger      `yaml:"triggers"`
	Knobs     []*Knob         `yaml:"knobs"`
	Defects   []*Defect       `yaml:"defects"`
	Flags     []*Flag         `yaml:"flags"`
	Rules     []*Rule         `yaml:"rules"`
	Reactions []*Reaction     `yaml:"reactions"`
	Waiting   map[string]Expr `yaml:"waiting"`
	// Announce says, per side kind, when the SDP a side sends carries a=setup (RFC 6135);
	// without it, on a negotiated hop.
	Announce map[string]Expr `yaml:"announce"`
	// Orders are the happens-before constraints of the figures; each variant lists the
	// ones its figure draws (docs/spec.md, "orders").
	Orders   []*OrderRule `yaml:"orders"`
	Variants []*Variant   `yaml:"variants"`

	// File is the name the spec was loaded from; every Pos refers to it.
	File string `yaml:"-"`
}

// Pos is a position in the spec file.
type Pos struct {
	Line, Col int
}

// Role is one of the five functional entities.
type Role struct {
	Name string `yaml:"name"`
	Doc  string `yaml:"doc"`
	// Up says whether the role answers an INVITE from upstream (has an up side).
	Up bool `yaml:"up"`
	// Down is how many downstream legs the role starts: none, one, or one per group member.
	Down string `yaml:"down"`
	Pos  Pos    `yaml:"-"`
}

// Down cardinalities.
const (
	DownNone      = "none"
	DownOne       = "one"
	DownPerMember = "per-member"
)

// HasSide reports whether the role has a side of the given kind ("up" or "down").
func (r *Role) HasSide(kind string) bool {
	switch kind {
	case SideUp:
		return r.Up
	case SideDown:
		return r.Down != DownNone
	}
	return false
}

// Hop is one SIP leg and its MSRP link between two adjacent roles.
type Hop struct {
	Name     string `yaml:"name"`
	Doc      string `yaml:"doc"`
	Offerer  string `yaml:"offerer"`
	Answerer string `yaml:"answerer"`
	Pos      Pos    `yaml:"-"`
}

// Side kinds.
const (
	SideUp   = "up"
	SideDown = "down"
	// SideThis is the side being opened, inside a trigger expression.
	SideThis = "this"
)

// Sides names, for each side kind, the machine that runs in each column.
type Sides struct {
	Up   map[string]string `yaml:"up"`
	Down map[string]string `yaml:"down"`
	Pos  Pos               `yaml:"-"`
}

// Columns returns the column names in a stable order.
func (s Sides) Columns() []string {
	cols := make([]string, 0, len(s.Up))
	for c := range s.Up {
		cols = append(cols, c)
	}
	sort.Strings(cols)
	return cols
}

// Of returns the column map of a side kind.
func (s Sides) Of(kind string) map[string]string {
	if kind == SideUp {
		return s.Up
	}
	return s.Down
}

// Machine is one state machine that runs per side (a SIP dialog, an MSRP link, a timer).
// Every (state, event) pair that can happen is a cell: a transition, an explicit ignore,
// or an explicit reject. A pair with no cell is a gap in the spec.
type Machine struct {
	Name     string   `yaml:"name"`
	Doc      string   `yaml:"doc"`
	States   []string `yaml:"states"`
	Initial  string   `yaml:"initial"`
	Terminal []string `yaml:"terminal"`
	Cells    []*Cell  `yaml:"cells"`
	Pos      Pos      `yaml:"-"`
}

// Events returns the machine's event names in order of first appearance.
func (m *Machine) Events() []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range m.Cells {
		if !seen[c.On] {
			seen[c.On] = true
			out = append(out, c.On)
		}
	}
	return out
}

// Cell is one row of a machine's table.
type Cell struct {
	On   string   `yaml:"on"`
	From StrList  `yaml:"from"`
	To   string   `yaml:"to"`
	Ign  string   `yaml:"ignore"`
	Rej  string   `yaml:"reject"`
	Do   []*Stmt  `yaml:"do"`
	Pos  Pos      `yaml:"-"`
	from []string // From, with "same" resolved
}

// Kind returns "to", "ignore" or "reject".
func (c *Cell) Kind() string {
	switch {
	case c.Ign != "":
		return CellIgnore
	case c.Rej != "":
		return CellReject
	}
	return CellTo
}

// Cell kinds.
const (
	CellTo     = "to"
	CellIgnore = "ignore"
	CellReject = "reject"
)

// StrList decodes either a scalar or a sequence of scalars.
type StrList []string

// Event is one input a role can be told.
type Event struct {
	Name string `yaml:"name"`
	Doc  string `yaml:"doc"`
	// At is the side kind the event arrives on: up, down, any, or session.
	At string `yaml:"at"`
	// Fires is the machine event it fires on that side.
	Fires string `yaml:"fires"`
	// Creates says that the event starts a new session when its leg is unknown.
	Creates bool     `yaml:"creates"`
	Fields  FieldMap `yaml:"fields"`
	Pos     Pos      `yaml:"-"`
}

// Action is one output a role can produce.
type Action struct {
	Name   string   `yaml:"name"`
	Doc    string   `yaml:"doc"`
	At     string   `yaml:"at"`
	Fires  string   `yaml:"fires"`
	Fields FieldMap `yaml:"fields"`
	Pos    Pos      `yaml:"-"`
}

// Field is one named field of an event or action: its type (events) or its source (actions).
type Field struct {
	Name string
	Kind string
}

// FieldMap keeps the fields in file order.
type FieldMap []Field

// Side kinds an event or action may name in At.
const (
	AtSession = "session"
	AtAny     = "any"
)

// Trigger is a named condition over a role's history that lets the opener open a link.
type Trigger struct {
	Name     string `yaml:"name"`
	Doc      string `yaml:"doc"`
	Offerer  Expr   `yaml:"offerer"`
	Answerer Expr   `yaml:"answerer"`
	Pos      Pos    `yaml:"-"`
}

// Knob is one dimension of the variant space.
type Knob struct {
	Name   string       `yaml:"name"`
	Doc    string       `yaml:"doc"`
	Per    string       `yaml:"per"`
	From   string       `yaml:"from"`
	Values []*KnobValue `yaml:"values"`
	// Require names, per hop, the value every named variant must take there (a per-hop
	// knob only): a table that contradicts it fails validation. The knob's doc says why.
	// The knob space (cpmlink map) still covers the other values.
	Require map[string]string `yaml:"require"`
	Pos     Pos               `yaml:"-"`
}

// PerHop reports whether the knob takes one value per hop.
func (k *Knob) PerHop() bool { return k.Per == "hop" }

// ValueNames returns the knob's values in order.
func (k *Knob) ValueNames() []string {
	out := make([]string, len(k.Values))
	for i, v := range k.Values {
		out[i] = v.Name
	}
	return out
}

// KnobValue is one allowed value of a knob.
type KnobValue struct {
	Name string `yaml:"name"`
	Doc  string `yaml:"doc"`
}

// Defect is a named, deliberate departure from the spec, used to show that the checkers
// catch bugs.
type Defect struct {
	Name string `yaml:"name"`
	Doc  string `yaml:"doc"`
	Pos  Pos    `yaml:"-"`
}

// Flag is a session-wide boolean a rule may set and a condition may read.
type Flag struct {
	Name string `yaml:"name"`
	Doc  string `yaml:"doc"`
	Pos  Pos    `yaml:"-"`
}

// Rule says what a role does when an event arrives on one of its sides.
type Rule struct {
	On    string   `yaml:"on"`
	Roles []string `yaml:"roles"`
	Cite  string   `yaml:"cite"`
	Doc   string   `yaml:"doc"`
	Do    []*Stmt  `yaml:"do"`
	Pos   Pos      `yaml:"-"`

	// Event and Side are On, split: the machine event (or the session event) and the side
	// kind it arrives on ("" for session events).
	Event, Side string `yaml:"-"`
}

// Reaction is a guarded statement list that runs whenever its condition holds, after every
// event, until no reaction applies.
type Reaction struct {
	Name  string   `yaml:"name"`
	Doc   string   `yaml:"doc"`
	Roles []string `yaml:"roles"`
	Each  string   `yaml:"each"`
	When  Expr     `yaml:"when"`
	Do    []*Stmt  `yaml:"do"`
	Pos   Pos      `yaml:"-"`
}

// Variant is a named point of the knob space.
type Variant struct {
	Name    string      `yaml:"name"`
	Doc     string      `yaml:"doc"`
	Base    string      `yaml:"base"`
	Set     KnobSetting `yaml:"set"`
	Defects []string    `yaml:"defects"`
	// Order names the order rules of the variant's figure: a variant with a base inherits
	// the base's, adds the ones it names and drops those it names as "not NAME".
	Order StrList `yaml:"order"`
	// Expect, in a spec of planted bugs, names the property the variant must violate.
	Expect string `yaml:"expect"`
	// Faults, in a spec of planted bugs, is the fault budget the explorer needs to show it
	// (explore --faults); 0 for a bug a fault-free run shows.
	Faults int `yaml:"faults"`
	Pos    Pos `yaml:"-"`

	// Resolved holds every knob's value after applying the base chain: for a per-hop knob
	// the key is "knob.hop", otherwise "knob".
	Resolved map[string]string `yaml:"-"`
	// Orders holds the order rules after applying the base chain, in spec order.
	Orders []string `yaml:"-"`
}

// KnobSetting is the `set` block of a variant: knob name to value, or, for a per-hop knob,
// to a map of hop name to value.
type KnobSetting struct {
	Global map[string]string
	PerHop map[string]map[string]string
	Pos    map[string]Pos
}

// Key returns the Resolved key of a knob, for a hop when the knob is per hop.
func Key(knob, hop string) string {
	if hop == "" {
		return knob
	}
	return knob + "." + hop
}

// Role returns the role with the given name, or nil.
func (s *Spec) Role(name string) *Role {
	for _, r := range s.Roles {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// Hop returns the hop with the given name, or nil.
func (s *Spec) Hop(name string) *Hop {
	for _, h := range s.Hops {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// HopOf returns the hop on which the role holds a side of the given kind: the hop it
// answers for "up", the hop it offers for "down".
func (s *Spec) HopOf(role, side string) *Hop {
	for _, h := range s.Hops {
		if side == SideUp && h.Answerer == role || side == SideDown && h.Offerer == role {
			return h
		}
	}
	return nil
}

// Machine returns the machine with the given name, or nil.
func (s *Spec) Machine(name string) *Machine {
	for _, m := range s.Machines {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// ColumnOf returns the column of the side kind whose machine declares the event.
func (s *Spec) ColumnOf(side, ev string) string {
	for _, c := range s.Sides.Columns() {
		if m := s.Machine(s.Sides.Of(side)[c]); m != nil && m.HasEvent(ev) {
			return c
		}
	}
	return ""
}

// HasEvent reports whether the machine has a cell for the event.
func (m *Machine) HasEvent(ev string) bool {
	for _, c := range m.Cells {
		if c.On == ev {
			return true
		}
	}
	return false
}

// Event returns the input event with the given name, or nil.
func (s *Spec) Event(name string) *Event {
	for _, e := range s.Events {
		if e.Name == name {
			return e
		}
	}
	return nil
}

// EventFiring returns the input event that fires the machine event, or nil.
func (s *Spec) EventFiring(machineEvent string) *Event {
	for _, e := range s.Events {
		if e.Fires == machineEvent {
			return e
		}
	}
	return nil
}

// Action returns the action with the given name, or nil.
func (s *Spec) Action(name string) *Action {
	for _, a := range s.Actions {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// Trigger returns the trigger with the given name, or nil.
func (s *Spec) Trigger(name string) *Trigger {
	for _, t := range s.Triggers {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Knob returns the knob with the given name, or nil.
func (s *Spec) Knob(name string) *Knob {
	for _, k := range s.Knobs {
		if k.Name == name {
			return k
		}
	}
	return nil
}

// Variant returns the variant with the given name, or nil.
func (s *Spec) Variant(name string) *Variant {
	for _, v := range s.Variants {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// RulesFor returns the rules of a role in file order.
func (s *Spec) RulesFor(role string) []*Rule {
	var out []*Rule
	for _, r := range s.Rules {
		if contains(r.Roles, role) {
			out = append(out, r)
		}
	}
	return out
}

// ReactionsFor returns the reactions that apply to a role, in file order.
func (s *Spec) ReactionsFor(role string) []*Reaction {
	var out []*Reaction
	for _, r := range s.Reactions {
		if len(r.Roles) == 0 || contains(r.Roles, role) {
			out = append(out, r)
		}
	}
	return out
}

// KnobKeys returns every Resolved key in a stable order: knobs in file order, per-hop knobs
// expanded over the hops in file order.
func (s *Spec) KnobKeys() []string {
	var out []string
	for _, k := range s.Knobs {
		if k.PerHop() {
			for _, h := range s.Hops {
				out = append(out, Key(k.Name, h.Name))
			}
		} else {
			out = append(out, k.Name)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
