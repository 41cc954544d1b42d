package proptest

import (
	"fmt"
	"strings"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
)

// Property names, as the explorer and `cpmlink explore --json` report them (DESIGN §4).
const (
	PropCompleteness = "completeness" // an event met a state with no cell: a gap in the spec
	PropProtocol     = "protocol"     // a role refused what a peer sent: the peer broke SIP
	PropSIPOrder     = "sip-order"    // per leg INVITE -> 200 -> ACK, one ACK per 2xx
	PropInitiative   = "initiative"   // the right party opened the link on its trigger (not before, not a step later), with learned parameters
	PropReuse        = "reuse"        // with reuse on, one connection per opener and peer address among live links
	PropDelivery     = "delivery"     // every chunk reached the member once, in order, byte-exact
	PropDeadlock     = "deadlock"     // nothing can happen but some role is not done
	PropHopsUp       = "all-hops-up"  // every hop of every (healthy) member came up
	PropOutcome      = "outcome"      // the sender's view of each member matches what happened
	PropTerminal     = "terminal"     // with faults, every role still ends its sessions
	PropReports      = "reports"      // a client gets only the REPORTs RFC 4975 lets it ask for, and a member sends the success REPORT asked of it
	PropEndState     = "end-state"    // at the end every INVITE was answered or cancelled, every link and guard let go
	// Properties of the fault paths (faults.go).
	PropAckPer2xx   = "ack-per-2xx"    // a UAC ACKs every 2xx it receives, retransmissions too
	PropDeclineKept = "decline-status" // the status a member declines with reaches the sender unchanged
	PropCancelAll   = "cancel-reach"   // a CANCEL that takes effect reaches every pending downstream INVITE, and a 2xx crossing it is ended at once
	PropCancel487   = "cancel-487"     // the INVITE a CANCEL ends is answered 487
	PropTimerC      = "timer-c"        // a PF whose only branch timed out answers upstream at once
	PropGuarded     = "guarded-wait"   // every wait for a peer that may never come has its guard armed
	PropEndedLink   = "ended-link"     // no link is opened, awaited or kept for a dialog that ended
	PropReportOrder = "report-order"   // no REPORT on a link before a SEND arrived on it
	PropGuardFires  = "guard-fires"    // a guard timer that fires ends or advances the wait it guards
	PropAbortOnward = "abort-onward"   // a relay whose upstream link fails mid-message aborts its onward links at once (and, when its guard gave up or a BYE came, ends its onward dialogs)
	PropHangUp      = "hang-up"        // a member that hangs up sends BYE and lets its link go; the sender learns 481 or delivered
	PropBestFinal   = "best-final"     // a relay answers a non-2xx upstream only once every branch it forwarded is over
)

// Violation is a property that failed, with what showed it.
type Violation struct {
	Property string
	Detail   string
}

func (v *Violation) Error() string { return v.Property + ": " + v.Detail }

type memberObs struct {
	next   int // next chunk expected
	result core.Outcome
}

// observations is what the checkers saw that belongs to no leg.
type observations struct {
	members []memberObs
	rest    core.Outcome // the sender failed every member it had not heard of
}

func (o *observations) init(cfg Config) {
	o.members = make([]memberObs, cfg.Members)
	for i := range o.members {
		o.members[i].next = 1
	}
	o.rest = core.Outcome{}
}

func parentLeg(l core.LegID) (core.LegID, bool) {
	i := strings.LastIndexByte(string(l), '/')
	if i < 0 {
		return "", false
	}
	return l[:i], true
}

// side says which end of a leg a role is.
func (w *World) side(role int, leg core.LegID) string {
	if w.endOf(role, leg) == 0 {
		return "offerer"
	}
	return "answerer"
}

// upLeg returns the leg on which role answered the INVITE that led to leg (where role is
// the offerer of leg), or leg itself (where role answers it).
func (w *World) upLeg(role int, leg core.LegID) (core.LegID, bool) {
	if w.side(role, leg) == "answerer" {
		return leg, true
	}
	p, ok := parentLeg(leg)
	if !ok {
		return "", false
	}
	if le := w.dialog(p); le != nil && le.ends[1] == role {
		return p, true
	}
	return "", false
}

