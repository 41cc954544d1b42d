package gen

import (
	"fmt"

	"github.com/cpmlink/cpmlink/model"
	"github.com/dave/jennifer/jen"
)

// variantFile emits the hops, role kinds, knob types, defects, the Variant value and the
// spec's named variants.
func (g *generator) variantFile() *jen.File {
	s := g.s
	f := g.newFile()

	f.Comment("Hop is one hop of the spec: one SIP leg and its MSRP link.")
	f.Type().Id("Hop").Uint8()
	var hops []jen.Code
	for i, h := range s.Hops {
		c := jen.Id(hopConst(h.Name))
		if i == 0 {
			c.Id("Hop").Op("=").Iota()
		}
		hops = append(hops, comment(h.Doc), c)
	}
	f.Const().Defs(hops...)
	f.Comment("NumHops is the number of hops.")
	f.Const().Id("NumHops").Op("=").Lit(len(s.Hops))
	g.namesTable(f, "Hop", "hopNames", hopNamesOf(s))

	f.Comment("HopEnds gives, for each hop, its offerer (INVITE sender) and its answerer.")
	var ends []jen.Code
	for _, h := range s.Hops {
		ends = append(ends, jen.Values(jen.Id(roleKindConst(h.Offerer)), jen.Id(roleKindConst(h.Answerer))))
	}
	f.Var().Id("HopEnds").Op("=").Index(jen.Id("NumHops")).Index(jen.Lit(2)).Id("RoleKind").Values(ends...)

	f.Comment("RoleKind is one role of the spec.")
	f.Type().Id("RoleKind").Uint8()
	var roles []jen.Code
	var roleNames []string
	for i, r := range s.Roles {
		c := jen.Id(roleKindConst(r.Name))
		if i == 0 {
			c.Id("RoleKind").Op("=").Iota()
		}
		roles = append(roles, comment(r.Doc), c)
		roleNames = append(roleNames, r.Name)
	}
	f.Const().Defs(roles...)
	f.Comment("NumRoles is the number of roles.")
	f.Const().Id("NumRoles").Op("=").Lit(len(s.Roles))
	g.namesTable(f, "RoleKind", "roleNames", roleNames)

	for _, k := range s.Knobs {
		t := knobType(k)
		f.Add(comment(fmt.Sprintf("%s: %s", t, k.Doc)))
		f.Type().Id(t).Uint8()
		var vals []jen.Code
		for i, v := range k.Values {
			c := jen.Id(knobConst(k, v.Name))
			if i == 0 {
				c.Id(t).Op("=").Iota()
			}
			doc := v.Doc
			if doc == "" && k.From == "triggers" {
				doc = s.Trigger(v.Name).Doc
			}
			vals = append(vals, comment(doc), c)
		}
		f.Const().Defs(vals...)
		g.namesTable(f, t, unexported(k.Name)+"Names", k.ValueNames())
	}

	f.Comment("Defect is a set of planted defects: named departures from the spec that exist so that")
	f.Comment("the checkers can be shown to catch bugs. No named variant of the spec uses them.")
	f.Type().Id("Defect").Uint32()
	var defs []jen.Code
	var defectNames []string
	for i, d := range s.Defects {
		c := jen.Id(defectConst(d.Name))
		if i == 0 {
			c.Id("Defect").Op("=").Lit(1).Op("<<").Iota()
		}
		defs = append(defs, comment(d.Doc), c)
		defectNames = append(defectNames, d.Name)
	}
	if len(defs) > 0 {
		f.Const().Defs(defs...)
	}
	f.Var().Id("defectNames").Op("=").Index().String().ValuesFunc(func(gr *jen.Group) {
		for _, n := range defectNames {
			gr.Lit(n)
		}
	})
	f.Comment("String lists the defects in the set.")
	f.Func().Params(jen.Id("d").Id("Defect")).Id("String").Params().String().Block(
		jen.Var().Id("out").Index().String(),
		jen.For(jen.List(jen.Id("i"), jen.Id("n")).Op(":=").Range().Id("defectNames")).Block(
			jen.If(jen.Id("d").Op("&").Parens(jen.Lit(1).Op("<<").Id("i")).Op("!=").Lit(0)).Block(
				jen.Id("out").Op("=").Append(jen.Id("out"), jen.Id("n")),
			),
		),
		jen.Return(jen.Qual("strings", "Join").Call(jen.Id("out"), jen.Lit(","))),
	)

	// The Variant value.
	var fields []jen.Code
	fields = append(fields,
		jen.Comment("Name names the variant (empty for an unnamed point of the knob space)."),
		jen.Id("Name").String(),
		jen.Comment("Doc says where the variant comes from."),
		jen.Id("Doc").String(),
	)
	for _, k := range s.Knobs {
		fields = append(fields, comment(k.Doc))
		if k.PerHop() {
			fields = append(fields, jen.Id(knobType(k)).Index(jen.Id("NumHops")).Id(knobType(k)))
		} else {
			fields = append(fields, jen.Id(knobType(k)).Id(knobType(k)))
		}
	}
	fields = append(fields, jen.Comment("Defects are planted defects (none in a named variant of the spec)."), jen.Id("Defects").Id("Defect"))
	fields = append(fields, jen.Comment("Order is the set of order rules the variant's figure draws (OrderRules), which the"),
		jen.Comment("checkers verify; the roles never read it."), jen.Id("Order").Id("Order"))
	g.orderDecls(f)
	f.Comment("Variant is one point of the knob space. The generated roles read it at every step, so any")
	f.Comment("combination of knob values runs without regenerating.")
	f.Type().Id("Variant").Struct(fields...)

	f.Comment("Variants are the named variants of the spec, in file order.")
	f.Var().Id("Variants").Op("=").Index().Id("Variant").ValuesFunc(func(gr *jen.Group) {
		for _, v := range s.Variants {
			gr.Add(g.variantLit(v))
		}
	})

	f.Comment("VariantByName returns the named variant of the spec.")
	f.Func().Id("VariantByName").Params(jen.Id("name").String()).Params(jen.Id("Variant"), jen.Bool()).Block(
		jen.For(jen.List(jen.Id("_"), jen.Id("v")).Op(":=").Range().Id("Variants")).Block(
			jen.If(jen.Id("v").Dot("Name").Op("==").Id("name")).Block(jen.Return(jen.Id("v"), jen.True())),
		),
		jen.Return(jen.Id("Variant").Values(), jen.False()),
	)

	g.knobAccessors(f)
	g.variantCheck(f)
	if g.fingerprint != "" {
		f.Comment("Fingerprint identifies the behaviour of this code (gen.Fingerprint of its spec): a spec")
		f.Comment("with the same fingerprint can have its variants explored with this code.")
		f.Const().Id("Fingerprint").Op("=").Lit(g.fingerprint)
		f.Comment("SpecName is the name of the spec this code was generated from.")
		f.Const().Id("SpecName").Op("=").Lit(g.s.Name)
	}
	return f
}

