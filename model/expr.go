package model

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Expr is a condition written in the spec's small expression language:
//
//	expr   = or
//	or     = and { "or" and }
//	and    = not { "and" not }
//	not    = "not" not | atom
//	atom   = "(" expr ")"
//	       | ("any" | "all" | "none") "(" side ":" expr ")"
//	       | "trigger" "(" side ")"
//	       | side "had" event                  sticky: the event happened on that side
//	       | subject [ "is" value { "|" value } ]
//	subject = side "." (column | attribute) | "knob." name | "defect." name | "flag." name
//	        | "policy." name | "session." name | "event." field | "role" | "true" | "false"
//
// Names are made of letters, digits, '-' and '_'. docs/spec.md lists the columns and
// attributes.
type Expr struct {
	Src  string
	Root Node
	Pos  Pos
}

// Node is one node of a parsed expression.
type Node interface{ node() }

// Binary is "and" or "or".
type Binary struct {
	Op   string
	L, R Node
}

// Not negates X.
type Not struct{ X Node }

// Quant is any(side: body), all(...) or none(...), over the down sides of a role.
type Quant struct {
	Kind string
	Side string
	Body Node
}

// TriggerOf is trigger(side): the variant's trigger for the hop of that side holds.
type TriggerOf struct{ Side string }

// Had is "side had event".
type Had struct{ Side, Event string }

// Is is a subject, optionally compared with a set of values. With no values it reads a
// boolean.
type Is struct {
	// Scope is a side kind, or one of knob, defect, flag, policy, session, event, role, const.
	Scope  string
	Name   string
	Values []string
}

func (Binary) node()    {}
func (Not) node()       {}
func (Quant) node()     {}
func (TriggerOf) node() {}
func (Had) node()       {}
func (Is) node()        {}

// Scopes of Is that are not side kinds.
const (
	ScopeKnob    = "knob"
	ScopeDefect  = "defect"
	ScopeFlag    = "flag"
	ScopePolicy  = "policy"
	ScopeSession = "session"
	ScopeEvent   = "event"
	ScopeRole    = "role"
	ScopeConst   = "const"
)

// UnmarshalYAML parses the scalar as an expression.
func (e *Expr) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errAt(n, "expected a condition, found %s", kindName(n))
	}
	e.Pos = Pos{n.Line, n.Column}
	e.Src = strings.Join(strings.Fields(n.Value), " ")
	root, err := ParseExpr(e.Src)
	if err != nil {
		return &Error{Pos: e.Pos, Msg: err.Error()}
	}
	e.Root = root
	return nil
}

// String returns the source text.
func (e Expr) String() string { return e.Src }

// ParseExpr parses one condition.
func ParseExpr(src string) (Node, error) {
	p := &parser{src: src, toks: lex(src)}
	n, err := p.or()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errf(t, "unexpected %q", t.text)
	}
	return n, nil
}

type tokKind int

const (
	tEOF tokKind = iota
	tName
	tPunct
	tBad
)

type token struct {
	kind tokKind
	text string
	off  int
}

func isNameByte(c byte) bool {
	return c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func lex(src string) []token {
	var out []token
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case strings.IndexByte("().:|", c) >= 0:
			out = append(out, token{tPunct, string(c), i})
			i++
		case isNameByte(c):
			j := i
			for j < len(src) && isNameByte(src[j]) {
				j++
			}
			out = append(out, token{tName, src[i:j], i})
			i = j
		default:
			out = append(out, token{tBad, string(c), i})
			i++
		}
	}
	return append(out, token{tEOF, "end of condition", len(src)})
}

type parser struct {
	src  string
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) errf(t token, format string, args ...any) error {
	return fmt.Errorf("in %q at column %d: %s", p.src, t.off+1, fmt.Sprintf(format, args...))
}

func (p *parser) accept(kind tokKind, text string) bool {
	if t := p.peek(); t.kind == kind && t.text == text {
		p.i++
		return true
	}
	return false
}

func (p *parser) expect(kind tokKind, text string) error {
	if t := p.peek(); t.kind != kind || t.text != text {
		return p.errf(t, "expected %q, found %q", text, t.text)
	}
	p.i++
	return nil
}

func (p *parser) name() (string, error) {
	t := p.next()
	if t.kind != tName {
		return "", p.errf(t, "expected a name, found %q", t.text)
	}
	return t.text, nil
}

