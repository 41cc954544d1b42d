package gen

import (
	"strconv"

	"github.com/cpmlink/cpmlink/model"
	"github.com/dave/jennifer/jen"
)

func (g *generator) stmts(list []*model.Stmt, e env) []jen.Code {
	var out []jen.Code
	for _, st := range list {
		out = append(out, g.stmt(st, e)...)
	}
	return out
}

// negotiated is true when the hop of a side negotiates its initiative by SDP a=setup.
func (g *generator) negotiated(side *jen.Statement) *jen.Statement {
	return jen.Id("r").Dot("v").Dot(knobType(g.initiativeKnob)).Index(side.Dot("Hop")).Op("==").Id(knobConst(g.initiativeKnob, "negotiated"))
}

// fieldOfKind returns the name of the rule event's first field of a kind.
func fieldOfKind(ev *model.Event, kind string) string {
	if ev == nil {
		return ""
	}
	for _, f := range ev.Fields {
		if f.Kind == kind {
			return f.Name
		}
	}
	return ""
}

func (g *generator) status(src string, e env) jen.Code {
	switch src {
	case "event":
		return jen.Id("ev").Dot(fieldOfKind(e.ev, "status"))
	case "policy":
		return jen.Id("r").Dot("e").Dot("Cfg").Dot("Answer").Dot("DeclineStatus").Call()
	case "best(down)":
		return core("BestDownStatus").Call(jen.Id("s"))
	}
	n, err := strconv.Atoi(src)
	if err != nil {
		g.fail("bad status %q", src)
	}
	return jen.Lit(n)
}

// hopOfSide returns the hop constant of a side of the role.
func (g *generator) hopOfSide(r *model.Role, kind string) string {
	h := g.s.HopOf(r.Name, kind)
	if h == nil {
		g.fail("role %s has no hop on its %s side", r.Name, kind)
		return "Hop(0)"
	}
	return hopConst(h.Name)
}

func (g *generator) stmt(st *model.Stmt, e env) []jen.Code {
	switch st.Kind {
	case model.StmtIf:
		c := jen.If(g.cond(st.Cond.Root, e)).Block(g.stmts(st.Do, e)...)
		if len(st.Else) > 0 {
			c.Else().Block(g.stmts(st.Else, e)...)
		}
		return []jen.Code{c}
	case model.StmtEach:
		e.depth++
		v := "d"
		if e.depth > 1 {
			v = "d" + strconv.Itoa(e.depth)
		}
		e.down = varSide(v)
		return []jen.Code{jen.For(jen.List(jen.Id("_"), jen.Id(v)).Op(":=").Range().Id("s").Dot("Downs")).Block(g.stmts(st.Do, e)...)}
	case model.StmtLearn:
		side, _ := g.side(st.Side, e)
		return []jen.Code{jen.Id("r").Dot("e").Dot("Learn").Call(side(), jen.Id("ev").Dot(fieldOfKind(e.ev, "sdp")))}
	case model.StmtParty:
		side, _ := g.side(st.Side, e)
		var p jen.Code
		switch st.Is {
		case "active":
			p = core("PartyActive")
		case "passive":
			p = core("PartyPassive")
		default:
			p = jen.Id("presetParty").Call(jen.Op("&").Id("r").Dot("v"), side())
		}
		return []jen.Code{side().Dot("Party").Op("=").Add(p)}
	case model.StmtOpen:
		return g.open(st, e)
	case model.StmtSkip:
		side, _ := g.side(st.Side, e)
		return []jen.Code{side().Dot("Tx").Op("=").Id("s").Dot("Up").Dot("Rx")}
	case model.StmtSet:
		return []jen.Code{jen.Id("s").Dot("Flags").Op("|=").Id(flagConst(st.Flag))}
	case model.StmtClear:
		return []jen.Code{jen.Id("s").Dot("Flags").Op("&^=").Id(flagConst(st.Flag))}
	case model.StmtOutcome:
		side, _ := g.side(st.Side, e)
		var o jen.Code
		switch {
		case st.From == "event":
			o = jen.Id("ev").Dot(fieldOfKind(e.ev, "outcome"))
		case st.Is == "delivered":
			o = core("DeliveredOutcome").Call()
		default:
			o = core("FailedOutcome").Call(g.status(st.Status, e))
		}
		return []jen.Code{core("SetOutcome").Call(side(), o)}
	case model.StmtRecord:
		return g.record(st, e)
	case model.StmtEmit:
		return g.emit(st, e)
	}
	g.fail("cannot compile statement %q", st.Kind)
	return nil
}

