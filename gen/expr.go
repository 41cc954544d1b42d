package gen

import (
	"fmt"
	"strings"

	"github.com/cpmlink/cpmlink/model"
	"github.com/dave/jennifer/jen"
)

// env is what the names of a condition or statement stand for where it is compiled.
type env struct {
	role *model.Role
	// down is the Go expression for the current down side, nil where "down" is ambiguous
	// (a per-member role outside a loop).
	down func() *jen.Statement
	// this is the side being opened (trigger conditions) or the side of a cell.
	this     func() *jen.Statement
	thisKind string
	// ev is the rule's event, held in the variable ev; nil in reactions.
	ev    *model.Event
	depth int
}

func upSide() *jen.Statement { return jen.Id("s").Dot("Up") }

func varSide(name string) func() *jen.Statement {
	return func() *jen.Statement { return jen.Id(name) }
}

func firstDown() *jen.Statement { return jen.Id("s").Dot("Downs").Index(jen.Lit(0)) }

// baseEnv returns the environment of a role outside any loop.
func baseEnv(r *model.Role) env {
	e := env{role: r}
	if r.Down == model.DownOne {
		e.down = firstDown
	}
	return e
}

func (g *generator) side(name string, e env) (func() *jen.Statement, string) {
	switch name {
	case model.SideUp:
		return upSide, model.SideUp
	case model.SideDown:
		if e.down == nil {
			g.fail("role %s: `down` is ambiguous here", e.role.Name)
			return firstDown, model.SideDown
		}
		return e.down, model.SideDown
	case model.SideThis:
		if e.this == nil {
			g.fail("role %s: `this` stands only in triggers and cells", e.role.Name)
			return upSide, model.SideUp
		}
		return e.this, e.thisKind
	}
	g.fail("unknown side %q", name)
	return upSide, model.SideUp
}

// cexpr is a compiled condition with its outermost operator, to parenthesise only where
// the reader needs it.
type cexpr struct {
	code *jen.Statement
	op   string // "", "!", "==", "&&", "||"
}

func (c cexpr) wrapIf(ops ...string) *jen.Statement {
	for _, o := range ops {
		if c.op == o {
			return jen.Parens(c.code)
		}
	}
	return c.code
}

func (g *generator) cond(n model.Node, e env) *jen.Statement { return g.expr(n, e).code }

func (g *generator) expr(n model.Node, e env) cexpr {
	switch x := n.(type) {
	case model.Binary:
		l, r := g.expr(x.L, e), g.expr(x.R, e)
		if x.Op == "and" {
			return cexpr{l.wrapIf("||").Op("&&").Add(r.wrapIf("||")), "&&"}
		}
		return cexpr{l.wrapIf("&&").Op("||").Add(r.wrapIf("&&")), "||"}
	case model.Not:
		inner := g.expr(x.X, e)
		if inner.op == "==" {
			// Flip the comparison rather than negate it.
			return cexpr{g.negate(x.X, e), "=="}
		}
		return cexpr{jen.Op("!").Add(inner.wrapIf("==", "&&", "||")), "!"}
	case model.Quant:
		return cexpr{g.quant(x, e), ""}
	case model.TriggerOf:
		code, kind := g.side(x.Side, e)
		if kind == model.SideUp {
			return cexpr{jen.Id("r").Dot("triggerUp").Call(jen.Id("s")), ""}
		}
		return cexpr{jen.Id("r").Dot("triggerDown").Call(jen.Id("s"), code()), ""}
	case model.Had:
		code, kind := g.side(x.Side, e)
		col := g.s.ColumnOf(kind, x.Event)
		m := g.s.Sides.Of(kind)[col]
		return cexpr{code().Dot("Had").Index(jen.Id(colConst(col))).Op("&").Parens(jen.Lit(1).Op("<<").Id(evConst(m, x.Event))).Op("!=").Lit(0), "=="}
	case model.Is:
		return g.is(x, e, false)
	}
	g.fail("cannot compile %T", n)
	return cexpr{jen.False(), ""}
}

// negate compiles "not X" for a comparison X by flipping it.
func (g *generator) negate(n model.Node, e env) *jen.Statement {
	switch x := n.(type) {
	case model.Had:
		code, kind := g.side(x.Side, e)
		col := g.s.ColumnOf(kind, x.Event)
		m := g.s.Sides.Of(kind)[col]
		return code().Dot("Had").Index(jen.Id(colConst(col))).Op("&").Parens(jen.Lit(1).Op("<<").Id(evConst(m, x.Event))).Op("==").Lit(0)
	case model.Is:
		return g.is(x, e, true).code
	}
	return jen.Op("!").Parens(g.cond(n, e))
}

