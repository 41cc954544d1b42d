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
	PropInitiative   = "initiative"   // the right party opened the link, after its trigger, with learned parameters
	PropReuse        = "reuse"        // with reuse on, one connection per opener and peer address
	PropDelivery     = "delivery"     // every chunk reached the member once, in order, byte-exact
	PropDeadlock     = "deadlock"     // nothing can happen but some role is not done
	PropHopsUp       = "all-hops-up"  // every hop of every (healthy) member came up
	PropOutcome      = "outcome"      // the sender's view of each member matches what happened
	PropTerminal     = "terminal"     // with faults, every role still ends its sessions
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
		return upObs().ackRecv, true
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
	if want := v.Opener[h].String(); side != want {
		return &Violation{PropInitiative, fmt.Sprintf("%s opened %s (leg %s) as the %s; variant %s names the %s", w.names[role], h, leg, side, v.Name, want)}
	}
	if held, known := w.triggerHeld(v.Trigger[h].String(), role, leg); known && !held {
		return &Violation{PropInitiative, fmt.Sprintf("%s opened %s (leg %s) before its trigger %s", w.names[role], h, leg, v.Trigger[h])}
	}
	lo := w.leg(leg)
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
		if lo.okRecv == 0 || lo.acksSent == 0 {
			return bad("BYE before the dialog was confirmed")
		}
	}
	return nil
}

// connLive reports whether an opener still has a link open on one of its connections.
func (w *World) connLive(role int, conn core.ConnID) bool {
	if c := w.net.conn(role, conn); c == nil || c.state == connFailed {
		return false
	}
	for i := range w.net.legs {
		le := &w.net.legs[i]
		if le.opener == role && le.conn == conn && !le.closed[w.endOf(role, w.legNames[i])] {
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
		if len(w.cfg.Faults) > 0 {
			prop = PropTerminal
		}
		return &Violation{prop, "nothing can happen, but these roles are not done: " + strings.Join(stuck, "; ")}
	}
	cfg := w.cfg
	faulty := func(m int) bool {
		if _, f := cfg.Faults[m]; f {
			return true
		}
		for _, lk := range []core.LegID{w.memberLeg(m, 3), w.memberLeg(m, 4)} {
			if le := w.dialog(lk); le != nil && le.opener >= 0 {
				if c := w.net.conn(le.opener, le.conn); c != nil && c.tainted {
					return true
				}
			}
		}
		return false
	}
	for _, l := range []core.LegID{w.hopLeg(1), w.hopLeg(2)} {
		if lo := w.dialog(l); len(cfg.Faults) == 0 && (lo == nil || !lo.up[0] || !lo.up[1]) {
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
		if !faulty(m) {
			for hop, l := range []core.LegID{w.memberLeg(m, 3), w.memberLeg(m, 4)} {
				if lo := w.dialog(l); lo == nil || !lo.up[0] || !lo.up[1] {
					return &Violation{PropHopsUp, fmt.Sprintf("hop%d of member %s never came up at both ends", hop+3, cfg.MemberURI(m))}
				}
			}
		}
		switch {
		case !view.Final():
			return &Violation{PropOutcome, fmt.Sprintf("the sender never learned the outcome of member %s", cfg.MemberURI(m))}
		case view.Kind == core.Delivered && !complete:
			return &Violation{PropOutcome, fmt.Sprintf("the sender believes member %s has the message; it holds %d of %d chunks", cfg.MemberURI(m), mo.next-1, cfg.Chunks)}
		case !faulty(m) && !complete:
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

// memberLeg returns the leg of hop3 or hop4 of member m.
func (w *World) memberLeg(m, hop int) core.LegID {
	l := core.DownLeg(w.hopLeg(2), m)
	if hop == 4 {
		l = core.DownLeg(l, 0)
	}
	return l
}
