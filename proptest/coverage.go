package proptest

import (
	"fmt"

	"github.com/cpmlink/cpmlink/fsm"
)

// Trigger coverage (docs/architecture.md, "Trigger coverage"). The generated code serves
// the whole knob space (docs/variant-map.md maps it, and a spec that extends the default one
// may name any point of it), but the named variants use only some of the ways to open a
// hop: no figure has an offerer open on its own 200 OK upstream (ok-sent), or an answerer
// open on a downstream 200 OK (ok-received) or on its own 200 OK. Each trigger compiles to
// one condition per end, so a slip in a condition no named variant evaluates is invisible
// to every search of the named variants. TriggerCoverage gives the checkers one point of
// the knob space for each way of opening that the named variants leave out.

// TriggerCoverage returns, for each (opener end, trigger) that no variant of vs uses on any
// hop, one variant that does: the first of bases, with the last hop whose opener at that
// end can observe the trigger (Variant.Check) set to it. The last, not the first: PF-A
// opening hop1 before the sender's ACK (on ok-received or ok-sent) let a sender that hangs
// up after its last SEND BYE a dialog it never confirmed (sip-order), whatever the
// conditions said. That is fixed (TestSenderHangsUpInConfirmedDialog covers those
// points); the last hop stays, as mutate's costs in docs/mutation.md were measured with
// it. The answerer's send-received is left out: such a hop waits for a SEND that can only
// come over the link it has not opened, and deadlocks in every combination
// (docs/variant-map.md). The variants carry no order rules: those are their figure's,
// whose step order they depart from on that hop.
func TriggerCoverage(vs, bases []fsm.Variant) []fsm.Variant {
	var used [2][4]bool
	for _, v := range vs {
		for h := fsm.Hop(0); h < fsm.NumHops; h++ {
			used[v.Opener[h]][v.Trigger[h]] = true
		}
	}
	var out []fsm.Variant
	for o := fsm.OpenerOfferer; o <= fsm.OpenerAnswerer; o++ {
		for t := fsm.TriggerOKReceived; t <= fsm.TriggerOKSent; t++ {
			if used[o][t] || o == fsm.OpenerAnswerer && t == fsm.TriggerSendReceived {
				continue
			}
			if v, ok := coverOne(bases, o, t); ok {
				out = append(out, v)
			}
		}
	}
	return out
}

// DeadTrigger returns, when bases have one, the variant TriggerCoverage leaves out: the last
// hop that can take it opened by its answerer on send-received. Its verdict on the spec is
// a deadlock, or, where a client's a=setup hands the opening to the other end, none; a
// condition that opens the hop anyway opens it before any SEND could have come over it,
// which initiative sees (opened before its trigger). CheckMutant explores it and takes a
// deadlock for the spec's own verdict.
func DeadTrigger(bases []fsm.Variant) (fsm.Variant, bool) {
	return coverOne(bases, fsm.OpenerAnswerer, fsm.TriggerSendReceived)
}

// coverOne derives from the first base, on its last hop where that works, a variant whose
// hop is opened by end o on trigger t.
func coverOne(bases []fsm.Variant, o fsm.Opener, t fsm.Trigger) (fsm.Variant, bool) {
	for _, b := range bases {
		for i := int(fsm.NumHops) - 1; i >= 0; i-- {
			h := fsm.Hop(i)
			v := b
			v.Opener[h], v.Trigger[h] = o, t
			v.Order = 0
			if v.Check() != nil {
				continue
			}
			v.Name = fmt.Sprintf("%s with %s opened by the %s on %s", b.Name, h, o, t)
			v.Doc = "trigger coverage (proptest.TriggerCoverage)"
			return v, true
		}
	}
	return fsm.Variant{}, false
}

// EarlyClientHop returns base with hop1 opened by PF-A, the answerer, on the 200 OK
// (ok-received) and on its own 200 OK (ok-sent): the message can then be through before
// the sender has its 200 OK, so a sender that ends its session once the message is out
// (closes, hangs-up, or a blind one whose guard fires) must wait for the 200 OK and ACK
// it before its BYE (RFC 3261 §15). No named variant opens hop1 so, and TriggerCoverage
// changes the last hop, not hop1. The variants carry no order rules (the figure's have
// ClientA open hop1).
func EarlyClientHop(base fsm.Variant) []fsm.Variant {
	var out []fsm.Variant
	for _, trig := range []fsm.Trigger{fsm.TriggerOKReceived, fsm.TriggerOKSent} {
		v := base
		v.Opener[fsm.Hop1], v.Trigger[fsm.Hop1] = fsm.OpenerAnswerer, trig
		v.Order = 0
		v.Name = fmt.Sprintf("%s with hop1 opened by the answerer on %s", base.Name, trig)
		v.Doc = "early client hop (proptest.EarlyClientHop)"
		if v.Check() == nil {
			out = append(out, v)
		}
	}
	return out
}
