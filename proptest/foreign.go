package proptest

import (
	"fmt"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
)

// Foreign offerers (docs/architecture.md, "Foreign offerers"). On a negotiated hop the
// search's offerers are cpmlink's own roles and the configured clients: towards a member
// only PF-B offers, and PF-B, a server, always offers a=setup:actpass. A standard offerer
// of another make may fix its own role instead (RFC 4145 §4.1: a=setup:active or passive;
// RFC 4975 §5.4: no a=setup, which means that the offerer connects), and the answerer must
// then take the complement, whatever its own preference. With Config.Hostile (and with
// Config.ForeignOffers in Run), every INVITE in flight on a negotiated hop whose first
// copy has not arrived is also fed to a copy of its receiver as each fixed offer it does
// not already carry; an answer the receiver gives in
// that step must carry the a=setup checkSetup requires for that offer. A probe changes
// nothing: the role is restored after it. A receiver that answers only later (a PF, which
// waits for its downstream 200) is judged on the wire by checkSetup, whose offerers (the
// sender's a=setup rotations) fix their role on hop1.

// PropForeignOffer is the property that a role answers an offer that fixes the offerer's
// role with its complement, whoever made the offer.
const PropForeignOffer = "foreign-offer"

// fixedOffers are the offers a standard offerer may make that fix its own role.
var fixedOffers = []core.Setup{core.SetupActive, core.SetupPassive, core.SetupNone}

// probeForeignOffers feeds each INVITE in flight on a negotiated hop to a copy of its
// receiver with each fixed offer, and checks the answer. probed, when not nil, holds the
// (receiver state, INVITE, offer) triples already probed, which are skipped and to which
// the new ones are added.
func (w *World) probeForeignOffers(probed map[string]struct{}) *Violation {
	var key []byte
	for _, it := range w.net.bag {
		x, ok := it.ev.(fsm.InviteReceived)
		if it.kind != itSIP || !ok {
			continue
		}
		h, ok := w.hopOf(it.leg)
		if !ok || w.cfg.Variant.Initiative[h] != fsm.InitiativeNegotiated {
			continue
		}
		if w.leg(it.leg).offerSDP != "" {
			continue // a retransmission: a foreign offerer repeats the offer it made first
		}
		r := it.to
		for _, s := range fixedOffers {
			if s == x.Offer.Setup {
				continue // the search delivers this one
			}
			if probed != nil {
				key = append(key[:0], "foreign\x00"...)
				key = append(key, byte(r), byte(r>>8), byte(s))
				key = append(key, it.leg...)
				key = append(key, 0)
				key = append(key, x.Offer.Path...)
				key = append(key, 0)
				key = append(key, w.snaps[r]...)
				if _, ok := probed[string(key)]; ok {
					continue
				}
				probed[string(key)] = struct{}{}
			}
			if v := w.probeOffer(r, h, x, s); v != nil {
				return v
			}
		}
	}
	return nil
}

// probeOffer feeds role r the INVITE x with its offer's a=setup made s, restores the role,
// and checks the answer it gave in that step, if any.
func (w *World) probeOffer(r int, h fsm.Hop, x fsm.InviteReceived, s core.Setup) *Violation {
	ev := x
	ev.Offer.Setup = s
	acts, err := w.roles[r].Step(ev)
	if rerr := w.roles[r].Restore(w.snaps[r]); rerr != nil {
		return &Violation{PropForeignOffer, fmt.Sprintf("%s: restoring after a probe: %v", w.names[r], rerr)}
	}
	peer := w.net.legs[w.legIdx[x.Leg]].ends[0]
	if err != nil {
		w.record(Step{From: w.nameOf(peer), To: w.names[r], Label: "INVITE (a=setup:" + setupName(s) + ") on " + string(x.Leg), Note: true, Violating: true})
		return &Violation{PropForeignOffer, fmt.Sprintf("%s has no cell for an INVITE on %s offering a=setup:%s, which a standard offerer sends: %v", w.names[r], w.cfg.LegName(x.Leg), setupName(s), err)}
	}
	for _, a := range acts {
		ok, isOK := a.(fsm.SendOK)
		if !isOK || ok.Leg != x.Leg {
			continue
		}
		if want := w.wantSetup(r, h, s, true); ok.Answer.Setup != want {
			w.record(Step{From: w.nameOf(peer), To: w.names[r], Label: "INVITE (a=setup:" + setupName(s) + ") on " + string(x.Leg), Note: true})
			w.record(Step{From: w.names[r], To: w.nameOf(peer), Label: "200 OK (a=setup:" + setupName(ok.Answer.Setup) + ") on " + string(x.Leg), Note: true, Violating: true})
			return &Violation{PropForeignOffer, fmt.Sprintf("%s answered an offer of a=setup:%s on %s (leg %s) with a=setup:%s; RFC 4145 §4.1 wants a=setup:%s", w.names[r], setupName(s), h, x.Leg, setupName(ok.Answer.Setup), setupName(want))}
		}
	}
	return nil
}
