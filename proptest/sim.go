package proptest

import (
	"fmt"
	"slices"
	"sort"
	"strconv"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
)

// Connection states in network.connState.
const (
	connPending     uint8 = 0
	connEstablished uint8 = 1
	connFailed      uint8 = 2
)

// ChoiceKind says what a choice delivers.
type ChoiceKind uint8

// Choice kinds.
const (
	ChooseItem  ChoiceKind = iota // a SIP message, connection attempt or link failure
	ChooseFrame                   // the next MSRP frame of one direction of one link
	ChooseTimer                   // a guard timer expires (free when nothing else can happen; else a fault)
	// Fault steps (faults.go), offered while the run's fault budget lasts.
	ChooseDuplicate // a SIP message in flight is sent a second time (a retransmission)
	ChooseRefuse    // a connection attempt in flight is refused
	ChooseReset     // a link with frames in flight is reset: they are lost, both ends learn it
	ChooseCut       // the network of a leg is cut while frames are in flight: all is lost, and no end learns it (dir 0), or the link resets (dir 1: a host gone)
	ChooseLoseAck   // an ACK in flight is lost, and so is every ACK of the 2xx's retransmissions
	// A member configured to hang up (HangUp): its user's hang-up, an ordinary choice (the
	// fault is configuration), offered once, in any state from the INVITE's arrival on.
	ChooseHangUp
)

// Choice is one thing that can happen next. Choices of a state are listed in a canonical
// order, so that an index into them replays.
type Choice struct {
	Kind ChoiceKind
	item int
	// leg and dir (the frame's direction, or the timer's end) name a frame or a timer.
	leg, dir int
	// early marks a timer offered while other things can happen: a fault step.
	early bool
}

// Choices lists what can happen next.
func (w *World) Choices() []Choice { return w.choicesInto(nil) }

// choicesInto is Choices appending to out[:0], so that the explorer reuses one buffer.
func (w *World) choicesInto(out []Choice) []Choice {
	out = out[:0]
	for i, it := range w.net.bag {
		if it.kind == itConnect && it.reused {
			if c := w.net.conn(it.from, it.conn); c != nil && c.state == connPending {
				// A reused connection binds the session once the connection is open.
				continue
			}
		}
		if it.kind == itSIP {
			if _, ok := it.ev.(fsm.CancelReceived); ok && w.inviteInFlight(it.leg) {
				continue
			}
		}
		out = append(out, Choice{Kind: ChooseItem, item: i})
	}
	for i := range w.net.legs {
		for d := 0; d < 2; d++ {
			if len(w.net.legs[i].chans[d]) > 0 {
				out = append(out, Choice{Kind: ChooseFrame, leg: i, dir: d})
			}
		}
	}
	out = w.hangUpChoices(out)
	// A blind sender's guard is no fault but the end of its session (it is told nothing):
	// it fires when nothing else can happen, as every guard does with Timers.
	if blind := w.cfg.Sender == core.SenderBlind; len(out) == 0 && (w.cfg.Timers || blind) {
		for i := range w.net.legs {
			for d := 0; d < 2; d++ {
				if w.net.legs[i].timer[d] && (w.cfg.Timers || w.net.legs[i].ends[d] == idxClientA) {
					out = append(out, Choice{Kind: ChooseTimer, leg: i, dir: d})
				}
			}
		}
		return out
	}
	// Fault steps come after every other choice, so that a path without faults has the
	// same choice numbers as in a run without a fault budget.
	return w.faultChoices(out)
}

// choiceKey names a choice cheaply and stably: what it delivers, not where it is listed.
func (w *World) choiceKey(c Choice) string {
	switch c.Kind {
	case ChooseItem:
		return string(w.net.bag[c.item].key)
	case ChooseFrame:
		return "f" + strconv.Itoa(c.leg) + "/" + strconv.Itoa(c.dir)
	case ChooseDuplicate, ChooseRefuse, ChooseLoseAck:
		return "x" + strconv.Itoa(int(c.Kind)) + string(w.net.bag[c.item].key)
	case ChooseReset:
		return "r" + strconv.Itoa(c.leg)
	case ChooseCut:
		return "c" + strconv.Itoa(c.leg) + "/" + strconv.Itoa(c.dir)
	case ChooseHangUp:
		return "h" + strconv.Itoa(c.leg)
	}
	return "t" + strconv.Itoa(c.leg) + "/" + strconv.Itoa(c.dir)
}

