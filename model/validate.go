package model

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

type validator struct {
	s    *Spec
	errs ErrorList
	// inherited are the variants of the spec this one extends, usable as bases.
	inherited []*Variant
}

func (v *validator) errf(p Pos, format string, args ...any) {
	v.errs = append(v.errs, &Error{Pos: p, Msg: fmt.Sprintf(format, args...)})
}

// names checks that every name in a list is unique and non-empty, and returns the set.
func names[T any](v *validator, what string, items []T, name func(T) (string, Pos)) map[string]bool {
	seen := map[string]Pos{}
	for _, it := range items {
		n, p := name(it)
		if n == "" {
			v.errf(p, "%s without a name", what)
			continue
		}
		if prev, dup := seen[n]; dup {
			v.errf(p, "%s %q already declared at line %d", what, n, prev.Line)
			continue
		}
		seen[n] = p
	}
	out := map[string]bool{}
	for n := range seen {
		out[n] = true
	}
	return out
}

func (s *Spec) validate(inherited []*Variant) ErrorList {
	v := &validator{s: s, inherited: inherited}
	if s.Name == "" {
		v.errf(Pos{1, 1}, "the spec needs a name")
	}
	v.roles()
	v.hops()
	v.machines()
	v.sides()
	v.events()
	v.actions()
	v.knobs()
	names(v, "defect", s.Defects, func(d *Defect) (string, Pos) { return d.Name, d.Pos })
	names(v, "flag", s.Flags, func(f *Flag) (string, Pos) { return f.Name, f.Pos })
	if len(v.errs) > 0 {
		// Rules and variants refer to everything above; stop before cascading errors.
		return v.errs
	}
	v.triggers()
	v.rules()
	v.reactions()
	v.waiting()
	v.orders()
	v.variants()
	return v.errs
}

func (v *validator) roles() {
	if len(v.s.Roles) == 0 {
		v.errf(Pos{1, 1}, "the spec declares no roles")
	}
	names(v, "role", v.s.Roles, func(r *Role) (string, Pos) { return r.Name, r.Pos })
	for _, r := range v.s.Roles {
		switch r.Down {
		case DownNone, DownOne, DownPerMember:
		default:
			v.errf(r.Pos, "role %s: down must be none, one or per-member, found %q", r.Name, r.Down)
		}
		if !r.Up && r.Down == DownNone {
			v.errf(r.Pos, "role %s has neither an up nor a down side", r.Name)
		}
	}
}

func (v *validator) hops() {
	names(v, "hop", v.s.Hops, func(h *Hop) (string, Pos) { return h.Name, h.Pos })
	offers, answers := map[string]string{}, map[string]string{}
	for _, h := range v.s.Hops {
		o, a := v.s.Role(h.Offerer), v.s.Role(h.Answerer)
		switch {
		case o == nil:
			v.errf(h.Pos, "hop %s: unknown offerer role %q", h.Name, h.Offerer)
		case o.Down == DownNone:
			v.errf(h.Pos, "hop %s: offerer %s has no down side to send the INVITE on", h.Name, h.Offerer)
		case offers[h.Offerer] != "":
			v.errf(h.Pos, "hop %s: %s already offers %s; a role offers one hop", h.Name, h.Offerer, offers[h.Offerer])
		default:
			offers[h.Offerer] = h.Name
		}
		switch {
		case a == nil:
			v.errf(h.Pos, "hop %s: unknown answerer role %q", h.Name, h.Answerer)
		case !a.Up:
			v.errf(h.Pos, "hop %s: answerer %s has no up side to receive the INVITE on", h.Name, h.Answerer)
		case answers[h.Answerer] != "":
			v.errf(h.Pos, "hop %s: %s already answers %s; a role answers one hop", h.Name, h.Answerer, answers[h.Answerer])
		default:
			answers[h.Answerer] = h.Name
		}
	}
	for _, r := range v.s.Roles {
		if r.Up && answers[r.Name] == "" {
			v.errf(r.Pos, "role %s has an up side but answers no hop", r.Name)
		}
		if r.Down != DownNone && offers[r.Name] == "" {
			v.errf(r.Pos, "role %s has a down side but offers no hop", r.Name)
		}
	}
}

