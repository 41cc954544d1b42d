package proptest

import (
	"bytes"
	"slices"
	"sort"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
)

// itemKind is the kind of one thing in flight.
type itemKind uint8

const (
	// itSIP is a SIP message between two roles; it crosses the SIP/IP core, which routed it.
	itSIP itemKind = iota
	// itConnect is a connection attempt (or the binding of a reused one) by an opener.
	itConnect
	// itFail tells one end of a link that the link is gone (the peer aborted, or a fault).
	itFail
)

// item is one SIP message, connection attempt or link failure in flight. SIP travels as
// an unordered bag: UDP and independent transactions give no order between messages.
type item struct {
	kind     itemKind
	from, to int
	leg      core.LegID
	ev       fsm.Event
	conn     core.ConnID
	reused   bool
	peer     core.SDP
	status   int
	// key is the item's canonical encoding; the bag is kept sorted by it.
	key []byte
	// seq orders items by when they were sent; it is not state, only the canonical
	// schedule of diagrams reads it.
	seq uint64
}

// frameKind is the kind of one MSRP frame on a link.
type frameKind uint8

const (
	fBind frameKind = iota
	fChunk
	fReport
	// fAck is the 200 response to the last SEND of the message: with the responses to the
	// SENDs before it (TCP keeps them in order), the receiving end took the whole message
	// (RFC 4975 §7.1.1). It travels ahead of any REPORT on the message (a driver hands its
	// machine a leg's responses before the REPORTs that follow them).
	fAck
)

// frame is one MSRP request on a link. A link is a TCP connection: frames in one
// direction arrive in order.
type frame struct {
	kind    frameKind
	chunk   int
	sum     uint32
	last    bool
	member  string
	outcome core.Outcome
	of      int
	conn    core.ConnID
	// asked is what a chunk's sender asked for (askSuccess, askFailure): the message's
	// Success-Report and Failure-Report headers, which relays copy.
	asked uint8
	seq   uint64 // as item.seq
}

// Report requests a message carries (RFC 4975 §7.1.2).
const (
	askSuccess uint8 = 1 << iota
	askFailure
)

// legState is everything about one leg: the network's view of its link (ends, frames in
// flight in each direction, who listens, timers) and what the checkers saw on its wire.
// Index 0 of each pair is the offerer end, 1 the answerer end; chans[0] flows from the
// offerer end to the answerer end.
type legState struct {
	ends        [2]int
	closed      [2]bool
	established bool
	// broken: the connection under the link broke; whatever is sent on it is lost.
	broken bool
	// cut: the network between the leg's ends is cut (a partition, a host gone without a
	// word): the link is broken, and every SIP message, connection attempt and link
	// failure of the leg is lost too, and neither end is told (faults.go).
	cut      bool
	opener   int
	conn     core.ConnID
	frames   int
	chans    [2][]frame
	listen   [2]string
	timer    [2]bool
	received [2][]uint32
	// asked is what the message received at each end asked for (askSuccess, askFailure).
	asked [2]uint8

	// Observations, written only by the end that sent or received what they count.
	invites, oks, acksSent, okRecv, rejects, cancels, byes int
	offerSDP, answerSDP                                    string
	offerSetup, answerSetup                                core.Setup
	ackRecv, okSent, chunkRecv, byeRecv                    bool
	up                                                     [2]bool
	// seen marks, per end, the after steps of the variant's order rules that end took
	// (bit i: orderCheck.after[i]); written only by the role at that end (order.go).
	seen [2]uint64

	// finalRecv: the offerer end received a final non-2xx response (faults.go reads it).
	finalRecv bool
	// failed marks the ends that learned their link failed (hostile.go reads it).
	failed [2]bool
	// upBye: the answerer end sent BYE (a member that hung up, a member or relay whose guard
	// gave the dialog up); downByeRecv: the offerer end received one. byes and byeRecv are
	// the other direction's.
	upBye, downByeRecv bool
	// hangUp: the answerer's user hung up (the member fault HangUp; once a run).
	hangUp bool
	// harmed: a fault step on this leg may fail the member it serves (faults.go, harm).
	harmed bool
	// ackLost: the ACK of the leg's 2xx was lost for good (ChooseLoseAck). It harms the
	// leg only once a guard gives up waiting (a timeout fires); a BYE that reaches the
	// answerer first ends the dialog as the ACK would have let it, and harms nothing.
	ackLost bool
	// msgSent: the offerer end handed its own message to the link (the sender's
	// SendMessage); a relay's chunks are not its own.
	msgSent bool
}

// byeSeen: a BYE was sent on the leg's dialog, by either end.
func (l *legState) byeSeen() bool { return l.byes > 0 || l.upBye }

// connEntry is one connection an opener opened: to which address, and whether it opened.
type connEntry struct {
	role    int
	conn    core.ConnID
	addr    string
	state   uint8
	tainted bool
}