// triggerHeld re-derives, from the wire alone, whether a trigger held for the role opening
// a leg. It is the checkers' own reading of the patent, not the generated code's.
func (w *World) triggerHeld(trigger string, role int, leg core.LegID) (bool, bool) {
	up, hasUp := w.upLeg(role, leg)
	upObs := func() *legState {
		if !hasUp {
			return &legState{}
		}
		return w.leg(up)
	}
	switch trigger {
	case "ok-received":
		if w.side(role, leg) == "offerer" {
			return w.leg(leg).okRecv > 0, true
		}
		for i, l := range w.legNames {
			if p, ok := parentLeg(l); ok && p == leg && i < len(w.net.legs) && w.net.legs[i].ends[0] == role && w.net.legs[i].okRecv > 0 {
				return true, true
			}
		}
		return false, true
	case "ack-received":
		// A BYE stands for the ACK it overtook: the caller sends it only after its ACK.
		return upObs().ackRecv || upObs().byeRecv, true
	case "send-received":
		return upObs().chunkRecv, true
	case "ok-sent":
		return upObs().okSent, true
	}
	return false, false
}

// hopOf returns the hop of a leg from the kinds of its two ends.
func (w *World) hopOf(leg core.LegID) (fsm.Hop, bool) {
	le := w.dialog(leg)
	if le == nil {
		return 0, false
	}
	ok, _, _ := w.roleAt(le.ends[0])
	ak, _, _ := w.roleAt(le.ends[1])
	for h := fsm.Hop(0); h < fsm.NumHops; h++ {
		if fsm.HopEnds[h][0] == ok && fsm.HopEnds[h][1] == ak {
			return h, true
		}
	}
	return 0, false
}

// checkOpen checks one link opening against the variant: the party, the trigger, the
// parameters and, for reuse, the connection.
func (w *World) checkOpen(role int, leg core.LegID, peer core.SDP, conn core.ConnID, reused bool) *Violation {
	v := w.cfg.Variant
	h, ok := w.hopOf(leg)
	if !ok {
		return &Violation{PropInitiative, fmt.Sprintf("%s opened a link on leg %s, which no INVITE set up", w.names[role], leg)}
	}
	side := w.side(role, leg)
	lo := w.leg(leg)
	want, trigger, by := w.openerOf(h, lo)
	if side != want {
		return &Violation{PropInitiative, fmt.Sprintf("%s opened %s (leg %s) as the %s; %s names the %s", w.names[role], h, leg, side, by, want)}
	}
	if held, known := w.triggerHeld(trigger, role, leg); known && !held {
		return &Violation{PropInitiative, fmt.Sprintf("%s opened %s (leg %s) before its trigger %s", w.names[role], h, leg, trigger)}
	}
	learned := lo.answerSDP
	if side == "answerer" {
		learned = lo.offerSDP
	}
	switch {
	case peer.Path == "":
		return &Violation{PropInitiative, fmt.Sprintf("%s opened %s (leg %s) with parameters it never received", w.names[role], h, leg)}
	case peer.Path != learned:
		return &Violation{PropInitiative, fmt.Sprintf("%s opened %s (leg %s) to %s, but the SDP it received said %q", w.names[role], h, leg, peer.Path, learned)}
	}
	var live core.ConnID
	for _, c := range w.net.conns {
		if c.role == role && c.addr == peer.Addr() && w.connLive(role, c.conn) {
			live = c.conn
		}
	}
	reuseOn := v.Reuse.String() == "on"
	switch {
	case reused && !reuseOn:
		return &Violation{PropReuse, fmt.Sprintf("%s reused a connection to %s with reuse off", w.names[role], peer.Addr())}
	case reused && live != conn:
		return &Violation{PropReuse, fmt.Sprintf("%s reused connection %s to %s, which is not its live connection there", w.names[role], conn, peer.Addr())}
	case !reused && reuseOn && live != "":
		return &Violation{PropReuse, fmt.Sprintf("%s opened a second connection to %s while connection %s is live", w.names[role], peer.Addr(), live)}
	}
	return nil
}

// openerOf says which end of a leg on hop h opens its link ("offerer" or "answerer"), on
// which trigger, and by whose word: the variant's, or the SDP's where negotiation overrode
// the figure (then the new opener opens on the trigger the spec states for that case, the
// offerer on the 200 OK, the answerer on the ACK).
func (w *World) openerOf(h fsm.Hop, lo *legState) (want, trigger, by string) {
	v := w.cfg.Variant
	want, trigger, by = v.Opener[h].String(), v.Trigger[h].String(), "variant "+v.Name
	if v.Initiative[h] == fsm.InitiativeNegotiated {
		if got := negotiatedOpener(lo.offerSetup, lo.answerSetup); got != want {
			want, trigger = got, "ok-received"
			if got == "answerer" {
				trigger = "ack-received"
			}
			by = fmt.Sprintf("the SDP (offer a=setup:%s, answer a=setup:%s)", setupName(lo.offerSetup), setupName(lo.answerSetup))
		}
	}
	return want, trigger, by
}

