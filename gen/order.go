package gen

import (
	"github.com/cpmlink/cpmlink/model"
	"github.com/dave/jennifer/jen"
)

// orderConst names the bit of an order rule in the Order set.
func orderConst(name string) string { return "Order" + exported(name) }

// orderDecls emits the figures' step order as data: the OrderTerm and OrderRule types, the
// rules of the spec (OrderRules), the Order set a Variant holds, and SetOrder. The
// generated roles never read them: the checkers in proptest do, against what the roles do.
func (g *generator) orderDecls(f *jen.File) {
	s := g.s
	f.Comment("OrderTerm is one step of a figure: a machine event on one side of a role, which the")
	f.Comment("inputs and outputs named in Kinds make visible.")
	f.Type().Id("OrderTerm").Struct(
		jen.Comment("Text is the step as the spec writes it: \"ROLE EVENT at SIDE\"."),
		jen.Id("Text").String(),
		jen.Comment("Role is the role that takes or does it, on its side of Hop; End is that side's end of the"),
		jen.Comment("hop: 0 the offerer (the role's down side), 1 the answerer (its up side)."),
		jen.Id("Role").Id("RoleKind"),
		jen.Id("Hop").Id("Hop"),
		jen.Id("End").Int(),
		jen.Comment("Event is the machine event; Kinds the input and output types that fire it."),
		jen.Id("Event").String(),
		jen.Id("Kinds").Index().String(),
	)
	f.Comment("OrderRule is one happens-before constraint of a figure: whenever the role of Then does it,")
	f.Comment("one of After has happened already, on the same leg or on a leg of the same branch (the")
	f.Comment("upstream leg the role answered, or any downstream leg it offered).")
	f.Type().Id("OrderRule").Struct(
		jen.Id("Name").String(),
		jen.Comment("Cite names the patent steps or figures the rule comes from."),
		jen.Id("Cite").String(),
		jen.Id("Doc").String(),
		jen.Id("Then").Id("OrderTerm"),
		jen.Id("After").Index().Id("OrderTerm"),
		jen.Comment("Prompt: Then is a link opening or an ACK, done in the role's step in which one of"),
		jen.Comment("After has happened and it can be done, not later."),
		jen.Id("Prompt").Bool(),
	)
	f.Comment("Order is a set of order rules: bit i stands for OrderRules[i].")
	f.Type().Id("Order").Uint64()
	if len(s.Orders) > 0 {
		var defs []jen.Code
		for i, o := range s.Orders {
			c := jen.Id(orderConst(o.Name))
			if i == 0 {
				c.Id("Order").Op("=").Lit(1).Op("<<").Iota()
			}
			defs = append(defs, comment(o.Cite+": "+o.Doc), c)
		}
		f.Const().Defs(defs...)
	}
	term := func(t model.OrderTerm, typed bool) jen.Code {
		end := 0
		if t.Side == model.SideUp {
			end = 1
		}
		lit := jen.Null()
		if typed {
			lit = jen.Id("OrderTerm")
		}
		return lit.Values(jen.Dict{
			jen.Id("Text"):  jen.Lit(t.Text),
			jen.Id("Role"):  jen.Id(roleKindConst(t.Role)),
			jen.Id("Hop"):   jen.Id(hopConst(t.Hop)),
			jen.Id("End"):   jen.Lit(end),
			jen.Id("Event"): jen.Lit(t.Event),
			jen.Id("Kinds"): jen.Index().String().ValuesFunc(func(gr *jen.Group) {
				for _, k := range t.Kinds {
					gr.Lit(k)
				}
			}),
		})
	}
	f.Comment("OrderRules are the order rules of the spec, in file order.")
	f.Var().Id("OrderRules").Op("=").Index().Id("OrderRule").ValuesFunc(func(gr *jen.Group) {
		for _, o := range s.Orders {
			d := jen.Dict{
				jen.Id("Name"): jen.Lit(o.Name),
				jen.Id("Cite"): jen.Lit(o.Cite),
				jen.Id("Doc"):  jen.Lit(o.Doc),
				jen.Id("Then"): term(o.ThenTerm, true),
				jen.Id("After"): jen.Index().Id("OrderTerm").ValuesFunc(func(ag *jen.Group) {
					for _, a := range o.AfterTerms {
						ag.Add(term(a, false))
					}
				}),
			}
			if o.Prompt {
				d[jen.Id("Prompt")] = jen.True()
			}
			gr.Values(d)
		}
	})
	f.Comment("Rules returns the order rules in the set, in spec order.")
	f.Func().Params(jen.Id("o").Id("Order")).Id("Rules").Params().Index().Op("*").Id("OrderRule").Block(
		jen.Var().Id("out").Index().Op("*").Id("OrderRule"),
		jen.For(jen.Id("i").Op(":=").Range().Id("OrderRules")).Block(
			jen.If(jen.Id("o").Op("&").Parens(jen.Lit(1).Op("<<").Id("i")).Op("!=").Lit(0)).Block(
				jen.Id("out").Op("=").Append(jen.Id("out"), jen.Op("&").Id("OrderRules").Index(jen.Id("i"))),
			),
		),
		jen.Return(jen.Id("out")),
	)
	f.Comment("String lists the order rules in the set.")
	f.Func().Params(jen.Id("o").Id("Order")).Id("String").Params().String().Block(
		jen.Var().Id("out").Index().String(),
		jen.For(jen.List(jen.Id("_"), jen.Id("r")).Op(":=").Range().Id("o").Dot("Rules").Call()).Block(
			jen.Id("out").Op("=").Append(jen.Id("out"), jen.Id("r").Dot("Name")),
		),
		jen.Return(jen.Qual("strings", "Join").Call(jen.Id("out"), jen.Lit(","))),
	)
	f.Comment("SetOrder adds the named order rule to the variant.")
	f.Func().Params(jen.Id("v").Op("*").Id("Variant")).Id("SetOrder").Params(jen.Id("name").String()).Error().Block(
		jen.For(jen.List(jen.Id("i"), jen.Id("r")).Op(":=").Range().Id("OrderRules")).Block(
			jen.If(jen.Id("r").Dot("Name").Op("==").Id("name")).Block(
				jen.Id("v").Dot("Order").Op("|=").Lit(1).Op("<<").Id("i"),
				jen.Return(jen.Nil()),
			),
		),
		jen.Return(jen.Qual("fmt", "Errorf").Call(jen.Lit("fsm: unknown order rule %q"), jen.Id("name"))),
	)
}

// orderLit is the Order value of a variant, or nil when it states no rule.
func (g *generator) orderLit(v *model.Variant) jen.Code {
	var c *jen.Statement
	for _, name := range v.Orders {
		if c == nil {
			c = jen.Id(orderConst(name))
		} else {
			c = c.Op("|").Id(orderConst(name))
		}
	}
	if c == nil {
		return nil
	}
	return c
}
