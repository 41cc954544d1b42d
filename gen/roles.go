package gen

import (
	"fmt"

	"github.com/cpmlink/cpmlink/model"
	"github.com/dave/jennifer/jen"
)

// maxRounds bounds the reaction loop of one step; a spec whose reactions do not settle
// within it has a reaction that never falsifies its own guard.
const maxRounds = 64

// rolesFile emits the Role interface every role type implements, the constructor by kind,
// and the helpers shared by all roles.
func (g *generator) rolesFile() *jen.File {
	f := g.newFile()
	f.Comment("Role is a generated role machine. Step is pure: it takes one event and returns the")
	f.Comment("actions to carry out, with no goroutines, sockets, clocks or randomness. A Role is not")
	f.Comment("safe for concurrent use: its driver steps it from one goroutine.")
	f.Type().Id("Role").Interface(
		jen.Comment("Kind is the role of the spec this type implements."),
		jen.Id("Kind").Params().Id("RoleKind"),
		jen.Comment("Name is the instance name from the configuration."),
		jen.Id("Name").Params().String(),
		jen.Comment("Config is the instance configuration."),
		jen.Id("Config").Params().Op("*").Id("Config"),
		jen.Comment("Variant is the knob setting the instance runs."),
		jen.Id("Variant").Params().Id("Variant"),
		jen.Comment("Step feeds one event. On error the returned actions are for diagnosis only."),
		jen.Id("Step").Params(jen.Id("Event")).Params(jen.Index().Id("Action"), jen.Error()),
		jen.Comment("Snapshot appends a canonical encoding of the state to dst."),
		jen.Id("Snapshot").Params(jen.Id("dst").Index().Byte()).Index().Byte(),
		jen.Comment("Restore replaces the state with a snapshot."),
		jen.Id("Restore").Params(jen.Index().Byte()).Error(),
		jen.Comment("Terminal reports whether every session of the instance is over."),
		jen.Id("Terminal").Params().Bool(),
		jen.Comment("Sessions returns the sessions, ordered by key, for inspection."),
		jen.Id("Sessions").Params().Index().Op("*").Add(core("Session")),
	)
	f.Comment("New returns a new instance of a role kind.")
	f.Func().Id("New").Params(jen.Id("kind").Id("RoleKind"), jen.Id("cfg").Id("Config"), jen.Id("v").Id("Variant")).Id("Role").Block(
		jen.Switch(jen.Id("kind")).BlockFunc(func(gr *jen.Group) {
			for _, r := range g.s.Roles {
				gr.Case(jen.Id(roleKindConst(r.Name))).Return(jen.Id("New"+r.Name).Call(jen.Id("cfg"), jen.Id("v")))
			}
		}),
		jen.Panic(jen.Qual("fmt", "Sprintf").Call(jen.Lit("fsm: unknown role kind %d"), jen.Id("kind"))),
	)
	f.Comment("initParty settles, on a hop whose initiative is preset, whether this end of a side's hop")
	f.Comment("opens it. On a negotiated hop the party stays undecided until the spec's party statement")
	f.Comment("settles it from SDP a=setup (RFC 6135).")
	f.Func().Id("initParty").Params(jen.Id("v").Op("*").Id("Variant"), jen.Id("sd").Op("*").Add(core("Side"))).Block(
		jen.If(g.negotiatedV()).Block(jen.Return()),
		jen.Id("sd").Dot("Party").Op("=").Id("presetParty").Call(jen.Id("v"), jen.Id("sd")),
	)
	f.Comment("presetParty is the party the variant's opener knob names for this end of a side's hop.")
	f.Func().Id("presetParty").Params(jen.Id("v").Op("*").Id("Variant"), jen.Id("sd").Op("*").Add(core("Side"))).Add(core("Party")).Block(
		jen.Return(core("PresetParty").Call(jen.Id("sd"), jen.Id("v").Dot(knobType(g.openerKnob)).Index(jen.Id("sd").Dot("Hop")).Op("==").Id(knobConst(g.openerKnob, "answerer")))),
	)
	f.Comment("overridden reports whether negotiation settled a side's party other than the preset one.")
	f.Func().Id("overridden").Params(jen.Id("v").Op("*").Id("Variant"), jen.Id("sd").Op("*").Add(core("Side"))).Bool().Block(
		jen.Return(jen.Id("sd").Dot("Party").Op("!=").Add(core("PartyUndecided")).Op("&&").Id("sd").Dot("Party").Op("!=").Id("presetParty").Call(jen.Id("v"), jen.Id("sd"))),
	)
	var flags []jen.Code
	for i, fl := range g.s.Flags {
		c := jen.Id(flagConst(fl.Name))
		if i == 0 {
			c.Uint64().Op("=").Lit(1).Op("<<").Iota()
		}
		flags = append(flags, comment(fl.Doc), c)
	}
	if len(flags) > 0 {
		f.Comment("Session flags.")
		f.Const().Defs(flags...)
	}
	return f
}