// checkListen: an end listens for its link only where its peer may connect: never the
// end that opens it (RFC 4145 §4.1: an active end initiates the connection; RFC 4975
// §5.4), save an offerer that offered actpass, which must accept a connection until the
// answer settles who opens (RFC 6135 §4.1). The opener's peer never connects, so its
// listening end could only ever take a connection from someone else, which would bind
// the session to a stranger (RFC 4975 §7.1.1 binds it to the first SEND that arrives).
func (w *World) checkListen(r int, leg core.LegID) *Violation {
	h, ok := w.hopOf(leg)
	if !ok {
		return nil
	}
	lo := w.leg(leg)
	side := w.side(r, leg)
	if side == "offerer" && lo.offerSetup == core.SetupActpass {
		return nil
	}
	if want, _, by := w.openerOf(h, lo); side == want {
		return &Violation{PropInitiative, fmt.Sprintf("%s listens for the link of %s (leg %s), which it opens itself as the %s (%s): its peer will not connect, and a connection that comes is a stranger's (RFC 4145 §4.1)",
			w.names[r], h, leg, side, by)}
	}
	return nil
}

// negotiatedOpener re-derives from the SDP on the wire which end of a negotiated hop opens
// its link: an offer that fixes the offerer's role settles it (active; no a=setup, which
// RFC 4975 §5.4 reads as "the offerer connects"; passive), and an actpass offer is
// settled by the answer (RFC 4145 §4.1: active answers connect; passive or none do not).
func negotiatedOpener(offer, answer core.Setup) string {
	switch {
	case offer == core.SetupActive || offer == core.SetupNone:
		return "offerer"
	case offer == core.SetupPassive || answer == core.SetupActive:
		return "answerer"
	}
	return "offerer"
}

func setupName(s core.Setup) string {
	if s == core.SetupNone {
		return "none"
	}
	return s.String()
}

// setupChoice is the a=setup policy of role r: a client's configured choice; servers can
// do either.
func (w *World) setupChoice(r int) core.SetupChoice {
	if r == idxClientA {
		return w.cfg.SenderSetup
	}
	if m := w.memberOf(r); m >= 0 {
		return w.cfg.MemberSetup(m)
	}
	return core.ChooseActpass
}

// checkSetup checks the a=setup of an offer or an answer role r sends on a leg (RFC 6135
// §4.1, RFC 4145 §4.1): none on a preset hop; on a negotiated hop an offer carries actpass
// or the client's fixed role, and an answer carries active or passive: the complement of
// a fixed offer, and for actpass the client's own choice or else the variant's opener.
func (w *World) checkSetup(r int, leg core.LegID, got core.Setup, answer bool) *Violation {
	h, ok := w.hopOf(leg)
	if !ok {
		return nil
	}
	want := w.wantSetup(r, h, w.leg(leg).offerSetup, answer)
	if got == want {
		return nil
	}
	what := "offered"
	if answer {
		what = fmt.Sprintf("answered an offer of a=setup:%s", setupName(w.leg(leg).offerSetup))
	}
	return &Violation{PropInitiative, fmt.Sprintf("%s %s on %s (leg %s) with a=setup:%s; %s initiative wants a=setup:%s", w.names[r], what, h, leg, setupName(got), w.cfg.Variant.Initiative[h], setupName(want))}
}

// checkAckHeld: a UAC ACKs a 2xx in the step it receives it (RFC 3261 §13.2.2.4; the
// callee ends the dialog when no ACK comes within 64*T1, §13.3.1.4). The figures let a PF
// hold it in one case (pf-ack on-upstream-ack, S106/S111): while its own upstream dialog
// waits for its ACK. The wait ends with the upstream ACK, with a BYE that arrived in its
// place (a lost ACK), or with the upstream INVITE or dialog over: from that step on,
// every 2xx it holds is ACKed. Checked after every step, over the dialogs no BYE ended,
// last: a check that names what a step did wrong more closely (an onward dialog a guard
// left, a 2xx that crossed a CANCEL) goes first.
func (w *World) checkAckHeld() *Violation {
	for i := range w.net.legs {
		le := &w.net.legs[i]
		if le.okRecv == 0 || le.acksSent > 0 || le.byeSeen() || le.downByeRecv {
			continue
		}
		r, leg := le.ends[0], w.legNames[i]
		kind := w.roles[r].Kind()
		if up, ok := parentLeg(leg); ok && (kind == fsm.RolePFA || kind == fsm.RolePFB) && w.cfg.Variant.PFAck == fsm.PFAckOnUpstreamAck {
			if u := w.dialog(up); u != nil && !u.ackRecv && !u.byeRecv && !u.upBye && u.rejects == 0 {
				continue
			}
		}
		return &Violation{PropAckPer2xx, fmt.Sprintf("%s holds the 200 OK of %s un-ACKed past the step it may (RFC 3261 §13.2.2.4; a PF holds it only until its upstream dialog is confirmed or over, S106/S111)",
			w.names[r], w.cfg.LegName(leg))}
	}
	return nil
}

