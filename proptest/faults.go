package proptest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
)

// Faults in the exhaustive search (docs/architecture.md, "Faults"). A run has a budget of
// k faults. Member faults (a decline with a chosen status, no answer) are configuration:
// FaultConfigs lists one configuration per way of spending part of the budget on them, as
// rapid draws them. The rest of the budget is spent by fault steps, which the search
// offers in every state after the ordinary choices, while the budget lasts:
//
//   - a guard timer that fires while messages are still in flight (a peer slower than the
//     guard), on every side whose timer is armed; the sender's own CANCEL is this step on
//     its INVITE's guard, the only way the spec lets a sender give up;
//   - a 2xx in flight sent a second time (the UAS's retransmission, RFC 3261 §13.3.1.4);
//   - an ACK in flight lost, and with it the ACK of every retransmission of its 2xx: the
//     UAS's 2xx transaction times out (RFC 3261 §13.3.1.4) while the UAC believes the
//     dialog confirmed, and only the UAS's guard ends the wait (one lost ACK that a
//     retransmission repairs is the duplicated 2xx above, whose ACK arrives);
//   - a connection attempt in flight refused;
//   - a link with a SEND chunk in flight reset: the frames in flight are lost and both
//     ends learn it;
//   - the network between a leg's ends cut while a frame is in flight on its link (a
//     partition): from then on everything between them on the leg is lost, SIP and MSRP,
//     and neither end learns it; or one end's host gone: the same, but the link resets
//     and both ends learn that. Only guard timers end the waits either leaves.
//
// Timers still fire for free when nothing else can happen. Fault steps step no single
// role (actor -1): the sleep sets treat them as dependent on every step, and never put
// them to sleep; the budget and whether a fault harmed the run are part of the state, and
// name no instance, so the symmetry reduction carries them as they are.

// faultChoices appends the fault steps the state offers while the budget lasts.
func (w *World) faultChoices(out []Choice) []Choice {
	if w.net.faultsLeft <= 0 || len(out) == 0 {
		return out
	}
	for i := range w.net.legs {
		for d := 0; d < 2; d++ {
			if w.net.legs[i].timer[d] {
				out = append(out, Choice{Kind: ChooseTimer, leg: i, dir: d, early: true})
			}
		}
	}
	for i, it := range w.net.bag {
		// Equal items sit side by side in the bag (it is sorted): one of them stands for all.
		if i > 0 && bytes.Equal(w.net.bag[i-1].key, it.key) {
			continue
		}
		switch {
		case it.kind == itSIP && retransmitted(it.ev):
			out = append(out, Choice{Kind: ChooseDuplicate, item: i})
		case it.kind == itSIP && isAck(it.ev):
			out = append(out, Choice{Kind: ChooseLoseAck, item: i})
		case it.kind == itConnect && !it.reused:
			if c := w.net.conn(it.from, it.conn); c != nil && c.state == connPending {
				out = append(out, Choice{Kind: ChooseRefuse, item: i})
			}
		}
	}
	for i := range w.net.legs {
		if le := &w.net.legs[i]; le.established && !le.broken && (chunkInFlight(le.chans[0]) || chunkInFlight(le.chans[1])) {
			out = append(out, Choice{Kind: ChooseReset, leg: i})
		}
	}
	for i := range w.net.legs {
		if le := &w.net.legs[i]; le.established && !le.broken && (len(le.chans[0]) > 0 || len(le.chans[1]) > 0) {
			if w.partitionable(i) {
				out = append(out, Choice{Kind: ChooseCut, leg: i})
			}
			out = append(out, Choice{Kind: ChooseCut, leg: i, dir: 1})
		}
	}
	return out
}

// retransmitted says which SIP messages the search duplicates: the 2xx, which the UAS core
// itself retransmits until the ACK arrives (RFC 3261 §13.3.1.4), so that every UAC meets a
// 2xx after its ACK. Requests and non-2xx responses are retransmitted by the transaction
// layer, which absorbs the copies (§17); the machines' cells for them are covered by the
// fault-free search's reordering.
func retransmitted(ev fsm.Event) bool {
	_, ok := ev.(fsm.OKReceived)
	return ok
}

// isAck: the ACK of a 2xx (the model's only ACK; a non-2xx's ACK stays in the transaction
// layer, RFC 3261 §17.1.1.3).
func isAck(ev fsm.Event) bool {
	_, ok := ev.(fsm.AckReceived)
	return ok
}

// chunkInFlight: a reset is "mid-message" when a SEND chunk is on the wire.
func chunkInFlight(fs []frame) bool {
	for _, f := range fs {
		if f.kind == fChunk {
			return true
		}
	}
	return false
}

// inviteInFlight reports whether the INVITE of a leg is still in flight. A CANCEL waits
// for it: RFC 3261 §9.1 lets a UAC (or a proxy's client transaction, §16.10) send CANCEL
// only after a provisional response, which the next hop sends on receiving the INVITE (the
// model leaves 1xx out; runtime/sipx holds the CANCEL until one arrives), so a CANCEL
// never overtakes its INVITE.
func (w *World) inviteInFlight(leg core.LegID) bool {
	for _, it := range w.net.bag {
		if it.kind == itSIP && it.leg == leg {
			if _, ok := it.ev.(fsm.InviteReceived); ok {
				return true
			}
		}
	}
	return false
}