// Describe renders a choice for traces.
func (w *World) Describe(c Choice) string {
	switch c.Kind {
	case ChooseItem:
		it := w.net.bag[c.item]
		return fmt.Sprintf("%s -> %s: %s", w.nameOf(it.from), w.nameOf(it.to), w.itemLabel(it))
	case ChooseFrame:
		le := &w.net.legs[c.leg]
		return fmt.Sprintf("%s -> %s: %s", w.names[le.ends[c.dir]], w.names[le.ends[1-c.dir]], frameLabel(le.chans[c.dir][0], w.legNames[c.leg]))
	case ChooseDuplicate, ChooseRefuse, ChooseLoseAck, ChooseReset, ChooseCut, ChooseHangUp:
		return w.describeFault(c)
	}
	if c.early {
		return fmt.Sprintf("%s: early timeout on %s (a fault)", w.names[w.net.legs[c.leg].ends[c.dir]], w.legNames[c.leg])
	}
	return fmt.Sprintf("%s: timeout on %s", w.names[w.net.legs[c.leg].ends[c.dir]], w.legNames[c.leg])
}

func (w *World) nameOf(i int) string {
	if i < 0 || i >= len(w.names) {
		return "nowhere"
	}
	return w.names[i]
}

func (w *World) itemLabel(it item) string {
	switch it.kind {
	case itConnect:
		verb := "open link"
		if it.reused {
			verb = "reuse connection"
		}
		h, _ := w.hopOf(it.leg)
		return fmt.Sprintf("%s %s (%s, conn %s)", verb, h, it.leg, it.conn)
	case itFail:
		return fmt.Sprintf("link failed %d (%s)", it.status, it.leg)
	}
	return sipLabel(it.ev) + " (" + string(it.leg) + ")"
}

func sipLabel(ev fsm.Event) string {
	switch x := ev.(type) {
	case fsm.InviteReceived:
		return "INVITE"
	case fsm.OKReceived:
		return "200 OK"
	case fsm.AckReceived:
		return "ACK"
	case fsm.RejectReceived:
		return strconv.Itoa(x.Status)
	case fsm.CancelReceived:
		return "CANCEL"
	case fsm.ByeReceived:
		return "BYE"
	}
	return ev.Kind()
}

func frameLabel(f frame, leg core.LegID) string {
	switch f.kind {
	case fBind:
		return "SEND (bind, " + string(leg) + ")"
	case fChunk:
		s := fmt.Sprintf("SEND chunk %d", f.chunk)
		if f.last {
			s += "$"
		}
		if f.asked&askSuccess != 0 {
			s += " Success-Report"
		}
		return s + " (" + string(leg) + ")"
	case fAck:
		return "200 OK, every SEND (" + string(leg) + ")"
	}
	if f.member == "" {
		return fmt.Sprintf("REPORT %s (%s)", f.outcome, leg)
	}
	return fmt.Sprintf("REPORT %s %s (%s)", f.member, f.outcome, leg)
}

// Duplicate puts a second copy of a SIP message in flight, as a UDP retransmission would.
// It reports false when the choice is not a SIP message.
func (w *World) Duplicate(c Choice) bool {
	if c.Kind != ChooseItem || w.net.bag[c.item].kind != itSIP {
		return false
	}
	it := w.net.bag[c.item]
	w.put(it)
	return true
}

// put sends an item, stamping it with the send order; on a cut leg it is lost. Only a
// fault step cuts a leg, so a run that took none skips the leg's lookup.
func (w *World) put(it item) {
	if w.net.faultsLeft < w.cfg.FaultBudget {
		if le := w.dialog(it.leg); le != nil && le.cut {
			return
		}
	}
	w.seq++
	it.seq = w.seq
	w.net.put(it)
}