// checkPrompt: an opener opens its link in the step its trigger first holds, not a later
// one; and a PF whose figure ACKs at once ACKs a 2xx in the step it receives it (the
// figure's prompt ACK rules). checkOpen sees only that a trigger came before an opening, so an opener that waits
// for another event passes it whenever that event comes later. Checked after each step of
// a role, on its legs that are ready to open from what it knows (answered, the peer's SDP
// in hand, neither the leg nor the dialog it answered upstream ended, cancelled or
// failed), twice: against the variant's trigger knob (initiative: the generated roles
// against their table), and against the figure's prompt order rules (order: the table
// against the figure, as fig7-cf-hop3's CF opening on the SEND instead of its member's
// 200 OK). Every trigger is a step of the opener itself, so the first step of the opener
// after which both hold and the link is unopened is the step that should have opened it.
func (w *World) checkPrompt(r int) *Violation {
	for i := range w.net.legs {
		le := &w.net.legs[i]
		e := 0
		switch r {
		case le.ends[0]:
		case le.ends[1]:
			e = 1
		default:
			continue
		}
		leg := w.legNames[i]
		h, ok := w.hopOf(leg)
		if !ok {
			continue
		}
		if e == 0 && le.okRecv > 0 && le.acksSent == 0 && !le.byeSeen() && !le.downByeRecv {
			// A 2xx this step or an earlier one received, not ACKed: held to the figure's
			// prompt ACK rules (checkAckHeld holds it to the pf-ack knob).
			if v := w.orderPrompt(r, e, leg, h, "send-ack"); v != nil {
				return v
			}
		}
		if le.opener >= 0 || !readyToOpen(le, e) {
			continue
		}
		if up, ok := w.upLeg(r, leg); ok && up != leg {
			if u := w.dialog(up); u == nil || !legAlive(u, 1) {
				continue
			}
		}
		want, trigger, by := w.openerOf(h, le)
		if [2]string{"offerer", "answerer"}[e] != want {
			// On a negotiated hop the SDP on the wire made the other end the opener: neither
			// the table's trigger nor the figure's rules (which hold the figure's opener
			// only) bind this end.
			if w.cfg.Variant.Initiative[h] == fsm.InitiativeNegotiated {
				continue
			}
		} else if held, known := w.triggerHeld(trigger, r, leg); known && held {
			return &Violation{PropInitiative, fmt.Sprintf("%s's trigger %s for %s held, and %s took a step without opening it (%s opens on the trigger, not later)",
				w.names[r], trigger, w.cfg.LegName(leg), w.names[r], by)}
		}
		if v := w.orderPrompt(r, e, leg, h, "link-open"); v != nil {
			return v
		}
	}
	return nil
}

// orderPrompt checks the variant's prompt order rules whose then is event for role r, end
// e of a leg of hop h where r has not done it and could (opened the link, ACKed the 2xx):
// one of a rule's after steps happened on the branch, so this step of r should have done it.
func (w *World) orderPrompt(r, e int, leg core.LegID, h fsm.Hop, event string) *Violation {
	c := w.order
	if c == nil {
		return nil
	}
	rk, _, _ := w.roleAt(r)
	for i, rule := range c.rules {
		if !rule.Prompt || rule.Then.Event != event || rule.Then.Role != rk || rule.Then.Hop != h || rule.Then.End != e {
			continue
		}
		if w.orderHeld(leg, h, c.afterBit[i]) {
			var after []string
			for _, t := range rule.After {
				after = append(after, fmt.Sprintf("%q", t.Text))
			}
			return &Violation{PropOrder, fmt.Sprintf("on %s, %s did one of %s, and took a step after it without %q (rule %q, %s: %s)",
				w.cfg.LegName(leg), w.names[r], strings.Join(after, " or "), rule.Then.Text, rule.Name, rule.Cite, rule.Doc)}
		}
	}
	return nil
}

// readyToOpen: end e of a leg has its dialog answered and the peer's SDP, and the leg is
// alive (legAlive).
func readyToOpen(le *legState, e int) bool {
	if e == 0 && (le.okRecv == 0 || le.answerSDP == "") || e == 1 && (!le.okSent || le.offerSDP == "") {
		return false
	}
	return legAlive(le, e)
}