func hopNamesOf(s *model.Spec) []string {
	var out []string
	for _, h := range s.Hops {
		out = append(out, h.Name)
	}
	return out
}

// namesTable emits a names array and a String method for an enum type.
func (g *generator) namesTable(f *jen.File, typ, table string, names []string) {
	f.Var().Id(table).Op("=").Index(jen.Op("...")).String().ValuesFunc(func(gr *jen.Group) {
		for _, n := range names {
			gr.Lit(n)
		}
	})
	f.Comment("String returns the spec's name for the value.")
	f.Func().Params(jen.Id("x").Id(typ)).Id("String").Params().String().Block(
		jen.If(jen.Int().Call(jen.Id("x")).Op("<").Len(jen.Id(table))).Block(jen.Return(jen.Id(table).Index(jen.Id("x")))),
		jen.Return(jen.Qual("fmt", "Sprintf").Call(jen.Lit(typ+"(%d)"), jen.Id("x"))),
	)
}

func (g *generator) variantLit(v *model.Variant) jen.Code {
	d := jen.Dict{jen.Id("Name"): jen.Lit(v.Name)}
	if v.Doc != "" {
		d[jen.Id("Doc")] = jen.Lit(v.Doc)
	}
	for _, k := range g.s.Knobs {
		if k.PerHop() {
			var vals []jen.Code
			for _, h := range g.s.Hops {
				vals = append(vals, jen.Id(knobConst(k, v.Resolved[model.Key(k.Name, h.Name)])))
			}
			d[jen.Id(knobType(k))] = jen.Index(jen.Id("NumHops")).Id(knobType(k)).Values(vals...)
		} else {
			d[jen.Id(knobType(k))] = jen.Id(knobConst(k, v.Resolved[k.Name]))
		}
	}
	if len(v.Defects) > 0 {
		var c *jen.Statement
		for i, name := range v.Defects {
			if i == 0 {
				c = jen.Id(defectConst(name))
			} else {
				c = c.Op("|").Id(defectConst(name))
			}
		}
		d[jen.Id("Defects")] = c
	}
	if o := g.orderLit(v); o != nil {
		d[jen.Id("Order")] = o
	}
	return jen.Values(d)
}

