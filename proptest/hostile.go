package proptest

import (
	"errors"
	"fmt"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
)

// Hostile input (docs/architecture.md, "Hostile peers"). Standard peers never send a
// request or response that the dialog or the link at the receiving end cannot take: an
// ACK before any 2xx, a BYE outside a dialog, a non-2xx after a 2xx, MSRP traffic on a
// link that is not up, a second connection for a link that is up. A broken or hostile peer
// can; the receiving role must refuse it (a Refuse action: the runtime answers 481 or 400
// and the session and connection carry on), never take it as if it were valid, never
// ignore it silently, and never meet it with no cell at all.
//
// With Config.Hostile, every state the search reaches is probed: for each role and each
// leg it is an end of, the inputs that the wire so far makes hostile (the checkers' own
// reading of RFC 3261 and RFC 4975, from what was sent and delivered, never from the
// roles' state) are fed to a copy of the role, which must refuse each. A probe changes
// nothing: the role is restored after it. The explorer probes each distinct role state
// once per input (the verdict depends on the role's state and the input alone), so the
// probes cost a few thousand steps per search, not one per state.

// PropHostile is the property that a role refuses input only a broken peer sends.
const PropHostile = "hostile-refused"

// hostileInput is one input a peer could send a role that the wire makes hostile, or,
// with benign set, one a standard peer may send that the search never delivers.
type hostileInput struct {
	role   int
	leg    core.LegID
	ev     fsm.Event
	why    string
	benign bool
}