func (g *generator) negotiatedV() *jen.Statement {
	return jen.Id("v").Dot(knobType(g.initiativeKnob)).Index(jen.Id("sd").Dot("Hop")).Op("==").Id(knobConst(g.initiativeKnob, "negotiated"))
}

// handler is the compiled code for one (machine event, side kind) of a role.
type handler struct {
	event *model.Event
	kind  string
	rules []*model.Rule
}

// roleFile emits one role: its type, Step, one method per event it handles, its trigger and
// waiting conditions, and its reaction loop.
func (g *generator) roleFile(r *model.Role) *jen.File {
	f := g.newFile()
	name := r.Name
	f.Add(comment(fmt.Sprintf("%s is the generated machine of role %s: %s", name, name, r.Doc)))
	f.Type().Id(name).Struct(jen.Id("e").Add(core("Engine")), jen.Id("v").Id("Variant"))
	f.Comment(fmt.Sprintf("New%s returns an instance with no sessions.", name))
	f.Func().Id("New"+name).Params(jen.Id("cfg").Id("Config"), jen.Id("v").Id("Variant")).Op("*").Id(name).Block(
		jen.Return(jen.Op("&").Id(name).Values(jen.Dict{jen.Id("e"): core("NewEngine").Call(jen.Id("cfg"), jen.Id("layout")), jen.Id("v"): jen.Id("v")})),
	)
	recv := func() *jen.Statement { return jen.Params(jen.Id("r").Op("*").Id(name)) }
	f.Comment("Kind implements Role.")
	f.Func().Add(recv()).Id("Kind").Params().Id("RoleKind").Block(jen.Return(jen.Id(roleKindConst(name))))
	f.Comment("Name implements Role.")
	f.Func().Add(recv()).Id("Name").Params().String().Block(jen.Return(jen.Id("r").Dot("e").Dot("Cfg").Dot("Name")))
	f.Comment("Config implements Role.")
	f.Func().Add(recv()).Id("Config").Params().Op("*").Id("Config").Block(jen.Return(jen.Op("&").Id("r").Dot("e").Dot("Cfg")))
	f.Comment("Variant implements Role.")
	f.Func().Add(recv()).Id("Variant").Params().Id("Variant").Block(jen.Return(jen.Id("r").Dot("v")))
	f.Comment("Snapshot implements Role.")
	f.Func().Add(recv()).Id("Snapshot").Params(jen.Id("dst").Index().Byte()).Index().Byte().Block(jen.Return(jen.Id("r").Dot("e").Dot("Snapshot").Call(jen.Id("dst"))))
	f.Comment("Restore implements Role.")
	f.Func().Add(recv()).Id("Restore").Params(jen.Id("b").Index().Byte()).Error().Block(jen.Return(jen.Id("r").Dot("e").Dot("Restore").Call(jen.Id("b"))))
	f.Comment("Terminal implements Role.")
	f.Func().Add(recv()).Id("Terminal").Params().Bool().Block(jen.Return(jen.Id("r").Dot("e").Dot("Terminal").Call()))
	f.Comment("Sessions implements Role.")
	f.Func().Add(recv()).Id("Sessions").Params().Index().Op("*").Add(core("Session")).Block(jen.Return(jen.Id("r").Dot("e").Dot("Sessions").Call()))

	g.step(f, r)
	g.triggers(f, r)
	g.waiting(f, r)
	g.react(f, r)
	return f
}