// oneOf compiles "subject is a|b|c" as comparisons joined by ||, or, negated, by &&.
func oneOf(subject func() *jen.Statement, values []jen.Code, neg bool) cexpr {
	op, join, kind := "==", "||", "||"
	if neg {
		op, join, kind = "!=", "&&", "&&"
	}
	if len(values) == 1 {
		return cexpr{subject().Op(op).Add(values[0]), "=="}
	}
	var c *jen.Statement
	for i, v := range values {
		cmp := subject().Op(op).Add(v)
		if i == 0 {
			c = cmp
		} else {
			c = c.Op(join).Add(cmp)
		}
	}
	return cexpr{c, kind}
}

func boolOf(code *jen.Statement, neg bool) cexpr {
	if neg {
		return cexpr{jen.Op("!").Add(code), "!"}
	}
	return cexpr{code, ""}
}

func (g *generator) is(x model.Is, e env, neg bool) cexpr {
	switch x.Scope {
	case model.ScopeConst:
		b := x.Name == "true"
		if neg {
			b = !b
		}
		return cexpr{jen.Lit(b), ""}
	case model.ScopeRole:
		b := contains(x.Values, e.role.Name)
		if neg {
			b = !b
		}
		return cexpr{jen.Lit(b), ""}
	case model.SideUp, model.SideDown, model.SideThis:
		code, kind := g.side(x.Scope, e)
		if mname, isCol := g.s.Sides.Of(kind)[x.Name]; isCol {
			var vals []jen.Code
			for _, v := range x.Values {
				vals = append(vals, jen.Id(stateConst(mname, v)))
			}
			subj := func() *jen.Statement { return code().Dot("M").Index(jen.Id(colConst(x.Name))).Dot("State").Call() }
			return oneOf(subj, vals, neg)
		}
		switch x.Name {
		case "peer-known":
			return boolOf(code().Dot("PeerKnown"), neg)
		case "reported":
			return boolOf(code().Dot("Reported"), neg)
		case "last":
			return boolOf(code().Dot("Last"), neg)
		case "complete":
			// The session's Total is the last chunk's index once it arrived; an up side
			// counts what it received (Rx), a down side what it relayed (Tx).
			n := "Rx"
			if kind == model.SideDown {
				n = "Tx"
			}
			if neg {
				return cexpr{jen.Parens(jen.Id("s").Dot("Total").Op("==").Lit(0).Op("||").Add(code()).Dot(n).Op("<").Id("s").Dot("Total")), ""}
			}
			return cexpr{jen.Id("s").Dot("Total").Op(">").Lit(0).Op("&&").Add(code()).Dot(n).Op(">=").Id("s").Dot("Total"), "&&"}
		case "pending":
			if kind != model.SideDown || !e.role.Up {
				return cexpr{jen.Lit(neg), ""}
			}
			op := "<"
			if neg {
				op = ">="
			}
			return cexpr{code().Dot("Tx").Op(op).Id("s").Dot("Up").Dot("Rx"), "=="}
		case "waiting":
			var call *jen.Statement
			if kind == model.SideUp {
				call = jen.Id("r").Dot("waitingUp").Call(jen.Id("s"))
			} else {
				call = jen.Id("r").Dot("waitingDown").Call(jen.Id("s"), code())
			}
			return boolOf(call, neg)
		case "setup":
			var vals []jen.Code
			for _, v := range x.Values {
				vals = append(vals, core("Party"+exported(v)))
			}
			return oneOf(func() *jen.Statement { return code().Dot("Party") }, vals, neg)
		case "negotiated":
			return boolOf(g.negotiated(code()), neg)
		case "overridden":
			return boolOf(jen.Id("overridden").Call(jen.Op("&").Id("r").Dot("v"), code()), neg)
		case "peer-setup":
			var vals []jen.Code
			for _, v := range x.Values {
				vals = append(vals, core("Setup"+exported(v)))
			}
			return oneOf(func() *jen.Statement { return code().Dot("Peer").Dot("Setup") }, vals, neg)
		case "outcome":
			var vals []jen.Code
			for _, v := range x.Values {
				vals = append(vals, core(outcomeConst(v)))
			}
			return oneOf(func() *jen.Statement { return code().Dot("Outcome").Dot("Kind") }, vals, neg)
		}
	case model.ScopeKnob:
		k := g.s.Knob(x.Name)
		var vals []jen.Code
		for _, v := range x.Values {
			vals = append(vals, jen.Id(knobConst(k, v)))
		}
		return oneOf(func() *jen.Statement { return jen.Id("r").Dot("v").Dot(knobType(k)) }, vals, neg)
	case model.ScopeDefect:
		op := "!="
		if neg {
			op = "=="
		}
		return cexpr{jen.Id("r").Dot("v").Dot("Defects").Op("&").Id(defectConst(x.Name)).Op(op).Lit(0), "=="}
	case model.ScopeFlag:
		op := "!="
		if neg {
			op = "=="
		}
		return cexpr{jen.Id("s").Dot("Flags").Op("&").Id(flagConst(x.Name)).Op(op).Lit(0), "=="}
	case model.ScopePolicy:
		// Each policy is a field of core.Config whose constants are named after it:
		// policy.answer is Cfg.Answer.Mode (AnswerAccept ...), policy.sender is Cfg.Sender
		// (SenderWaits ...).
		prefix := exported(x.Name)
		subj := func() *jen.Statement { return jen.Id("r").Dot("e").Dot("Cfg").Dot(prefix) }
		if x.Name == "answer" {
			subj = func() *jen.Statement { return jen.Id("r").Dot("e").Dot("Cfg").Dot("Answer").Dot("Mode") }
		}
		var vals []jen.Code
		if x.Name == "setup" {
			for _, v := range x.Values {
				vals = append(vals, core("Choose"+exported(v)))
			}
			return oneOf(func() *jen.Statement { return jen.Id("r").Dot("e").Dot("Cfg").Dot("Setup") }, vals, neg)
		}
		for _, v := range x.Values {
			vals = append(vals, core(prefix+exported(v)))
		}
		return oneOf(subj, vals, neg)
	case model.ScopeSession:
		switch x.Name {
		case "complete":
			return boolOf(jen.Id("s").Dot("Results").Dot("Complete").Call(), neg)
		case "group":
			var vals []jen.Code
			for _, v := range x.Values {
				vals = append(vals, core("Group"+exported(v)))
			}
			return oneOf(func() *jen.Statement { return jen.Id("s").Dot("Group") }, vals, neg)
		}
	case model.ScopeEvent:
		name := fieldName(e.ev, x.Name)
		if f := eventField(e.ev, name); f != nil && f.Kind == "outcome" {
			var vals []jen.Code
			for _, v := range x.Values {
				vals = append(vals, core(outcomeConst(v)))
			}
			return oneOf(func() *jen.Statement { return jen.Id("ev").Dot(name).Dot("Kind") }, vals, neg)
		}
		return boolOf(jen.Id("ev").Dot(name), neg)
	}
	g.fail("cannot compile %s", model.Format(x))
	return cexpr{jen.False(), ""}
}