// hostileInputs lists, for role r, the hostile inputs of the current state.
func (w *World) hostileInputs(r int, out []hostileInput) []hostileInput {
	for i := range w.net.legs {
		le := &w.net.legs[i]
		leg := w.legNames[i]
		for e := 0; e < 2; e++ {
			if le.ends[e] != r {
				continue
			}
			if e == 1 && le.offerSDP == "" {
				continue // the INVITE has not arrived: the role has no side for the leg yet
			}
			add := func(ev fsm.Event, why string) {
				if w.takes(r, ev) {
					out = append(out, hostileInput{role: r, leg: leg, ev: ev, why: why})
				}
			}
			// Inputs a standard peer may send that the search leaves out (the transaction
			// layer's own messages, retransmissions, messages that cross): the role must
			// take them without refusing them and without a missing cell.
			benign := func(ev fsm.Event, why string) {
				if w.takes(r, ev) {
					out = append(out, hostileInput{role: r, leg: leg, ev: ev, why: why, benign: true})
				}
			}
			if e == 1 {
				// §17.1.1.2: Timer A retransmits the INVITE over UDP until a response
				// arrives, so a copy can arrive after any response, the final one too
				// (and after a CANCEL or BYE): whatever the dialog's state, the copy is
				// the INVITE that created the side, and is taken without a refusal.
				// Every role at the answering end of a leg takes INVITEs (no takes).
				out = append(out, hostileInput{role: r, leg: leg, ev: fsm.InviteReceived{Leg: leg}, why: "a retransmitted INVITE", benign: true})
				// RFC 3261 §17.1.1.3: the client transaction ACKs a non-2xx final response.
				if le.rejects > 0 {
					benign(fsm.AckReceived{Leg: leg}, "the ACK of its non-2xx final response")
				}
				// §13.2.2.4: the UAC ACKs every 2xx retransmission, so ACKs repeat.
				if le.ackRecv {
					benign(fsm.AckReceived{Leg: leg}, "a repeated ACK")
				}
				// §9.1: a CANCEL may cross the final response.
				if le.oks+le.rejects > 0 {
					benign(fsm.CancelReceived{Leg: leg}, "a CANCEL that crossed its final response")
				}
			} else {
				// §17.1.1.2: a final response is retransmitted until the ACK arrives.
				if le.finalRecv {
					benign(fsm.RejectReceived{Leg: leg, Status: 486}, "a retransmitted non-2xx final response")
				}
				// §13.3.1.4: the UAS retransmits its 2xx until the ACK arrives, so copies
				// may arrive at any time after the first, after our BYE too. Only the
				// first 2xx carries an answer the role reads.
				if le.okRecv > 0 {
					benign(fsm.OKReceived{Leg: leg}, "a retransmitted 2xx")
				}
				// §16.7 step 5: once a forking proxy sent a final response, it still forwards
				// any 2xx of another branch at once, so a 2xx may follow a non-2xx final
				// response (a member registered from two devices, one declining).
				if le.finalRecv && le.okRecv == 0 {
					benign(fsm.OKReceived{Leg: leg}, "a 2xx after its non-2xx final response (a forking proxy's other branch)")
				}
			}
			// RFC 4975 §7.1.1: what was in flight when an end let its link go still arrives.
			if le.closed[e] || le.failed[e] {
				benign(fsm.LinkUp{Leg: leg, Conn: "late"}, "a connection that arrived after the end let the link go")
				if le.up[e] && e == 1 {
					benign(fsm.SendReceived{Leg: leg, Chunk: 1, Last: true}, "a SEND in flight when the end let the link go")
				}
				if le.up[e] && e == 0 {
					benign(fsm.MessageAcked{Leg: leg}, "a response in flight when the end let the link go")
					benign(fsm.ReportReceived{Leg: leg, Outcome: core.Outcome{Kind: core.Delivered}}, "a REPORT in flight when the end let the link go")
				}
			}
			if e == 1 {
				// RFC 3261 §13.3.1.4, §17.2.1: the ACK of a dialog acknowledges a 2xx; one
				// before any final response matches nothing.
				if !le.okSent && le.rejects == 0 {
					add(fsm.AckReceived{Leg: leg}, "an ACK before any final response was sent")
				}
				// §15: BYE ends a dialog, which only a 2xx creates.
				if !le.okSent {
					add(fsm.ByeReceived{Leg: leg}, "a BYE before any 2xx was sent (no dialog)")
				}
			} else {
				if le.okRecv == 0 {
					add(fsm.ByeReceived{Leg: leg}, "a BYE before any 2xx was received (no dialog)")
				}
				// §17.1.1.2: a transaction that received a 2xx takes no other final response.
				if le.okRecv > 0 && !le.finalRecv {
					add(fsm.RejectReceived{Leg: leg, Status: 500}, "a non-2xx final response after a 2xx")
				}
			}
			// RFC 4975 §7.1.1: MSRP requests and responses travel on a session's connection
			// once it is bound; before that there is none to carry them. The message flows
			// from the offerer's end to the answerer's; its responses and REPORTs back.
			if !le.up[e] && !le.closed[e] && !le.failed[e] {
				if e == 1 {
					add(fsm.SendReceived{Leg: leg, Chunk: 1, Last: true}, "a SEND on a link that is not up")
				} else {
					add(fsm.MessageAcked{Leg: leg}, "a response on a link that is not up")
					add(fsm.ReportReceived{Leg: leg, Outcome: core.Outcome{Kind: core.Delivered}}, "a REPORT on a link that is not up")
				}
			}
			// A link that is up is bound to one connection; a second one for the same
			// session was never opened nor awaited.
			if le.up[e] && !le.closed[e] && !le.failed[e] {
				add(fsm.LinkUp{Leg: leg, Conn: "hostile"}, "a second connection for a link that is up")
			}
		}
	}
	return out
}

// probeHostile feeds every hostile input of the current state to a copy of its role and
// checks that the role refuses it. probed, when not nil, holds the (role state, input)
// pairs already probed, which are skipped and to which the new ones are added.
func (w *World) probeHostile(probed map[string]struct{}, buf []hostileInput) *Violation {
	var key []byte
	for r := range w.roles {
		buf = w.hostileInputs(r, buf[:0])
		for _, h := range buf {
			if probed != nil {
				key = append(key[:0], byte(r), byte(r>>8))
				key = append(key, h.ev.Kind()...)
				key = append(key, 0)
				key = append(key, h.leg...)
				key = append(key, 0)
				key = append(key, w.snaps[r]...)
				if _, ok := probed[string(key)]; ok {
					continue
				}
				probed[string(key)] = struct{}{}
			}
			if v := w.probeOne(h); v != nil {
				return v
			}
		}
	}
	return w.probeForeignOffers(probed)
}