// handlersOf groups a role's rules by (machine event, side kind), in file order.
func (g *generator) handlersOf(r *model.Role) []*handler {
	var out []*handler
	find := func(ev *model.Event, kind string) *handler {
		for _, h := range out {
			if h.event == ev && h.kind == kind {
				return h
			}
		}
		h := &handler{event: ev, kind: kind}
		out = append(out, h)
		return h
	}
	// Every event the role can receive gets a handler, with or without rules, so that its
	// machine event always fires.
	for _, ev := range g.s.Events {
		if ev.At == model.AtSession {
			if !r.Up && r.Down != model.DownNone {
				find(ev, "")
			}
			continue
		}
		for _, kind := range kindsOf(ev.At) {
			if r.HasSide(kind) {
				find(ev, kind)
			}
		}
	}
	for _, rule := range g.s.RulesFor(r.Name) {
		var ev *model.Event
		if rule.Side == "" {
			ev = g.s.Event(rule.Event)
		} else {
			ev = g.s.EventFiring(rule.Event)
		}
		h := find(ev, rule.Side)
		h.rules = append(h.rules, rule)
	}
	return out
}

func kindsOf(at string) []string {
	if at == model.AtAny {
		return []string{model.SideUp, model.SideDown}
	}
	return []string{at}
}

func handlerName(h *handler) string {
	if h.kind == "" {
		return "on" + exported(h.event.Name)
	}
	return "on" + exported(h.event.Fires) + exported(h.kind)
}

// step emits Step: find (or create) the session and side of the event's leg, fire its
// machine event, run the rules of a transition and the cell statements, then react.
func (g *generator) step(f *jen.File, r *model.Role) {
	name := r.Name
	handlers := g.handlersOf(r)
	byEvent := map[*model.Event][]*handler{}
	var order []*model.Event
	for _, h := range handlers {
		if _, seen := byEvent[h.event]; !seen {
			order = append(order, h.event)
		}
		byEvent[h.event] = append(byEvent[h.event], h)
	}
	cases := jen.Switch(jen.Id("ev").Op(":=").Id("ev").Assert(jen.Type())).BlockFunc(func(gr *jen.Group) {
		for _, ev := range order {
			gr.Case(jen.Id(ev.Name)).BlockFunc(func(b *jen.Group) { g.stepCase(b, r, ev, byEvent[ev]) })
		}
		gr.Default().Block(
			jen.Id("r").Dot("e").Dot("Errorf").Call(jen.Lit("%w: "+name+" takes no %s"), core("ErrNoCell"), jen.Id("ev").Dot("Kind").Call()),
		)
	})
	f.Comment("Step implements Role.")
	f.Func().Params(jen.Id("r").Op("*").Id(name)).Id("Step").Params(jen.Id("ev").Id("Event")).Params(jen.Index().Id("Action"), jen.Error()).Block(
		jen.Id("r").Dot("e").Dot("Begin").Call(),
		cases,
		jen.Return(jen.Id("r").Dot("e").Dot("End").Call()),
	)
	for _, h := range handlers {
		g.handlerMethod(f, r, h)
	}
	if r.Up {
		g.newSession(f, r)
	}
}

