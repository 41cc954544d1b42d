package proptest

import (
	"reflect"
	"testing"
	"unsafe"
)

// TestDependenceIsSymmetric: the dependence relation is symmetric and reflexive, and the
// sender depends on every member (it checks what they stored).
func TestDependenceIsSymmetric(t *testing.T) {
	cfg := Config{Members: 3, PFBs: 2}
	dep := dependence(cfg)
	for i := range dep {
		if !dep[i][i] {
			t.Errorf("role %d independent of itself", i)
		}
		for j := range dep {
			if dep[i][j] != dep[j][i] {
				t.Errorf("dep[%d][%d] != dep[%d][%d]", i, j, j, i)
			}
		}
	}
	for m := 0; m < cfg.Members; m++ {
		if !dep[idxClientA][cfg.memberIdx(m)] || !dep[cfg.pfbOf(m)][cfg.memberIdx(m)] {
			t.Errorf("member %d independent of the sender or its PF-B", m)
		}
	}
	if dep[firstPFB][firstPFB+1] || dep[cfg.memberIdx(0)][cfg.memberIdx(1)] {
		t.Error("two PF-Bs, or two members, depend on each other")
	}
}

// TestLegDiffSeesEveryField changes each field of a leg in turn (each element of each
// pair on its own) and requires the footprint to see it: a field legDiff does not compare
// would let two steps that both write it pass as commuting, and the sleep sets would skip
// an interleaving. It walks legState by reflection, so a field added later is covered.
func TestLegDiffSeesEveryField(t *testing.T) {
	base := legState{opener: -1, ends: [2]int{-1, -1}}
	lt := reflect.TypeOf(base)
	for i := 0; i < lt.NumField(); i++ {
		f := lt.Field(i)
		n := 1
		if f.Type.Kind() == reflect.Array {
			n = f.Type.Len()
		}
		for k := 0; k < n; k++ {
			changed := base
			fv := settable(reflect.ValueOf(&changed).Elem().Field(i))
			if f.Type.Kind() == reflect.Array {
				fv = fv.Index(k)
			}
			if !mutate(fv) {
				t.Fatalf("legState.%s: the test cannot change a %s", f.Name, fv.Type())
			}
			if legDiff(&base, &changed, false, 0) == 0 {
				t.Errorf("legDiff misses a change of legState.%s[%d]", f.Name, k)
			}
		}
	}
}

// settable makes an unexported field of an addressable struct writable, for the test.
func settable(v reflect.Value) reflect.Value {
	return reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem()
}

// mutate changes v to another value of its type.
func mutate(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(v.Int() + 7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(v.Uint() + 1)
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Slice:
		v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem())))
	default:
		return false
	}
	return true
}
