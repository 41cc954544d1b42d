package proptest

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
)

// TraceRecord is one line of a real run's trace, reduced to what validation needs: an
// event a role instance's machine took ("in"), or an INVITE it sent ("out", to pair the
// two ends of each dialog).
type TraceRecord struct {
	// Node is the instance name, as the simulator names it (clientA, pfa, cf, pfb1, m1).
	Node string
	Dir  string
	Type string
	// Leg is the instance's own leg id; Dialog the SIP Call-ID both ends share.
	Leg, Dialog string
	Chunk       int
	Last        bool
	Member      string
	Status      int
}

// PropTrace is the property a trace breaks when the spec cannot produce it: some machine
// took an event that, in the simulated network of the same configuration, was not
// deliverable at that point.
const PropTrace = "trace"

// ValidateTrace replays a real run, in the order its trace gives, as a schedule of the
// simulator, which runs the very same generated code and the same checkers: the run is
// one of the behaviours the explorer covers only if every event it took could be
// delivered when it was, and then every property is checked on it (trace validation, as
// etcd-io/raft does against its TLA+ spec). cfg must describe the run's group (variant,
// members, PF-Bs, and the number of chunks the message had); timers may fire whenever
// armed. A run that ended (complete is true) must end in a good quiescent state.
func ValidateTrace(cfg Config, recs []TraceRecord, complete bool) ([]Step, *Violation, error) {
	cfg.Timers = true
	w, err := NewWorld(cfg)
	if err != nil {
		return nil, nil, err
	}
	var steps []Step
	w.SetLog(&steps)
	idx := map[string]int{}
	for i, n := range w.names {
		idx[n] = i
	}
	// Pair legs first: a down leg's simulated name follows from its up leg's, and an up
	// leg's from the INVITE's dialog. Records of different nodes may be slightly out of
	// causal order in time, so this runs to a fixpoint.
	simLeg := map[string]core.LegID{}
	byDialog := map[string]core.LegID{}
	key := func(node, leg string) string { return node + "\x00" + leg }
	for changed := true; changed; {
		changed = false
		for _, r := range recs {
			k := key(r.Node, r.Leg)
			if _, done := simLeg[k]; done || r.Leg == "" {
				continue
			}
			var sl core.LegID
			switch {
			case r.Dir == "out" && r.Type == "SendInvite" && r.Node == "clientA":
				sl = w.hopLeg(1)
			case r.Dir == "out" && r.Type == "SendInvite":
				i := strings.LastIndexByte(r.Leg, '/')
				if i < 0 {
					return nil, nil, fmt.Errorf("proptest: %s sent an INVITE on leg %q, not derived from an up leg", r.Node, r.Leg)
				}
				up, ok := simLeg[key(r.Node, r.Leg[:i])]
				if !ok {
					continue
				}
				sl = core.LegID(string(up) + r.Leg[i:])
			case r.Type == "InviteReceived":
				d, ok := byDialog[r.Dialog]
				if !ok {
					continue
				}
				sl = d
			default:
				continue
			}
			simLeg[k] = sl
			if r.Type == "SendInvite" && r.Dialog != "" {
				byDialog[r.Dialog] = sl
			}
			changed = true
		}
	}
	// Each node's records are in the order its machine took them: that order is real.
	// Between nodes, time stamps from different goroutines only approximate causality
	// (a passive end may record its LinkUp before the opener's Connect returns), so the
	// replay takes, at each step, the earliest record at the head of a node's queue that
	// the simulator can deliver. Delivering a message only ever adds deliverable ones, so
	// this greedy order finds a schedule whenever one exists that keeps every node's own
	// order.
	queues := map[string][]int{}
	var nodes []string
	total := 0
	for n, r := range recs {
		if r.Dir != "in" || r.Type == "Start" {
			continue
		}
		if _, ok := idx[r.Node]; !ok {
			return steps, nil, fmt.Errorf("proptest: record %d: the simulated group has no instance %q", n, r.Node)
		}
		if _, ok := queues[r.Node]; !ok {
			nodes = append(nodes, r.Node)
		}
		queues[r.Node] = append(queues[r.Node], n)
		total++
	}
	delivered := map[string]fsm.Event{}
	for ; total > 0; total-- {
		choices := w.Choices()
		var heads []int
		for _, node := range nodes {
			if q := queues[node]; len(q) > 0 {
				heads = append(heads, q[0])
			}
		}
		sort.Ints(heads)
		var stuck *Violation
		taken := false
		for _, n := range heads {
			r := recs[n]
			ok, v := w.replayOne(n, r, choices, simLeg[key(r.Node, r.Leg)], idx[r.Node], delivered)
			if v != nil && v.Property != PropTrace {
				return steps, v, nil
			}
			if ok {
				queues[r.Node] = queues[r.Node][1:]
				taken = true
				break
			}
			if stuck == nil {
				stuck = v
			}
		}
		if !taken {
			// A frame that reaches an end its role closed leaves no record there (the
			// session drops it; a SEND may be answered 481, whose failure the sender's
			// next record takes): deliver one and try the records again.
			if c, ok := w.droppedFrame(choices); ok {
				if v := w.Apply(c); v != nil {
					return steps, v, nil
				}
				total++
				continue
			}
			if d, ok := strings.CutSuffix(stuck.Detail, stuckDeliverable); ok {
				stuck.Detail = d + "deliverable: " + w.describeAll(choices)
			}
			var waiting []string
			for _, n := range heads[1:] {
				waiting = append(waiting, fmt.Sprintf("%s %s on %s (record %d)", recs[n].Node, recs[n].Type, recs[n].Leg, n))
			}
			if len(waiting) > 0 {
				stuck.Detail += "; the other nodes' next records: " + strings.Join(waiting, ", ")
			}
			return steps, stuck, nil
		}
	}
	if complete {
		if v := w.absorb(); v != nil {
			return steps, v, nil
		}
		if len(w.Choices()) > 0 {
			return steps, &Violation{PropTrace, "the run ended with messages still in flight in the replay: " + w.describeAll(w.Choices())}, nil
		}
		return steps, w.quiescent(), nil
	}
	return steps, nil, nil
}

