package proptest

import (
	"bytes"
	"math"
	"slices"
	"sync"
)

// The explorer's reductions (docs/architecture.md, "Reductions"): a sleep-set partial-order
// reduction over steps of different role instances that commute, and a visited set of
// 64-bit fingerprints.

// actor returns the role instance a choice steps: the receiver of a SIP message or of a
// link failure, the opener for a connection attempt, the receiving end for a frame. Timers
// return -1: which timers may fire depends on what else can happen, so a timer is treated
// as dependent on every other step. So do the fault steps (faults.go): each spends the
// budget every other fault step reads, and a duplicate, a refusal or a reset changes what
// another role may receive.
func (w *World) actor(c Choice) int {
	switch c.Kind {
	case ChooseItem:
		it := &w.net.bag[c.item]
		if it.kind == itConnect {
			return it.from
		}
		return it.to
	case ChooseFrame:
		return w.net.legs[c.leg].ends[1-c.dir]
	}
	return -1 // timers and fault steps
}

// dependence returns, for a configuration, which pairs of role instances may have steps
// that do not commute. A step of role r reads and writes r's machines, the legs r is an
// end of (their links' frames in flight, who listens, the wire observations the checkers
// keep per leg), r's own connections, and adds to the unordered SIP bag; routing is fixed
// by the configuration. Two roles that share no leg therefore touch disjoint state, except
// that the sender's Result step checks what its members stored (obs.members), so the
// sender depends on every member as well. Every other pair of roles commutes: neither
// step can enable, disable or change the other, nor the properties checked on it.
func dependence(cfg Config) [][]bool {
	n := cfg.NumRoles()
	dep := make([][]bool, n)
	for i := range dep {
		dep[i] = make([]bool, n)
		dep[i][i] = true
	}
	link := func(a, b int) { dep[a][b], dep[b][a] = true, true }
	link(idxClientA, idxPFA)
	link(idxPFA, idxCF)
	for k := 0; k < cfg.PFBs; k++ {
		link(idxCF, firstPFB+k)
	}
	for m := 0; m < cfg.Members; m++ {
		link(cfg.pfbOf(m), cfg.memberIdx(m))
		link(idxClientA, cfg.memberIdx(m))
	}
	return dep
}

// alwaysDependent returns the pairs of roles whose steps never commute, whatever they
// touch: a role with itself, and the sender with each member (its Result step checks what
// the member stored, which is no leg).
func alwaysDependent(cfg Config) [][]bool {
	n := cfg.NumRoles()
	dep := make([][]bool, n)
	for i := range dep {
		dep[i] = make([]bool, n)
		dep[i][i] = true
	}
	for m := 0; m < cfg.Members; m++ {
		dep[idxClientA][cfg.memberIdx(m)], dep[cfg.memberIdx(m)][idxClientA] = true, true
	}
	return dep
}

// independent reports whether two choices enabled in the world's current state commute.
func (w *World) independent(dep [][]bool, a, b Choice) bool {
	x, y := w.actor(a), w.actor(b)
	return x >= 0 && y >= 0 && !dep[x][y]
}

// CollisionProbability estimates the chance that two of n distinct states share a b-bit
// fingerprint, so that the search wrongly takes one for the other: about n²/2^(b+1).
func CollisionProbability(n int, bits int) float64 {
	f := float64(n)
	return f * f / math.Pow(2, float64(bits+1))
}

// A footprint is what one step changed outside the role it stepped, read off by comparing
// the state before and after it: per leg, which groups of fields it wrote, and per link
// direction whether it only appended frames (push), only took the first one (pop), or
// anything else (a link cleared by an abort or a break).
type footprint struct {
	legs   []legTouch
	global bool // it changed another role, the connections or the checkers' observations
}

// Field groups of a leg, by who writes them: each end writes its own closed, listen,
// timer, up and received, and the observations of what it sent or received (the offerer
// end: INVITEs, ACKs and CANCELs sent, 2xx and the answer's SDP received; the answerer
// end: 2xx and rejects sent, the offer's SDP, the ACK and a chunk received); the rest
// (ends, opener and connection, frame count, BYEs, which either end sends) is shared.
const (
	touchEnd0   = 1 << iota // end 0's own fields and what the checkers saw it send or receive
	touchEnd1               // end 1's own fields and what the checkers saw it send or receive
	touchEnds               // which roles the leg joins, and whether its link broke
	touchShared             // established, opener, conn, frames delivered, BYEs
	touchPush0              // frames appended from end 0
	touchPush1              // frames appended from end 1
	touchPop0               // the first frame from end 0 taken (delivered to end 1)
	touchPop1               // the first frame from end 1 taken
	touchClear              // frames removed otherwise (abort, break), an end closed, or a new leg
	touchRead               // read, not written: a connection attempt reads the peer's end
)

