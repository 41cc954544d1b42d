package gen

import (
	"github.com/cpmlink/cpmlink/model"
	"github.com/dave/jennifer/jen"
)

// messagesFile emits the aliases of the core value types and one struct per event and action.
func (g *generator) messagesFile() *jen.File {
	s := g.s
	f := g.newFile()
	f.Comment("Value types shared with package core.")
	f.Type().Defs(
		jen.Id("LegID").Op("=").Add(core("LegID")),
		jen.Id("ConnID").Op("=").Add(core("ConnID")),
		jen.Id("SDP").Op("=").Add(core("SDP")),
		jen.Id("Setup").Op("=").Add(core("Setup")),
		jen.Id("Outcome").Op("=").Add(core("Outcome")),
		jen.Id("MemberOutcome").Op("=").Add(core("MemberOutcome")),
		jen.Id("Config").Op("=").Add(core("Config")),
		jen.Id("Event").Op("=").Add(core("Event")),
		jen.Id("Action").Op("=").Add(core("Action")),
		jen.Id("Refuse").Op("=").Add(core("Refuse")),
	)
	for _, e := range s.Events {
		g.messageType(f, e.Name, e.Doc, e.At, e.Fields, "EventLeg", func(fl model.Field) string { return fl.Kind })
	}
	for _, a := range s.Actions {
		g.messageType(f, a.Name, a.Doc, a.At, a.Fields, "ActionLeg", func(fl model.Field) string { return model.Sources[fl.Kind].Type })
	}
	return f
}

func (g *generator) messageType(f *jen.File, name, doc, at string, fields model.FieldMap, legMethod string, typeOf func(model.Field) string) {
	var fs []jen.Code
	if at != model.AtSession {
		fs = append(fs, jen.Id("Leg").Id("LegID"))
	}
	for _, fl := range fields {
		fs = append(fs, jen.Id(fl.Name).Add(goType(typeOf(fl))))
	}
	f.Add(comment(name + ": " + doc))
	f.Type().Id(name).Struct(fs...)
	leg := jen.Lit("")
	if at != model.AtSession {
		leg = jen.Id("x").Dot("Leg")
	}
	f.Comment(legMethod + " implements the core interface.")
	f.Func().Params(jen.Id("x").Id(name)).Id(legMethod).Params().Id("LegID").Block(jen.Return(leg))
	f.Comment("Kind names the type.")
	f.Func().Params(jen.Id(name)).Id("Kind").Params().String().Block(jen.Return(jen.Lit(name)))
}

// machinesFile emits the column indexes, each machine's state and event constants, its
// table, and the layout the engine builds sides from.
func (g *generator) machinesFile() *jen.File {
	s := g.s
	f := g.newFile()
	var cols []jen.Code
	for i, c := range g.columns {
		cc := jen.Id(colConst(c))
		if i == 0 {
			cc.Op("=").Iota()
		}
		cols = append(cols, cc)
	}
	f.Comment("Columns of a side: one machine runs in each.")
	f.Const().Defs(cols...)

	for _, m := range s.Machines {
		events := m.Events()
		f.Add(comment(m.Name + ": " + m.Doc))
		var sts []jen.Code
		for i, st := range m.States {
			c := jen.Id(stateConst(m.Name, st))
			if i == 0 {
				c.Uint8().Op("=").Iota()
			}
			sts = append(sts, c)
		}
		f.Const().Defs(sts...)
		var evs []jen.Code
		for i, ev := range events {
			c := jen.Id(evConst(m.Name, ev))
			if i == 0 {
				c.Uint8().Op("=").Iota()
			}
			evs = append(evs, c)
		}
		f.Const().Defs(evs...)

		var rows []jen.Code
		for _, st := range m.States {
			var cells []jen.Code
			for _, ev := range events {
				cells = append(cells, g.cellLit(m, st, ev))
			}
			rows = append(rows, jen.Values(cells...))
		}
		var terms []jen.Code
		for _, t := range m.Terminal {
			terms = append(terms, jen.Id(stateConst(m.Name, t)))
		}
		f.Var().Id(defVar(m.Name)).Op("=").Add(core("NewMachineDef")).Call(
			jen.Lit(m.Name),
			jen.Index().String().ValuesFunc(func(gr *jen.Group) {
				for _, st := range m.States {
					gr.Lit(st)
				}
			}),
			jen.Index().String().ValuesFunc(func(gr *jen.Group) {
				for _, ev := range events {
					gr.Lit(ev)
				}
			}),
			jen.Id(stateConst(m.Name, m.Initial)),
			jen.Index().Uint8().Values(terms...),
			jen.Index().Index().Add(core("Cell")).Values(rows...),
		)
	}

	defsOf := func(kind string) jen.Code {
		var ds []jen.Code
		for _, c := range g.columns {
			ds = append(ds, jen.Id(defVar(s.Sides.Of(kind)[c])))
		}
		return jen.Index().Op("*").Add(core("MachineDef")).Values(ds...)
	}
	f.Comment("layout says which machine runs in each column of an up and a down side.")
	f.Var().Id("layout").Op("=").Op("&").Add(core("Layout")).Values(jen.Dict{
		jen.Id("Columns"): jen.Index().String().ValuesFunc(func(gr *jen.Group) {
			for _, c := range g.columns {
				gr.Lit(c)
			}
		}),
		jen.Id("Up"):   defsOf(model.SideUp),
		jen.Id("Down"): defsOf(model.SideDown),
		jen.Id("Link"): jen.Id(colConst("link")),
	})
	f.Comment("Machines returns the tables of the spec's machines, in spec order.")
	f.Func().Id("Machines").Params().Index().Op("*").Add(core("MachineDef")).Block(
		jen.Return(jen.Index().Op("*").Add(core("MachineDef")).ValuesFunc(func(gr *jen.Group) {
			for _, m := range s.Machines {
				gr.Id(defVar(m.Name))
			}
		})),
	)
	return f
}

// cellLit renders the cell of (state, event) of a machine.
func (g *generator) cellLit(m *model.Machine, st, ev string) jen.Code {
	for _, c := range m.Cells {
		if c.On != ev || !contains(c.From, st) {
			continue
		}
		switch c.Kind() {
		case model.CellTo:
			to := c.To
			if to == "same" {
				to = st
			}
			return jen.Values(jen.Dict{jen.Id("Kind"): core("CellTo"), jen.Id("To"): jen.Id(stateConst(m.Name, to))})
		case model.CellIgnore:
			return jen.Values(jen.Dict{jen.Id("Kind"): core("CellIgnore"), jen.Id("Reason"): jen.Lit(c.Ign)})
		case model.CellReject:
			return jen.Values(jen.Dict{jen.Id("Kind"): core("CellReject"), jen.Id("Reason"): jen.Lit(c.Rej)})
		}
	}
	return jen.Values()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