// applyFault takes one fault step.
func (w *World) applyFault(c Choice) *Violation {
	w.net.faultsLeft--
	switch c.Kind {
	case ChooseDuplicate:
		it := w.net.bag[c.item]
		w.record(Step{From: w.names[it.from], To: w.names[it.to], Label: "duplicated " + sipLabel(it.ev), Note: true})
		w.put(it)
		return nil
	case ChooseRefuse:
		it := w.net.take(c.item)
		w.harm(it.leg)
		return w.connectOrRefuse(it, true)
	case ChooseLoseAck:
		it := w.net.take(c.item)
		w.record(Step{From: w.names[it.from], To: w.names[it.to], Label: "ACK lost (" + string(it.leg) + ")", Note: true})
		if le := w.dialog(it.leg); le != nil {
			le.ackLost = true
		}
	case ChooseReset:
		leg := w.legNames[c.leg]
		le := &w.net.legs[c.leg]
		w.record(Step{From: w.names[le.ends[0]], To: w.names[le.ends[1]], Label: "link reset " + string(leg), Note: true})
		w.harm(leg)
		w.breakLink(leg, true)
	case ChooseCut:
		leg := w.legNames[c.leg]
		le := &w.net.legs[c.leg]
		label := "network cut " + string(leg)
		if c.dir == 1 {
			label = "host gone " + string(leg)
		}
		w.record(Step{From: w.names[le.ends[0]], To: w.names[le.ends[1]], Label: label, Note: true})
		w.harm(leg)
		w.cutLeg(c.leg, c.dir == 1)
	}
	return nil
}

// partitionable says where the search may cut the network silently (a partition: nobody
// is told). A host gone, whose connections reset, is offered on every hop: each end then
// learns its link failed, and a relay whose upstream is gone ends the session on its
// guard. A partition is offered between a PF-B and its member at any time, and on the
// hops upstream of it while the message is not whole at the hop's answerer: a relay then
// waits, guarded, for the rest (its link is up in its own eyes), for an ACK that may be
// lost, and PF-A for the CF to take the message. Once a relay has the whole message and
// has passed it on, it waits only for the BYE, and nothing but a failed link tells it
// that none will come: a partition that lasts becomes one when TCP keepalive gives up
// (Go's default on every connection: 15 s idle, then 9 probes 15 s apart), which the
// host-gone flavour stands for. RFC 4028's session timers would bound that wait in SIP
// itself; docs/architecture.md, "Faults".
func (w *World) partitionable(i int) bool {
	h, ok := w.hopOf(w.legNames[i])
	return ok && (h == fsm.NumHops-1 || len(w.net.legs[i].received[1]) < w.cfg.Chunks)
}

// cutLeg cuts the network between a leg's ends: what is in flight between them is lost,
// and so is what either sends the other from now on (put and push drop it). With gone,
// one end's host is gone rather than the path: the connection is reset (its kernel, or
// TCP keepalive, tells both ends, as a reset does), and nothing more comes over SIP.
func (w *World) cutLeg(i int, gone bool) {
	leg := w.legNames[i]
	w.breakLink(leg, gone)
	w.net.legs[i].cut = true
	for j := 0; j < len(w.net.bag); {
		if it := w.net.bag[j]; it.leg == leg && !(gone && it.kind == itFail) {
			w.net.take(j)
			continue
		}
		j++
	}
}

// harm notes a fault that may fail members: on the sender's legs every member, on a
// member's hop3 or hop4 that member (quiescent's faulty), whose other checks still hold.
// On the sender's legs it may keep the message from them only while the relay at the
// leg's far end still needs something from upstream (wholeAt, lostEarly).
func (w *World) harm(leg core.LegID) {
	if leg == w.hopLeg(1) || leg == w.hopLeg(2) {
		w.net.harmed = true
		w.net.lostEarly = w.net.lostEarly || !w.wholeAt(leg)
		return
	}
	if le := w.dialog(leg); le != nil {
		le.harmed = true
	}
}

// wholeAt: the answerer of leg (a relay, on the sender's legs) has received every chunk
// and the ACK: it needs nothing more from upstream to deliver the message. Before the
// ACK it may not move on (it ACKs downstream only after the upstream ACK, S106/S111),
// and a guard downstream may rightly end the session first.
func (w *World) wholeAt(leg core.LegID) bool {
	le := w.dialog(leg)
	return le != nil && le.ackRecv && len(le.received[1]) >= w.cfg.Chunks
}

// memberHarmed: a fault step harmed one of member m's own legs.
func (w *World) memberHarmed(m int) bool {
	for _, l := range []core.LegID{w.memberLeg(m, 3), w.memberLeg(m, 4)} {
		if le := w.dialog(l); le != nil && le.harmed {
			return true
		}
	}
	return false
}

