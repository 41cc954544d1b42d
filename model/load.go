package model

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrSpec is wrapped by every error about the content of a spec file.
var ErrSpec = errors.New("model: invalid spec")

// Error is one problem at one place of a spec file.
type Error struct {
	File string
	Pos  Pos
	Msg  string
}

func (e *Error) Error() string {
	if e.Pos.Col > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Pos.Line, e.Pos.Col, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Pos.Line, e.Msg)
}

func (e *Error) Unwrap() error { return ErrSpec }

// ErrorList is every problem found in one file, sorted by position.
type ErrorList []*Error

func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

//go:embed cpmlink.yaml
var defaultSpec []byte

// DefaultFile is the name under which the embedded spec reports positions.
const DefaultFile = "model/cpmlink.yaml"

// DefaultSource returns the bytes of the embedded spec.
func DefaultSource() []byte { return bytes.Clone(defaultSpec) }

// Default returns the embedded spec, decoded and validated. It panics if the embedded spec
// is invalid, which the tests of this package rule out.
func Default() *Spec {
	s, err := Parse(DefaultFile, defaultSpec)
	if err != nil {
		panic(err)
	}
	return s
}

// Load reads, decodes and validates a spec file.
func Load(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates a spec held in memory; file names it in errors.
func Parse(file string, data []byte) (*Spec, error) {
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, yamlError(file, err)
	}
	s.File = file
	if s.Extends != "" {
		return extend(&s, file)
	}
	return s.finish(nil)
}

// extend loads the spec s extends and gives s everything but its own name, doc and
// variants from it. The variants of s may name the base spec's variants as their base.
func extend(s *Spec, file string) (*Spec, error) {
	if s.Roles != nil || s.Hops != nil || s.Machines != nil || s.Events != nil || s.Actions != nil || s.Triggers != nil ||
		s.Knobs != nil || s.Defects != nil || s.Flags != nil || s.Rules != nil || s.Reactions != nil || s.Waiting != nil || s.Announce != nil || s.Orders != nil {
		return nil, ErrorList{{File: file, Pos: Pos{1, 1}, Msg: "a spec that extends another declares only name, doc and variants"}}
	}
	var base *Spec
	var err error
	switch {
	case s.Extends == "default":
		base, err = Parse(DefaultFile, defaultSpec)
	default:
		base, err = Load(filepath.Join(filepath.Dir(file), s.Extends))
	}
	if err != nil {
		return nil, fmt.Errorf("model: %s extends %s: %w", file, s.Extends, err)
	}
	own := s.Variants
	name, doc, ext := s.Name, s.Doc, s.Extends
	*s = *base
	s.Name, s.Doc, s.Extends, s.File = name, doc, ext, file
	s.Variants = own
	return s.finish(base.Variants)
}

// finish validates a decoded spec; inherited are variants a base spec lends as bases.
func (s *Spec) finish(inherited []*Variant) (*Spec, error) {
	file := s.File
	if errs := s.validate(inherited); len(errs) > 0 {
		for _, e := range errs {
			e.File = file
		}
		sort.SliceStable(errs, func(i, j int) bool {
			if errs[i].Pos.Line != errs[j].Pos.Line {
				return errs[i].Pos.Line < errs[j].Pos.Line
			}
			return errs[i].Pos.Col < errs[j].Pos.Col
		})
		return nil, errs
	}
	return s, nil
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError turns the decoder's errors into ErrorList entries with the file name, so that
// every problem reads file:line: message whatever layer found it.
func yamlError(file string, err error) error {
	var pe *Error
	if errors.As(err, &pe) {
		pe.File = file
		return ErrorList{pe}
	}
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var out ErrorList
	for _, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: ")
		if g := yamlLine.FindStringSubmatch(m); g != nil {
			line, _ := strconv.Atoi(g[1])
			out = append(out, &Error{File: file, Pos: Pos{Line: line}, Msg: g[2]})
			continue
		}
		out = append(out, &Error{File: file, Pos: Pos{Line: 1}, Msg: m})
	}
	return out
}

func errAt(n *yaml.Node, format string, args ...any) *Error {
	return &Error{Pos: Pos{n.Line, n.Column}, Msg: fmt.Sprintf(format, args...)}
}

// strictDecode decodes a mapping node into v (a pointer to a struct) and records its
// position. yaml.v3 forgets KnownFields inside custom unmarshalers, so the keys are checked
// here against the struct's yaml tags; duplicate keys are reported with both lines.
func strictDecode(n *yaml.Node, v any, pos *Pos) error {
	if pos != nil {
		*pos = Pos{n.Line, n.Column}
	}
	if n.Kind != yaml.MappingNode {
		return errAt(n, "expected a mapping, found %s", kindName(n))
	}
	allowed := yamlKeys(reflect.TypeOf(v).Elem())
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if prev, dup := seen[k.Value]; dup {
			return errAt(k, "key %q already set at line %d", k.Value, prev.Line)
		}
		seen[k.Value] = k
		if !allowed[k.Value] {
			return errAt(k, "unknown key %q (allowed: %s)", k.Value, strings.Join(sortedKeys(allowed), ", "))
		}
	}
	return n.Decode(v)
}