// legAlive: no BYE, CANCEL, final non-2xx, failure of end e's link or fault step has
// touched the leg. Each of these only ever makes a leg less alive (docs/architecture.md,
// "Sleep sets", on why checkPrompt may read the peer's part of them).
func legAlive(le *legState, e int) bool {
	return !le.byeSeen() && !le.downByeRecv && !le.byeRecv && le.rejects == 0 && le.cancels == 0 && !le.closed[e] && !le.failed[e] &&
		!le.cut && !le.broken && !le.harmed && !le.ackLost
}

// checkOverridden: a role records that a=setup overrode the figure's opener on a leg
// (SetupOverridden; the order rules take the record as the reason the figure's opener
// did not open) only when it did: the end it says now opens is not the one the variant's
// opener knob names. A false record would excuse a figure's opener that never opened.
func (w *World) checkOverridden(r int, leg core.LegID, opens bool) *Violation {
	h, ok := w.hopOf(leg)
	if !ok {
		return nil
	}
	figure := (w.cfg.Variant.Opener[h] == fsm.OpenerOfferer) == (w.endOf(r, leg) == 0)
	if opens != figure {
		return nil
	}
	verb := "listens"
	if opens {
		verb = "opens"
	}
	return &Violation{PropInitiative, fmt.Sprintf("%s recorded that a=setup overrode the figure's opener on %s, but it %s as the figure says", w.names[r], w.cfg.LegName(leg), verb)}
}

// wantSetup is the a=setup role r must put in an offer, or in its answer to an offer of
// a=setup offer, on hop h (checkSetup says the rule).
func (w *World) wantSetup(r int, h fsm.Hop, offer core.Setup, answer bool) core.Setup {
	v := w.cfg.Variant
	choice := w.setupChoice(r)
	var want core.Setup
	switch {
	case v.Initiative[h] != fsm.InitiativeNegotiated || choice == core.ChooseNone:
		want = core.SetupNone
	case !answer && choice == core.ChooseActive:
		want = core.SetupActive
	case !answer && choice == core.ChoosePassive:
		want = core.SetupPassive
	case !answer:
		want = core.SetupActpass
	default:
		switch {
		case offer == core.SetupActive || offer == core.SetupNone:
			want = core.SetupPassive
		case offer == core.SetupPassive:
			want = core.SetupActive
		case choice == core.ChooseActive:
			want = core.SetupActive
		case choice == core.ChoosePassive:
			want = core.SetupPassive
		case v.Opener[h] == fsm.OpenerAnswerer:
			want = core.SetupActive
		default:
			want = core.SetupPassive
		}
	}
	return want
}

// checkReport checks a REPORT a role sends on a leg that faces a client (hop1 towards the
// sender, hop4 from the member): RFC 4975 §7.1.2 sends a success REPORT only to a sender
// that asked for one (Success-Report defaults to no) and a failure REPORT only to one that
// did not refuse them. Between servers the group reports are cpmlink's own.
func (w *World) checkReport(r int, leg core.LegID, o core.Outcome) *Violation {
	h, ok := w.hopOf(leg)
	if !ok || h != fsm.Hop1 && h != fsm.Hop4 {
		return nil
	}
	asked := w.leg(leg).asked[w.endOf(r, leg)]
	switch {
	case o.Kind == core.Delivered && asked&askSuccess == 0:
		return &Violation{PropReports, fmt.Sprintf("%s sent a success REPORT on %s (%s), but the message asked for none", w.names[r], leg, h)}
	case o.Kind == core.Failed && asked&askFailure == 0:
		return &Violation{PropReports, fmt.Sprintf("%s sent a failure REPORT on %s (%s), but the message refused them", w.names[r], leg, h)}
	}
	return nil
}

// checkSuccessReport checks the step in which member r took, on leg (its end end), the
// last chunk of a message whose sender asked for success REPORTs: with the member's link
// still there after the step, it sends its success REPORT in that same step (RFC 4975
// §7.1.2: the recipient reports a complete message when Success-Report is yes). before is
// how many the member had queued on the leg before the step.
func (w *World) checkSuccessReport(r int, leg core.LegID, end int, before int) *Violation {
	le := w.leg(leg)
	if le.closed[end] || le.failed[end] || le.broken || le.cut {
		return nil
	}
	if successReports(le.chans[end]) > before {
		return nil
	}
	return &Violation{PropReports, fmt.Sprintf("%s took the last chunk on %s of a message that asked for a success REPORT, and sent none (RFC 4975 §7.1.2)", w.names[r], w.cfg.LegName(leg))}
}