func (w *World) describeFault(c Choice) string {
	switch c.Kind {
	case ChooseDuplicate:
		it := w.net.bag[c.item]
		return fmt.Sprintf("duplicate %s -> %s: %s", w.nameOf(it.from), w.nameOf(it.to), w.itemLabel(it))
	case ChooseRefuse:
		it := w.net.bag[c.item]
		return fmt.Sprintf("refuse %s -> %s: %s", w.nameOf(it.from), w.nameOf(it.to), w.itemLabel(it))
	case ChooseLoseAck:
		it := w.net.bag[c.item]
		return fmt.Sprintf("lose %s -> %s: %s, and the ACK of every retransmitted 2xx", w.nameOf(it.from), w.nameOf(it.to), w.itemLabel(it))
	}
	if c.Kind == ChooseHangUp {
		return fmt.Sprintf("%s hangs up on %s (a member fault)", w.names[w.net.legs[c.leg].ends[1]], w.cfg.LegName(w.legNames[c.leg]))
	}
	if c.Kind == ChooseCut && c.dir == 1 {
		return "the host at one end of " + w.cfg.LegName(w.legNames[c.leg]) + " is gone (the link resets, SIP is lost)"
	}
	if c.Kind == ChooseCut {
		return "cut the network of " + w.cfg.LegName(w.legNames[c.leg])
	}
	return "reset the link of " + w.cfg.LegName(w.legNames[c.leg])
}

// hangUpChoices offers, for each member configured to hang up, its user's hang-up, once,
// in any state from the INVITE's arrival on: its machine ends a confirmed dialog (RFC 3261
// §15 lets a callee BYE once the ACK arrived) and ignores the hang-up in any other state.
func (w *World) hangUpChoices(out []Choice) []Choice {
	for m := 0; m < w.cfg.Members; m++ {
		if f, ok := w.cfg.Faults[m]; !ok || f.Kind != HangUp {
			continue
		}
		leg := w.memberLeg(m, 4)
		i, ok := w.legIdx[leg]
		if !ok || i >= len(w.net.legs) {
			continue
		}
		if le := &w.net.legs[i]; le.offerSDP != "" && !le.hangUp {
			out = append(out, Choice{Kind: ChooseHangUp, leg: i})
		}
	}
	return out
}

// hangUp is the member's user ending its session: the member's machines decide what goes
// on the wire (its BYE, its link's close), and the checkers see it there.
func (w *World) hangUp(c Choice) *Violation {
	le := &w.net.legs[c.leg]
	r, leg := le.ends[1], w.legNames[c.leg]
	le.hangUp = true
	confirmed := le.ackRecv && !le.byeRecv
	w.record(Step{From: w.names[r], To: w.names[r], Label: "hang up " + string(leg), Note: true})
	if v := w.step(r, fsm.HangUp{Leg: leg}); v != nil {
		return v
	}
	le = &w.net.legs[c.leg]
	switch {
	case !confirmed:
		return nil // nothing to end, or not yet: the machine ignores it
	case !le.upBye:
		return &Violation{PropHangUp, fmt.Sprintf("%s hung up on %s, a confirmed dialog, and sent no BYE (RFC 3261 §15)", w.names[r], w.cfg.LegName(leg))}
	case w.linkHeld(le, 1):
		return &Violation{PropHangUp, fmt.Sprintf("%s hung up on %s and kept its link there", w.names[r], w.cfg.LegName(leg))}
	}
	return nil
}

// hungUp: member m sent BYE on its dialog (it hung up).
func (w *World) hungUp(m int) bool {
	le := w.dialog(w.memberLeg(m, 4))
	return le != nil && le.upBye
}

// sipBefore is what a SIP delivery's checks need from before the step.
type sipBefore struct {
	acks, rejects int
	// ended: the dialog ended with a BYE, from either end, before the step.
	ended bool
	// upGone: for a 2xx reaching a relay, the session it would serve is over: the relay's
	// upstream INVITE was cancelled or rejected, or its upstream dialog ended with BYE
	// before the whole message arrived (upGoneWhy says which).
	upGone    bool
	upGoneWhy string
}

func (w *World) beforeSIP(it item) sipBefore {
	lo := w.leg(it.leg)
	pre := sipBefore{acks: lo.acksSent, rejects: lo.rejects, ended: lo.byeSeen()}
	if _, ok := it.ev.(fsm.OKReceived); ok {
		pre.upGoneWhy = w.upGone(it.to, it.leg)
		pre.upGone = pre.upGoneWhy != ""
	}
	return pre
}

// upGone says why the session relay r would carry a downstream leg's dialog for is over,
// or "" when it is not (or r is not a relay on leg).
func (w *World) upGone(r int, leg core.LegID) string {
	up, ok := parentLeg(leg)
	if !ok {
		return ""
	}
	u := w.dialog(up)
	switch {
	case u == nil || u.ends[1] != r:
		return ""
	case u.rejects > 0 && u.oks == 0:
		return "its upstream INVITE was cancelled or rejected"
	case (u.byeRecv || u.upBye) && len(u.received[1]) < w.cfg.Chunks:
		return "its upstream dialog ended before the whole message arrived"
	}
	return ""
}

