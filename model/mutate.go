package model

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Mutation testing (docs/mutation.md): the operators below make one small, systematic
// change to the spec's source each, the kind of slip a person makes when writing it, so
// that the checkers of package proptest can be measured by how many such mutants they
// tell from the spec. They work on the YAML node tree, not on the decoded Spec, so that
// every mutant is a spec file a person could have written: it is parsed and validated
// like one, and a mutant the validator refuses is stillborn, not a bug the checkers missed.

// ErrMutate reports a mutation that cannot be applied (an edit whose text is not found).
var ErrMutate = errors.New("model: mutate")

// Mutant is the spec with one mutation applied.
type Mutant struct {
	// ID names the mutant stably across edits elsewhere in the spec: operator@ and a hash
	// of its location and change (#n when the same change is made twice at one location).
	ID string `json:"id"`
	// Operator is the kind of change (drop-cell, invert-guard, ...; docs/mutation.md).
	Operator string `json:"operator"`
	// Location says where, in the spec's own words (the rule, reaction, cell or variant).
	Location string `json:"location"`
	// Line is the line of the spec the change is made at.
	Line int `json:"line"`
	// Change says what was changed, briefly.
	Change string `json:"change"`
	// Variants, when set, names the only variants whose behaviour the change can affect (a
	// change to one variant's knob table: that variant and those based on it); empty means
	// every variant.
	Variants []string `json:"variants,omitempty"`
	// Also names variants to check besides the usual ones: for a change to a trigger's
	// definition, the first named variant in which an offerer, and the first in which an
	// answerer, opens a hop on that trigger. The figures use send-received on no hop, so
	// a mutant of it checked on them alone could never be killed.
	Also []string `json:"also,omitempty"`
	// Source is the mutated spec.
	Source []byte `json:"-"`
}

// Edit is a textual change of a spec: Find occurs exactly once and becomes Replace.
type Edit struct {
	Find    string `yaml:"find"`
	Replace string `yaml:"replace"`
}

// ApplyEdits applies edits in turn to src; each Find must occur exactly once.
func ApplyEdits(src []byte, edits []Edit) ([]byte, error) {
	out := src
	for i, e := range edits {
		if n := bytes.Count(out, []byte(e.Find)); n != 1 {
			return nil, fmt.Errorf("%w: edit %d: %q occurs %d times in the spec, not once", ErrMutate, i+1, e.Find, n)
		}
		out = bytes.Replace(out, []byte(e.Find), []byte(e.Replace), 1)
	}
	return out, nil
}

// Mutants returns every mutant the operators make of a spec's source, in the order of the
// spec. Each is a whole spec source; none is parsed here (Parse tells the stillborn).
func Mutants(src []byte) ([]Mutant, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMutate, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%w: the spec is not a mapping", ErrMutate)
	}
	m := &mutator{doc: &doc, seen: map[string]int{}, users: triggerUsers(src)}
	top := doc.Content[0]
	if n := mapGet(top, "machines"); n != nil {
		m.machines(n)
	}
	if n := mapGet(top, "actions"); n != nil {
		m.actions(n)
	}
	if n := mapGet(top, "triggers"); n != nil {
		m.triggers(n)
	}
	if n := mapGet(top, "rules"); n != nil {
		m.rules(n)
	}
	if n := mapGet(top, "reactions"); n != nil {
		m.reactions(n)
	}
	for _, key := range []string{"waiting", "announce"} {
		if n := mapGet(top, key); n != nil && n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				m.guard(n.Content[i+1], key+"."+n.Content[i].Value)
			}
		}
	}
	if n := mapGet(top, "variants"); n != nil {
		m.variants(n)
	}
	return m.out, m.err
}

type mutator struct {
	// affects is the variant being mutated and those based on it.
	affects []string
	// also is what emit records as Mutant.Also: set while a trigger is mutated.
	also  []string
	users map[string][]string
	doc   *yaml.Node
	out   []Mutant
	seen  map[string]int
	err   error
}