func yamlKeys(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("yaml")
		name, _, _ := strings.Cut(tag, ",")
		if name != "" && name != "-" {
			out[name] = true
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("the scalar %q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}

// UnmarshalYAML implements yaml.Unmarshaler for Spec's elements, keeping positions.
func (r *Role) UnmarshalYAML(n *yaml.Node) error {
	type plain Role
	return strictDecode(n, (*plain)(r), &r.Pos)
}

func (h *Hop) UnmarshalYAML(n *yaml.Node) error {
	type plain Hop
	return strictDecode(n, (*plain)(h), &h.Pos)
}

func (s *Sides) UnmarshalYAML(n *yaml.Node) error {
	type plain Sides
	return strictDecode(n, (*plain)(s), &s.Pos)
}

func (m *Machine) UnmarshalYAML(n *yaml.Node) error {
	type plain Machine
	return strictDecode(n, (*plain)(m), &m.Pos)
}

func (c *Cell) UnmarshalYAML(n *yaml.Node) error {
	type plain Cell
	return strictDecode(n, (*plain)(c), &c.Pos)
}

func (e *Event) UnmarshalYAML(n *yaml.Node) error {
	type plain Event
	return strictDecode(n, (*plain)(e), &e.Pos)
}

func (a *Action) UnmarshalYAML(n *yaml.Node) error {
	type plain Action
	return strictDecode(n, (*plain)(a), &a.Pos)
}

func (t *Trigger) UnmarshalYAML(n *yaml.Node) error {
	type plain Trigger
	return strictDecode(n, (*plain)(t), &t.Pos)
}

func (k *Knob) UnmarshalYAML(n *yaml.Node) error {
	type plain Knob
	return strictDecode(n, (*plain)(k), &k.Pos)
}

func (v *KnobValue) UnmarshalYAML(n *yaml.Node) error {
	type plain KnobValue
	return strictDecode(n, (*plain)(v), nil)
}

func (d *Defect) UnmarshalYAML(n *yaml.Node) error {
	type plain Defect
	return strictDecode(n, (*plain)(d), &d.Pos)
}

func (f *Flag) UnmarshalYAML(n *yaml.Node) error {
	type plain Flag
	return strictDecode(n, (*plain)(f), &f.Pos)
}

func (r *Rule) UnmarshalYAML(n *yaml.Node) error {
	type plain Rule
	return strictDecode(n, (*plain)(r), &r.Pos)
}

func (r *Reaction) UnmarshalYAML(n *yaml.Node) error {
	type plain Reaction
	return strictDecode(n, (*plain)(r), &r.Pos)
}

func (v *Variant) UnmarshalYAML(n *yaml.Node) error {
	type plain Variant
	return strictDecode(n, (*plain)(v), &v.Pos)
}

// UnmarshalYAML accepts one scalar or a list of scalars.
func (l *StrList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*l = StrList{n.Value}
		return nil
	case yaml.SequenceNode:
		var out []string
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return errAt(c, "expected a name, found %s", kindName(c))
			}
			out = append(out, c.Value)
		}
		*l = out
		return nil
	}
	return errAt(n, "expected a name or a list of names, found %s", kindName(n))
}

// UnmarshalYAML keeps the fields in file order.
func (f *FieldMap) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return errAt(n, "expected a mapping of field names, found %s", kindName(n))
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if line, dup := seen[k.Value]; dup {
			return errAt(k, "field %q already declared at line %d", k.Value, line)
		}
		seen[k.Value] = k.Line
		if v.Kind != yaml.ScalarNode {
			return errAt(v, "field %q: expected a type or source name, found %s", k.Value, kindName(v))
		}
		*f = append(*f, Field{Name: k.Value, Kind: v.Value})
	}
	return nil
}

// UnmarshalYAML reads knob: value, or knob: {hop: value, ...} for per-hop knobs.
func (ks *KnobSetting) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return errAt(n, "expected a mapping of knob settings, found %s", kindName(n))
	}
	ks.Global = map[string]string{}
	ks.PerHop = map[string]map[string]string{}
	ks.Pos = map[string]Pos{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if _, dup := ks.Pos[k.Value]; dup {
			return errAt(k, "knob %q already set at line %d", k.Value, ks.Pos[k.Value].Line)
		}
		ks.Pos[k.Value] = Pos{k.Line, k.Column}
		switch v.Kind {
		case yaml.ScalarNode:
			ks.Global[k.Value] = v.Value
		case yaml.MappingNode:
			m := map[string]string{}
			for j := 0; j+1 < len(v.Content); j += 2 {
				hk, hv := v.Content[j], v.Content[j+1]
				if _, dup := m[hk.Value]; dup {
					return errAt(hk, "knob %q: hop %q set twice", k.Value, hk.Value)
				}
				if hv.Kind != yaml.ScalarNode {
					return errAt(hv, "knob %q, hop %q: expected a value, found %s", k.Value, hk.Value, kindName(hv))
				}
				m[hk.Value] = hv.Value
				ks.Pos[Key(k.Value, hk.Value)] = Pos{hk.Line, hk.Column}
			}
			ks.PerHop[k.Value] = m
		default:
			return errAt(v, "knob %q: expected a value or a mapping of hops to values, found %s", k.Value, kindName(v))
		}
	}
	return nil
}
