package core

import (
	"context"
	"errors"
	"fmt"

	looplab "github.com/looplab/fsm"
)

// CellKind says what a (state, event) pair of a machine means.
type CellKind uint8

// Cell kinds. CellNone is a gap in the spec.
const (
	CellNone CellKind = iota
	CellTo
	CellIgnore
	CellReject
)

// Cell is one entry of a machine's table.
type Cell struct {
	Kind CellKind
	// To is the target state of a CellTo.
	To uint8
	// Reason explains an ignore or a reject, for traces and errors.
	Reason string
}

// MachineDef is the table of one spec machine. Generated code declares one per machine.
type MachineDef struct {
	Name     string
	States   []string
	Events   []string
	Initial  uint8
	Terminal []bool
	// Cells is indexed [state][event].
	Cells [][]Cell

	// transitions is the same table in looplab/fsm's form: every CellTo that changes state.
	transitions looplab.Events
}

// NewMachineDef checks a table and prepares it for looplab/fsm.
func NewMachineDef(name string, states, events []string, initial uint8, terminal []uint8, cells [][]Cell) *MachineDef {
	if len(cells) != len(states) {
		panic(fmt.Sprintf("core: machine %s: %d rows for %d states", name, len(cells), len(states)))
	}
	d := &MachineDef{Name: name, States: states, Events: events, Initial: initial, Cells: cells,
		Terminal: make([]bool, len(states))}
	for _, t := range terminal {
		d.Terminal[t] = true
	}
	for ev := range events {
		byDst := map[uint8][]string{}
		var order []uint8
		for st := range states {
			c := cells[st][ev]
			if len(cells[st]) != len(events) {
				panic(fmt.Sprintf("core: machine %s: row %s has %d cells for %d events", name, states[st], len(cells[st]), len(events)))
			}
			if c.Kind != CellTo || int(c.To) == st {
				continue
			}
			if _, seen := byDst[c.To]; !seen {
				order = append(order, c.To)
			}
			byDst[c.To] = append(byDst[c.To], states[st])
		}
		for _, dst := range order {
			d.transitions = append(d.transitions, looplab.EventDesc{Name: events[ev], Src: byDst[dst], Dst: states[dst]})
		}
	}
	return d
}

// Machine is one running instance of a MachineDef. looplab/fsm holds the current state and
// performs every transition; Machine adds the explicit ignore and reject cells looplab has
// no notion of, and caches the state's index for the generated conditions.
//
// looplab/fsm facts respected here: Event is not safe for concurrent use (a role is
// stepped by one goroutine at a time), no callbacks are registered (firing an event from
// a callback deadlocks), and the context passed is never cancelled (a cancelled context
// leaves looplab stuck in a transition, upstream issue #115).
type Machine struct {
	def   *MachineDef
	f     *looplab.FSM
	state uint8
}

// New returns a machine in its initial state.
func (d *MachineDef) New() *Machine {
	return &Machine{def: d, f: looplab.NewFSM(d.States[d.Initial], d.transitions, nil), state: d.Initial}
}

// Def returns the machine's table.
func (m *Machine) Def() *MachineDef { return m.def }

// State returns the index of the current state.
func (m *Machine) State() uint8 { return m.state }

// Is reports whether the machine is in the given state.
func (m *Machine) Is(state uint8) bool { return m.state == state }

// Name returns the name of the current state.
func (m *Machine) Name() string { return m.def.States[m.state] }

// Terminal reports whether the current state is terminal.
func (m *Machine) Terminal() bool { return m.def.Terminal[m.state] }

// Set forces a state; it restores snapshots and must not be used to step.
func (m *Machine) Set(state uint8) {
	if m.state != state {
		m.f.SetState(m.def.States[state])
		m.state = state
	}
}

// Reset returns the machine to its initial state.
func (m *Machine) Reset() { m.Set(m.def.Initial) }

// never is the context every transition runs under: it is never cancelled.
var never = context.Background()

// Fire looks up the cell for the event in the current state and, for a transition,
// performs it. It returns the cell so that the caller can run the rules of a transition,
// skip an ignore, or refuse a reject. A missing cell returns ErrNoCell.
func (m *Machine) Fire(ev uint8) (Cell, error) {
	c := m.def.Cells[m.state][ev]
	switch c.Kind {
	case CellNone:
		return c, fmt.Errorf("%w: machine %s has no cell for %s in state %s", ErrNoCell, m.def.Name, m.def.Events[ev], m.Name())
	case CellTo:
		if c.To == m.state {
			return c, nil
		}
		if err := m.f.Event(never, m.def.Events[ev]); err != nil {
			var nt looplab.NoTransitionError
			if !errors.As(err, &nt) {
				panic(fmt.Sprintf("core: machine %s: looplab refused %s in %s: %v", m.def.Name, m.def.Events[ev], m.Name(), err))
			}
		}
		m.state = c.To
		if cur := m.f.Current(); cur != m.def.States[m.state] {
			panic(fmt.Sprintf("core: machine %s: looplab is in %s, table says %s", m.def.Name, cur, m.def.States[m.state]))
		}
	}
	return c, nil
}