// record compiles the transmitter's bookkeeping of member outcomes.
func (g *generator) record(st *model.Stmt, e env) []jen.Code {
	result, fail := g.s.Action("Result"), g.s.Action("Fail")
	if result == nil || fail == nil {
		g.fail("record needs the session actions Result and Fail")
		return nil
	}
	emitResult := func(member, outcome jen.Code) jen.Code {
		return jen.Id("r").Dot("e").Dot("Emit").Call(jen.Id("Result").Values(jen.Dict{jen.Id("Member"): member, jen.Id("Outcome"): outcome}))
	}
	failRest := func(status jen.Code) jen.Code {
		return jen.If(jen.Id("s").Dot("Results").Dot("FailRest").Call(status)).Block(
			jen.Id("r").Dot("e").Dot("Emit").Call(jen.Id("Fail").Values(jen.Dict{jen.Id("Status"): status})))
	}
	if st.FailAll != "" {
		return []jen.Code{failRest(g.status(st.FailAll, e))}
	}
	var out []jen.Code
	if member := fieldOfKind(e.ev, "uri"); member != "" && fieldOfKind(e.ev, "outcome") != "" {
		oc := fieldOfKind(e.ev, "outcome")
		out = append(out, jen.If(jen.Id("s").Dot("Results").Dot("Record").Call(
			jen.Id("ev").Dot("Member"), jen.Id("ev").Dot(oc), jen.Id("ev").Dot("Of"))).Block(
			emitResult(jen.Id("ev").Dot("Member"), jen.Id("ev").Dot(oc))))
	}
	if list := fieldOfKind(e.ev, "outcomes"); list != "" {
		out = append(out,
			jen.For(jen.List(jen.Id("_"), jen.Id("mo")).Op(":=").Range().Id("ev").Dot(list)).Block(
				jen.If(jen.Id("s").Dot("Results").Dot("Record").Call(jen.Id("mo").Dot("Member"), jen.Id("mo").Dot("Outcome"), jen.Len(jen.Id("ev").Dot(list)))).Block(
					emitResult(jen.Id("mo").Dot("Member"), jen.Id("mo").Dot("Outcome")))),
		)
		if stf := fieldOfKind(e.ev, "status"); stf != "" {
			out = append(out, failRest(jen.Id("ev").Dot(stf)))
		}
	}
	return out
}

// open compiles the link-opening verb: reuse a live connection to the same host and port
// when the variant says so, else open a new one.
func (g *generator) open(st *model.Stmt, e env) []jen.Code {
	side, kind := g.side(st.Side, e)
	openA, reuseA := g.s.Action("OpenLink"), g.s.Action("ReuseLink")
	if openA == nil || reuseA == nil {
		g.fail("open needs the actions OpenLink and ReuseLink")
		return nil
	}
	mk := func(a *model.Action) jen.Code {
		return g.send(a, kind, side, g.fieldValues(a, &model.Stmt{}, side, kind, e, jen.Id("conn")), e)
	}
	// A block of its own, so that two opens in one rule do not redeclare conn.
	return []jen.Code{jen.Block(
		jen.List(jen.Id("conn"), jen.Id("reused")).Op(":=").Id("r").Dot("e").Dot("Open").Call(side(),
			jen.Id("r").Dot("v").Dot(knobType(g.reuseKnob)).Op("==").Id(knobConst(g.reuseKnob, "on"))),
		jen.If(jen.Id("reused")).Block(mk(reuseA)).Else().Block(mk(openA)),
	)}
}

// send renders the call that emits an action, firing its machine event when it has one.
func (g *generator) send(a *model.Action, kind string, side func() *jen.Statement, values jen.Dict, e env) *jen.Statement {
	lit := jen.Id(a.Name).Values(values)
	if a.Fires == "" {
		return jen.Id("r").Dot("e").Dot("Emit").Call(lit)
	}
	col := g.s.ColumnOf(kind, a.Fires)
	m := g.s.Sides.Of(kind)[col]
	return jen.Id("r").Dot("e").Dot("Send").Call(side(), jen.Id(colConst(col)), jen.Id(evConst(m, a.Fires)), lit)
}