func (g *generator) stepCase(b *jen.Group, r *model.Role, ev *model.Event, hs []*handler) {
	name := r.Name
	if ev.At == model.AtSession {
		// The role starts a session of its own: its down leg is named after the session.
		b.Id("key").Op(":=").Id("r").Dot("e").Dot("NewKey").Call()
		b.Id("s").Op(":=").Id("r").Dot("e").Dot("NewSession").Call(jen.Id("key"))
		g.copySessionFields(b, ev)
		b.Id("d").Op(":=").Id("r").Dot("e").Dot("AddSide").Call(jen.Id("s"), jen.False(), jen.Id("key"), jen.Int().Call(jen.Id(g.hopOfSide(r, model.SideDown))), jen.Lit(""))
		b.Id("d").Dot("Last").Op("=").True()
		b.Id("initParty").Call(jen.Op("&").Id("r").Dot("v"), jen.Id("d"))
		if hs[0].rules != nil {
			b.Id("r").Dot(handlerName(hs[0])).Call(jen.Id("s"), jen.Id("ev"))
		}
		b.Id("r").Dot("react").Call(jen.Id("s"))
		return
	}
	b.List(jen.Id("s"), jen.Id("sd")).Op(":=").Id("r").Dot("e").Dot("Lookup").Call(jen.Id("ev").Dot("Leg"))
	if ev.Creates && r.Up {
		b.If(jen.Id("sd").Op("==").Nil()).Block(
			jen.List(jen.Id("s"), jen.Id("sd")).Op("=").Id("r").Dot("newSession").Call(jen.Id("ev")),
		)
	} else {
		b.If(jen.Id("sd").Op("==").Nil()).Block(
			jen.Id("r").Dot("e").Dot("Errorf").Call(jen.Lit("%w: "+name+" got %s on leg %s"), core("ErrUnknownLeg"), jen.Id("ev").Dot("Kind").Call(), jen.Id("ev").Dot("Leg")),
			jen.Break(),
		)
	}
	one := func(h *handler) []jen.Code {
		col := g.s.ColumnOf(h.kind, ev.Fires)
		m := g.s.Machine(g.s.Sides.Of(h.kind)[col])
		fire := jen.Id("r").Dot("e").Dot("Fire").Call(jen.Id("sd"), jen.Id(colConst(col)), jen.Id(evConst(m.Name, ev.Fires)))
		// Statements of cells (a retransmitted 2xx answered with a new ACK) run whatever
		// the kind of the cell.
		var cellStmts []jen.Code
		for _, c := range m.Cells {
			if c.On != ev.Fires || len(c.Do) == 0 {
				continue
			}
			e := baseEnv(r)
			e.this, e.thisKind = varSide("sd"), h.kind
			e.ev = ev
			var cond *jen.Statement
			for i, st := range c.From {
				cmp := jen.Id("from").Op("==").Id(stateConst(m.Name, st))
				if i == 0 {
					cond = cmp
				} else {
					cond = cond.Op("||").Add(cmp)
				}
			}
			cellStmts = append(cellStmts, jen.If(cond).Block(g.stmts(model.FoldStmts(c.Do, r.Name), e)...))
		}
		var body []jen.Code
		for _, fl := range ev.Fields {
			if fl.Name == "Chunk" && fl.Kind == "int" {
				body = append(body,
					jen.Id("sd").Dot("Rx").Op("=").Id("max").Call(jen.Id("sd").Dot("Rx"), jen.Id("ev").Dot("Chunk")),
					jen.If(jen.Id("ev").Dot("Last")).Block(jen.Id("s").Dot("Total").Op("=").Id("ev").Dot("Chunk")),
				)
			}
			if fl.Kind == "conn" {
				body = append(body, jen.If(jen.Id("sd").Dot("Conn").Op("==").Lit("")).Block(jen.Id("sd").Dot("Conn").Op("=").Id("ev").Dot(fl.Name)))
			}
		}
		if h.rules != nil {
			body = append(body, jen.Id("r").Dot(handlerName(h)).Call(jen.Id("s"), jen.Id("sd"), jen.Id("ev")))
		}
		from, run := jen.Id("_"), jen.Id("_")
		if len(cellStmts) > 0 {
			from = jen.Id("from")
		}
		if len(body) > 0 {
			run = jen.Id("run")
		}
		var out []jen.Code
		if len(cellStmts) == 0 && len(body) == 0 {
			out = append(out, fire)
		} else {
			out = append(out, jen.List(from, run).Op(":=").Add(fire))
		}
		out = append(out, cellStmts...)
		if len(body) > 0 {
			out = append(out, jen.If(jen.Id("run")).Block(body...))
		}
		return out
	}
	switch {
	case len(hs) == 1:
		want := jen.True()
		if hs[0].kind == model.SideDown {
			want = jen.False()
		}
		b.If(jen.Id("sd").Dot("Up").Op("!=").Add(want)).Block(
			jen.Id("r").Dot("e").Dot("Errorf").Call(jen.Lit("%w: "+name+" got %s on the wrong side of leg %s"), core("ErrNoCell"), jen.Id("ev").Dot("Kind").Call(), jen.Id("ev").Dot("Leg")),
			jen.Break(),
		)
		for _, c := range one(hs[0]) {
			b.Add(c)
		}
	default:
		var up, down *handler
		for _, h := range hs {
			if h.kind == model.SideUp {
				up = h
			} else {
				down = h
			}
		}
		b.If(jen.Id("sd").Dot("Up")).Block(one(up)...).Else().Block(one(down)...)
	}
	b.Id("r").Dot("react").Call(jen.Id("s"))
}