// checkWholeBeforeReport: a member reports the message delivered only once it holds all
// of it; the REPORT names no byte range, so it speaks for the whole message.
func (w *World) checkWholeBeforeReport(r int, leg core.LegID, o core.Outcome) *Violation {
	if w.memberOf(r) < 0 || o.Kind != core.Delivered {
		return nil
	}
	if got := len(w.leg(leg).received[w.endOf(r, leg)]); got < w.cfg.Chunks {
		return &Violation{PropReports, fmt.Sprintf("%s sent a success REPORT on %s holding %d of the message's %d chunks", w.names[r], w.cfg.LegName(leg), got, w.cfg.Chunks)}
	}
	return nil
}

// successReports counts the success REPORTs among the frames in flight from one end.
func successReports(fs []frame) int {
	n := 0
	for _, f := range fs {
		if f.kind == fReport && f.member == "" && f.outcome.Kind == core.Delivered {
			n++
		}
	}
	return n
}

// checkSIP checks a SIP action a role sends on a leg against the per-leg order.
func (w *World) checkSIP(role int, a fsm.Action) *Violation {
	leg := a.ActionLeg()
	lo := w.leg(leg)
	bad := func(format string, args ...any) *Violation {
		return &Violation{PropSIPOrder, fmt.Sprintf("%s on leg %s: ", w.names[role], leg) + fmt.Sprintf(format, args...)}
	}
	switch a.(type) {
	case fsm.SendInvite:
		if lo.invites > 0 {
			return bad("a second INVITE on one dialog")
		}
	case fsm.SendOK:
		if lo.invites == 0 || lo.oks+lo.rejects > 0 {
			return bad("200 OK without an INVITE to answer")
		}
	case fsm.SendReject:
		if lo.invites == 0 || lo.oks > 0 || lo.rejects > 0 && lo.cancels == 0 {
			return bad("a final response without an INVITE to answer")
		}
		return w.checkBestFinal(role, leg)
	case fsm.SendAck:
		if lo.okRecv == 0 {
			return bad("ACK before the 200 OK it acknowledges")
		}
		if lo.acksSent >= lo.okRecv {
			return bad("more ACKs than 2xx responses")
		}
	case fsm.SendCancel:
		if lo.invites == 0 || lo.okRecv > 0 {
			return bad("CANCEL without a pending INVITE")
		}
	case fsm.SendBye:
		// RFC 3261 §15: the caller once it sent its ACK, the callee once it received it or
		// once its transaction timed out: its guard runs 64*T1, the time §13.3.1.4 gives
		// the ACK before the callee ends the session with BYE.
		if w.endOf(role, leg) == 1 {
			if !lo.ackRecv && w.guarded != leg {
				return bad("the callee sent BYE before the ACK for its 2xx arrived")
			}
		} else if lo.okRecv == 0 || lo.acksSent == 0 {
			return bad("BYE before the dialog was confirmed")
		}
	}
	return nil
}

// checkBestFinal: a relay answers its upstream INVITE with a final non-2xx only once every
// branch it forwarded it on is over (RFC 3261 §16.7, step 6: the best response is chosen
// when no final response is pending): answered, or given up with a CANCEL (§16.8: a
// branch whose Timer C fired counts as a 408). An INVITE cancelled from upstream is
// answered 487 at once (cancel-487, §9.2), whatever its branches still do.
func (w *World) checkBestFinal(role int, leg core.LegID) *Violation {
	if w.leg(leg).cancels > 0 {
		return nil
	}
	if l, ok := w.pendingBranch(role, leg); ok {
		return &Violation{PropBestFinal, fmt.Sprintf("%s answered the INVITE on %s with a final non-2xx while the INVITE on %s was still pending (RFC 3261 §16.7)",
			w.names[role], w.cfg.LegName(leg), w.cfg.LegName(l))}
	}
	return nil
}

// pendingBranch finds a branch a relay forwarded its INVITE on (a child leg of up it
// offered) whose INVITE has no final response and was not cancelled.
func (w *World) pendingBranch(role int, up core.LegID) (core.LegID, bool) {
	for i, l := range w.legNames {
		if p, ok := parentLeg(l); !ok || p != up || i >= len(w.net.legs) {
			continue
		}
		if d := &w.net.legs[i]; d.ends[0] == role && d.invites > 0 && d.okRecv == 0 && !d.finalRecv && d.cancels == 0 {
			return l, true
		}
	}
	return "", false
}

