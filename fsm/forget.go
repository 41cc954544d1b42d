package fsm

import "github.com/cpmlink/cpmlink/fsm/core"

// These helpers are written by hand, beside the generated role types, so that they do not
// change what the generator emits (nor, so, the spec's fingerprint). The machines never
// call them, nor does the explorer (it checks every session at the end of a run): they are
// for a driver that runs for months and must neither hold every session it ever had nor
// walk them all at every step.

// engineOf is the engine of a generated role, nil for another Role.
func engineOf(r Role) *core.Engine {
	switch x := r.(type) {
	case *ClientA:
		return &x.e
	case *PFA:
		return &x.e
	case *CF:
		return &x.e
	case *PFB:
		return &x.e
	case *ClientB:
		return &x.e
	}
	return nil
}

// Forget drops a session of r that is over (every machine of it terminal), named by its
// key (core.Session.Key), with its legs, and reports whether it did; it keeps a session
// that is not over.
func Forget(r Role, key LegID) bool {
	if e := engineOf(r); e != nil {
		return e.Forget(key)
	}
	return false
}

// SessionOf returns the session a leg of r belongs to, nil for a leg it does not know (or
// no longer knows: Forget).
func SessionOf(r Role, leg LegID) *core.Session {
	if e := engineOf(r); e != nil {
		s, _ := e.Lookup(leg)
		return s
	}
	return nil
}