func (v *validator) machines() {
	names(v, "machine", v.s.Machines, func(m *Machine) (string, Pos) { return m.Name, m.Pos })
	for _, m := range v.s.Machines {
		states := names(v, "state", m.States, func(st string) (string, Pos) { return st, m.Pos })
		if !states[m.Initial] {
			v.errf(m.Pos, "machine %s: initial state %q is not one of its states", m.Name, m.Initial)
		}
		for _, t := range m.Terminal {
			if !states[t] {
				v.errf(m.Pos, "machine %s: terminal state %q is not one of its states", m.Name, t)
			}
		}
		covered := map[string]int{}
		seenEv := map[string]bool{}
		for _, c := range m.Cells {
			if c.On == "" {
				v.errf(c.Pos, "machine %s: cell without on:", m.Name)
				continue
			}
			seenEv[c.On] = true
			n := 0
			for _, x := range []string{c.To, c.Ign, c.Rej} {
				if x != "" {
					n++
				}
			}
			if n != 1 {
				v.errf(c.Pos, "machine %s, %s: a cell has exactly one of to:, ignore:, reject:", m.Name, c.On)
			}
			if len(c.From) == 0 {
				v.errf(c.Pos, "machine %s, %s: cell without from:", m.Name, c.On)
			}
			for _, f := range c.From {
				if !states[f] {
					v.errf(c.Pos, "machine %s, %s: unknown state %q in from:", m.Name, c.On, f)
					continue
				}
				key := f + "\x00" + c.On
				if prev, dup := covered[key]; dup {
					v.errf(c.Pos, "machine %s: (%s, %s) already has a cell at line %d", m.Name, f, c.On, prev)
				}
				covered[key] = c.Pos.Line
			}
			if c.To != "" && c.To != "same" && !states[c.To] {
				v.errf(c.Pos, "machine %s, %s: unknown target state %q", m.Name, c.On, c.To)
			}
			if c.Kind() == CellReject && len(c.Do) > 0 {
				v.errf(c.Pos, "machine %s, %s: a reject cell takes no do:", m.Name, c.On)
			}
		}
		_ = seenEv
	}
}

func (v *validator) sides() {
	sd := v.s.Sides
	if len(sd.Up) == 0 || len(sd.Down) == 0 {
		v.errf(sd.Pos, "sides needs both up and down")
		return
	}
	if strings.Join(sortedKeys(sd.Up), ",") != strings.Join(sortedKeys(sd.Down), ",") {
		v.errf(sd.Pos, "sides up and down must have the same columns (up: %s; down: %s)",
			strings.Join(sortedKeys(sd.Up), ", "), strings.Join(sortedKeys(sd.Down), ", "))
	}
	for _, kind := range []string{SideUp, SideDown} {
		owner := map[string]string{}
		for _, col := range sortedKeys(sd.Of(kind)) {
			m := sd.Of(kind)[col]
			mach := v.s.Machine(m)
			if mach == nil {
				v.errf(sd.Pos, "sides %s.%s: unknown machine %q", kind, col, m)
				continue
			}
			for _, ev := range mach.Events() {
				if o := owner[ev]; o != "" {
					v.errf(sd.Pos, "sides %s: event %q belongs to both column %s and column %s; `had` needs one owner", kind, ev, o, col)
				}
				owner[ev] = col
			}
			if _, clash := SideAttrs[col]; clash {
				v.errf(sd.Pos, "sides %s: column %q clashes with a built-in attribute", kind, col)
			}
		}
	}
}

// sideHasEvent reports whether a machine event belongs to one of the side kind's machines.
func (s *Spec) sideHasEvent(kind, ev string) bool { return s.ColumnOf(kind, ev) != "" }

func (v *validator) events() {
	names(v, "event", v.s.Events, func(e *Event) (string, Pos) { return e.Name, e.Pos })
	fired := map[string]string{}
	for _, e := range v.s.Events {
		for _, f := range e.Fields {
			if !FieldTypes[f.Kind] {
				v.errf(e.Pos, "event %s: field %s has unknown type %q (known: %s)", e.Name, f.Name, f.Kind, strings.Join(sortedKeys(FieldTypes), ", "))
			}
		}
		switch e.At {
		case AtSession:
			if e.Fires != "" || e.Creates {
				v.errf(e.Pos, "event %s: a session event fires no machine event and creates its session implicitly", e.Name)
			}
			continue
		case SideUp, SideDown, AtAny:
		default:
			v.errf(e.Pos, "event %s: at must be up, down, any or session, found %q", e.Name, e.At)
			continue
		}
		if e.Creates && e.At != SideUp {
			v.errf(e.Pos, "event %s: only an event at up can create a session", e.Name)
		}
		if prev := fired[e.Fires]; prev != "" {
			v.errf(e.Pos, "event %s fires %q, which event %s already fires", e.Name, e.Fires, prev)
		}
		fired[e.Fires] = e.Name
		for _, kind := range kindsOf(e.At) {
			if !v.s.sideHasEvent(kind, e.Fires) {
				v.errf(e.Pos, "event %s: no machine of the %s side has the event %q", e.Name, kind, e.Fires)
			}
		}
	}
}