func outcomeConst(v string) string {
	switch v {
	case "delivered":
		return "Delivered"
	case "failed":
		return "Failed"
	}
	return "OutcomeNone"
}

// eventField returns an event's field by its declared name, or nil.
func eventField(ev *model.Event, name string) *model.Field {
	if ev == nil {
		return nil
	}
	for i := range ev.Fields {
		if ev.Fields[i].Name == name {
			return &ev.Fields[i]
		}
	}
	return nil
}

// fieldName returns the declared spelling of an event field named case-insensitively.
func fieldName(ev *model.Event, name string) string {
	name = strings.ReplaceAll(name, "-", "")
	if ev != nil {
		for _, f := range ev.Fields {
			if equalFold(f.Name, name) {
				return f.Name
			}
		}
	}
	return exported(name)
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i]|0x20, b[i]|0x20
		if x != y {
			return false
		}
	}
	return true
}

// quant compiles any/all/none(down: body) as an immediately called function literal, which
// the compiler keeps on the stack.
func (g *generator) quant(x model.Quant, e env) *jen.Statement {
	e.depth++
	v := fmt.Sprintf("d%d", e.depth)
	e.down = varSide(v)
	body := g.cond(x.Body, e)
	var loop jen.Code
	var end jen.Code
	switch x.Kind {
	case "any":
		loop = jen.If(body).Block(jen.Return(jen.True()))
		end = jen.Return(jen.False())
	case "none":
		loop = jen.If(body).Block(jen.Return(jen.False()))
		end = jen.Return(jen.True())
	default: // all
		loop = jen.If(jen.Op("!").Parens(body)).Block(jen.Return(jen.False()))
		end = jen.Return(jen.True())
	}
	return jen.Func().Params().Bool().Block(
		jen.For(jen.List(jen.Id("_"), jen.Id(v)).Op(":=").Range().Id("s").Dot("Downs")).Block(loop),
		end,
	).Call()
}