// afterSIP checks a SIP delivery's step: a 2xx that reaches a UAC that already ACKed (a
// retransmission) gets an ACK of its own (RFC 3261 §13.2.2.4: the UAC core ACKs each 2xx
// the transaction layer hands it; the UAS retransmits its 2xx until an ACK arrives, §13.3.1.4),
// unless the dialog ended with BYE; the end that receives a BYE lets its link go; a
// CANCEL that took effect (answered with 487) is passed on to every downstream INVITE still
// pending (RFC 3261 §16.10); and a 2xx that crossed it is ACKed and ended with BYE at once.
func (w *World) afterSIP(it item, pre sipBefore) *Violation {
	lo := w.leg(it.leg)
	switch it.ev.(type) {
	case fsm.OKReceived:
		if pre.acks > 0 && !pre.ended && lo.acksSent == pre.acks {
			return &Violation{PropAckPer2xx, fmt.Sprintf("%s received a retransmitted 200 OK on %s after its ACK and did not ACK it again (RFC 3261 §13.2.2.4)",
				w.names[it.to], w.cfg.LegName(it.leg))}
		}
		// A 2xx that crossed the relay's CANCEL (or came after its session ended) opens a
		// dialog nobody wants: the relay ACKs it and ends it with BYE at once (RFC 3261
		// §9.1, §15), rather than leave it to the callee's guard.
		if pre.upGone && !pre.ended && (lo.acksSent == pre.acks || lo.byes == 0) {
			return &Violation{PropCancelAll, fmt.Sprintf("%s received a 200 OK on %s after %s, and did not ACK it and end the dialog with BYE in that step (RFC 3261 §9.1, §15)",
				w.names[it.to], w.cfg.LegName(it.leg), pre.upGoneWhy)}
		}
	case fsm.ByeReceived:
		// The BYE ends the session the link carries (RFC 4975 §8.4): the end that takes it
		// lets its link go in the same step, whatever the link was doing.
		if w.linkHeld(lo, w.endOf(it.to, it.leg)) {
			return &Violation{PropEndedLink, fmt.Sprintf("%s received BYE on %s and kept its link there", w.names[it.to], w.cfg.LegName(it.leg))}
		}
	case fsm.CancelReceived:
		if lo.rejects == pre.rejects {
			return nil // the CANCEL came after the final response: it has no effect
		}
		// RFC 3261 §9.2: the INVITE a CANCEL ends is answered 487 (Request Terminated).
		for _, q := range w.net.bag {
			if x, ok := q.ev.(fsm.RejectReceived); ok && q.kind == itSIP && q.leg == it.leg && q.from == it.to && x.Status != 487 {
				return &Violation{PropCancel487, fmt.Sprintf("%s was cancelled on %s and answered the INVITE with %d, not 487 (RFC 3261 §9.2)",
					w.names[it.to], w.cfg.LegName(it.leg), x.Status)}
			}
		}
		if l, ok := w.pendingBranch(it.to, it.leg); ok {
			return &Violation{PropCancelAll, fmt.Sprintf("%s was cancelled on %s and answered 487, but left the INVITE on %s pending without a CANCEL (RFC 3261 §16.10)",
				w.names[it.to], w.cfg.LegName(it.leg), w.cfg.LegName(l))}
		}
	}
	return nil
}

// checkByeLetsGo: the end that sends BYE lets its link of that dialog go in the same step,
// as the end that receives it does (afterSIP): the BYE ends the session the link carries
// (RFC 4975 §8.4). A role that kept it would hold the connection until its peer closed it,
// and for ever if the peer is gone.
func (w *World) checkByeLetsGo(r int, acts []fsm.Action) *Violation {
	for _, a := range acts {
		if b, ok := a.(fsm.SendBye); ok {
			if le := w.dialog(b.Leg); le != nil && w.linkHeld(le, w.endOf(r, b.Leg)) {
				return &Violation{PropEndedLink, fmt.Sprintf("%s sent BYE on %s and kept its link there", w.names[r], w.cfg.LegName(b.Leg))}
			}
		}
	}
	return nil
}

// checkGaveUpUnsent: a sender that ends its session (BYE or CANCEL), or is told it ended
// (BYE), before its message left it knows that no member has the message, and records
// every member failed in that step, whoever asked for REPORTs: its user is owed an
// answer, and none will come. The end of the run asks it too (quiescent); checking the
// step finds it at the step, within the bounded searches of `cpmlink mutate`. It reads
// the sender's own end of hop1 and what the sender recorded, nobody else's.
func (w *World) checkGaveUpUnsent(r int) *Violation {
	if r != idxClientA {
		return nil
	}
	le := w.dialog(w.hopLeg(1))
	if le == nil || le.msgSent || w.outcomesKnown() || le.byes == 0 && le.cancels == 0 && !le.downByeRecv {
		return nil
	}
	return &Violation{PropOutcome, "the sender's session ended before its message left it, and it recorded no member failed"}
}

// checkGaveUpStops: a sender that records every member left failed (its guard gave up,
// or its session was ended for it) stops its message in that step: no chunk of it is left
// on its way out of hop1. A message it goes on sending could reach members it has just
// reported failed, and its user, told the message failed, sends it again: the members get
// it twice. It reads the sender's own end of hop1 and its own actions.
func (w *World) checkGaveUpStops(r int, acts []fsm.Action) *Violation {
	if r != idxClientA || !slices.ContainsFunc(acts, func(a fsm.Action) bool { _, ok := a.(fsm.Fail); return ok }) {
		return nil
	}
	leg := w.hopLeg(1)
	le := w.dialog(leg)
	if le == nil {
		return nil
	}
	for _, f := range le.chans[w.endOf(r, leg)] {
		if f.kind == fChunk {
			return &Violation{PropOutcome, fmt.Sprintf("the sender recorded the members left failed and went on sending its message on %s (chunk %d still on its way)", w.cfg.LegName(leg), f.chunk)}
		}
	}
	return nil
}