// copySessionFields copies Target, From and Members of a session-creating event.
func (g *generator) copySessionFields(b *jen.Group, ev *model.Event) {
	for _, fl := range ev.Fields {
		switch {
		case fl.Name == "Target" && fl.Kind == "uri", fl.Name == "From" && fl.Kind == "uri", fl.Name == "Members" && fl.Kind == "uris":
			b.Id("s").Dot(fl.Name).Op("=").Id("ev").Dot(fl.Name)
		}
	}
}

// newSession emits the creation of a session by an incoming INVITE: the up side and, for a
// per-member role, one down side per member of the resolved group.
func (g *generator) newSession(f *jen.File, r *model.Role) {
	var creating *model.Event
	for _, ev := range g.s.Events {
		if ev.Creates {
			creating = ev
		}
	}
	if creating == nil {
		g.fail("role %s has an up side but no event creates sessions", r.Name)
		return
	}
	var body []jen.Code
	body = append(body, jen.Id("s").Op(":=").Id("r").Dot("e").Dot("NewSession").Call(jen.Id("ev").Dot("Leg")))
	var copyFields []jen.Code
	for _, fl := range creating.Fields {
		switch {
		case fl.Name == "Target" && fl.Kind == "uri", fl.Name == "From" && fl.Kind == "uri", fl.Name == "Members" && fl.Kind == "uris":
			copyFields = append(copyFields, jen.Id("s").Dot(fl.Name).Op("=").Id("ev").Dot(fl.Name))
		}
	}
	body = append(body, copyFields...)
	body = append(body,
		jen.Id("up").Op(":=").Id("r").Dot("e").Dot("AddSide").Call(jen.Id("s"), jen.True(), jen.Id("ev").Dot("Leg"), jen.Int().Call(jen.Id(g.hopOfSide(r, model.SideUp))), jen.Lit("")),
		jen.Id("initParty").Call(jen.Op("&").Id("r").Dot("v"), jen.Id("up")),
	)
	switch r.Down {
	case model.DownOne:
		body = append(body,
			jen.Id("d").Op(":=").Id("r").Dot("e").Dot("AddSide").Call(jen.Id("s"), jen.False(), core("DownLeg").Call(jen.Id("ev").Dot("Leg"), jen.Lit(0)), jen.Int().Call(jen.Id(g.hopOfSide(r, model.SideDown))), jen.Lit("")),
			jen.Id("d").Dot("Last").Op("=").True(),
			jen.Id("initParty").Call(jen.Op("&").Id("r").Dot("v"), jen.Id("d")),
		)
	case model.DownPerMember:
		body = append(body,
			jen.List(jen.Id("members"), jen.Id("group")).Op(":=").Id("r").Dot("e").Dot("Cfg").Dot("Resolve").Call(jen.Id("s").Dot("Target"), jen.Id("s").Dot("From"), jen.Id("s").Dot("Members")),
			jen.Id("s").Dot("Group").Op("=").Id("group"),
			jen.For(jen.List(jen.Id("i"), jen.Id("m")).Op(":=").Range().Id("members")).Block(
				jen.Id("d").Op(":=").Id("r").Dot("e").Dot("AddSide").Call(jen.Id("s"), jen.False(), core("DownLeg").Call(jen.Id("ev").Dot("Leg"), jen.Id("i")), jen.Int().Call(jen.Id(g.hopOfSide(r, model.SideDown))), jen.Id("m")),
				jen.Id("d").Dot("Last").Op("=").Id("i").Op("==").Len(jen.Id("members")).Op("-").Lit(1),
				jen.Id("initParty").Call(jen.Op("&").Id("r").Dot("v"), jen.Id("d")),
			),
		)
	}
	body = append(body, jen.Return(jen.Id("s"), jen.Id("up")))
	f.Comment("newSession creates the session an INVITE on a new leg starts.")
	f.Func().Params(jen.Id("r").Op("*").Id(r.Name)).Id("newSession").Params(jen.Id("ev").Id(creating.Name)).Params(jen.Op("*").Add(core("Session")), jen.Op("*").Add(core("Side"))).Block(body...)
}