// probeOne feeds one hostile input to its role and restores the role.
func (w *World) probeOne(h hostileInput) *Violation {
	r := h.role
	acts, err := w.roles[r].Step(h.ev)
	if rerr := w.roles[r].Restore(w.snaps[r]); rerr != nil {
		return &Violation{PropHostile, fmt.Sprintf("%s: restoring after a probe: %v", w.names[r], rerr)}
	}
	refused := errors.Is(err, core.ErrUnknownLeg) // the runtime answers 481 (RFC 3261 §12.2.2)
	for _, a := range acts {
		if x, ok := a.(core.Refuse); ok && x.Leg == h.leg {
			refused = true
		}
	}
	peer := w.net.legs[w.legIdx[h.leg]].ends[1-w.endOf(r, h.leg)]
	if h.benign {
		if err == nil && !refused || errors.Is(err, core.ErrUnknownLeg) {
			return nil
		}
		w.record(Step{From: w.nameOf(peer), To: w.names[r], Label: "late " + h.ev.Kind() + " on " + string(h.leg), Note: true, Violating: true})
		if err != nil {
			return &Violation{PropHostile, fmt.Sprintf("%s has no cell for %s on %s (%s, which a standard peer sends): %v", w.names[r], h.ev.Kind(), w.cfg.LegName(h.leg), h.why, err)}
		}
		return &Violation{PropHostile, fmt.Sprintf("%s refused %s on %s, which a standard peer sends", w.names[r], h.why, w.cfg.LegName(h.leg))}
	}
	if refused {
		return nil
	}
	w.record(Step{From: w.nameOf(peer), To: w.names[r], Label: "hostile " + h.ev.Kind() + " on " + string(h.leg), Note: true, Violating: true})
	if err != nil {
		return &Violation{PropHostile, fmt.Sprintf("%s has no cell for %s on %s (%s): %v", w.names[r], h.ev.Kind(), w.cfg.LegName(h.leg), h.why, err)}
	}
	what := "ignored it"
	if len(acts) > 0 {
		what = "took it, answering with"
		for _, a := range acts {
			what += " " + a.Kind()
		}
	}
	return &Violation{PropHostile, fmt.Sprintf("%s received %s on %s and %s instead of refusing it", w.names[r], h.why, w.cfg.LegName(h.leg), what)}
}

// takes reports whether role r takes inputs of ev's kind at all. A role that takes none (a
// transmitting client is sent no SEND) has the runtime refuse it before any machine: the
// role's own answer to a leg it does not know tells (ErrUnknownLeg, where one that takes
// no such input says so otherwise). The answers are kept per role and kind.
func (w *World) takes(r int, ev fsm.Event) bool {
	k := ev.Kind()
	if w.takesKind == nil {
		w.takesKind = map[string]bool{}
	}
	key := w.names[r] + "\x00" + k
	if t, ok := w.takesKind[key]; ok {
		return t
	}
	kind, name, uri := w.roleAt(r)
	fresh := fsm.New(kind, core.Config{Name: name, URI: uri, MSRPHost: name, MSRPPort: 2855, Secret: "sim"}, w.cfg.Variant)
	var probe fsm.Event
	switch x := ev.(type) {
	case fsm.AckReceived:
		probe = fsm.AckReceived{Leg: "no-such-leg"}
	case fsm.CancelReceived:
		probe = fsm.CancelReceived{Leg: "no-such-leg"}
	case fsm.OKReceived:
		probe = fsm.OKReceived{Leg: "no-such-leg"}
	case fsm.ByeReceived:
		probe = fsm.ByeReceived{Leg: "no-such-leg"}
	case fsm.RejectReceived:
		probe = fsm.RejectReceived{Leg: "no-such-leg", Status: x.Status}
	case fsm.SendReceived:
		probe = fsm.SendReceived{Leg: "no-such-leg", Chunk: 1, Last: true}
	case fsm.MessageAcked:
		probe = fsm.MessageAcked{Leg: "no-such-leg"}
	case fsm.ReportReceived:
		probe = fsm.ReportReceived{Leg: "no-such-leg", Outcome: x.Outcome}
	case fsm.LinkUp:
		probe = fsm.LinkUp{Leg: "no-such-leg", Conn: x.Conn}
	}
	_, err := fresh.Step(probe)
	t := errors.Is(err, core.ErrUnknownLeg)
	w.takesKind[key] = t
	return t
}