// push sends a frame on one direction of a leg's link; on a broken link it is lost.
func (w *World) push(le *legState, dir int, f frame) {
	if le.broken {
		return
	}
	w.seq++
	f.seq = w.seq
	le.chans[dir] = append(le.chans[dir], f)
}

// Earliest picks the choice sent first: the canonical schedule of diagrams, which shows
// each message as soon as nothing sent before it is still in flight.
func (w *World) Earliest(choices []Choice) int {
	best, at := 0, ^uint64(0)
	for i, c := range choices {
		var s uint64
		switch c.Kind {
		case ChooseItem:
			s = w.net.bag[c.item].seq
		case ChooseFrame:
			s = w.net.legs[c.leg].chans[c.dir][0].seq
		case ChooseDuplicate, ChooseRefuse, ChooseLoseAck, ChooseReset, ChooseCut, ChooseHangUp:
			s = ^uint64(0)
		default:
			s = ^uint64(0) - 1
		}
		if s < at {
			best, at = i, s
		}
	}
	return best
}

// Step is one delivery, for traces and diagrams.
type Step struct {
	From, To string
	Label    string
	// Link marks a connection opening (drawn dashed, in the direction of initiative);
	// Media marks an MSRP frame; Note marks a timer or a dropped frame; Elided stands for
	// MSRP frames a diagram leaves out.
	Link, Media, Note, Elided bool
	// Violating marks the step a property broke at: a delivery, or what a role tried to
	// send in answer (which never went on the wire).
	Violating bool
}

// SetLog makes the world record every step into log.
func (w *World) SetLog(log *[]Step) { w.log = log }

func (w *World) record(s Step) {
	if w.log != nil {
		*w.log = append(*w.log, s)
	}
}

// Apply delivers one choice and checks the properties; it returns the first violation.
func (w *World) Apply(c Choice) *Violation {
	actor := w.actor(c)
	if v := w.apply1(c); v != nil {
		return v
	}
	if v := w.checkGuarded(); v != nil {
		return v
	}
	if actor >= 0 {
		if v := w.checkPrompt(actor); v != nil {
			return v
		}
	}
	return w.checkAckHeld()
}

func (w *World) apply1(c Choice) *Violation {
	switch c.Kind {
	case ChooseItem:
		it := w.net.take(c.item)
		switch it.kind {
		case itSIP:
			if _, bye := it.ev.(fsm.ByeReceived); bye && w.endOf(it.to, it.leg) == 0 && w.leg(it.leg).okRecv == 0 {
				// The caller has no dialog yet: its 2xx has not arrived. Its SIP layer
				// answers the BYE 481 (RFC 3261 §12.2.2; runtime/sipx does) and the machine
				// never sees it. Only a callee whose guard gave up on the ACK sends one so
				// early, and its dialog is over whatever the answer.
				w.record(Step{From: w.names[it.from], To: w.names[it.to], Label: "BYE, answered 481: no dialog yet", Note: true})
				return nil
			}
			w.record(Step{From: w.names[it.from], To: w.names[it.to], Label: sipLabel(it.ev)})
			w.observeSIP(it)
			pre := w.beforeSIP(it)
			if v := w.step(it.to, it.ev); v != nil {
				return v
			}
			return w.afterSIP(it, pre)
		case itConnect:
			return w.connect(it)
		case itFail:
			w.record(Step{From: w.names[it.from], To: w.names[it.to], Label: fmt.Sprintf("link failed (%d)", it.status), Note: true})
			return w.step(it.to, fsm.LinkFailed{Leg: it.leg, Status: it.status})
		}
	case ChooseFrame:
		return w.frame(c.leg, c.dir)
	case ChooseTimer:
		le := &w.net.legs[c.leg]
		le.timer[c.dir] = false
		r, leg := le.ends[c.dir], w.legNames[c.leg]
		label := "timeout " + string(leg)
		if c.early {
			// A guard that fires while messages are still in flight: they were slower
			// than the guard's time-out, a fault.
			w.net.faultsLeft--
			w.net.harmed = true
			if l := w.legNames[c.leg]; l != w.hopLeg(1) && l != w.hopLeg(2) || !w.wholeAt(l) {
				w.net.lostEarly = true
			}
			label = "early " + label
		}
		// A lost ACK that no BYE made up for harms its leg now: some guard gave up (not
		// always the answerer's own: a relay upstream of it may wait on it too). The step
		// reads other legs, which the reduction sees as written (legDiff): and an on-time
		// timer fires only when nothing else can, an early one is a fault step.
		for i := range w.net.legs {
			if l := &w.net.legs[i]; l.ackLost {
				l.ackLost = false
				w.harm(w.legNames[i])
			}
		}
		w.record(Step{From: w.names[r], To: w.names[r], Label: label, Note: true})
		before := append([]byte(nil), w.snaps[r]...)
		pending := w.upPending(r, leg)
		if v := w.step(r, fsm.Timeout{Leg: leg}); v != nil {
			return v
		}
		if v := w.checkTimerC(r, leg, pending); v != nil {
			return v
		}
		return w.checkGuardFired(r, c.leg, c.dir, before)
	case ChooseDuplicate, ChooseRefuse, ChooseLoseAck, ChooseReset, ChooseCut:
		return w.applyFault(c)
	case ChooseHangUp:
		return w.hangUp(c)
	}
	return nil
}