type legTouch struct {
	leg  int
	what uint16
}

// commutes reports whether two steps, taken in the same state by different roles, can be
// taken in either order with the same result and the same checks. Each step reads the
// fields of a leg it writes, except that a step that only appends frames to a leg reads
// nothing there but the leg's ends (and its own end, which only it writes); the checkers
// read no other leg field of another end (docs/architecture.md, "Sleep sets"). So two
// steps commute unless they write a common field group of one leg, or one writes what
// the other reads; appending frames to a link commutes with delivering its first frame.
func commutes(a, b *footprint) bool {
	if a.global || b.global {
		return false
	}
	for _, x := range a.legs {
		for _, y := range b.legs {
			if x.leg == y.leg && touchConflict(x.what, y.what) {
				return false
			}
		}
	}
	return true
}

const touchPushes = touchPush0 | touchPush1

func touchConflict(x, y uint16) bool {
	// Write/write on the same group (pushes by one end, pops by the other end, never
	// collide: they come from different roles only as push and pop of one direction).
	if x&y&^touchRead != 0 {
		return true
	}
	if x&touchClear != 0 || y&touchClear != 0 {
		return true
	}
	// Reads: a step that writes anything but pushes on a leg reads every group of it, its
	// pending frames' heads included; a push-only step reads the leg's ends.
	reads := func(w uint16) uint16 {
		if w&^touchPushes == 0 {
			return touchEnds
		}
		return touchEnd0 | touchEnd1 | touchEnds | touchShared | touchPop0 | touchPop1
	}
	return reads(x)&(y&^(touchPushes|touchRead)) != 0 || reads(y)&(x&^(touchPushes|touchRead)) != 0
}

// footprintOf compares the world's state with the state before the step (before), which
// stepped role actor through choice c (listed in before's choices).
func (w *World) footprintOf(before *memState, actor int, c Choice, fp *footprint) {
	fp.legs = fp.legs[:0]
	fp.global = false
	for i, s := range before.snaps {
		if i != actor && !bytes.Equal(s, w.snaps[i]) {
			fp.global = true
		}
	}
	// An opener's connections are its own: only it changes and reads them. The checkers'
	// per-member observations are written by the member and by the sender, which depend on
	// each other anyway (alwaysDependent); anyone else changing them is a global change.
	if !connsEqualBut(before.net.conns, w.net.conns, actor) {
		fp.global = true
	}
	if (!slices.Equal(before.members, w.obs.members) || before.rest != w.obs.rest) && actor != idxClientA && w.memberOf(actor) < 0 {
		fp.global = true
	}
	// The fault budget is shared by every fault step (faults.go): a step that spends it
	// commutes with none. Fault steps have no actor and get no footprint, so this only
	// guards against a future step that spends it.
	if before.net.faultsLeft != w.net.faultsLeft || before.net.harmed != w.net.harmed || before.net.lostEarly != w.net.lostEarly {
		fp.global = true
	}
	// A connection attempt reads the peer's end (does it listen there, is it closed) even
	// when it writes nothing on the leg (a refused attempt).
	readLeg := -1
	if c.Kind == ChooseItem {
		if it := before.net.bag[c.item]; it.kind == itConnect {
			if l, ok := w.legIdx[it.leg]; ok {
				readLeg = l
			}
		}
	}
	// Opening a link checks its trigger on the leg the opener answered (triggerHeld), where
	// a BYE received by the other end counts (byeRecv): the step reads that leg even when
	// it writes nothing there.
	var upRead []int
	for i := range w.net.legs {
		if i < len(before.net.legs) && before.net.legs[i].opener != w.net.legs[i].opener && w.net.legs[i].opener == actor {
			if up, ok := w.upLeg(actor, w.legNames[i]); ok && up != w.legNames[i] {
				if l, ok := w.legIdx[up]; ok {
					upRead = append(upRead, l)
				}
			}
		}
	}
	for i := range w.net.legs {
		var what uint16
		if i == readLeg || slices.Contains(upRead, i) {
			what = touchRead
		}
		if i >= len(before.net.legs) {
			what = touchClear
		} else {
			what |= legDiff(&before.net.legs[i], &w.net.legs[i], c.Kind == ChooseFrame && c.leg == i, c.dir)
		}
		if what != 0 {
			fp.legs = append(fp.legs, legTouch{leg: i, what: what})
		}
	}
}

// connsEqualBut reports whether two connection lists agree on the connections of every
// role other than r.
func connsEqualBut(a, b []connEntry, r int) bool {
	i, j := 0, 0
	for {
		for i < len(a) && a[i].role == r {
			i++
		}
		for j < len(b) && b[j].role == r {
			j++
		}
		if i == len(a) || j == len(b) {
			return i == len(a) && j == len(b)
		}
		if a[i] != b[j] {
			return false
		}
		i++
		j++
	}
}