func kindsOf(at string) []string {
	if at == AtAny {
		return []string{SideUp, SideDown}
	}
	return []string{at}
}

func (v *validator) actions() {
	names(v, "action", v.s.Actions, func(a *Action) (string, Pos) { return a.Name, a.Pos })
	for _, a := range v.s.Actions {
		if v.s.Event(a.Name) != nil {
			v.errf(a.Pos, "action %s has the name of an event", a.Name)
		}
		switch a.Name {
		case StmtLearn, StmtParty, StmtOpen, StmtSkip, StmtSet, StmtClear, StmtOutcome, StmtRecord, StmtEach, StmtIf:
			v.errf(a.Pos, "action %s has the name of a statement verb", a.Name)
		}
		for _, f := range a.Fields {
			if _, ok := Sources[f.Kind]; !ok {
				v.errf(a.Pos, "action %s: field %s has unknown source %q (known: %s)", a.Name, f.Name, f.Kind, strings.Join(sortedKeys(Sources), ", "))
			}
		}
		switch a.At {
		case AtSession:
			if a.Fires != "" {
				v.errf(a.Pos, "action %s: a session action fires no machine event", a.Name)
			}
			continue
		case SideUp, SideDown, AtAny:
		default:
			v.errf(a.Pos, "action %s: at must be up, down, any or session, found %q", a.Name, a.At)
			continue
		}
		if a.Fires == "" {
			continue
		}
		for _, kind := range kindsOf(a.At) {
			if !v.s.sideHasEvent(kind, a.Fires) {
				v.errf(a.Pos, "action %s: no machine of the %s side has the event %q", a.Name, kind, a.Fires)
			}
		}
	}
}

func (v *validator) knobs() {
	names(v, "knob", v.s.Knobs, func(k *Knob) (string, Pos) { return k.Name, k.Pos })
	for _, k := range v.s.Knobs {
		if k.Per != "" && k.Per != "hop" {
			v.errf(k.Pos, "knob %s: per must be hop or absent, found %q", k.Name, k.Per)
		}
		if len(k.Values) < 2 {
			v.errf(k.Pos, "knob %s needs at least two values", k.Name)
		}
		names(v, "value of knob "+k.Name, k.Values, func(x *KnobValue) (string, Pos) { return x.Name, k.Pos })
		if len(k.Require) > 0 && !k.PerHop() {
			v.errf(k.Pos, "knob %s: require names hops, and the knob is not per hop", k.Name)
		}
		for _, hop := range sortedKeys(k.Require) {
			if v.s.Hop(hop) == nil {
				v.errf(k.Pos, "knob %s: require names %q, which is not a hop", k.Name, hop)
			}
			if !slices.Contains(k.ValueNames(), k.Require[hop]) {
				v.errf(k.Pos, "knob %s: require %s: %q is not a value of the knob", k.Name, hop, k.Require[hop])
			}
		}
		switch k.From {
		case "":
		case "triggers":
			var want []string
			for _, t := range v.s.Triggers {
				want = append(want, t.Name)
			}
			if strings.Join(want, ",") != strings.Join(k.ValueNames(), ",") {
				v.errf(k.Pos, "knob %s: values must be the triggers in order (%s)", k.Name, strings.Join(want, ", "))
			}
		default:
			v.errf(k.Pos, "knob %s: from must be triggers or absent, found %q", k.Name, k.From)
		}
	}
	if v.triggerKnob() == nil && len(v.s.Triggers) > 0 {
		v.errf(Pos{1, 1}, "triggers are declared but no per-hop knob takes its values from: triggers")
	}
	if v.openerKnob() == nil {
		v.errf(Pos{1, 1}, "the spec needs a per-hop knob named opener with the values offerer and answerer")
	}
	if v.s.Knob("reuse") == nil {
		v.errf(Pos{1, 1}, "the spec needs the knob reuse (the generated link code reads it)")
	}
	if k := v.s.Knob("initiative"); k == nil || !k.PerHop() {
		v.errf(Pos{1, 1}, "the spec needs a per-hop knob named initiative (the generated link code reads it)")
	}
}

func (v *validator) triggerKnob() *Knob {
	for _, k := range v.s.Knobs {
		if k.From == "triggers" && k.PerHop() {
			return k
		}
	}
	return nil
}

func (v *validator) openerKnob() *Knob {
	k := v.s.Knob("opener")
	if k == nil || !k.PerHop() || strings.Join(k.ValueNames(), ",") != "offerer,answerer" {
		return nil
	}
	return k
}