// checkEnded: no role opens or awaits a link for a dialog that ended as it knows it: an
// offerer that sent BYE or received a final non-2xx, an answerer that received BYE or sent
// a final non-2xx. The session the link would carry no longer exists (RFC 4975 §8.4 ties
// an MSRP session to its SIP dialog).
func (w *World) checkEnded(r int, leg core.LegID, what string) *Violation {
	le := w.dialog(leg)
	if le == nil {
		return nil
	}
	var why string
	switch end := w.endOf(r, leg); {
	case end == 0 && le.byes > 0, end == 1 && le.upBye:
		why = "it sent BYE"
	case end == 0 && le.finalRecv:
		why = "it received a final non-2xx response"
	case end == 1 && le.byeRecv, end == 0 && le.downByeRecv:
		why = "it received BYE"
	case end == 1 && le.rejects > 0:
		why = "it answered with a final non-2xx response"
	default:
		return nil
	}
	return &Violation{PropEndedLink, fmt.Sprintf("%s %s a link on %s, whose dialog had ended: %s", w.names[r], what, w.cfg.LegName(leg), why)}
}

// checkReportAfterSend: a REPORT answers a SEND (RFC 4975 §7.1.2): a role sends none on a
// link before a SEND of the message arrived on it there.
func (w *World) checkReportAfterSend(r int, leg core.LegID) *Violation {
	if le := w.dialog(leg); le != nil && len(le.received[w.endOf(r, leg)]) == 0 {
		return &Violation{PropReportOrder, fmt.Sprintf("%s sent a REPORT on %s before any SEND arrived there", w.names[r], w.cfg.LegName(leg))}
	}
	return nil
}

// checkGuardFired: a guard timer that fires must end or advance the wait it guards. A role
// whose state is the same after its Timeout as before re-arms the guard and waits for
// ever, the guard firing again and again (a livelock that no end state shows).
func (w *World) checkGuardFired(r, leg, dir int, before []byte) *Violation {
	if w.net.legs[leg].timer[dir] && bytes.Equal(before, w.snaps[r]) {
		return &Violation{PropGuardFires, fmt.Sprintf("%s's guard timer on %s fired and changed nothing: it is armed again, and the wait it guards never ends",
			w.names[r], w.cfg.LegName(w.legNames[leg]))}
	}
	return nil
}

// checkDeclineStatus: a member that hung up is reported to the sender as failed with 481
// or as delivered (hang-up); a member that declines with a status is reported to the sender
// with that status (RFC 3261 §16.7 forwards the best final response unchanged; the group
// REPORTs carry it), unless another fault harmed the run: a fault step, or another member
// that never answers, whose guard timer may end the sender's whole INVITE (408) before the
// decline reached the sender (rapid found fig5's CF, waiting for a first 200 from the
// silent member, overtaken by PF-A's guard). A member that hung up on a link whose shared
// connection another member's fault failed may be reported with that failure instead:
// rapid found fig7-cf-hop3's CF learning of the refused hop3 connection before PF-B
// passed the member's BYE on.
func (w *World) checkDeclineStatus(m int, view core.Outcome) *Violation {
	f, ok := w.cfg.Faults[m]
	if !ok || f.Kind != Decline && !(f.Kind == HangUp && w.hungUp(m)) || w.net.harmed || w.memberHarmed(m) || !view.Final() {
		return nil
	}
	for o, g := range w.cfg.Faults {
		if o != m && g.Kind == Silent {
			return nil
		}
	}
	if f.Kind == HangUp {
		if w.onFailedConn(m) {
			return nil
		}
		// Its PF-B reports a member that ended its session before its outcome was known as
		// failed, 481: the session no longer exists (RFC 4975 §7.1.1), not a time-out.
		if view.Kind != core.Delivered && (view.Kind != core.Failed || view.Status != 481) {
			return &Violation{PropHangUp, fmt.Sprintf("member %s hung up, but the sender sees %s, not 481 or delivered", w.cfg.MemberURI(m), view)}
		}
		return nil
	}
	if view.Kind != core.Failed || view.Status != f.Status {
		return &Violation{PropDeclineKept, fmt.Sprintf("member %s declined with %d, but the sender sees %s", w.cfg.MemberURI(m), f.Status, view)}
	}
	return nil
}

// FaultConfigs returns the configurations a search with a budget of k faults explores:
// the configuration itself with the whole budget for fault steps and guard timers on, and
// one per way of spending j ≤ k of the budget on member faults (each member at most one:
// a decline with each status in DeclineStatuses, or no answer), with k-j left for fault
// steps. With k = 0 it is the configuration alone, unchanged.
func FaultConfigs(cfg Config, k int) []Config {
	if k <= 0 {
		return []Config{cfg}
	}
	var kinds []Fault
	for _, s := range DeclineStatuses {
		kinds = append(kinds, Fault{Kind: Decline, Status: s})
	}
	kinds = append(kinds, Fault{Kind: Silent}, Fault{Kind: HangUp})
	var out []Config
	var rec func(m, used int, fs map[int]Fault)
	rec = func(m, used int, fs map[int]Fault) {
		if m == cfg.Members {
			c := cfg
			c.Timers = true
			c.FaultBudget = k - used
			if len(fs) > 0 {
				c.Faults = map[int]Fault{}
				for mm, f := range fs {
					c.Faults[mm] = f
				}
			}
			out = append(out, c)
			return
		}
		// Member faults first: those searches are small, and a bug they show is found
		// before the larger search of fault steps.
		if used < k {
			for _, f := range kinds {
				fs[m] = f
				rec(m+1, used+1, fs)
				delete(fs, m)
			}
		}
		rec(m+1, used, fs)
	}
	rec(0, 0, map[int]Fault{})
	return out
}