func legDiff(o, n *legState, popped bool, popDir int) uint16 {
	var what uint16
	// Every field of legState is compared here: a field left out would make two steps that
	// both change it look commuting (TestLegDiffSeesEveryField changes each in turn).
	// offerSetup is written with the INVITE by the offerer end, answerSetup with the 200 by
	// the answerer end (the checkers record the a=setup sent, not received).
	if o.invites != n.invites || o.acksSent != n.acksSent || o.okRecv != n.okRecv || o.answerSDP != n.answerSDP || o.cancels != n.cancels ||
		o.offerSetup != n.offerSetup || o.finalRecv != n.finalRecv || o.downByeRecv != n.downByeRecv || o.msgSent != n.msgSent {
		what |= touchEnd0
	}
	if o.oks != n.oks || o.okSent != n.okSent || o.rejects != n.rejects || o.offerSDP != n.offerSDP || o.ackRecv != n.ackRecv || o.chunkRecv != n.chunkRecv ||
		o.answerSetup != n.answerSetup || o.upBye != n.upBye || o.hangUp != n.hangUp {
		what |= touchEnd1
	}
	for e := 0; e < 2; e++ {
		if o.closed[e] != n.closed[e] {
			// Closing an end may abort the link, clearing frames the peer appends later.
			what |= touchClear
		}
		// asked[e] is what the message end e received asked for: written by end e as it
		// takes a chunk, read by its own REPORTs and relays.
		if o.listen[e] != n.listen[e] || o.timer[e] != n.timer[e] || o.up[e] != n.up[e] ||
			!slices.Equal(o.received[e], n.received[e]) || o.asked[e] != n.asked[e] || o.seen[e] != n.seen[e] || o.failed[e] != n.failed[e] {
			what |= touchEnd0 << e
		}
	}
	if o.ends != n.ends || o.broken != n.broken || o.cut != n.cut || o.harmed != n.harmed || o.ackLost != n.ackLost {
		what |= touchEnds
	}
	// byeRecv (the answerer received a BYE) and byes (the offerer sent one) stay shared
	// fields: the trigger check of an opening reads byeRecv of its up leg (footprintOf).
	if o.established != n.established || o.opener != n.opener || o.conn != n.conn || o.frames != n.frames || o.byes != n.byes ||
		o.byeRecv != n.byeRecv {
		what |= touchShared
	}
	for d := 0; d < 2; d++ {
		oc, nc := o.chans[d], n.chans[d]
		k := 0
		if popped && popDir == d {
			k = 1
		}
		rest := oc[min(k, len(oc)):]
		switch {
		case len(nc) >= len(rest) && framesEqual(rest, nc[:len(rest)]):
			if k == 1 {
				what |= touchPop0 << d
			}
			if len(nc) > len(rest) {
				what |= touchPush0 << d
			}
		default:
			what |= touchClear
		}
	}
	return what
}

func framesEqual(a, b []frame) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		x.seq, y.seq = 0, 0
		if x != y {
			return false
		}
	}
	return true
}

// stringTable numbers the strings of network encodings for the workers of one search.
type stringTable struct {
	mu   sync.RWMutex
	ids  map[string]uint64
	strs []string
}

func newStringTable() *stringTable { return &stringTable{ids: map[string]uint64{}} }

// localStrings is one world's lock-free view of a stringTable: the numbers it has seen.
type localStrings struct {
	t    *stringTable
	ids  map[string]uint64
	strs []string
}

func (l *localStrings) intern(s string) uint64 {
	if id, ok := l.ids[s]; ok {
		return id
	}
	id := l.t.intern(s)
	l.ids[s] = id
	return id
}

func (l *localStrings) lookup(id uint64) (string, bool) {
	if id < uint64(len(l.strs)) && l.strs[id] != "" {
		return l.strs[id], true
	}
	s, ok := l.t.lookup(id)
	if ok {
		for uint64(len(l.strs)) <= id {
			l.strs = append(l.strs, "")
		}
		l.strs[id] = s
	}
	return s, ok
}

func (t *stringTable) intern(s string) uint64 {
	t.mu.RLock()
	id, ok := t.ids[s]
	t.mu.RUnlock()
	if ok {
		return id
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if id, ok := t.ids[s]; ok {
		return id
	}
	id = uint64(len(t.strs))
	t.ids[s] = id
	t.strs = append(t.strs, s)
	return id
}

func (t *stringTable) lookup(id uint64) (string, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if id >= uint64(len(t.strs)) {
		return "", false
	}
	return t.strs[id], true
}
