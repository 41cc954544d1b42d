package proptest

import (
	"bytes"

	"github.com/cpmlink/cpmlink/fsm/core"
)

// Save appends the whole world state (every role's snapshot, the network and the
// checkers' observations) in a canonical encoding: equal states give equal bytes.
func (w *World) Save(dst []byte) []byte {
	e := core.Enc{B: dst}
	for _, s := range w.snaps {
		e.U(uint64(len(s)))
		e.B = append(e.B, s...)
	}
	return w.saveNet(e.B)
}

// saveNet appends the network and the observations, the part of a state that is not the
// roles' snapshots.
func (w *World) saveNet(dst []byte) []byte {
	e := core.Enc{B: dst}
	n := &w.net
	e.U(uint64(len(n.bag)))
	for _, it := range n.bag {
		e.B = append(e.B, it.key...)
	}
	e.U(uint64(len(n.legs)))
	for i := range n.legs {
		l := &n.legs[i]
		for d := 0; d < 2; d++ {
			e.I(l.ends[d])
			e.Bool(l.closed[d])
			e.S(l.listen[d])
			e.Bool(l.timer[d])
			e.Bool(l.up[d])
			e.U(uint64(len(l.chans[d])))
			for _, f := range l.chans[d] {
				e.U(uint64(f.kind))
				e.I(f.chunk)
				e.U(uint64(f.sum))
				e.Bool(f.last)
				e.S(f.member)
				e.Outcome(f.outcome)
				e.I(f.of)
				e.S(string(f.conn))
			}
			e.U(uint64(len(l.received[d])))
			for _, s := range l.received[d] {
				e.U(uint64(s))
			}
		}
		e.Bool(l.established)
		e.Bool(l.broken)
		e.I(l.opener)
		e.S(string(l.conn))
		for _, v := range [...]int{l.frames, l.invites, l.oks, l.acksSent, l.okRecv, l.rejects, l.cancels, l.byes} {
			e.I(v)
		}
		e.S(l.offerSDP)
		e.S(l.answerSDP)
		e.Bool(l.ackRecv)
		e.Bool(l.okSent)
		e.Bool(l.chunkRecv)
	}
	e.U(uint64(len(n.conns)))
	for _, c := range n.conns {
		e.I(c.role)
		e.S(string(c.conn))
		e.S(c.addr)
		e.U(uint64(c.state))
		e.Bool(c.tainted)
	}
	for _, m := range w.obs.members {
		e.I(m.next)
		e.Outcome(m.result)
	}
	e.Outcome(w.obs.rest)
	return e.B
}

// Load restores a state Save produced. Roles whose snapshot did not change are left as
// they are, so that stepping from sibling states restores little.
func (w *World) Load(b []byte) error {
	d := core.Dec{B: b}
	for i := range w.roles {
		n := d.U()
		if n > uint64(len(d.B)) {
			return core.ErrSnapshot
		}
		if err := w.restoreRole(i, d.B[:n]); err != nil {
			return err
		}
		d.B = d.B[n:]
	}
	return w.loadNet(d.B)
}

// loadNet restores what saveNet wrote.
func (w *World) loadNet(b []byte) error {
	d := core.Dec{B: b}
	n := &w.net
	cnt := d.U()
	n.bag = n.bag[:0]
	for i := uint64(0); i < cnt && d.Err == nil; i++ {
		start := d.B
		it := decodeItem(&d)
		it.key = start[:len(start)-len(d.B)]
		n.bag = append(n.bag, it)
	}
	cnt = d.U()
	if cnt > uint64(len(d.B)) {
		return core.ErrSnapshot
	}
	n.legs = n.legs[:0]
	for i := uint64(0); i < cnt && d.Err == nil; i++ {
		var l legState
		for dir := 0; dir < 2; dir++ {
			l.ends[dir] = d.I()
			l.closed[dir] = d.Bool()
			l.listen[dir] = d.S()
			l.timer[dir] = d.Bool()
			l.up[dir] = d.Bool()
			fc := d.U()
			if fc > uint64(len(d.B)) {
				return core.ErrSnapshot
			}
			if fc > 0 {
				l.chans[dir] = make([]frame, 0, fc)
			}
			for j := uint64(0); j < fc && d.Err == nil; j++ {
				l.chans[dir] = append(l.chans[dir], frame{kind: frameKind(d.U()), chunk: d.I(), sum: uint32(d.U()), last: d.Bool(),
					member: d.S(), outcome: d.Outcome(), of: d.I(), conn: core.ConnID(d.S())})
			}
			rc := d.U()
			if rc > uint64(len(d.B)) {
				return core.ErrSnapshot
			}
			if rc > 0 {
				l.received[dir] = make([]uint32, rc)
			}
			for j := range l.received[dir] {
				l.received[dir][j] = uint32(d.U())
			}
		}
		l.established = d.Bool()
		l.broken = d.Bool()
		l.opener = d.I()
		l.conn = core.ConnID(d.S())
		for _, p := range [...]*int{&l.frames, &l.invites, &l.oks, &l.acksSent, &l.okRecv, &l.rejects, &l.cancels, &l.byes} {
			*p = d.I()
		}
		l.offerSDP, l.answerSDP = d.S(), d.S()
		l.ackRecv, l.okSent, l.chunkRecv = d.Bool(), d.Bool(), d.Bool()
		n.legs = append(n.legs, l)
	}
	cnt = d.U()
	n.conns = n.conns[:0]
	for i := uint64(0); i < cnt && d.Err == nil; i++ {
		n.conns = append(n.conns, connEntry{role: d.I(), conn: core.ConnID(d.S()), addr: d.S(), state: uint8(d.U()), tainted: d.Bool()})
	}
	for i := range w.obs.members {
		w.obs.members[i] = memberObs{next: d.I(), result: d.Outcome()}
	}
	w.obs.rest = d.Outcome()
	if d.Err == nil && len(d.B) != 0 {
		return core.ErrSnapshot
	}
	return d.Err
}

func (w *World) restoreRole(i int, snap []byte) error {
	if bytes.Equal(snap, w.snaps[i]) {
		return nil
	}
	if err := w.roles[i].Restore(snap); err != nil {
		return err
	}
	w.snaps[i] = append(w.snaps[i][:0], snap...)
	return nil
}

// memState is a state held in memory, cheaper to return to than an encoding.
type memState struct {
	snaps   [][]byte
	net     network
	members []memberObs
	rest    core.Outcome
}

func (w *World) saveMem(m *memState) {
	if len(m.snaps) != len(w.snaps) {
		m.snaps = make([][]byte, len(w.snaps))
	}
	for i, s := range w.snaps {
		m.snaps[i] = append(m.snaps[i][:0], s...)
	}
	w.net.cloneInto(&m.net)
	m.members = append(m.members[:0], w.obs.members...)
	m.rest = w.obs.rest
}

func (w *World) loadMem(m *memState) error {
	for i, s := range m.snaps {
		if err := w.restoreRole(i, s); err != nil {
			return err
		}
	}
	m.net.cloneInto(&w.net)
	copy(w.obs.members, m.members)
	w.obs.rest = m.rest
	return nil
}