type network struct {
	bag   []item
	legs  []legState
	conns []connEntry
	// faultsLeft is how many more fault steps this run may take (Config.FaultBudget at
	// the start); harmed says that one taken may fail members (a timer fired early, a
	// connection was refused or reset), where a duplicated message fails nobody.
	faultsLeft int
	harmed     bool
	// lostEarly says that one may keep the message from every member, which harmed alone
	// does not: a fault on the sender's legs before the relay at their far end held the
	// whole message and the ACK (harm, wholeAt), or an early guard on a member's leg. A
	// relay that holds both owes every member the rest of the delivery, whatever happens
	// upstream (end-down).
	lostEarly bool
}

// put adds an item to the bag, keeping the bag sorted by its encoding so that the choices
// of a state do not depend on the order things were sent in.
func (n *network) put(it item) {
	it.key = encodeItem(it)
	i := sort.Search(len(n.bag), func(i int) bool { return bytes.Compare(n.bag[i].key, it.key) >= 0 })
	n.bag = append(n.bag, item{})
	copy(n.bag[i+1:], n.bag[i:])
	n.bag[i] = it
}

func (n *network) take(i int) item {
	// In place: a world's bag is its own (cloneInto and loadNet copy into it).
	it := n.bag[i]
	copy(n.bag[i:], n.bag[i+1:])
	n.bag[len(n.bag)-1] = item{}
	n.bag = n.bag[:len(n.bag)-1]
	return it
}

// conn returns the entry of an opener's connection, or nil.
func (n *network) conn(role int, conn core.ConnID) *connEntry {
	for i := range n.conns {
		if n.conns[i].role == role && n.conns[i].conn == conn {
			return &n.conns[i]
		}
	}
	return nil
}

// cloneInto copies the network into dst. Slices inside legs are shared but clipped, so
// that a push on the copy reallocates instead of writing into the original.
func (n *network) cloneInto(dst *network) {
	dst.bag = append(dst.bag[:0], n.bag...)
	dst.legs = append(dst.legs[:0], n.legs...)
	for i := range dst.legs {
		l := &dst.legs[i]
		for d := 0; d < 2; d++ {
			l.chans[d] = slices.Clip(l.chans[d])
			l.received[d] = slices.Clip(l.received[d])
		}
	}
	dst.conns = append(dst.conns[:0], n.conns...)
	dst.faultsLeft, dst.harmed, dst.lostEarly = n.faultsLeft, n.harmed, n.lostEarly
}

// encodeItem gives an item a canonical encoding, for sorting and for state hashing.
func encodeItem(it item) []byte { return encodeItemAs(it, nil) }

// encodeEvent encodes the SIP events the network carries.
func encodeEvent(e *core.Enc, ev fsm.Event) {
	e.S(ev.Kind())
	switch x := ev.(type) {
	case fsm.InviteReceived:
		e.S(x.Target)
		e.S(x.From)
		e.SDP(x.Offer)
		e.Strings(x.Members)
	case fsm.OKReceived:
		e.SDP(x.Answer)
	case fsm.RejectReceived:
		e.I(x.Status)
		e.U(uint64(len(x.Outcomes)))
		for _, o := range x.Outcomes {
			e.S(o.Member)
			e.Outcome(o.Outcome)
		}
	}
}

func decodeItem(d *core.Dec) item {
	it := item{kind: itemKind(d.U()), from: d.I(), to: d.I(), leg: core.LegID(d.S())}
	switch it.kind {
	case itConnect:
		it.conn, it.reused, it.peer = core.ConnID(d.S()), d.Bool(), d.SDP()
	case itFail:
		it.status = d.I()
	case itSIP:
		it.ev = decodeEvent(d, it.leg)
	}
	return it
}

func decodeEvent(d *core.Dec, leg core.LegID) fsm.Event {
	switch kind := d.S(); kind {
	case "InviteReceived":
		return fsm.InviteReceived{Leg: leg, Target: d.S(), From: d.S(), Offer: d.SDP(), Members: d.Strings()}
	case "OKReceived":
		return fsm.OKReceived{Leg: leg, Answer: d.SDP()}
	case "RejectReceived":
		ev := fsm.RejectReceived{Leg: leg, Status: d.I()}
		n := d.U()
		for i := uint64(0); i < n && d.Err == nil; i++ {
			ev.Outcomes = append(ev.Outcomes, core.MemberOutcome{Member: d.S(), Outcome: d.Outcome()})
		}
		return ev
	case "AckReceived":
		return fsm.AckReceived{Leg: leg}
	case "CancelReceived":
		return fsm.CancelReceived{Leg: leg}
	case "ByeReceived":
		return fsm.ByeReceived{Leg: leg}
	}
	if d.Err == nil {
		d.Err = core.ErrSnapshot
	}
	return nil
}