// droppedFrame finds a frame in flight to a link end its role closed.
func (w *World) droppedFrame(choices []Choice) (Choice, bool) {
	for _, c := range choices {
		if c.Kind == ChooseFrame && w.net.legs[c.leg].closed[1-c.dir] {
			return c, true
		}
	}
	return Choice{}, false
}

// replayOne delivers record n if the simulator can: it reports whether it did, and a
// PropTrace violation saying why not, or any other violation the delivery caused.
func (w *World) replayOne(n int, r TraceRecord, choices []Choice, leg core.LegID, role int, delivered map[string]fsm.Event) (bool, *Violation) {
	if leg == "" {
		var ok bool
		if leg, ok = w.ownLeg(role, r.Leg); !ok {
			return false, &Violation{PropTrace, fmt.Sprintf("record %d: %s took %s on leg %s, which no INVITE of the trace set up", n, r.Node, r.Type, r.Leg)}
		}
	}
	pick := -1
	for i, c := range choices {
		if w.matches(c, role, leg, r) {
			pick = i
			break
		}
	}
	if pick < 0 && r.Type == "Timeout" {
		if le := w.dialog(leg); le != nil && le.timer[w.endOf(role, leg)] {
			pick = len(choices)
			choices = append(choices, Choice{Kind: ChooseTimer, leg: w.legNo(leg), dir: w.endOf(role, leg)})
		}
	}
	dk := r.Node + "\x00" + string(leg) + "\x00" + r.Type
	if pick < 0 {
		if ev, seen := delivered[dk]; seen && isSIP(r.Type) {
			// A SIP retransmission (UDP): the machine takes the same message again.
			w.record(Step{From: w.names[role], To: w.names[role], Label: "retransmitted " + r.Type, Note: true})
			return true, w.step(role, ev)
		}
		// What was deliverable is described only if the replay stays stuck (see
		// stuckDeliverable): most heads that cannot be delivered yet are delivered a few
		// steps later, and describing every message in flight for each of them made the
		// validation of a 1000-member run take most of the demo's time.
		return false, &Violation{PropTrace, fmt.Sprintf("record %d: %s took %s on %s (chunk %d), which the spec could not deliver then; %s",
			n, r.Node, r.Type, leg, r.Chunk, stuckDeliverable)}
	}
	if c := choices[pick]; c.Kind == ChooseItem && w.net.bag[c.item].kind == itSIP {
		delivered[dk] = w.net.bag[c.item].ev
	}
	return true, w.Apply(choices[pick])
}