// connLive reports whether an opener still has a link open on one of its connections.
// A link the opener learned has failed holds its connection no more than one it closed:
// the connection is the sessions' (as the runtime's pool keeps an idle connection, a
// session that failed or closed leaves its connection to whoever binds next); a 481 to
// one session's bind says nothing of the others the opener may open there.
func (w *World) connLive(role int, conn core.ConnID) bool {
	if c := w.net.conn(role, conn); c == nil || c.state == connFailed {
		return false
	}
	for i := range w.net.legs {
		le := &w.net.legs[i]
		if e := w.endOf(role, w.legNames[i]); le.opener == role && le.conn == conn && !le.closed[e] && !le.failed[e] {
			return true
		}
	}
	return false
}

// quiescent checks the end of a run: nothing is in flight (and, with timers, none is armed).
func (w *World) quiescent() *Violation {
	var stuck []string
	for i, r := range w.roles {
		if !r.Terminal() {
			stuck = append(stuck, w.names[i]+" ("+openSides(r)+")")
		}
	}
	if len(stuck) > 0 {
		prop := PropDeadlock
		if len(w.cfg.Faults) > 0 || w.net.harmed || w.net.faultsLeft < w.cfg.FaultBudget {
			prop = PropTerminal
		}
		return &Violation{prop, "nothing can happen, but these roles are not done: " + strings.Join(stuck, "; ")}
	}
	if v := w.checkEndState(); v != nil {
		return v
	}
	if w.cfg.Group != core.GroupOK {
		return w.checkGroupRefused()
	}
	cfg := w.cfg
	// mayLack: member m may end without the message (and its hops down); faulty: the
	// sender may also learn a failure for it although it has the message (a fault on the
	// sender's legs after the relay beyond them held the whole message keeps the sender
	// from the outcome, not the member from the message).
	mayLack := func(m int) bool {
		// A member configured to hang up that never did (its session ended first) is
		// held to what a healthy member is.
		f, ok := cfg.Faults[m]
		return ok && (f.Kind != HangUp || w.hungUp(m)) || w.net.lostEarly || w.memberHarmed(m) || w.onFailedConn(m)
	}
	faulty := func(m int) bool { return mayLack(m) || w.net.harmed }
	for _, l := range []core.LegID{w.hopLeg(1), w.hopLeg(2)} {
		if lo := w.dialog(l); len(cfg.Faults) == 0 && !w.net.harmed && (lo == nil || !lo.up[0] || !lo.up[1]) {
			return &Violation{PropHopsUp, fmt.Sprintf("leg %s of the sender never came up at both ends", l)}
		}
	}
	for m := 0; m < cfg.Members; m++ {
		mo := w.obs.members[m]
		complete := mo.next == cfg.Chunks+1
		view := mo.result
		if !view.Final() {
			view = w.obs.rest
		}
		if !mayLack(m) {
			for hop, l := range []core.LegID{w.memberLeg(m, 3), w.memberLeg(m, 4)} {
				if lo := w.dialog(l); lo == nil || !lo.up[0] || !lo.up[1] {
					return &Violation{PropHopsUp, fmt.Sprintf("hop%d of member %s never came up at both ends", hop+3, cfg.MemberURI(m))}
				}
			}
		}
		if cfg.Sender != core.SenderWaits {
			// A sender that hung up after its last 200 hears of no member: it only needs
			// every member to get what it handed over. One whose message never left it
			// knows that no member has it, and says so (its guard records every member
			// failed, as a refusal or a lost link does).
			if !w.leg(w.hopLeg(1)).msgSent && !view.Final() {
				return &Violation{PropOutcome, fmt.Sprintf("the sender's message never left it, and it never learned that member %s failed", cfg.MemberURI(m))}
			}
			if !mayLack(m) && !complete {
				return &Violation{PropDelivery, fmt.Sprintf("member %s had no fault but holds %d of %d chunks after the sender hung up", cfg.MemberURI(m), mo.next-1, cfg.Chunks)}
			}
			continue
		}
		if v := w.checkDeclineStatus(m, view); v != nil {
			return v
		}
		switch {
		case !view.Final():
			return &Violation{PropOutcome, fmt.Sprintf("the sender never learned the outcome of member %s", cfg.MemberURI(m))}
		case view.Kind == core.Delivered && !complete:
			return &Violation{PropOutcome, fmt.Sprintf("the sender believes member %s has the message; it holds %d of %d chunks", cfg.MemberURI(m), mo.next-1, cfg.Chunks)}
		case !mayLack(m) && !complete:
			return &Violation{PropDelivery, fmt.Sprintf("member %s had no fault but holds %d of %d chunks", cfg.MemberURI(m), mo.next-1, cfg.Chunks)}
		case !faulty(m) && view.Kind != core.Delivered:
			return &Violation{PropOutcome, fmt.Sprintf("member %s holds the message, but the sender sees %s", cfg.MemberURI(m), view)}
		}
	}
	return nil
}