func (w *World) observeSIP(it item) {
	lo := w.leg(it.leg)
	switch x := it.ev.(type) {
	case fsm.InviteReceived:
		lo.offerSDP = x.Offer.Path
	case fsm.OKReceived:
		lo.okRecv++
		lo.answerSDP = x.Answer.Path
	case fsm.AckReceived:
		lo.ackRecv = true
	case fsm.ByeReceived:
		if w.endOf(it.to, it.leg) == 0 {
			lo.downByeRecv = true
		} else {
			lo.byeRecv = true
			lo.ackLost = false // the BYE ends the dialog the lost ACK would have confirmed
		}
	case fsm.RejectReceived:
		lo.finalRecv = true
	}
}

// endOf says which end of a leg a role is: 0 the offerer, 1 the answerer.
func (w *World) endOf(role int, leg core.LegID) int {
	if le := w.dialog(leg); le != nil && le.ends[0] == role {
		return 0
	}
	return 1
}

func (w *World) refused(leg core.LegID) bool {
	for m, f := range w.cfg.Faults {
		if f.Kind == RefuseHop3 && leg == w.memberLeg(m, 3) || f.Kind == RefuseHop4 && leg == w.memberLeg(m, 4) {
			return true
		}
	}
	return false
}

func (w *World) connect(it item) *Violation {
	return w.connectOrRefuse(it, false)
}

// connectOrRefuse delivers a connection attempt; fault refuses it (faults.go), as a peer
// that does not listen or a network that drops the SYN would.
func (w *World) connectOrRefuse(it item, fault bool) *Violation {
	le := w.dialog(it.leg)
	end := w.endOf(it.from, it.leg)
	h, _ := w.hopOf(it.leg)
	if le.closed[end] {
		w.record(Step{From: w.names[it.from], To: w.nameOf(it.to), Label: "connection abandoned " + string(it.leg), Note: true})
		return nil
	}
	p := it.to
	c := w.net.conn(it.from, it.conn)
	ok := p >= 0 && le.ends[1-end] == p && le.listen[1-end] == it.peer.Path && !le.closed[1-end]
	refused := !it.reused && (w.refused(it.leg) || fault) || c.state == connFailed
	if !ok || refused {
		status := 481
		if refused {
			status = 408
			c.state, c.tainted = connFailed, true
		}
		w.record(Step{From: w.names[it.from], To: w.nameOf(p), Label: fmt.Sprintf("%s: connection failed (%d)", h, status), Link: true})
		if v := w.step(it.from, fsm.LinkFailed{Leg: it.leg, Status: status}); v != nil || !refused {
			return v
		}
		// A connection that cannot be opened fails every session waiting to reuse it, at
		// once: the opener learns it from the one connection attempt.
		for i := 0; i < len(w.net.bag); {
			q := w.net.bag[i]
			if q.kind != itConnect || !q.reused || q.from != it.from || q.conn != it.conn {
				i++
				continue
			}
			w.net.take(i)
			if v := w.step(q.from, fsm.LinkFailed{Leg: q.leg, Status: status}); v != nil {
				return v
			}
		}
		return nil
	}
	if !it.reused {
		c.state = connEstablished
	}
	le.established = true
	label := fmt.Sprintf("%s: open link", h)
	if it.reused {
		label = fmt.Sprintf("%s: reuse connection %s", h, it.conn)
	}
	w.record(Step{From: w.names[it.from], To: w.names[p], Label: label, Link: true})
	w.push(le, end, frame{kind: fBind, conn: it.conn})
	le.up[end] = true
	return w.step(it.from, fsm.LinkUp{Leg: it.leg, Conn: it.conn, Reused: it.reused})
}