// emit records the mutant made by change, which edits the tree in place and returns an
// undo; the tree is marshalled between the two.
func (m *mutator) emit(op, loc string, at *yaml.Node, what string, variants []string, change func() func()) {
	undo := change()
	src, err := yaml.Marshal(m.doc)
	undo()
	if err != nil {
		m.err = errors.Join(m.err, fmt.Errorf("%w: %s at %s: %v", ErrMutate, op, loc, err))
		return
	}
	// The ID is made of what the mutant changes, in the spec's words, not of where: a
	// judgement in the equivalents file must survive edits elsewhere in the spec, and go
	// stale only when the text it judged changes.
	sum := sha256.Sum256([]byte(loc + "\x00" + what))
	id := fmt.Sprintf("%s@%x", op, sum[:4])
	m.seen[id]++
	if k := m.seen[id]; k > 1 {
		id = fmt.Sprintf("%s#%d", id, k)
	}
	m.out = append(m.out, Mutant{ID: id, Operator: op, Location: loc, Line: at.Line, Change: what, Variants: variants, Also: m.also, Source: src})
}

// triggerUsers maps each trigger to the first named variant (in spec order) in which an
// offerer opens a hop on it, and the first in which an answerer does. A spec that does not
// parse has none: its mutants are checked on the usual variants.
func triggerUsers(src []byte) map[string][]string {
	spec, err := Parse("spec", src)
	if err != nil {
		return nil
	}
	out := map[string][]string{}
	seen := map[string]bool{}
	for _, v := range spec.Variants {
		for key, trig := range v.Resolved {
			hop, ok := strings.CutPrefix(key, "trigger.")
			if !ok {
				continue
			}
			end := trig + "/" + v.Resolved["opener."+hop]
			if !seen[end] {
				seen[end] = true
				if !slices.Contains(out[trig], v.Name) {
					out[trig] = append(out[trig], v.Name)
				}
			}
		}
	}
	return out
}

// mapGet returns the value of key in a mapping node, or nil.
func mapGet(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// mapKeyIndex returns the index of key's key node in a mapping, or -1.
func mapKeyIndex(n *yaml.Node, key string) int {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return i
		}
	}
	return -1
}

// removeAt removes n.Content[i:i+k] and returns the undo.
func removeAt(n *yaml.Node, i, k int) func() {
	old := n.Content
	n.Content = append(append([]*yaml.Node{}, old[:i]...), old[i+k:]...)
	return func() { n.Content = old }
}

// replaceAt replaces n.Content[i] by with and returns the undo.
func replaceAt(n *yaml.Node, i int, with ...*yaml.Node) func() {
	old := n.Content
	c := append([]*yaml.Node{}, old[:i]...)
	c = append(c, with...)
	n.Content = append(c, old[i+1:]...)
	return func() { n.Content = old }
}

// setValue sets a scalar and returns the undo.
func setValue(n *yaml.Node, v string) func() {
	old, style := n.Value, n.Style
	n.Value, n.Style = v, yaml.DoubleQuotedStyle
	return func() { n.Value, n.Style = old, style }
}

func scalar(v string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v, Style: yaml.DoubleQuotedStyle}
}