func (v *validator) triggers() {
	names(v, "trigger", v.s.Triggers, func(t *Trigger) (string, Pos) { return t.Name, t.Pos })
	for _, t := range v.s.Triggers {
		if t.Offerer.Root == nil || t.Answerer.Root == nil {
			v.errf(t.Pos, "trigger %s needs both offerer: and answerer: conditions", t.Name)
			continue
		}
		v.expr(t.Offerer.Root, t.Offerer.Pos, ctx{this: SideDown, triggerDef: true})
		v.expr(t.Answerer.Root, t.Answerer.Pos, ctx{this: SideUp, triggerDef: true})
	}
}

// ctx is what a condition or statement may refer to where it stands.
type ctx struct {
	role       *Role
	event      *Event // the rule's event; nil in reactions
	inLoop     bool   // inside each: down, or a quantifier body
	this       string // the side kind `this` stands for, "" if not allowed
	triggerDef bool   // a trigger definition: role-independent, sides checked per variant
}

func (c ctx) eventField(name string) *Field {
	if c.event == nil {
		return nil
	}
	// A condition spells a field as the spec's other names are spelled: event.last for
	// Last, event.success-report for SuccessReport.
	name = strings.ReplaceAll(name, "-", "")
	for i := range c.event.Fields {
		if strings.EqualFold(c.event.Fields[i].Name, name) {
			return &c.event.Fields[i]
		}
	}
	return nil
}

func (c ctx) eventHasKind(kind string) bool {
	if c.event == nil {
		return false
	}
	for _, f := range c.event.Fields {
		if f.Kind == kind {
			return true
		}
	}
	return false
}

// side resolves a side reference for the context and reports problems.
func (v *validator) side(name string, p Pos, c ctx) (string, bool) {
	kind := name
	if name == SideThis {
		if c.this == "" {
			v.errf(p, "`this` stands only in trigger conditions and cell statements")
			return "", false
		}
		kind = c.this
	}
	if kind != SideUp && kind != SideDown {
		v.errf(p, "unknown side %q (expected up, down or this)", name)
		return "", false
	}
	if c.role != nil {
		if !c.role.HasSide(kind) {
			v.errf(p, "role %s has no %s side", c.role.Name, kind)
			return "", false
		}
		if kind == SideDown && name == SideDown && c.role.Down == DownPerMember && !c.inLoop {
			v.errf(p, "role %s has one down side per member: use each: down, or any/all/none(down: ...)", c.role.Name)
			return "", false
		}
	}
	return kind, true
}

func (v *validator) expr(n Node, p Pos, c ctx) {
	switch x := n.(type) {
	case Binary:
		v.expr(x.L, p, c)
		v.expr(x.R, p, c)
	case Not:
		v.expr(x.X, p, c)
	case Quant:
		if x.Side != SideDown {
			v.errf(p, "%s(%s: ...): quantifiers range over down sides only", x.Kind, x.Side)
			return
		}
		if c.role != nil && !c.role.HasSide(SideDown) {
			v.errf(p, "role %s has no down side to quantify over", c.role.Name)
			return
		}
		c.inLoop = true
		v.expr(x.Body, p, c)
	case TriggerOf:
		if c.triggerDef {
			v.errf(p, "trigger() cannot stand inside a trigger definition")
			return
		}
		v.side(x.Side, p, c)
	case Had:
		kind, ok := v.side(x.Side, p, c)
		if ok && !v.s.sideHasEvent(kind, x.Event) {
			v.errf(p, "%s had %s: no machine of the %s side has the event %q", x.Side, x.Event, kind, x.Event)
		}
	case Is:
		v.is(x, p, c)
	}
}

func (v *validator) checkValues(p Pos, subject string, got, domain []string) {
	if domain == nil {
		if len(got) > 0 {
			v.errf(p, "%s is a boolean; it takes no `is`", subject)
		}
		return
	}
	if len(got) == 0 {
		v.errf(p, "%s must be compared: %s is %s", subject, subject, strings.Join(domain, "|"))
		return
	}
	for _, g := range got {
		if !contains(domain, g) {
			v.errf(p, "%s is %s: unknown value %q (one of %s)", subject, strings.Join(got, "|"), g, strings.Join(domain, ", "))
		}
	}
}