func (w *World) frame(li, dir int) *Violation {
	le := &w.net.legs[li]
	leg := w.legNames[li]
	f := le.chans[dir][0]
	le.chans[dir] = le.chans[dir][1:]
	dest := 1 - dir
	from, to := le.ends[dir], le.ends[dest]
	if le.closed[dest] {
		w.record(Step{From: w.names[from], To: w.names[to], Label: "dropped " + frameLabel(f, leg), Media: true, Note: true})
		// A SEND for a session its receiver closed is answered 481 (RFC 4975 §7.1.1,
		// the session does not exist) when its sender asked for responses: the sender's
		// transaction fails, and its end learns the link failed, once.
		if f.kind == fChunk && f.asked&askFailure != 0 && !le.closed[dir] && !le.failed[dir] && !w.failQueued(to, from, leg) {
			w.put(item{kind: itFail, from: to, to: from, leg: leg, status: 481})
		}
		return nil
	}
	w.record(Step{From: w.names[from], To: w.names[to], Label: frameLabel(f, leg), Media: true})
	var v *Violation
	switch f.kind {
	case fBind:
		le.up[dest] = true
		v = w.step(to, fsm.LinkUp{Leg: leg, Conn: f.conn})
	case fChunk:
		if got := len(le.received[dest]); f.chunk != got+1 {
			return &Violation{PropDelivery, fmt.Sprintf("%s received chunk %d on %s after %d chunks", w.names[to], f.chunk, leg, got)}
		}
		le.received[dest] = append(le.received[dest], f.sum)
		le.asked[dest] = f.asked
		if dest == 1 {
			le.chunkRecv = true
		}
		if f.last && f.asked&askFailure != 0 {
			// The receiving end's MSRP stack answers the last SEND with 200 as it takes it
			// (RFC 4975 §7.1.1: only Failure-Report: yes earns 200s).
			w.push(le, dest, frame{kind: fAck})
		}
		// A member given the last chunk of a message that asks for success REPORTs owes
		// one in this step: count those it had queued before.
		owed := -1
		if f.last && f.asked&askSuccess != 0 && w.memberOf(to) >= 0 {
			owed = successReports(le.chans[dest])
		}
		v = w.step(to, fsm.SendReceived{Leg: leg, Chunk: f.chunk, Last: f.last,
			SuccessReport: f.asked&askSuccess != 0, FailureReport: f.asked&askFailure != 0})
		if v == nil && owed >= 0 {
			v = w.checkSuccessReport(to, leg, dest, owed)
		}
	case fAck:
		v = w.step(to, fsm.MessageAcked{Leg: leg})
	case fReport:
		v = w.step(to, fsm.ReportReceived{Leg: leg, Member: f.member, Outcome: f.outcome, Of: f.of})
	}
	if v != nil {
		return v
	}
	le = &w.net.legs[li]
	le.frames++
	for m, fl := range w.cfg.Faults {
		if fl.Kind == BreakHop4 && leg == w.memberLeg(m, 4) && le.frames == fl.After {
			w.breakLink(leg, true)
		}
	}
	return nil
}

// breakLink cuts a link: frames in flight are lost and, with tell, both ends learn it
// failed (a reset); without, neither does (a network cut, faults.go).
func (w *World) breakLink(leg core.LegID, tell bool) {
	le := w.dialog(leg)
	le.chans[0], le.chans[1] = nil, nil
	le.broken = true
	if c := w.net.conn(le.opener, le.conn); c != nil {
		c.tainted = true
	}
	for end := 0; end < 2 && tell; end++ {
		if !le.closed[end] {
			w.put(item{kind: itFail, from: le.ends[1-end], to: le.ends[end], leg: leg, status: 408})
		}
	}
}

