package proptest

import (
	"fmt"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/gen"
	"github.com/cpmlink/cpmlink/model"
)

// NamedVariant is a variant of a spec file, as a value of the generated code.
type NamedVariant struct {
	fsm.Variant
	// Expect is the property a planted variant must violate ("" when it must pass).
	Expect string
	// Faults is the fault budget a planted variant needs to show its bug (FaultConfigs).
	Faults int
}

// LoadVariants reads a spec file and converts its named variants (VariantsOf).
func LoadVariants(path string) ([]NamedVariant, error) {
	s, err := model.Load(path)
	if err != nil {
		return nil, err
	}
	return VariantsOf(s)
}

// VariantsOf converts the named variants of a spec file into values of the generated code.
// The spec must compile to the behaviour of the generated code (the same fingerprint):
// knobs and defects are data, rules are code.
func VariantsOf(s *model.Spec) ([]NamedVariant, error) {
	fp, err := gen.Fingerprint(s)
	if err != nil {
		return nil, err
	}
	if fp != fsm.Fingerprint {
		return nil, fmt.Errorf("proptest: %s compiles to other code than package fsm (fingerprint %s, fsm has %s): its rules differ; generate code from it with `cpmlink gen --spec %s`", s.File, fp, fsm.Fingerprint, s.File)
	}
	var out []NamedVariant
	for _, x := range s.Variants {
		v := fsm.Variant{Name: x.Name, Doc: x.Doc}
		for _, key := range fsm.KnobKeys {
			if err := v.Set(key, x.Resolved[key]); err != nil {
				return nil, fmt.Errorf("proptest: variant %s: %w", x.Name, err)
			}
		}
		for _, o := range x.Orders {
			if err := v.SetOrder(o); err != nil {
				return nil, fmt.Errorf("proptest: variant %s: %w", x.Name, err)
			}
		}
		for _, d := range x.Defects {
			if err := v.SetDefect(d); err != nil {
				return nil, fmt.Errorf("proptest: variant %s: %w", x.Name, err)
			}
		}
		if err := v.Check(); err != nil {
			return nil, fmt.Errorf("proptest: variant %s: %w", x.Name, err)
		}
		out = append(out, NamedVariant{Variant: v, Expect: x.Expect, Faults: x.Faults})
	}
	return out, nil
}