func (v *validator) is(x Is, p Pos, c ctx) {
	subject := x.Scope + "." + x.Name
	switch x.Scope {
	case ScopeConst, ScopeRole:
		for _, r := range x.Values {
			if v.s.Role(r) == nil {
				v.errf(p, "role is %s: unknown role %q", strings.Join(x.Values, "|"), r)
			}
		}
	case SideUp, SideDown, SideThis:
		kind, ok := v.side(x.Scope, p, c)
		if !ok {
			return
		}
		if mname, isCol := v.s.Sides.Of(kind)[x.Name]; isCol {
			m := v.s.Machine(mname)
			if len(x.Values) == 0 {
				v.errf(p, "%s is a state machine: compare it, as in %s is %s", subject, subject, m.Initial)
				return
			}
			v.checkValues(p, subject, x.Values, m.States)
			return
		}
		dom, isAttr := SideAttrs[x.Name]
		if !isAttr {
			v.errf(p, "%s: unknown column or attribute %q (columns: %s; attributes: %s)", subject, x.Name,
				strings.Join(v.s.Sides.Columns(), ", "), strings.Join(sortedKeys(SideAttrs), ", "))
			return
		}
		v.checkValues(p, subject, x.Values, dom)
	case ScopeKnob:
		k := v.s.Knob(x.Name)
		if k == nil {
			v.errf(p, "unknown knob %q", x.Name)
			return
		}
		if k.PerHop() {
			v.errf(p, "knob %s is per hop; conditions read it through trigger(side) and the link rules", x.Name)
			return
		}
		v.checkValues(p, subject, x.Values, k.ValueNames())
	case ScopeDefect:
		found := false
		for _, d := range v.s.Defects {
			found = found || d.Name == x.Name
		}
		if !found {
			v.errf(p, "unknown defect %q", x.Name)
		}
		v.checkValues(p, subject, x.Values, nil)
	case ScopeFlag:
		found := false
		for _, f := range v.s.Flags {
			found = found || f.Name == x.Name
		}
		if !found {
			v.errf(p, "unknown flag %q", x.Name)
		}
		v.checkValues(p, subject, x.Values, nil)
	case ScopePolicy:
		dom, ok := PolicyAttrs[x.Name]
		if !ok {
			v.errf(p, "unknown policy %q (known: %s)", x.Name, strings.Join(sortedKeys(PolicyAttrs), ", "))
			return
		}
		v.checkValues(p, subject, x.Values, dom)
	case ScopeSession:
		dom, ok := SessionAttrs[x.Name]
		if !ok {
			v.errf(p, "unknown session attribute %q (known: %s)", x.Name, strings.Join(sortedKeys(SessionAttrs), ", "))
			return
		}
		v.checkValues(p, subject, x.Values, dom)
	case ScopeEvent:
		f := c.eventField(x.Name)
		switch {
		case f != nil && f.Kind == "outcome":
			// An outcome field reads as `event.outcome is delivered|failed`.
			v.checkValues(p, subject, x.Values, SideAttrs["outcome"])
		case f == nil || f.Kind != "bool":
			v.errf(p, "event.%s: the rule's event has no boolean or outcome field %q", x.Name, x.Name)
		default:
			v.checkValues(p, subject, x.Values, nil)
		}
	}
}

func (v *validator) status(src string, p Pos, c ctx, what string) {
	switch {
	case src == "event":
		if !c.eventHasKind("status") {
			v.errf(p, "%s: status event, but the rule's event carries no status", what)
		}
	case src == "policy", src == "best(down)":
		if src == "best(down)" && (c.role == nil || !c.role.HasSide(SideDown)) {
			v.errf(p, "%s: best(down) needs a role with down sides", what)
		}
	default:
		n, err := strconv.Atoi(src)
		if err != nil || n < 100 || n > 699 {
			v.errf(p, "%s: status must be a response code (100-699), event, policy or best(down); found %q", what, src)
		}
	}
}

func (v *validator) stmts(list []*Stmt, c ctx) {
	for _, st := range list {
		v.stmt(st, c)
	}
}