// step feeds an event to a role and carries out what it returns.
func (w *World) step(i int, ev fsm.Event) *Violation {
	if v := w.orderStep(i, ev.Kind(), ev.EventLeg()); v != nil {
		return v
	}
	var onward, live, delivering []int
	switch x := ev.(type) {
	case fsm.LinkFailed:
		onward = w.onwardOpen(i, x.Leg)
		if le := w.dialog(x.Leg); le != nil {
			le.failed[w.endOf(i, x.Leg)] = true
		}
	case fsm.Timeout:
		// A relay's guard on the leg it answered gives that link up: the rest of the
		// message will not come either.
		onward = w.onwardOpen(i, x.Leg)
		live = w.onwardLive(i, x.Leg)
		// With the whole message there, it owes the next hops the rest of the delivery.
		delivering = w.onwardDelivering(i, x.Leg)
	case fsm.ByeReceived:
		// So does a BYE from upstream before the whole message arrived: the session it
		// relays is over, and the rest of the message will not come.
		live = w.onwardLive(i, x.Leg)
	}
	w.guarded = ""
	if t, ok := ev.(fsm.Timeout); ok {
		w.guarded = t.Leg
	}
	acts, err := w.roles[i].Step(ev)
	w.snaps[i] = w.roles[i].Snapshot(w.snaps[i][:0])
	if w.tap != nil {
		w.tap(i, ev, acts)
	}
	for _, a := range acts {
		if v := w.apply(i, a); v != nil {
			w.recordAttempt(i, a)
			return v
		}
	}
	if err != nil {
		return &Violation{PropCompleteness, fmt.Sprintf("%s, given %s: %v", w.names[i], ev.Kind(), err)}
	}
	if v := w.checkByeLetsGo(i, acts); v != nil {
		return v
	}
	if v := w.checkGaveUpUnsent(i); v != nil {
		return v
	}
	if v := w.checkGaveUpStops(i, acts); v != nil {
		return v
	}
	if len(onward) > 0 {
		if v := w.checkAbortOnward(i, ev.EventLeg(), onward); v != nil {
			return v
		}
	}
	if len(live) > 0 {
		return w.checkEndsOnward(i, ev, live)
	}
	if len(delivering) > 0 {
		return w.checkKeepsDelivering(i, ev.EventLeg(), delivering)
	}
	return nil
}

