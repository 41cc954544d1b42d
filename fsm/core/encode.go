package core

import (
	"encoding/binary"
	"errors"
	"sort"
)

// ErrSnapshot is returned when a snapshot cannot be decoded.
var ErrSnapshot = errors.New("fsm: corrupt snapshot")

// Enc appends a compact, canonical encoding of role state. Equal states encode to equal
// bytes, which is what the explorer's visited-state hashing relies on.
//
// Rename, when set, maps every string written (leg ids, URIs, MSRP hosts and paths,
// connection ids): the explorer encodes a state as it would be with interchangeable
// members renamed, for its symmetry reduction. Lists of names are then written sorted, as
// the renamed state keeps them (see EncodeSessions).
//
// Intern, when set, numbers strings: S writes the number instead of the string (the
// explorer keeps millions of states, whose strings come from a small set). A Dec with the
// matching Lookup reads it back.
type Enc struct {
	B      []byte
	Rename func(string) string
	Intern func(string) uint64
}

// U appends an unsigned integer.
func (e *Enc) U(v uint64) { e.B = binary.AppendUvarint(e.B, v) }

// I appends a signed integer.
func (e *Enc) I(v int) { e.B = binary.AppendVarint(e.B, int64(v)) }

// Bool appends a boolean.
func (e *Enc) Bool(v bool) {
	if v {
		e.B = append(e.B, 1)
	} else {
		e.B = append(e.B, 0)
	}
}

// S appends a string.
func (e *Enc) S(s string) {
	if e.Rename != nil {
		s = e.Rename(s)
	}
	if e.Intern != nil {
		e.U(e.Intern(s))
		return
	}
	e.U(uint64(len(s)))
	e.B = append(e.B, s...)
}

// SDP appends MSRP parameters.
func (e *Enc) SDP(p SDP) {
	e.S(p.Host)
	e.I(p.Port)
	e.S(p.Path)
	e.U(uint64(p.Setup))
	e.Bool(p.TLS)
}

// Outcome appends an outcome.
func (e *Enc) Outcome(o Outcome) {
	e.U(uint64(o.Kind))
	e.I(o.Status)
}

// Strings appends a list of strings.
func (e *Enc) Strings(l []string) {
	e.U(uint64(len(l)))
	if e.Rename != nil {
		// A list of names (a group's members) is fixed for a run; renamed, it is written
		// as a set.
		r := make([]string, len(l))
		for i, s := range l {
			r[i] = e.Rename(s)
		}
		sort.Strings(r)
		for _, s := range r {
			e.U(uint64(len(s)))
			e.B = append(e.B, s...)
		}
		return
	}
	for _, s := range l {
		e.S(s)
	}
}

// Results appends a transmitter's result table.
func (e *Enc) Results(r *Results) {
	e.I(r.Expect)
	e.Outcome(r.Rest)
	e.U(uint64(len(r.Members)))
	ms := r.Members
	if e.Rename != nil {
		// Kept sorted by member: renamed, sorted again.
		ms = append([]MemberOutcome(nil), ms...)
		for i := range ms {
			ms[i].Member = e.Rename(ms[i].Member)
		}
		sort.Slice(ms, func(i, j int) bool { return ms[i].Member < ms[j].Member })
		for _, m := range ms {
			e.U(uint64(len(m.Member)))
			e.B = append(e.B, m.Member...)
			e.Outcome(m.Outcome)
		}
		return
	}
	for _, m := range ms {
		e.S(m.Member)
		e.Outcome(m.Outcome)
	}
}

// Dec reads what Enc wrote. The first error sticks; readers check Err once at the end.
type Dec struct {
	B   []byte
	Err error
	// Lookup reads strings an Enc wrote as numbers (Enc.Intern).
	Lookup func(uint64) (string, bool)
}

func (d *Dec) fail() {
	if d.Err == nil {
		d.Err = ErrSnapshot
	}
	d.B = nil
}

// U reads an unsigned integer.
func (d *Dec) U() uint64 {
	v, n := binary.Uvarint(d.B)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.B = d.B[n:]
	return v
}

// I reads a signed integer.
func (d *Dec) I() int {
	v, n := binary.Varint(d.B)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.B = d.B[n:]
	return int(v)
}

// Bool reads a boolean.
func (d *Dec) Bool() bool {
	if len(d.B) == 0 {
		d.fail()
		return false
	}
	v := d.B[0] == 1
	d.B = d.B[1:]
	return v
}

// S reads a string.
func (d *Dec) S() string {
	if d.Lookup != nil {
		s, ok := d.Lookup(d.U())
		if !ok {
			d.fail()
		}
		return s
	}
	n := d.U()
	if n > uint64(len(d.B)) {
		d.fail()
		return ""
	}
	s := string(d.B[:n])
	d.B = d.B[n:]
	return s
}

// SDP reads MSRP parameters.
func (d *Dec) SDP() SDP {
	return SDP{Host: d.S(), Port: d.I(), Path: d.S(), Setup: Setup(d.U()), TLS: d.Bool()}
}

// Outcome reads an outcome.
func (d *Dec) Outcome() Outcome {
	return Outcome{Kind: OutcomeKind(d.U()), Status: d.I()}
}

// Strings reads a list of strings.
func (d *Dec) Strings() []string {
	n := d.U()
	if n > uint64(len(d.B)) {
		d.fail()
		return nil
	}
	var out []string
	for i := uint64(0); i < n; i++ {
		out = append(out, d.S())
	}
	return out
}

// Results reads a transmitter's result table.
func (d *Dec) Results() Results {
	r := Results{Expect: d.I(), Rest: d.Outcome()}
	n := d.U()
	if n > uint64(len(d.B)) {
		d.fail()
		return r
	}
	for i := uint64(0); i < n; i++ {
		r.Members = append(r.Members, MemberOutcome{Member: d.S(), Outcome: d.Outcome()})
	}
	return r
}