func (p *parser) or() (Node, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.accept(tName, "or") {
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = Binary{"or", l, r}
	}
	return l, nil
}

func (p *parser) and() (Node, error) {
	l, err := p.not()
	if err != nil {
		return nil, err
	}
	for p.accept(tName, "and") {
		r, err := p.not()
		if err != nil {
			return nil, err
		}
		l = Binary{"and", l, r}
	}
	return l, nil
}

func (p *parser) not() (Node, error) {
	if p.accept(tName, "not") {
		x, err := p.not()
		if err != nil {
			return nil, err
		}
		return Not{x}, nil
	}
	return p.atom()
}

var scopes = map[string]bool{
	SideUp: true, SideDown: true, SideThis: true,
	ScopeKnob: true, ScopeDefect: true, ScopeFlag: true, ScopePolicy: true, ScopeSession: true, ScopeEvent: true,
}

func (p *parser) atom() (Node, error) {
	if p.accept(tPunct, "(") {
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		return n, p.expect(tPunct, ")")
	}
	t := p.next()
	if t.kind != tName {
		return nil, p.errf(t, "expected a condition, found %q", t.text)
	}
	switch t.text {
	case "any", "all", "none":
		if err := p.expect(tPunct, "("); err != nil {
			return nil, err
		}
		side, err := p.name()
		if err != nil {
			return nil, err
		}
		if err := p.expect(tPunct, ":"); err != nil {
			return nil, err
		}
		body, err := p.or()
		if err != nil {
			return nil, err
		}
		return Quant{t.text, side, body}, p.expect(tPunct, ")")
	case "trigger":
		if err := p.expect(tPunct, "("); err != nil {
			return nil, err
		}
		side, err := p.name()
		if err != nil {
			return nil, err
		}
		return TriggerOf{side}, p.expect(tPunct, ")")
	case "true", "false":
		return Is{Scope: ScopeConst, Name: t.text}, nil
	case "role":
		vals, err := p.values(t)
		if err != nil {
			return nil, err
		}
		if len(vals) == 0 {
			return nil, p.errf(t, "role must be compared: role is NAME")
		}
		return Is{Scope: ScopeRole, Values: vals}, nil
	}
	if !scopes[t.text] {
		return nil, p.errf(t, "unknown name %q (expected a side, knob., defect., flag., policy., session., event., role, any, all, none, trigger, not)", t.text)
	}
	if p.accept(tName, "had") {
		ev, err := p.name()
		if err != nil {
			return nil, err
		}
		return Had{t.text, ev}, nil
	}
	if err := p.expect(tPunct, "."); err != nil {
		return nil, err
	}
	name, err := p.name()
	if err != nil {
		return nil, err
	}
	vals, err := p.values(t)
	if err != nil {
		return nil, err
	}
	return Is{Scope: t.text, Name: name, Values: vals}, nil
}

func (p *parser) values(subject token) ([]string, error) {
	if !p.accept(tName, "is") {
		return nil, nil
	}
	var out []string
	for {
		v, err := p.name()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		if !p.accept(tPunct, "|") {
			return out, nil
		}
	}
}

// Walk calls f on n and every node below it, depth first.
func Walk(n Node, f func(Node)) {
	f(n)
	switch x := n.(type) {
	case Binary:
		Walk(x.L, f)
		Walk(x.R, f)
	case Not:
		Walk(x.X, f)
	case Quant:
		Walk(x.Body, f)
	}
}

// Format renders a node back to source form, fully parenthesised where it matters.
func Format(n Node) string {
	switch x := n.(type) {
	case Binary:
		return fmt.Sprintf("(%s %s %s)", Format(x.L), x.Op, Format(x.R))
	case Not:
		return "not " + Format(x.X)
	case Quant:
		return fmt.Sprintf("%s(%s: %s)", x.Kind, x.Side, Format(x.Body))
	case TriggerOf:
		return fmt.Sprintf("trigger(%s)", x.Side)
	case Had:
		return x.Side + " had " + x.Event
	case Is:
		var s string
		switch x.Scope {
		case ScopeConst:
			s = x.Name
		case ScopeRole:
			s = "role"
		default:
			s = x.Scope + "." + x.Name
		}
		if len(x.Values) > 0 {
			s += " is " + strings.Join(x.Values, "|")
		}
		return s
	}
	return "?"
}