func openSides(r fsm.Role) string {
	var out []string
	for _, s := range r.Sessions() {
		sides := append([]*core.Side{}, s.Downs...)
		if s.Up != nil {
			sides = append([]*core.Side{s.Up}, sides...)
		}
		for _, sd := range sides {
			var st []string
			for _, m := range sd.M {
				if !m.Terminal() {
					st = append(st, m.Def().Name+"="+m.Name())
				}
			}
			if len(st) > 0 {
				out = append(out, string(sd.Leg)+": "+strings.Join(st, " "))
			}
		}
	}
	return strings.Join(out, ", ")
}

// hopLeg returns the leg of hop1 or hop2 of the (single) group send.
func (w *World) hopLeg(hop int) core.LegID {
	l := core.LegID("clientA-1")
	for i := 1; i < hop; i++ {
		l = core.DownLeg(l, 0)
	}
	return l
}

// onFailedConn says whether a link of member m rides a connection that a fault failed: a
// refused or broken connection that links of several members share (a reused hop3) fails
// all of them, whatever their own faults.
func (w *World) onFailedConn(m int) bool {
	for _, lk := range []core.LegID{w.memberLeg(m, 3), w.memberLeg(m, 4)} {
		if le := w.dialog(lk); le != nil && le.opener >= 0 {
			if c := w.net.conn(le.opener, le.conn); c != nil && c.tainted {
				return true
			}
		}
	}
	return false
}

// memberLeg returns the leg of hop3 or hop4 of member m.
func (w *World) memberLeg(m, hop int) core.LegID {
	l := core.DownLeg(w.hopLeg(2), m)
	if hop == 4 {
		l = core.DownLeg(l, 0)
	}
	return l
}

// checkEndState checks, when nothing more can happen and every role says it is done,
// what the wire shows is left over; the roles' own word (Terminal, the spec's `waiting`)
// is not taken for it. Every INVITE got a final response or was cancelled (RFC 3261
// §13.3.1: a UAS answers each INVITE; §9.1 a UAC that gives up cancels it); every dialog
// a 2xx set up was ended with BYE (§15; the group send is over); every link
// end that listened or came up was closed or learned its failure (RFC 4975 §8.4: the
// session's connection is let go with the session); no guard timer is still armed (a side
// that still guards a wait is still waiting).
func (w *World) checkEndState() *Violation {
	for i := range w.net.legs {
		le := &w.net.legs[i]
		if le.ends[0] < 0 {
			continue
		}
		name := w.cfg.LegName(w.legNames[i])
		if le.invites > 0 && le.oks+le.rejects == 0 && le.cancels == 0 {
			return &Violation{PropEndState, fmt.Sprintf("the INVITE on %s was neither answered nor cancelled", name)}
		}
		if le.oks > 0 && !le.byeSeen() {
			return &Violation{PropEndState, fmt.Sprintf("the dialog on %s was answered 200 OK and never ended with BYE", name)}
		}
		for e := 0; e < 2; e++ {
			r := w.names[le.ends[e]]
			switch {
			case le.closed[e] || le.failed[e]:
			case le.up[e]:
				return &Violation{PropEndState, fmt.Sprintf("%s left its link on %s up", r, name)}
			case le.listen[e] != "":
				return &Violation{PropEndState, fmt.Sprintf("%s left its link on %s listening", r, name)}
			}
			if le.timer[e] {
				return &Violation{PropEndState, fmt.Sprintf("%s left its guard timer on %s armed", r, name)}
			}
		}
	}
	return nil
}

// checkGroupRefused checks the end of a run whose group the CF cannot serve: the sender
// learns it with the status that says why, 404 for a group that does not exist (RFC 3261
// §21.4.5) and 403 for one it may not write to (§21.4.4), and no member was invited.
func (w *World) checkGroupRefused() *Violation {
	want := 404
	if w.cfg.Group == core.GroupForbidden {
		want = 403
	}
	if got := w.obs.rest; got.Kind != core.Failed || got.Status != want {
		return &Violation{PropOutcome, fmt.Sprintf("the CF cannot serve the group (%d), but the sender sees %s", want, got)}
	}
	for m := 0; m < w.cfg.Members; m++ {
		if le := w.dialog(w.memberLeg(m, 3)); le != nil && le.invites > 0 {
			return &Violation{PropOutcome, fmt.Sprintf("the CF cannot serve the group (%d), but it invited member %s", want, w.cfg.MemberURI(m))}
		}
	}
	return nil
}
