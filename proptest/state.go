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
	e := core.Enc{B: dst, Rename: w.rename}
	switch {
	case w.internAs != nil:
		e.Intern = w.internAs
	case w.strs != nil:
		e.Intern = w.strs.intern
	}
	n := &w.net
	e.U(uint64(len(n.bag)))
	for _, it := range n.bag {
		e.B = append(e.B, it.key...)
	}
	e.U(uint64(len(n.legs)))
	for i := range n.legs {
		if c := w.legEnc; c != nil && i < len(c.legs) && legDiff(&c.legs[i], &n.legs[i], false, 0) == 0 {
			// Unchanged since the state the cache was filled from: its encoding is the same.
			e.B = append(e.B, c.enc[c.off[i]:c.off[i+1]]...)
			continue
		}
		appendLeg(&e, &n.legs[i])
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
	e.I(n.faultsLeft)
	e.Bool(n.harmed)
	e.Bool(n.lostEarly)
	return e.B
}

// legEncCache holds the encodings of one state's legs, as saveNet writes them with the
// world's string numbers: a step changes one or two legs, so the explorer encodes the
// others once per state rather than once per successor. legDiff compares every field
// (TestLegDiffSeesEveryField), so a leg it finds unchanged encodes to the same bytes.
type legEncCache struct {
	legs []legState
	enc  []byte
	off  []int
}

// fillLegEnc encodes legs (the world's, as saved in a memState) into the cache.
func (w *World) fillLegEnc(c *legEncCache, legs []legState) {
	e := core.Enc{B: c.enc[:0]}
	if w.strs != nil {
		e.Intern = w.strs.intern
	}
	c.off = append(c.off[:0], 0)
	for i := range legs {
		appendLeg(&e, &legs[i])
		c.off = append(c.off, len(e.B))
	}
	c.enc, c.legs = e.B, legs
}

// appendLeg appends one leg's state as saveNet writes it.
func appendLeg(e *core.Enc, l *legState) {
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
			e.U(uint64(f.asked))
		}
		e.U(uint64(l.asked[d]))
		e.U(uint64(len(l.received[d])))
		for _, s := range l.received[d] {
			e.U(uint64(s))
		}
	}
	e.Bool(l.established)
	e.Bool(l.broken)
	e.Bool(l.cut)
	e.I(l.opener)
	e.S(string(l.conn))
	for _, v := range [...]int{l.frames, l.invites, l.oks, l.acksSent, l.okRecv, l.rejects, l.cancels, l.byes} {
		e.I(v)
	}
	e.S(l.offerSDP)
	e.S(l.answerSDP)
	e.U(uint64(l.offerSetup))
	e.U(uint64(l.answerSetup))
	e.Bool(l.ackRecv)
	e.Bool(l.okSent)
	e.Bool(l.chunkRecv)
	e.Bool(l.byeRecv)
	e.U(l.seen[0])
	e.U(l.seen[1])
	e.Bool(l.finalRecv)
	e.Bool(l.upBye)
	e.Bool(l.downByeRecv)
	e.Bool(l.hangUp)
	e.Bool(l.failed[0])
	e.Bool(l.failed[1])
	e.Bool(l.harmed)
	e.Bool(l.ackLost)
	e.Bool(l.msgSent)
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
	// Items are their own encodings; the rest may have its strings numbered.
	if w.strs != nil {
		d.Lookup = w.strs.lookup
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
					member: d.S(), outcome: d.Outcome(), of: d.I(), conn: core.ConnID(d.S()), asked: uint8(d.U())})
			}
			l.asked[dir] = uint8(d.U())
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
		l.cut = d.Bool()
		l.opener = d.I()
		l.conn = core.ConnID(d.S())
		for _, p := range [...]*int{&l.frames, &l.invites, &l.oks, &l.acksSent, &l.okRecv, &l.rejects, &l.cancels, &l.byes} {
			*p = d.I()
		}
		l.offerSDP, l.answerSDP = d.S(), d.S()
		l.offerSetup, l.answerSetup = core.Setup(d.U()), core.Setup(d.U())
		l.ackRecv, l.okSent, l.chunkRecv, l.byeRecv = d.Bool(), d.Bool(), d.Bool(), d.Bool()
		l.seen[0], l.seen[1] = d.U(), d.U()

		l.finalRecv = d.Bool()
		l.upBye, l.downByeRecv, l.hangUp = d.Bool(), d.Bool(), d.Bool()
		l.failed[0], l.failed[1] = d.Bool(), d.Bool()
		l.harmed, l.ackLost, l.msgSent = d.Bool(), d.Bool(), d.Bool()
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
	n.faultsLeft, n.harmed, n.lostEarly = d.I(), d.Bool(), d.Bool()
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