func (v *validator) stmt(st *Stmt, c ctx) {
	p := st.Pos
	switch st.Kind {
	case StmtIf:
		v.expr(st.Cond.Root, st.Cond.Pos, c)
		v.stmts(st.Do, c)
		v.stmts(st.Else, c)
	case StmtEach:
		if st.Side != SideDown {
			v.errf(p, "each ranges over down sides only, found %q", st.Side)
			return
		}
		if c.role != nil && !c.role.HasSide(SideDown) {
			v.errf(p, "role %s has no down side", c.role.Name)
			return
		}
		c.inLoop = true
		v.stmts(st.Do, c)
	case StmtLearn:
		v.side(st.Side, p, c)
		if !c.eventHasKind("sdp") {
			v.errf(p, "learn: the rule's event carries no SDP")
		}
	case StmtOpen, StmtSkip, StmtParty:
		v.side(st.Side, p, c)
	case StmtSet, StmtClear:
		found := false
		for _, f := range v.s.Flags {
			found = found || f.Name == st.Flag
		}
		if !found {
			v.errf(p, "%s: unknown flag %q", st.Kind, st.Flag)
		}
	case StmtOutcome:
		v.side(st.Side, p, c)
		if st.From == "event" && !c.eventHasKind("outcome") {
			v.errf(p, "outcome from: event, but the rule's event carries no outcome")
		}
		if st.Status != "" {
			v.status(st.Status, p, c, "outcome")
		}
	case StmtRecord:
		if c.role != nil && c.role.Up {
			v.errf(p, "record keeps the transmitter's per-member results; role %s is not a transmitter", c.role.Name)
		}
		if st.From == "event" && !c.eventHasKind("outcome") && !c.eventHasKind("outcomes") {
			v.errf(p, "record event: the rule's event carries no outcome")
		}
		if st.FailAll != "" {
			v.status(st.FailAll, p, c, "record fail-all")
		}
	case StmtEmit:
		a := v.s.Action(st.Action)
		if a == nil {
			v.errf(p, "unknown action or verb %q", st.Action)
			return
		}
		if a.At == AtSession {
			v.errf(p, "%s is a session action: the record statement emits it", a.Name)
			return
		}
		kind, ok := v.side(st.Side, p, c)
		if !ok {
			return
		}
		if a.At != AtAny && a.At != kind {
			v.errf(p, "%s acts on the %s side, not on %s", a.Name, a.At, st.Side)
		}
		needs := map[SourceReq]bool{}
		for _, f := range a.Fields {
			needs[Sources[f.Kind].Needs] = true
		}
		switch {
		case needs[NeedsStatus] && st.Status == "":
			v.errf(p, "%s needs a status: {%s: {to: %s, status: ...}}", a.Name, a.Name, st.Side)
		case !needs[NeedsStatus] && st.Status != "":
			v.errf(p, "%s takes no status", a.Name)
		case st.Status != "":
			v.status(st.Status, p, c, a.Name)
		}
		switch {
		case needs[NeedsAbout] && st.About == "":
			v.errf(p, "%s needs about: (a side, or event)", a.Name)
		case !needs[NeedsAbout] && st.About != "":
			v.errf(p, "%s takes no about:", a.Name)
		case st.About == "event":
			if !c.eventHasKind("outcome") {
				v.errf(p, "%s about: event, but the rule's event carries no outcome", a.Name)
			}
		case st.About != "":
			v.side(st.About, p, c)
		}
		if needs[NeedsEventChunk] && (c.eventField("Chunk") == nil || c.eventField("Last") == nil) {
			v.errf(p, "%s copies the chunk of the event, but the rule's event carries none", a.Name)
		}
	default:
		v.errf(p, "unknown statement %q", st.Kind)
	}
}

func (v *validator) rules() {
	for _, r := range v.s.Rules {
		ev, side, hasSide := strings.Cut(r.On, " at ")
		r.Event, r.Side = strings.TrimSpace(ev), strings.TrimSpace(side)
		var event *Event
		if !hasSide {
			event = v.s.Event(r.Event)
			if event == nil || event.At != AtSession {
				v.errf(r.Pos, "on: %q: expected MACHINE-EVENT at SIDE (as in recv-invite at up) or a session event", r.On)
				continue
			}
			r.Side = ""
		} else {
			if r.Side != SideUp && r.Side != SideDown {
				v.errf(r.Pos, "on: %q: side must be up or down", r.On)
				continue
			}
			if !v.s.sideHasEvent(r.Side, r.Event) {
				v.errf(r.Pos, "on: %q: no machine of the %s side has the event %q", r.On, r.Side, r.Event)
				continue
			}
			event = v.s.EventFiring(r.Event)
			if event == nil {
				v.errf(r.Pos, "on: %q: no input event fires %q, so the rule can never run", r.On, r.Event)
				continue
			} else if event.At != AtAny && event.At != r.Side {
				v.errf(r.Pos, "on: %q: %s arrives on the %s side", r.On, event.Name, event.At)
				continue
			}
		}
		if len(r.Roles) == 0 {
			v.errf(r.Pos, "rule on %q names no roles", r.On)
		}
		for _, name := range r.Roles {
			role := v.s.Role(name)
			if role == nil {
				v.errf(r.Pos, "rule on %q: unknown role %q", r.On, name)
				continue
			}
			if r.Side != "" && !role.HasSide(r.Side) {
				v.errf(r.Pos, "rule on %q: role %s has no %s side", r.On, name, r.Side)
				continue
			}
			if event.At == AtSession && role.Up {
				v.errf(r.Pos, "rule on %q: only a role without an up side starts sessions", r.On)
			}
			v.stmts(FoldStmts(r.Do, name), ctx{role: role, event: event, inLoop: role.Down != DownPerMember || r.Side == SideDown})
		}
	}
}

