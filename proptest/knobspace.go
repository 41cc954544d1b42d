package proptest

import (
	"github.com/cpmlink/cpmlink/fsm"
)

// KnobSpace enumerates every combination of knob values the generated code knows, in a
// stable order (the last knob key varies fastest), and returns the possible ones (those
// Variant.Check accepts) and how many were impossible.
func KnobSpace() (possible []fsm.Variant, impossible int) {
	keys := fsm.KnobKeys
	idx := make([]int, len(keys))
	for {
		var v fsm.Variant
		for i, k := range keys {
			if err := v.Set(k, fsm.KnobValues(k)[idx[i]]); err != nil {
				panic(err)
			}
		}
		if v.Check() == nil {
			possible = append(possible, v)
		} else {
			impossible++
		}
		i := len(keys) - 1
		for ; i >= 0; i-- {
			idx[i]++
			if idx[i] < len(fsm.KnobValues(keys[i])) {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			return possible, impossible
		}
	}
}