// handlerMethod emits the rules of one (event, side) of a role as a method.
func (g *generator) handlerMethod(f *jen.File, r *model.Role, h *handler) {
	if h.rules == nil {
		return
	}
	e := baseEnv(r)
	e.ev = h.event
	params := []jen.Code{jen.Id("s").Op("*").Add(core("Session"))}
	if h.kind != "" {
		params = append(params, jen.Id("sd").Op("*").Add(core("Side")))
		if h.kind == model.SideDown {
			e.down = varSide("sd")
		}
	}
	params = append(params, jen.Id("ev").Id(h.event.Name))
	var body []jen.Code
	for _, rule := range h.rules {
		if rule.Cite != "" || rule.Doc != "" {
			body = append(body, comment(joinNonEmpty(rule.Doc, rule.Cite)))
		}
		body = append(body, g.stmts(model.FoldStmts(rule.Do, r.Name), e)...)
	}
	if h.kind == model.SideUp {
		body = append([]jen.Code{jen.Id("_").Op("=").Id("sd")}, body...)
	}
	doc := fmt.Sprintf("%s runs the rules for %s", handlerName(h), h.event.Name)
	if h.kind != "" {
		doc += " on the " + h.kind + " side"
	}
	f.Comment(doc + ".")
	f.Func().Params(jen.Id("r").Op("*").Id(r.Name)).Id(handlerName(h)).Params(params...).Block(body...)
}

func joinNonEmpty(parts ...string) string {
	out := ""
	for _, p := range parts {
		if p == "" {
			continue
		}
		if out != "" {
			out += " "
		}
		out += p
	}
	return out
}

// triggers emits triggerUp and triggerDown: the variant's trigger for the hop of that side,
// compiled for this role. Triggers the role can never observe compile to false; Variant.Check
// rejects variants that would choose them.
func (g *generator) triggers(f *jen.File, r *model.Role) {
	for _, kind := range []string{model.SideUp, model.SideDown} {
		if !r.HasSide(kind) {
			continue
		}
		hop := g.hopOfSide(r, kind)
		e := baseEnv(r)
		e.this, e.thisKind = upSide, model.SideUp
		params := []jen.Code{jen.Id("s").Op("*").Add(core("Session"))}
		name := "triggerUp"
		if kind == model.SideDown {
			e.this, e.thisKind = varSide("this"), model.SideDown
			params = append(params, jen.Id("this").Op("*").Add(core("Side")))
			name = "triggerDown"
		}
		sw := jen.Switch(jen.Id("r").Dot("v").Dot(knobType(g.triggerKnob)).Index(jen.Id(hop))).BlockFunc(func(gr *jen.Group) {
			for _, t := range g.s.Triggers {
				if g.s.TriggerImpossible(t.Name, r, kind) != "" {
					continue
				}
				ex := t.Offerer
				if kind == model.SideUp {
					ex = t.Answerer
				}
				gr.Case(jen.Id(knobConst(g.triggerKnob, t.Name))).Return(g.cond(model.Fold(ex.Root, r.Name), e))
			}
		})
		f.Comment(fmt.Sprintf("%s reports whether the variant's trigger for %s holds.", name, hop))
		f.Func().Params(jen.Id("r").Op("*").Id(r.Name)).Id(name).Params(params...).Bool().Block(sw, jen.Return(jen.False()))
	}
}