// absorb takes out of the network what a real run leaves no record of when it ends: a
// CANCEL for an INVITE that already had its final response (the SIP stack answers it
// itself and tells no machine, RFC 3261 §9.2; its sender may not even have put it on the
// wire), an ACK that a BYE overtook (the stack drops it with the dialog), and MSRP frames and link failures headed for a link end that its role already
// closed (a closed session drops them, or the connection under it is gone).
func (w *World) absorb() *Violation {
	for changed := true; changed; {
		changed = false
		for i := 0; i < len(w.net.bag); i++ {
			it := w.net.bag[i]
			lo := w.dialog(it.leg)
			switch {
			case it.kind == itSIP && it.ev.Kind() == "CancelReceived" && lo != nil && (lo.oks > 0 || lo.rejects > 0):
				w.record(Step{From: w.names[it.from], To: w.nameOf(it.to), Label: "CANCEL absorbed: the INVITE had its final response", Note: true})
			case it.kind == itSIP && it.ev.Kind() == "AckReceived" && lo != nil && lo.byes > 0:
				// The BYE overtook it (separate transactions, RFC 3261 §13.3.1.4 allows it)
				// and ended the dialog: the stack drops an ACK for a dialog it no longer has.
				w.record(Step{From: w.names[it.from], To: w.nameOf(it.to), Label: "ACK absorbed: the dialog had ended", Note: true})
			case it.kind == itFail && lo != nil && lo.closed[w.endOf(it.to, it.leg)]:
				w.record(Step{From: w.names[it.from], To: w.nameOf(it.to), Label: "link failure absorbed: the end was closed", Note: true})
			default:
				continue
			}
			w.net.take(i)
			changed = true
			break
		}
		for li := range w.net.legs {
			le := &w.net.legs[li]
			for dir := 0; dir < 2; dir++ {
				if len(le.chans[dir]) > 0 && le.closed[1-dir] {
					if v := w.frame(li, dir); v != nil {
						return v
					}
					changed = true
				}
			}
		}
	}
	return nil
}

func isSIP(t string) bool {
	switch t {
	case "InviteReceived", "OKReceived", "AckReceived", "RejectReceived", "CancelReceived", "ByeReceived":
		return true
	}
	return false
}

// ownLeg maps a leg a transmitter names itself (its session key) to the simulator's.
func (w *World) ownLeg(role int, leg string) (core.LegID, bool) {
	if role == idxClientA && strings.HasPrefix(leg, "clientA-") && !strings.Contains(leg, "/") {
		return w.hopLeg(1), true
	}
	return "", false
}

// stuckDeliverable ends the detail of a record that could not be delivered, until the
// replay is known to be stuck and it is replaced by what was deliverable then.
const stuckDeliverable = "\x00deliverable"

func (w *World) describeAll(cs []Choice) string {
	var out []string
	for _, c := range cs {
		out = append(out, w.Describe(c))
	}
	if len(out) == 0 {
		return "nothing"
	}
	return strings.Join(out, "; ")
}

// matches reports whether a choice delivers the recorded event to the role on the leg.
func (w *World) matches(c Choice, role int, leg core.LegID, r TraceRecord) bool {
	switch c.Kind {
	case ChooseHangUp:
		return r.Type == "HangUp" && w.legNames[c.leg] == leg && w.net.legs[c.leg].ends[1] == role
	case ChooseItem:
		it := w.net.bag[c.item]
		if it.leg != leg {
			return false
		}
		switch it.kind {
		case itSIP:
			return it.to == role && it.ev.Kind() == r.Type
		case itConnect:
			return it.from == role && (r.Type == "LinkUp" || r.Type == "LinkFailed")
		case itFail:
			return it.to == role && r.Type == "LinkFailed"
		}
	case ChooseFrame:
		if w.legNames[c.leg] != leg {
			return false
		}
		le := &w.net.legs[c.leg]
		if le.ends[1-c.dir] != role {
			return false
		}
		f := le.chans[c.dir][0]
		switch f.kind {
		case fBind:
			return r.Type == "LinkUp"
		case fChunk:
			return r.Type == "SendReceived" && f.chunk == r.Chunk
		case fReport:
			return r.Type == "ReportReceived" && f.member == r.Member
		case fAck:
			return r.Type == "MessageAcked"
		}
	}
	return false
}