func (g *generator) emit(st *model.Stmt, e env) []jen.Code {
	a := g.s.Action(st.Action)
	side, kind := g.side(st.Side, e)
	call := g.send(a, kind, side, g.fieldValues(a, st, side, kind, e, nil), e)
	var effects []jen.Code
	for _, f := range a.Fields {
		switch f.Kind {
		case "chunk-last":
			effects = append(effects, side().Dot("Tx").Op("=").Id("s").Dot("Up").Dot("Rx"))
		case "about-outcome":
			if st.About != "event" {
				about, _ := g.side(st.About, e)
				effects = append(effects, about().Dot("Reported").Op("=").True())
			}
		}
	}
	if len(effects) == 0 || a.Fires == "" {
		return append([]jen.Code{call}, effects...)
	}
	return []jen.Code{jen.If(call).Block(effects...)}
}

// fieldValues fills an action's fields from their sources.
func (g *generator) fieldValues(a *model.Action, st *model.Stmt, side func() *jen.Statement, kind string, e env, conn jen.Code) jen.Dict {
	d := jen.Dict{}
	if a.At != model.AtSession {
		d[jen.Id("Leg")] = side().Dot("Leg")
	}
	about := func() (func() *jen.Statement, string) { return g.side(st.About, e) }
	for _, f := range a.Fields {
		var v jen.Code
		switch f.Kind {
		case "target":
			v = core("Target").Call(jen.Id("s"), side())
		case "from":
			// The original sender, as an asserted identity the B2BUAs carry on.
			v = core("From").Call(jen.Op("&").Id("r").Dot("e").Dot("Cfg"), jen.Id("s"))
		case "members":
			v = core("MembersFor").Call(jen.Id("s"), side())
		case "own-sdp":
			announce := jen.Id("r").Dot("announceUp").Call(jen.Id("s"))
			if kind == model.SideDown {
				announce = jen.Id("r").Dot("announceDown").Call(jen.Id("s"), side())
			}
			v = jen.Id("r").Dot("e").Dot("OwnSDP").Call(side(), announce)
		case "peer-sdp":
			v = side().Dot("Peer")
		case "status":
			v = g.status(st.Status, e)
		case "outcomes":
			if list := fieldOfKind(e.ev, "outcomes"); list != "" {
				v = jen.Id("ev").Dot(list)
			} else {
				v = core("DownOutcomes").Call(jen.Id("s"))
			}
		case "conn":
			if conn == nil {
				conn = side().Dot("Conn")
			}
			v = conn
		case "up-leg":
			v = jen.Id("s").Dot("Up").Dot("Leg")
		case "chunk-first":
			v = side().Dot("Tx").Op("+").Lit(1)
		case "chunk-last":
			v = jen.Id("s").Dot("Up").Dot("Rx")
		case "chunk-final":
			v = jen.Id("s").Dot("Total").Op(">").Lit(0).Op("&&").Id("s").Dot("Up").Dot("Rx").Op("==").Id("s").Dot("Total")
		case "opens":
			v = side().Dot("Party").Op("==").Add(core("PartyActive"))
		case "event-chunk":
			v = jen.Id("ev").Dot("Chunk")
		case "event-last":
			v = jen.Id("ev").Dot("Last")
		case "about-member":
			if st.About == "event" {
				v = jen.Id("ev").Dot("Member")
				break
			}
			ab, akind := about()
			switch {
			case !e.role.HasSide(model.SideDown):
				v = jen.Id("r").Dot("e").Dot("Cfg").Dot("URI")
			case akind == model.SideDown && e.role.Down == model.DownPerMember:
				v = ab().Dot("Member")
			default:
				v = jen.Id("s").Dot("Target")
			}
		case "about-outcome":
			if st.About == "event" {
				v = jen.Id("ev").Dot(fieldOfKind(e.ev, "outcome"))
				break
			}
			ab, _ := about()
			v = ab().Dot("Outcome")
		case "about-of":
			switch {
			case st.About == "event":
				v = jen.Id("ev").Dot("Of")
			case e.role.Down == model.DownPerMember:
				v = jen.Len(jen.Id("s").Dot("Downs"))
			default:
				v = jen.Lit(1)
			}
		default:
			g.fail("action %s: unknown source %q", a.Name, f.Kind)
			continue
		}
		d[jen.Id(f.Name)] = v
	}
	return d
}