// apply carries out one action of role r on the simulated network.
func (w *World) apply(r int, a fsm.Action) *Violation {
	leg := a.ActionLeg()
	if v := w.orderStep(r, a.Kind(), leg); v != nil {
		return v
	}
	switch x := a.(type) {
	case core.Refuse:
		return &Violation{PropProtocol, fmt.Sprintf("%s refused %s on leg %s in state %s/%s: %s", w.names[r], x.Event, x.Leg, x.Machine, x.State, x.Reason)}
	case fsm.SendInvite, fsm.SendOK, fsm.SendReject, fsm.SendAck, fsm.SendCancel, fsm.SendBye:
		return w.sendSIP(r, a)
	case fsm.AcceptLink:
		if v := w.checkEnded(r, leg, "accepted"); v != nil {
			return v
		}
		if v := w.checkListen(r, leg); v != nil {
			return v
		}
		w.leg(leg).listen[w.endOf(r, leg)] = x.Local.Path
	case fsm.OpenLink:
		return w.open(r, leg, x.Peer, x.Conn, false)
	case fsm.ReuseLink:
		return w.open(r, leg, x.Peer, x.Conn, true)
	case fsm.CloseLink:
		w.closeEnd(r, leg, false)
	case fsm.AbortLink:
		w.closeEnd(r, leg, true)
	case fsm.SendMessage:
		le, end := w.leg(leg), w.endOf(r, leg)
		le.msgSent = true
		// What the transmitter asks for (RFC 4975 §7.1.2): cpmlink's client success and
		// failure REPORTs, the foreign clients that hang up after their last 200 failure
		// reports only (and so the 200s), a blind one nothing (Failure-Report: no).
		var asked uint8
		switch w.cfg.Sender {
		case core.SenderWaits:
			asked = askSuccess | askFailure
		case core.SenderBlind:
		default:
			asked = askFailure
		}
		for k := 1; k <= w.cfg.Chunks; k++ {
			w.push(le, end, frame{kind: fChunk, chunk: k, sum: chunkSum(k), last: k == w.cfg.Chunks, asked: asked})
		}
	case fsm.RelayChunk:
		upEnd := w.endOf(r, x.From)
		recv, asked := w.leg(x.From).received[upEnd], w.leg(x.From).asked[upEnd]
		le, end := w.leg(leg), w.endOf(r, leg)
		for k := x.First; k <= x.Last; k++ {
			if k < 1 || k > len(recv) {
				return &Violation{PropDelivery, fmt.Sprintf("%s relayed chunk %d onto %s, but received %d chunks on %s", w.names[r], k, leg, len(recv), x.From)}
			}
			// The Success-Report travels as the sender set it; the Failure-Report is each
			// hop's own: a relay asks its next hop for the 200s it builds the member's
			// outcome from (§7.1.1), whatever its client asked of it (runtime's relay).
			w.push(le, end, frame{kind: fChunk, chunk: k, sum: recv[k-1], last: k == x.Last && x.Final, asked: asked | askFailure})
		}
	case fsm.Deliver:
		m := w.memberOf(r)
		recv := w.leg(leg).received[w.endOf(r, leg)]
		mo := &w.obs.members[m]
		switch {
		case x.Chunk != mo.next:
			return &Violation{PropDelivery, fmt.Sprintf("member %s stored chunk %d, expected chunk %d", w.cfg.MemberURI(m), x.Chunk, mo.next)}
		case x.Chunk > len(recv) || recv[x.Chunk-1] != chunkSum(x.Chunk):
			return &Violation{PropDelivery, fmt.Sprintf("member %s stored chunk %d with the wrong content", w.cfg.MemberURI(m), x.Chunk)}
		case x.Last != (x.Chunk == w.cfg.Chunks):
			return &Violation{PropDelivery, fmt.Sprintf("member %s saw the end of the message at chunk %d of %d", w.cfg.MemberURI(m), x.Chunk, w.cfg.Chunks)}
		}
		mo.next++
	case fsm.SendReport:
		if v := w.checkReport(r, leg, x.Outcome); v != nil {
			return v
		}
		if v := w.checkReportAfterSend(r, leg); v != nil {
			return v
		}
		le, end := w.leg(leg), w.endOf(r, leg)
		w.push(le, end, frame{kind: fReport, member: x.Member, outcome: x.Outcome, of: x.Of})
	case fsm.ReportStatus:
		if v := w.checkReport(r, leg, x.Outcome); v != nil {
			return v
		}
		if v := w.checkWholeBeforeReport(r, leg, x.Outcome); v != nil {
			return v
		}
		if v := w.checkReportAfterSend(r, leg); v != nil {
			return v
		}
		le, end := w.leg(leg), w.endOf(r, leg)
		w.push(le, end, frame{kind: fReport, outcome: x.Outcome})
	case fsm.SetupOverridden:
		return w.checkOverridden(r, leg, x.Opens)
	case fsm.StartTimer:
		w.leg(leg).timer[w.endOf(r, leg)] = true
	case fsm.StopTimer:
		w.leg(leg).timer[w.endOf(r, leg)] = false
	case fsm.Result:
		m := -1
		for i := 0; i < w.cfg.Members; i++ {
			if w.cfg.MemberURI(i) == x.Member {
				m = i
			}
		}
		if m < 0 {
			return &Violation{PropOutcome, fmt.Sprintf("the sender learned the outcome of %s, who is not a member", x.Member)}
		}
		if x.Outcome.Kind == core.Delivered && w.obs.members[m].next != w.cfg.Chunks+1 {
			return &Violation{PropOutcome, fmt.Sprintf("the sender was told %s has the message; it holds %d of %d chunks", x.Member, w.obs.members[m].next-1, w.cfg.Chunks)}
		}
		w.obs.members[m].result = x.Outcome
	case fsm.Fail:
		w.obs.rest = core.FailedOutcome(x.Status)
	}
	return nil
}