// Applies reports whether a reaction runs in a role: the role is listed (or none are) and
// has every side the folded reaction mentions.
func (s *Spec) Applies(r *Reaction, role *Role) bool {
	if len(r.Roles) > 0 && !contains(r.Roles, role.Name) {
		return false
	}
	used := SidesUsed(Fold(r.When.Root, role.Name))
	for k := range StmtSides(FoldStmts(r.Do, role.Name)) {
		used[k] = true
	}
	if r.Each != "" {
		used[r.Each] = true
	}
	for k := range used {
		if !role.HasSide(k) {
			return false
		}
	}
	return true
}

func (v *validator) reactions() {
	names(v, "reaction", v.s.Reactions, func(r *Reaction) (string, Pos) { return r.Name, r.Pos })
	for _, r := range v.s.Reactions {
		if r.When.Root == nil {
			v.errf(r.Pos, "reaction %s needs when:", r.Name)
			continue
		}
		if r.Each != "" && r.Each != SideDown {
			v.errf(r.Pos, "reaction %s: each ranges over down sides only", r.Name)
			continue
		}
		any := false
		for _, name := range r.Roles {
			if v.s.Role(name) == nil {
				v.errf(r.Pos, "reaction %s: unknown role %q", r.Name, name)
			}
		}
		for _, role := range v.s.Roles {
			if !v.s.Applies(r, role) {
				continue
			}
			any = true
			c := ctx{role: role, inLoop: r.Each != "" || role.Down != DownPerMember}
			v.expr(Fold(r.When.Root, role.Name), r.When.Pos, c)
			v.stmts(FoldStmts(r.Do, role.Name), c)
		}
		if !any {
			v.errf(r.Pos, "reaction %s applies to no role", r.Name)
		}
	}
}

func (v *validator) waiting() {
	v.sideConds("waiting", v.s.Waiting)
	v.sideConds("announce", v.s.Announce)
}

// sideConds validates a top-level condition per side kind (waiting, announce).
func (v *validator) sideConds(key string, conds map[string]Expr) {
	for kind, e := range conds {
		if kind != SideUp && kind != SideDown {
			v.errf(e.Pos, "%s: keys are up and down, found %q", key, kind)
			continue
		}
		for _, role := range v.s.Roles {
			if role.HasSide(kind) {
				v.expr(Fold(e.Root, role.Name), e.Pos, ctx{role: role, inLoop: true})
			}
		}
	}
}

func (v *validator) variants() {
	names(v, "variant", v.s.Variants, func(x *Variant) (string, Pos) { return x.Name, x.Pos })
	for _, x := range v.s.Variants {
		res, err := v.s.resolve(x, nil, v.inherited)
		if err != nil {
			v.errs = append(v.errs, err)
			continue
		}
		x.Resolved = res
		for _, k := range v.s.Knobs {
			for _, hop := range sortedKeys(k.Require) {
				if got := res[k.Name+"."+hop]; got != k.Require[hop] {
					v.errf(x.Pos, "variant %s: %s.%s is %s; every variant must take %s there (knob %s says why)", x.Name, k.Name, hop, got, k.Require[hop], k.Name)
				}
			}
		}
		if x.Orders, err = v.s.resolveOrder(x, nil, v.inherited); err != nil {
			v.errs = append(v.errs, err)
		}
		for _, d := range x.Defects {
			found := false
			for _, dd := range v.s.Defects {
				found = found || dd.Name == d
			}
			if !found {
				v.errf(x.Pos, "variant %s: unknown defect %q", x.Name, d)
			}
		}
		if x.Faults < 0 {
			v.errf(x.Pos, "variant %s: faults %d: a fault budget is 0 or more", x.Name, x.Faults)
		}
		for _, problem := range v.s.CheckResolved(res) {
			v.errf(x.Pos, "variant %s: %s", x.Name, problem)
		}
		switch x.Expect {
		case "", "completeness", "protocol", "sip-order", "initiative", "reuse", "delivery", "deadlock", "all-hops-up", "outcome", "terminal", "reports", "order",
			"ack-per-2xx", "decline-status", "cancel-reach", "ended-link", "report-order", "guard-fires", "abort-onward", "hang-up", "best-final":
		default:
			v.errf(x.Pos, "variant %s: expect %q is not a property the checkers report", x.Name, x.Expect)
		}
	}
}