// knobAccessors emits KnobKeys, KnobValues, Variant.Get, Variant.Set and SetDefect, which
// let tools read variants from another spec file and enumerate the knob space.
func (g *generator) knobAccessors(f *jen.File) {
	s := g.s
	f.Comment("KnobKeys lists every knob key in spec order; a per-hop knob has one key per hop (\"opener.hop1\").")
	f.Var().Id("KnobKeys").Op("=").Index().String().ValuesFunc(func(gr *jen.Group) {
		for _, k := range s.KnobKeys() {
			gr.Lit(k)
		}
	})
	f.Comment("KnobValues returns the values a knob key may take, or nil for an unknown key.")
	f.Func().Id("KnobValues").Params(jen.Id("key").String()).Index().String().Block(
		jen.Switch(jen.Id("key")).BlockFunc(func(gr *jen.Group) {
			for _, k := range s.Knobs {
				gr.Case(g.keysOf(k)...).Return(jen.Append(jen.Index().String().Values(), jen.Id(unexported(k.Name)+"Names").Index(jen.Empty(), jen.Empty()).Op("...")))
			}
		}),
		jen.Return(jen.Nil()),
	)

	f.Comment("Get returns the value name of a knob key (\"\" for an unknown key).")
	f.Func().Params(jen.Id("v").Id("Variant")).Id("Get").Params(jen.Id("key").String()).String().Block(
		jen.Switch(jen.Id("key")).BlockFunc(func(gr *jen.Group) {
			for _, k := range s.Knobs {
				if k.PerHop() {
					for _, h := range s.Hops {
						gr.Case(jen.Lit(model.Key(k.Name, h.Name))).Return(jen.Id("v").Dot(knobType(k)).Index(jen.Id(hopConst(h.Name))).Dot("String").Call())
					}
				} else {
					gr.Case(jen.Lit(k.Name)).Return(jen.Id("v").Dot(knobType(k)).Dot("String").Call())
				}
			}
		}),
		jen.Return(jen.Lit("")),
	)

	f.Comment("Set sets a knob key to a value name, as a spec file writes them.")
	f.Func().Params(jen.Id("v").Op("*").Id("Variant")).Id("Set").Params(jen.List(jen.Id("key"), jen.Id("value")).String()).Error().Block(
		jen.Id("i").Op(":=").Qual("slices", "Index").Call(jen.Id("KnobValues").Call(jen.Id("key")), jen.Id("value")),
		jen.If(jen.Id("i").Op("<").Lit(0)).Block(
			jen.Return(jen.Qual("fmt", "Errorf").Call(jen.Lit("fsm: knob %q: unknown key or value %q (values: %v)"), jen.Id("key"), jen.Id("value"), jen.Id("KnobValues").Call(jen.Id("key")))),
		),
		jen.Switch(jen.Id("key")).BlockFunc(func(gr *jen.Group) {
			for _, k := range s.Knobs {
				if k.PerHop() {
					for _, h := range s.Hops {
						gr.Case(jen.Lit(model.Key(k.Name, h.Name))).Id("v").Dot(knobType(k)).Index(jen.Id(hopConst(h.Name))).Op("=").Id(knobType(k)).Call(jen.Id("i"))
					}
				} else {
					gr.Case(jen.Lit(k.Name)).Id("v").Dot(knobType(k)).Op("=").Id(knobType(k)).Call(jen.Id("i"))
				}
			}
		}),
		jen.Return(jen.Nil()),
	)

	f.Comment("SetDefect plants the named defect.")
	f.Func().Params(jen.Id("v").Op("*").Id("Variant")).Id("SetDefect").Params(jen.Id("name").String()).Error().Block(
		jen.Id("i").Op(":=").Qual("slices", "Index").Call(jen.Id("defectNames"), jen.Id("name")),
		jen.If(jen.Id("i").Op("<").Lit(0)).Block(
			jen.Return(jen.Qual("fmt", "Errorf").Call(jen.Lit("fsm: unknown defect %q (defects: %v)"), jen.Id("name"), jen.Id("defectNames"))),
		),
		jen.Id("v").Dot("Defects").Op("|=").Lit(1).Op("<<").Id("i"),
		jen.Return(jen.Nil()),
	)
	f.Comment("DefectNames lists the defects of the spec.")
	f.Func().Id("DefectNames").Params().Index().String().Block(jen.Return(jen.Append(jen.Index().String().Values(), jen.Id("defectNames").Op("..."))))
}