// ErrFaultSyntax refuses a member fault list that FaultLabel would not write.
var ErrFaultSyntax = errors.New("proptest: bad member fault")

// DeclineStatuses are the statuses a member declines with in the search: busy, unavailable
// and declined (RFC 3261 §21.4.24, §21.4.18, §21.6.4).
var DeclineStatuses = []int{486, 480, 603}

// FaultLabel names a configuration's member faults and fault budget, for reports and for
// `explore --member-faults`: "m1:decline-486,m2:silent", or "none".
func (c Config) FaultLabel() string {
	var parts []string
	for m := 0; m < c.Members; m++ {
		f, ok := c.Faults[m]
		if !ok {
			continue
		}
		s := "m" + strconv.Itoa(m+1) + ":" + f.Kind.String()
		if f.Kind == Decline {
			s += "-" + strconv.Itoa(f.Status)
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// ParseMemberFaults reads what FaultLabel writes.
func ParseMemberFaults(s string) (map[int]Fault, error) {
	if s == "" || s == "none" {
		return nil, nil
	}
	out := map[int]Fault{}
	for _, p := range strings.Split(s, ",") {
		who, what, ok := strings.Cut(strings.TrimSpace(p), ":")
		m, err := strconv.Atoi(strings.TrimPrefix(who, "m"))
		if !ok || err != nil || !strings.HasPrefix(who, "m") || m < 1 {
			return nil, fmt.Errorf("%w: %q is not m<member>:<fault>", ErrFaultSyntax, p)
		}
		var f Fault
		switch {
		case what == "silent":
			f = Fault{Kind: Silent}
		case what == "hang-up":
			f = Fault{Kind: HangUp}
		case strings.HasPrefix(what, "decline-"):
			st, err := strconv.Atoi(strings.TrimPrefix(what, "decline-"))
			if err != nil || st < 300 || st > 699 {
				return nil, fmt.Errorf("%w: %q: a decline carries a final status, 300-699", ErrFaultSyntax, p)
			}
			f = Fault{Kind: Decline, Status: st}
		default:
			return nil, fmt.Errorf("%w: %q: the faults are silent, hang-up and decline-<status>", ErrFaultSyntax, p)
		}
		out[m-1] = f
	}
	return out, nil
}

// upPending returns the leg on which relay r answers the INVITE it forwarded onto leg,
// when r is a PF (one branch per INVITE) and that INVITE is still unanswered; "" if not.
func (w *World) upPending(r int, leg core.LegID) core.LegID {
	if rk, _, _ := w.roleAt(r); rk != fsm.RolePFA && rk != fsm.RolePFB {
		return ""
	}
	le := w.dialog(leg)
	if le == nil || le.ends[0] != r || le.okRecv > 0 || le.finalRecv {
		return ""
	}
	up, ok := parentLeg(leg)
	if !ok {
		return ""
	}
	if u := w.dialog(up); u != nil && u.ends[1] == r && u.oks+u.rejects == 0 {
		return up
	}
	return ""
}

// checkTimerC: a PF whose guard on its only downstream INVITE fires answers its own
// upstream INVITE at once: the proxy's Timer C ends the branch as a 408 would (RFC 3261
// §16.8), and a proxy whose every branch is final forwards the best response (§16.7
// step 6), which with one branch is that 408. pending is upPending's answer from before
// the Timeout, when no response had been sent upstream: any on pending's way now is
// this step's.
func (w *World) checkTimerC(r int, leg, pending core.LegID) *Violation {
	if pending == "" {
		return nil
	}
	if u := w.dialog(pending); u.oks+u.rejects == 0 && u.cancels == 0 {
		return &Violation{PropTimerC, fmt.Sprintf("%s's guard on the INVITE on %s fired, and it left the INVITE it answers on %s unanswered (RFC 3261 §16.8, §16.7)",
			w.names[r], w.cfg.LegName(leg), w.cfg.LegName(pending))}
	}
	for _, it := range w.net.bag {
		if x, ok := it.ev.(fsm.RejectReceived); ok && it.kind == itSIP && it.leg == pending && x.Status != 408 {
			return &Violation{PropTimerC, fmt.Sprintf("%s's guard on the INVITE on %s fired, and it answered the INVITE on %s %d; its only branch timed out, a 408 (RFC 3261 §16.8, §16.7)",
				w.names[r], w.cfg.LegName(leg), w.cfg.LegName(pending), x.Status)}
		}
	}
	return nil
}

// checkGuarded: every wait for a peer that may never come is guarded, so that a lost
// peer ends in a time-out rather than a role that waits for ever. After each step, an
// offerer whose INVITE is pending has its guard armed (Timer B/C, RFC 3261 §17.1.1.2,
// §16.6), and so has an end of an answered, not yet ended dialog whose link it listens
// for or is opening (the peer that should connect, or accept, may be gone), a member whose
// dialog has not ended (its link, the rest of the message or the BYE may never come: its
// PF-B's host may be gone, or the network cut), a relay whose dialog has not ended while
// its 2xx is not ACKed, its upstream link is gone, or the message is not whole on a link
// that is up (a partition upstream), and the sender that asked for every member's
// outcome while its link is up and one is unknown.
func (w *World) checkGuarded() *Violation {
	for i := range w.net.legs {
		le := &w.net.legs[i]
		if le.ends[0] < 0 {
			continue
		}
		why, end := "", 0
		// The answerer's dialog lasts (no BYE either way) and its guard is not armed.
		unguardedDialog := le.oks > 0 && !le.byeRecv && !le.upBye && !le.timer[1]
		switch {
		case le.invites > 0 && le.okRecv == 0 && !le.finalRecv && !le.timer[0]:
			why = "its INVITE is pending"
		case le.okRecv > 0 && !le.byeSeen() && w.linkAwaited(le, 0) && !le.timer[0]:
			why = "it awaits the link of an answered dialog"
		case le.oks > 0 && !le.byeSeen() && w.linkAwaited(le, 1) && !le.timer[1]:
			why, end = "it awaits the link of an answered dialog", 1
		case unguardedDialog && w.isMember(le.ends[1]):
			why, end = "its dialog has not ended", 1
		case unguardedDialog && (le.failed[1] || le.closed[1]):
			// A sender whose host is gone sends no BYE: only the relay's guard ends it.
			why, end = "its upstream link is gone and its dialog has not ended", 1
		case unguardedDialog && !le.ackRecv:
			// The ACK may be lost with the network (RFC 3261 §13.3.1.4).
			why, end = "its 2xx is not yet ACKed", 1
		case unguardedDialog && le.up[1] && len(le.received[1]) < w.cfg.Chunks:
			// A partition upstream leaves the link up in the relay's eyes, and the rest of
			// the message never comes.
			why, end = "it awaits the rest of the message on a link that may be cut", 1
		case le.ends[0] == idxClientA && w.cfg.Sender == core.SenderWaits && le.up[0] && !le.closed[0] && !le.failed[0] && !le.timer[0] && !w.outcomesKnown():
			why = "it waits for the members' outcomes"
		}
		if why != "" {
			return &Violation{PropGuarded, fmt.Sprintf("%s has no guard timer armed on %s while %s", w.names[le.ends[end]], w.cfg.LegName(w.legNames[i]), why)}
		}
	}
	return nil
}

// linkAwaited: end e listens for its link or is opening it, and it is not up, closed nor
// failed there.
func (w *World) linkAwaited(le *legState, e int) bool {
	return (le.listen[e] != "" || le.opener == le.ends[e]) && !le.up[e] && !le.closed[e] && !le.failed[e]
}

// linkHeld: end e's link is up, or awaited, and neither closed nor failed there.
func (w *World) linkHeld(le *legState, e int) bool {
	return le.up[e] && !le.closed[e] && !le.failed[e] || w.linkAwaited(le, e)
}

// outcomesKnown: the sender learned every member's outcome (or the failure of all).
func (w *World) outcomesKnown() bool {
	if w.obs.rest.Final() {
		return true
	}
	for _, m := range w.obs.members {
		if !m.result.Final() {
			return false
		}
	}
	return true
}

// onwardOpen: relay r is told that the link on which it receives the message failed, or
// its guard on it fires (leg is the leg r answered), before the message's last chunk
// arrived at r's end. It returns the onward legs of that session whose link r has up, is
// opening or listens for, read before the step, for checkAbortOnward to read after it;
// nil when r is not such a relay.
func (w *World) onwardOpen(r int, leg core.LegID) []int {
	return w.onwardOf(r, leg, func(d *legState) bool {
		return !d.closed[0] && !d.failed[0] && (d.up[0] || d.listen[0] != "" || d.opener == r)
	})
}

// onwardLive: as onwardOpen, for the onward dialogs r invited and has not yet seen end
// (no final non-2xx, no BYE either way, no CANCEL), for checkEndsOnward.
func (w *World) onwardLive(r int, leg core.LegID) []int {
	return w.onwardOf(r, leg, func(d *legState) bool {
		return d.invites > 0 && !d.finalRecv && !d.byeSeen() && !d.downByeRecv && d.cancels == 0
	})
}

// onwardOf returns the onward legs of relay r's session on leg that keep selects, when
// r is a relay that answered leg and has not received the whole message on it.
func (w *World) onwardOf(r int, leg core.LegID, keep func(*legState) bool) []int {
	return w.onwardWhen(r, leg, false, keep)
}

// onwardDelivering: when relay r answered leg and holds the whole message there, the
// onward legs it is still delivering on: the link up at both ends and sound, the next hop
// short of some chunk, the dialog not ended. Read before a guard's step on leg, for
// checkKeepsDelivering.
func (w *World) onwardDelivering(r int, leg core.LegID) []int {
	return w.onwardWhen(r, leg, true, func(d *legState) bool {
		return d.up[0] && d.up[1] && !d.closed[0] && !d.closed[1] && !d.failed[0] && !d.failed[1] &&
			!d.broken && !d.cut && !d.harmed && len(d.received[1]) < w.cfg.Chunks && d.cancels == 0 && !d.byeSeen()
	})
}

// onwardWhen returns the onward legs of relay r's session on leg that keep selects, when
// r is a relay that answered leg and has (whole) or has not (!whole) received the whole
// message on it.
func (w *World) onwardWhen(r int, leg core.LegID, whole bool, keep func(*legState) bool) []int {
	switch rk, _, _ := w.roleAt(r); rk {
	case fsm.RolePFA, fsm.RoleCF, fsm.RolePFB:
	default:
		return nil
	}
	le := w.dialog(leg)
	if le == nil || le.ends[1] != r || (len(le.received[1]) >= w.cfg.Chunks) != whole {
		return nil
	}
	var sel []int
	for i, l := range w.legNames {
		if p, ok := parentLeg(l); !ok || p != leg || i >= len(w.net.legs) {
			continue
		}
		if d := &w.net.legs[i]; d.ends[0] == r && keep(d) {
			sel = append(sel, i)
		}
	}
	return sel
}

// checkAbortOnward: a relay whose upstream link failed (or was given up by its guard)
// before the whole message arrived aborts, in the step that tells it, every onward link
// of that session it had up, was opening or listened for, and a next hop whose end of
// such a link is up learns it. What the relay has not received it cannot relay, and the
// rest will not come over a link that is gone, so its onward messages can only end
// aborted (RFC 4975 §7.1's "#"); an onward link left open, or closed without a word,
// holds the next hop waiting for chunks that never come until its guard turns a known
// link loss into a late 408. A relay that has the last chunk owes the rest of the
// delivery and keeps its onward links (end-down).
func (w *World) checkAbortOnward(r int, up core.LegID, open []int) *Violation {
	for _, i := range open {
		d, l := &w.net.legs[i], w.legNames[i]
		why := ""
		switch {
		case !d.closed[0] && !d.failed[0]:
			why = "left its link on %s open"
		case d.closed[0] && d.established && !d.broken && !d.closed[1] && !w.failQueued(r, d.ends[1], l):
			why = "closed its link on %s without telling the next hop"
		default:
			continue
		}
		return &Violation{PropAbortOnward, fmt.Sprintf("%s's link on %s failed or timed out before the whole message arrived (%d of %d chunks), and it "+why,
			w.names[r], w.cfg.LegName(up), len(w.leg(up).received[1]), w.cfg.Chunks, w.cfg.LegName(l))}
	}
	return nil
}

// checkEndsOnward: a relay that gives up a message not yet whole on the leg it answered,
// because its guard there fired or the sender's side ended the dialog with BYE, ends, in
// that step, every onward dialog of that session it had not seen end: CANCEL where its
// INVITE is pending, BYE (after the ACK it owes) where the dialog was answered. It has
// nothing to relay on them, and nobody upstream will end them for it (RFC 3261 §15: the
// session is over). A relay that left one open would hold the next hop's dialog until
// that hop's own guard found the silence, one guard later, and then fail its members
// with 408 instead of the upstream loss it was told of.
func (w *World) checkEndsOnward(r int, ev fsm.Event, live []int) *Violation {
	up := ev.EventLeg()
	why := "its guard on %s gave up the message"
	if _, bye := ev.(fsm.ByeReceived); bye {
		why = "a BYE ended its dialog on %s before the whole message arrived"
	}
	for _, i := range live {
		if d := &w.net.legs[i]; d.byes == 0 && d.cancels == 0 {
			return &Violation{PropAbortOnward, fmt.Sprintf("%s: "+why+" (%d of %d chunks), and it left its dialog on %s neither cancelled nor ended with BYE",
				w.names[r], w.cfg.LegName(up), len(w.leg(up).received[1]), w.cfg.Chunks, w.cfg.LegName(w.legNames[i]))}
		}
	}
	return nil
}

// checkKeepsDelivering: a relay whose guard on the leg it answered fires once it holds
// the whole message there ends none of the onward legs it is still delivering on: what it
// holds is the members' to receive, whoever upstream went quiet (the spec's guard rule ACKs
// an answered onward dialog and leaves the rest to end-down). A relay that ends them cuts
// deliveries the next hops had under way, and its members learn a failure for a message
// that was whole one hop away. It reads the next hops' ends of the onward legs, which the
// sleep sets allow only because a timer's step has no actor and commutes with nothing.
func (w *World) checkKeepsDelivering(r int, up core.LegID, delivering []int) *Violation {
	for _, i := range delivering {
		d := &w.net.legs[i]
		if d.closed[0] || d.failed[0] || d.byes > 0 || d.cancels > 0 {
			return &Violation{PropAbortOnward, fmt.Sprintf("%s's guard on %s fired with the whole message there, and it ended %s, where the next hop held %d of %d chunks",
				w.names[r], w.cfg.LegName(up), w.cfg.LegName(w.legNames[i]), len(d.received[1]), w.cfg.Chunks)}
		}
	}
	return nil
}

// failQueued: a link failure from one end of a leg to the other is in flight.
func (w *World) failQueued(from, to int, leg core.LegID) bool {
	for _, it := range w.net.bag {
		if it.kind == itFail && it.from == from && it.to == to && it.leg == leg {
			return true
		}
	}
	return false
}