// resolve applies a variant's base chain and returns every knob's value.
func (s *Spec) resolve(x *Variant, seen []string, inherited []*Variant) (map[string]string, *Error) {
	for _, n := range seen {
		if n == x.Name {
			return nil, &Error{Pos: x.Pos, Msg: fmt.Sprintf("variant %s: base cycle %s -> %s", x.Name, strings.Join(seen, " -> "), x.Name)}
		}
	}
	out := map[string]string{}
	if x.Base != "" {
		b := s.Variant(x.Base)
		if b == nil {
			for _, iv := range inherited {
				if iv.Name == x.Base {
					b = iv
				}
			}
		}
		if b == nil {
			return nil, &Error{Pos: x.Pos, Msg: fmt.Sprintf("variant %s: unknown base %q", x.Name, x.Base)}
		}
		base, err := s.resolve(b, append(seen, x.Name), inherited)
		if err != nil {
			return nil, err
		}
		for k, val := range base {
			out[k] = val
		}
	}
	for _, kname := range sortedKeys(x.Set.Pos) {
		if strings.Contains(kname, ".") {
			continue
		}
		p := x.Set.Pos[kname]
		k := s.Knob(kname)
		if k == nil {
			return nil, &Error{Pos: p, Msg: fmt.Sprintf("variant %s: unknown knob %q", x.Name, kname)}
		}
		if k.PerHop() {
			hops, ok := x.Set.PerHop[kname]
			if !ok {
				return nil, &Error{Pos: p, Msg: fmt.Sprintf("variant %s: knob %s is per hop: set it as {hop1: value, ...}", x.Name, kname)}
			}
			for _, hname := range sortedKeys(hops) {
				if s.Hop(hname) == nil {
					return nil, &Error{Pos: x.Set.Pos[Key(kname, hname)], Msg: fmt.Sprintf("variant %s: knob %s: unknown hop %q", x.Name, kname, hname)}
				}
				if !contains(k.ValueNames(), hops[hname]) {
					return nil, &Error{Pos: x.Set.Pos[Key(kname, hname)], Msg: fmt.Sprintf("variant %s: knob %s.%s: unknown value %q (one of %s)", x.Name, kname, hname, hops[hname], strings.Join(k.ValueNames(), ", "))}
				}
				out[Key(kname, hname)] = hops[hname]
			}
			continue
		}
		val, ok := x.Set.Global[kname]
		if !ok {
			return nil, &Error{Pos: p, Msg: fmt.Sprintf("variant %s: knob %s takes one value, not a mapping", x.Name, kname)}
		}
		if !contains(k.ValueNames(), val) {
			return nil, &Error{Pos: p, Msg: fmt.Sprintf("variant %s: knob %s: unknown value %q (one of %s)", x.Name, kname, val, strings.Join(k.ValueNames(), ", "))}
		}
		out[kname] = val
	}
	var missing []string
	for _, key := range s.KnobKeys() {
		if _, ok := out[key]; !ok {
			missing = append(missing, key)
		}
	}
	if len(missing) > 0 && x.Base == "" {
		return nil, &Error{Pos: x.Pos, Msg: fmt.Sprintf("variant %s leaves knobs unset: %s (set them, or name a base)", x.Name, strings.Join(missing, ", "))}
	}
	return out, nil
}

// CheckResolved returns what makes a full knob setting impossible: a trigger that the role
// opening the hop can never observe (for example an ACK from upstream at the role that
// originates the message). Deadlocks are not impossible settings: the explorer finds them.
func (s *Spec) CheckResolved(res map[string]string) []string {
	var out []string
	tk := (&validator{s: s}).triggerKnob()
	for _, h := range s.Hops {
		opener := res[Key("opener", h.Name)]
		role, kind := s.Role(h.Offerer), SideDown
		if opener == "answerer" {
			role, kind = s.Role(h.Answerer), SideUp
		}
		if tk == nil || role == nil {
			continue
		}
		tname := res[Key(tk.Name, h.Name)]
		if why := s.TriggerImpossible(tname, role, kind); why != "" {
			out = append(out, fmt.Sprintf("%s is opened by %s (the %s) on %s, which %s can never observe: %s",
				h.Name, role.Name, opener, tname, role.Name, why))
		}
	}
	return out
}

// TriggerImpossible says why a role can never observe a trigger on the given side, or "".
func (s *Spec) TriggerImpossible(trigger string, role *Role, this string) string {
	t := s.Trigger(trigger)
	if t == nil {
		return fmt.Sprintf("unknown trigger %q", trigger)
	}
	e := t.Offerer
	if this == SideUp {
		e = t.Answerer
	}
	used := SidesUsed(Fold(e.Root, role.Name))
	var why []string
	for _, k := range sortedKeys(used) {
		kind := k
		if k == SideThis {
			kind = this
		}
		if !role.HasSide(kind) {
			why = append(why, fmt.Sprintf("it has no %s side", kind))
		}
	}
	sort.Strings(why)
	return strings.Join(why, "; ")
}