func (w *World) sendSIP(r int, a fsm.Action) *Violation {
	if v := w.checkSIP(r, a); v != nil {
		return v
	}
	leg := a.ActionLeg()
	lo := w.leg(leg)
	other := func() int {
		if lo.ends[0] < 0 {
			return -1
		}
		if lo.ends[0] == r {
			return lo.ends[1]
		}
		return lo.ends[0]
	}
	var ev fsm.Event
	switch x := a.(type) {
	case fsm.SendInvite:
		to, ok := w.route(r, x.Target)
		if !ok {
			return &Violation{PropProtocol, fmt.Sprintf("%s sent an INVITE to %s, which the SIP/IP core cannot route", w.names[r], x.Target)}
		}
		lo.ends = [2]int{r, to}
		lo.invites++
		lo.offerSetup = x.Offer.Setup
		if v := w.checkSetup(r, leg, x.Offer.Setup, false); v != nil {
			return v
		}
		ev = fsm.InviteReceived{Leg: leg, Target: x.Target, From: x.From, Offer: x.Offer, Members: x.Members}
	case fsm.SendOK:
		lo.oks++
		lo.okSent = true
		lo.answerSetup = x.Answer.Setup
		if v := w.checkSetup(r, leg, x.Answer.Setup, true); v != nil {
			return v
		}
		ev = fsm.OKReceived{Leg: leg, Answer: x.Answer}
	case fsm.SendReject:
		lo.rejects++
		ev = fsm.RejectReceived{Leg: leg, Status: x.Status, Outcomes: x.Outcomes}
	case fsm.SendAck:
		lo.acksSent++
		ev = fsm.AckReceived{Leg: leg}
	case fsm.SendCancel:
		lo.cancels++
		ev = fsm.CancelReceived{Leg: leg}
	case fsm.SendBye:
		if w.endOf(r, leg) == 0 {
			lo.byes++
		} else {
			lo.upBye = true
		}
		ev = fsm.ByeReceived{Leg: leg}
	}
	to := other()
	if to < 0 {
		return &Violation{PropSIPOrder, fmt.Sprintf("%s sent %s on leg %s, which has no dialog", w.names[r], a.Kind(), leg)}
	}
	w.put(item{kind: itSIP, from: r, to: to, leg: leg, ev: ev})
	return nil
}

func (w *World) open(r int, leg core.LegID, peer core.SDP, conn core.ConnID, reused bool) *Violation {
	if v := w.checkOpen(r, leg, peer, conn, reused); v != nil {
		return v
	}
	if v := w.checkEnded(r, leg, "opened"); v != nil {
		return v
	}
	le := w.leg(leg)
	le.opener, le.conn = r, conn
	if !reused {
		// Kept sorted, so that the order links opened in does not make states differ.
		ce := connEntry{role: r, conn: conn, addr: peer.Addr()}
		i := sort.Search(len(w.net.conns), func(i int) bool {
			c := w.net.conns[i]
			return c.role > r || c.role == r && c.conn >= conn
		})
		w.net.conns = slices.Insert(w.net.conns, i, ce)
	}
	to, ok := w.byHost(peer.Host)
	if !ok {
		to = -1
	}
	w.put(item{kind: itConnect, from: r, to: to, leg: leg, conn: conn, reused: reused, peer: peer})
	return nil
}

// closeEnd closes one end of a link; an abort also tells the other end it failed.
func (w *World) closeEnd(r int, leg core.LegID, abort bool) {
	le := w.dialog(leg)
	if le == nil {
		return
	}
	end := w.endOf(r, leg)
	le.listen[end] = ""
	if le.closed[end] {
		return
	}
	le.closed[end] = true
	if abort {
		le.chans[0], le.chans[1] = nil, nil
		if le.established && !le.closed[1-end] {
			w.put(item{kind: itFail, from: r, to: le.ends[1-end], leg: leg, status: 408})
		}
	}
}