// waiting emits waitingUp and waitingDown from the spec's waiting conditions.
func (g *generator) waiting(f *jen.File, r *model.Role) {
	for _, kind := range []string{model.SideUp, model.SideDown} {
		if !r.HasSide(kind) {
			continue
		}
		e := baseEnv(r)
		params := []jen.Code{jen.Id("s").Op("*").Add(core("Session"))}
		name := "waitingUp"
		if kind == model.SideDown {
			e.down = varSide("d")
			params = append(params, jen.Id("d").Op("*").Add(core("Side")))
			name = "waitingDown"
		}
		ret := jen.False()
		if ex, ok := g.s.Waiting[kind]; ok {
			ret = g.cond(model.Fold(ex.Root, r.Name), e)
		}
		f.Comment(fmt.Sprintf("%s reports whether the side waits for its peer (its guard timer runs).", name))
		f.Func().Params(jen.Id("r").Op("*").Id(r.Name)).Id(name).Params(params...).Bool().Block(jen.Return(ret))

		// announce: whether the SDP the side sends carries a=setup (RFC 6135).
		aname := "announceUp"
		self := jen.Id("s").Dot("Up")
		if kind == model.SideDown {
			aname, self = "announceDown", jen.Id("d")
		}
		aret := g.negotiated(self)
		if ex, ok := g.s.Announce[kind]; ok {
			aret = g.cond(model.Fold(ex.Root, r.Name), e)
		}
		f.Comment(fmt.Sprintf("%s reports whether the SDP the side sends carries a=setup (RFC 6135).", aname))
		f.Func().Params(jen.Id("r").Op("*").Id(r.Name)).Id(aname).Params(params...).Bool().Block(jen.Return(aret))
	}
}

// react emits the reaction loop: every reaction whose condition holds runs, round after
// round, until a round fires none.
func (g *generator) react(f *jen.File, r *model.Role) {
	var body []jen.Code
	for _, re := range g.s.ReactionsFor(r.Name) {
		if !g.s.Applies(re, r) {
			continue
		}
		when := model.Fold(re.When.Root, r.Name)
		if b, ok := model.IsConst(when); ok && !b {
			continue
		}
		e := baseEnv(r)
		do := model.FoldStmts(re.Do, r.Name)
		body = append(body, comment(re.Name+": "+re.Doc))
		if re.Each != "" {
			e.down = varSide("d")
			e.depth = 1
			body = append(body, jen.For(jen.List(jen.Id("_"), jen.Id("d")).Op(":=").Range().Id("s").Dot("Downs")).Block(
				jen.If(g.cond(when, e)).Block(append(g.stmts(do, e), jen.Id("fired").Op("=").True())...),
			))
			continue
		}
		body = append(body, jen.If(g.cond(when, e)).Block(append(g.stmts(do, e), jen.Id("fired").Op("=").True())...))
	}
	f.Comment("react runs the reactions until none applies.")
	f.Func().Params(jen.Id("r").Op("*").Id(r.Name)).Id("react").Params(jen.Id("s").Op("*").Add(core("Session"))).Block(
		jen.If(jen.Id("s").Op("==").Nil()).Block(jen.Return()),
		jen.For(jen.Id("round").Op(":=").Lit(0), jen.Id("round").Op("<").Lit(maxRounds), jen.Id("round").Op("++")).Block(
			append([]jen.Code{jen.Id("fired").Op(":=").False()}, append(body,
				jen.If(jen.Op("!").Id("fired")).Block(jen.Return()))...)...,
		),
		jen.Id("r").Dot("e").Dot("Errorf").Call(jen.Lit("%w: "+r.Name+", session %s"), core("ErrUnsettled"), jen.Id("s").Dot("Key")),
	)
}