func flowText(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Value
	case yaml.SequenceNode:
		var parts []string
		for _, c := range n.Content {
			parts = append(parts, flowText(c))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return "..."
}

// ---- machines: cells ------------------------------------------------------------------

func (m *mutator) machines(list *yaml.Node) {
	for _, mach := range list.Content {
		name := flowText(mapGet(mach, "name"))
		cells := mapGet(mach, "cells")
		if cells == nil {
			continue
		}
		for ci, cell := range cells.Content {
			on, from := mapGet(cell, "on"), mapGet(cell, "from")
			if on == nil || from == nil {
				continue
			}
			loc := fmt.Sprintf("machine %s, cell %s from %s", name, on.Value, flowText(from))
			m.emit("drop-cell", loc, cell, "cell removed", nil, func() func() { return removeAt(cells, ci, 1) })
			if from.Kind == yaml.SequenceNode && len(from.Content) > 1 {
				for si, st := range from.Content {
					m.emit("narrow-cell", loc, st, "state "+st.Value+" taken out of from", nil, func() func() { return removeAt(from, si, 1) })
				}
			}
			if i := mapKeyIndex(cell, "to"); i >= 0 {
				to := cell.Content[i+1].Value
				m.emit("transition-to-ignore", loc, cell, "to: "+to+" made an ignore", nil, func() func() {
					old := cell.Content
					cell.Content = append([]*yaml.Node{}, old...)
					cell.Content[i], cell.Content[i+1] = scalar("ignore"), scalar("mutant: the transition is ignored")
					return func() { cell.Content = old }
				})
			}
			if i := mapKeyIndex(cell, "ignore"); i >= 0 {
				m.emit("widen-reject", loc, cell, "ignore made a reject", nil, func() func() {
					old := cell.Content
					cell.Content = append([]*yaml.Node{}, old...)
					cell.Content[i] = scalar("reject")
					return func() { cell.Content = old }
				})
			}
			if i := mapKeyIndex(cell, "reject"); i >= 0 {
				m.emit("reject-to-ignore", loc, cell, "reject made an ignore", nil, func() func() {
					old := cell.Content
					cell.Content = append([]*yaml.Node{}, old...)
					cell.Content[i] = scalar("ignore")
					return func() { cell.Content = old }
				})
			}
			if do := mapGet(cell, "do"); do != nil {
				m.stmts(do, loc)
			}
		}
	}
}

// ---- actions: swapped SDP sources ------------------------------------------------------

func (m *mutator) actions(list *yaml.Node) {
	for _, a := range list.Content {
		fields := mapGet(a, "fields")
		if fields == nil || fields.Kind != yaml.MappingNode {
			continue
		}
		var own, peer *yaml.Node
		for i := 1; i < len(fields.Content); i += 2 {
			switch fields.Content[i].Value {
			case "own-sdp":
				own = fields.Content[i]
			case "peer-sdp":
				peer = fields.Content[i]
			}
		}
		if own == nil || peer == nil {
			continue
		}
		loc := "action " + flowText(mapGet(a, "name"))
		m.emit("swap-sdp", loc, own, "own-sdp and peer-sdp swapped", nil, func() func() {
			u1, u2 := setValue(own, "peer-sdp"), setValue(peer, "own-sdp")
			return func() { u2(); u1() }
		})
	}
}

// ---- triggers ----------------------------------------------------------------------------

func (m *mutator) triggers(list *yaml.Node) {
	for _, t := range list.Content {
		name := flowText(mapGet(t, "name"))
		m.also = m.users[name]
		for _, end := range []string{"offerer", "answerer"} {
			if e := mapGet(t, end); e != nil {
				m.guard(e, "trigger "+name+", "+end)
			}
		}
		off, ans := mapGet(t, "offerer"), mapGet(t, "answerer")
		if off != nil && ans != nil {
			m.emit("swap-trigger-ends", "trigger "+name, off, "offerer and answerer conditions swapped", nil, func() func() {
				o, a := off.Value, ans.Value
				u1, u2 := setValue(off, a), setValue(ans, o)
				return func() { u2(); u1() }
			})
		}
	}
	m.also = nil
}

// ---- rules and reactions ----------------------------------------------------------------

func (m *mutator) rules(list *yaml.Node) {
	for ri, r := range list.Content {
		loc := "rule on " + flowText(mapGet(r, "on"))
		if roles := mapGet(r, "roles"); roles != nil {
			loc += " " + flowText(roles)
		}
		m.emit("drop-rule", loc, r, "rule removed", nil, func() func() { return removeAt(list, ri, 1) })
		m.roles(mapGet(r, "roles"), loc)
		if do := mapGet(r, "do"); do != nil {
			m.stmts(do, loc)
		}
	}
}

func (m *mutator) reactions(list *yaml.Node) {
	for ri, r := range list.Content {
		loc := "reaction " + flowText(mapGet(r, "name"))
		m.emit("drop-reaction", loc, r, "reaction turned off", nil, func() func() { return removeAt(list, ri, 1) })
		m.roles(mapGet(r, "roles"), loc)
		if w := mapGet(r, "when"); w != nil {
			m.guard(w, loc+", when")
		}
		if do := mapGet(r, "do"); do != nil {
			m.stmts(do, loc)
		}
	}
}

// roles drops one role of a roles list: the rule or reaction is forgotten for that role.
func (m *mutator) roles(roles *yaml.Node, loc string) {
	if roles == nil || roles.Kind != yaml.SequenceNode || len(roles.Content) < 2 {
		return
	}
	for i, r := range roles.Content {
		m.emit("drop-role", loc, r, "not for "+r.Value, nil, func() func() { return removeAt(roles, i, 1) })
	}
}

// stmts mutates a statement list: each statement dropped, each guard dropped or inverted,
// and the values a SIP engineer mixes up swapped.
func (m *mutator) stmts(list *yaml.Node, loc string) {
	if list.Kind != yaml.SequenceNode {
		return
	}
	for si, st := range list.Content {
		if st.Kind != yaml.MappingNode || len(st.Content) < 2 {
			continue
		}
		key := st.Content[0].Value
		here := fmt.Sprintf("%s, do[%d] %s", loc, si, key)
		op := "drop-statement"
		if key == "learn" {
			op = "drop-learn"
		}
		// A body that runs only with a defect runs in no named variant: removing it, or
		// changing anything in it, is equivalent by construction (as a defect operand is,
		// in guard). Running it always, or on the negated condition, is a real change.
		cond := mapGet(st, "if")
		defectBody := key == "if" && cond != nil && requiresDefect(cond.Value)
		if !defectBody {
			m.emit(op, here, st, "statement "+key+" removed", nil, func() func() { return removeAt(list, si, 1) })
		}
		switch key {
		case "if":
			body := mapGet(st, "do")
			if body != nil && body.Kind == yaml.SequenceNode {
				m.emit("drop-guard", here, st, "the statements run unconditionally", nil, func() func() {
					return replaceAt(list, si, body.Content...)
				})
			}
			if cond != nil {
				m.guard(cond, here)
			}
			if body != nil && !defectBody {
				m.stmts(body, here)
			}
			if els := mapGet(st, "else"); els != nil {
				m.stmts(els, here+" else")
			}
		case "each":
			if body := mapGet(st, "do"); body != nil {
				m.stmts(body, here)
			}
		case "party":
			if is := mapGet(st.Content[1], "is"); is != nil {
				m.swap("swap-party", here, is, map[string]string{"active": "passive", "passive": "active"})
			}
		case "outcome":
			if is := mapGet(st.Content[1], "is"); is != nil {
				m.swap("swap-outcome", here, is, map[string]string{"failed": "delivered", "delivered": "failed"})
			}
		case "SendReject":
			if s := mapGet(st.Content[1], "status"); s != nil {
				m.swap("change-status", here, s, map[string]string{"event": "500", "487": "486", "408": "480", "404": "403", "403": "404", "policy": "500"})
			}
		}
	}
}

func (m *mutator) swap(op, loc string, n *yaml.Node, with map[string]string) {
	if v, ok := with[n.Value]; ok {
		m.emit(op, loc, n, n.Value+" made "+v, nil, func() func() {
			old, style := n.Value, n.Style
			n.Value = v
			return func() { n.Value, n.Style = old, style }
		})
	}
}

// ---- guards -------------------------------------------------------------------------------

// guard mutates a condition: inverted, and each operand of its top-level or (or, if it
// has none, and) dropped. An operand that only names a defect is left alone: no named
// variant sets a defect, so dropping it changes nothing any checker runs (an equivalent
// mutant by construction).
func (m *mutator) guard(n *yaml.Node, loc string) {
	if n.Kind != yaml.ScalarNode {
		return
	}
	expr := strings.Join(strings.Fields(n.Value), " ")
	m.emit("invert-guard", loc, n, "condition negated", nil, func() func() { return setValue(n, "not ("+expr+")") })
	op, parts := "or", splitTop(expr, " or ")
	if len(parts) < 2 {
		op, parts = "and", splitTop(expr, " and ")
	}
	if len(parts) < 2 {
		return
	}
	for i, p := range parts {
		if defectOnly(p) {
			continue
		}
		rest := append(append([]string{}, parts[:i]...), parts[i+1:]...)
		m.emit("drop-"+op+"-operand", loc, n, "dropped: "+p, nil, func() func() { return setValue(n, strings.Join(rest, " "+op+" ")) })
	}
}

// splitTop splits an expression at sep outside parentheses.
func splitTop(s, sep string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		}
		if depth == 0 && strings.HasPrefix(s[i:], sep) {
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + len(sep)
			i += len(sep) - 1
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

// requiresDefect: the condition holds only when a defect is set: it is one, an and of
// which one operand is one, or an or of which every operand is such (or binds looser
// than and, so a top-level or is split first).
func requiresDefect(expr string) bool {
	expr = strings.TrimSpace(strings.Join(strings.Fields(expr), " "))
	if ors := splitTop(expr, " or "); len(ors) > 1 {
		for _, o := range ors {
			if !requiresDefect(o) {
				return false
			}
		}
		return true
	}
	for _, p := range splitTop(expr, " and ") {
		if isDefect(p) {
			return true
		}
	}
	return false
}

// defectOnly: the operand names a defect, negated or not.
func defectOnly(p string) bool {
	return isDefect(strings.TrimPrefix(strings.TrimSpace(p), "not "))
}

// isDefect: the operand is a defect's name alone (defect.NAME).
func isDefect(p string) bool {
	p = strings.TrimSpace(p)
	return strings.HasPrefix(p, "defect.") && !strings.ContainsAny(p, " ()")
}

// ---- variants: knob tables ----------------------------------------------------------------

// variants flips each knob a named variant sets: the variant table contradicts its figure.
func (m *mutator) variants(list *yaml.Node) {
	knobs := m.knobValues()
	// A variant's table reaches every variant based on it, directly or through others.
	base := map[string]string{}
	for _, v := range list.Content {
		if b := mapGet(v, "base"); b != nil {
			base[flowText(mapGet(v, "name"))] = b.Value
		}
	}
	descendants := func(name string) []string {
		out := []string{name}
		for _, v := range list.Content {
			n := flowText(mapGet(v, "name"))
			for b := base[n]; b != ""; b = base[b] {
				if b == name {
					out = append(out, n)
					break
				}
			}
		}
		return out
	}
	for _, v := range list.Content {
		name := flowText(mapGet(v, "name"))
		m.affects = descendants(name)
		set := mapGet(v, "set")
		if set == nil || set.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(set.Content); i += 2 {
			knob, val := set.Content[i].Value, set.Content[i+1]
			switch val.Kind {
			case yaml.ScalarNode:
				m.knob(name, knob, val, knobs[knob])
			case yaml.MappingNode:
				for j := 0; j+1 < len(val.Content); j += 2 {
					m.knob(name, knob+"."+val.Content[j].Value, val.Content[j+1], knobs[knob])
				}
			}
		}
	}
}

func (m *mutator) knob(variant, key string, val *yaml.Node, values []string) {
	op := "flip-knob"
	switch {
	case strings.HasPrefix(key, "opener."):
		op = "flip-opener"
	case strings.HasPrefix(key, "trigger."):
		op = "flip-trigger"
	}
	for _, other := range values {
		if other == val.Value {
			continue
		}
		m.emit(op, "variant "+variant+", "+key, val, key+": "+val.Value+" made "+other, m.affects, func() func() {
			old, style := val.Value, val.Style
			val.Value = other
			return func() { val.Value, val.Style = old, style }
		})
	}
}

// knobValues lists each knob's values; a knob whose values come from the triggers takes
// the trigger names.
func (m *mutator) knobValues() map[string][]string {
	top := m.doc.Content[0]
	out := map[string][]string{}
	list := mapGet(top, "knobs")
	if list == nil {
		return out
	}
	for _, k := range list.Content {
		name := flowText(mapGet(k, "name"))
		if vals := mapGet(k, "values"); vals != nil {
			for _, v := range vals.Content {
				if v.Kind == yaml.ScalarNode {
					out[name] = append(out[name], v.Value)
				} else if n := mapGet(v, "name"); n != nil {
					out[name] = append(out[name], n.Value)
				}
			}
		}
	}
	return out
}

// BugSet is a file of hand-made bugs (proptest/testdata/realistic.yaml): each is a list
// of textual edits of the spec, with a doc saying what the bug is.
type BugSet struct {
	Name string `yaml:"name"`
	Doc  string `yaml:"doc"`
	Bugs []Bug  `yaml:"bugs"`
}

// Bug is one hand-made bug.
type Bug struct {
	Name string `yaml:"name"`
	Doc  string `yaml:"doc"`
	// Variants names the variants whose figure the bug breaks (empty: the figures).
	Variants []string `yaml:"variants"`
	Edit     []Edit   `yaml:"edit"`
}

// Equivalents is a file of mutants judged equivalent to the spec
// (proptest/testdata/equivalents.yaml): no checker can tell them from it, each for the
// reason Why gives. cpmlink mutate leaves them out of the kill rate's denominator.
type Equivalents struct {
	Equivalents []Equivalent `yaml:"equivalents"`
}

// Equivalent names one mutant by its ID and its change (both must match), and says why
// it behaves as the spec does.
type Equivalent struct {
	ID     string `yaml:"id"`
	Change string `yaml:"change"`
	Why    string `yaml:"why"`
}

// LoadYAML decodes a bug set or an equivalents file strictly.
func LoadYAML(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMutate, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMutate, path, err)
	}
	return nil
}