func (g *generator) keysOf(k *model.Knob) []jen.Code {
	if !k.PerHop() {
		return []jen.Code{jen.Lit(k.Name)}
	}
	var out []jen.Code
	for _, h := range g.s.Hops {
		out = append(out, jen.Lit(model.Key(k.Name, h.Name)))
	}
	return out
}

// variantCheck emits Variant.Check, which rejects a trigger that the role opening a hop can
// never observe; the table is computed from the spec by the same code that validates it.
func (g *generator) variantCheck(f *jen.File) {
	s := g.s
	var rows []jen.Code
	for _, h := range s.Hops {
		var perOpener []jen.Code
		for _, opener := range []string{"offerer", "answerer"} {
			role, kind := s.Role(h.Offerer), model.SideDown
			if opener == "answerer" {
				role, kind = s.Role(h.Answerer), model.SideUp
			}
			var whys []jen.Code
			for _, t := range s.Triggers {
				whys = append(whys, jen.Lit(s.TriggerImpossible(t.Name, role, kind)))
			}
			perOpener = append(perOpener, jen.Values(whys...))
		}
		rows = append(rows, jen.Values(perOpener...))
	}
	nt := len(s.Triggers)
	f.Comment("impossible says, by hop, opener and trigger, why the opening role can never observe the")
	f.Comment("trigger (empty when it can).")
	f.Var().Id("impossible").Op("=").Index(jen.Id("NumHops")).Index(jen.Lit(2)).Index(jen.Lit(nt)).String().Values(rows...)
	f.Comment("Check reports the settings of v that are impossible: a hop opened on a trigger that its")
	f.Comment("opener can never observe. A deadlock is not impossible; the explorer finds those.")
	f.Func().Params(jen.Id("v").Id("Variant")).Id("Check").Params().Error().Block(
		jen.Var().Id("errs").Index().Error(),
		jen.For(jen.Id("h").Op(":=").Id("Hop").Call(jen.Lit(0)), jen.Id("h").Op("<").Id("NumHops"), jen.Id("h").Op("++")).Block(
			jen.Id("o").Op(",").Id("t").Op(":=").Id("v").Dot(knobType(g.openerKnob)).Index(jen.Id("h")).Op(",").Id("v").Dot(knobType(g.triggerKnob)).Index(jen.Id("h")),
			jen.If(jen.Int().Call(jen.Id("o")).Op(">=").Lit(2).Op("||").Int().Call(jen.Id("t")).Op(">=").Lit(nt)).Block(
				jen.Id("errs").Op("=").Append(jen.Id("errs"), jen.Qual("fmt", "Errorf").Call(jen.Lit("fsm: %s: knob value out of range"), jen.Id("h"))),
				jen.Continue(),
			),
			jen.If(jen.Id("why").Op(":=").Id("impossible").Index(jen.Id("h")).Index(jen.Id("o")).Index(jen.Id("t")), jen.Id("why").Op("!=").Lit("")).Block(
				jen.Id("r").Op(":=").Id("HopEnds").Index(jen.Id("h")).Index(jen.Id("o")),
				jen.Id("errs").Op("=").Append(jen.Id("errs"), jen.Qual("fmt", "Errorf").Call(
					jen.Lit("fsm: %s is opened by %s (the %s) on %s, which %s can never observe: %s"),
					jen.Id("h"), jen.Id("r"), jen.Id("o"), jen.Id("t"), jen.Id("r"), jen.Id("why"))),
			),
		),
		jen.Return(jen.Qual("errors", "Join").Call(jen.Id("errs").Op("..."))),
	)
}
