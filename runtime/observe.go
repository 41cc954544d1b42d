package runtime

import (
	"log/slog"
	"strconv"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
)

// observer turns what a node's machine does into its metrics (NodeConfig.Metrics) and,
// when a session ends, into one session record on the node's logger: who sent what to
// whom, how each member fared and how long it took (the call detail record an operator
// bills and debugs from). It only watches the events and actions the driver already
// carries out, on the node's goroutine, and decides nothing.
type observer struct {
	n    *Node
	role string
	m    *Metrics
	sess map[fsm.LegID]*sessionObs // by root leg (rootLeg)

	// The step being observed: the sessions it concerns, whether it answered upstream
	// (SendOK), and whether it may have ended a session.
	touched []fsm.LegID
	okSent  bool
	check   bool
}

// sessionObs is what the driver saw of one session.
type sessionObs struct {
	core  *core.Session // found once the machine has it
	state string
	// target is the INVITE's target: the group at ClientA, PF-A and the CF, the member
	// at a PF-B and a ClientB. from is the sender, as every role's INVITE names it.
	target, from string
	members      int
	messageID    string
	bytes        int64
	// status is the final SIP response of the session's INVITE: the one this role sent
	// upstream, at the transmitter the one it received.
	status int
	// outcomes are the members' outcomes the role reported (learned, at the
	// transmitter), by member, in the order they came; rest is the status of every
	// member without one, when the transmitter's session failed as a whole.
	outcomes map[string]int
	order    []string
	rest     int
	// hops caches the hop of each leg of the session (for the relay counters).
	hops map[fsm.LegID]string

	started, msgStart, lastOutcome time.Time
}

func newObserver(n *Node) *observer {
	o := &observer{n: n, role: n.cfg.Kind.String(), m: n.cfg.Metrics, sess: map[fsm.LegID]*sessionObs{}}
	if o.m != nil {
		o.m.refusals.watch(n.media.ep, o.role)
	}
	return o
}

// close keeps what the node's MSRP endpoint counted in the metrics.
func (o *observer) close() {
	if o.m != nil {
		o.m.refusals.unwatch(o.n.media.ep)
	}
}

// rootLeg is the leg a session is known by: the up leg of a B2BUA or receiver (its down
// legs are derived from it, "in:3/0"), the transmitter's INVITE leg.
func rootLeg(leg fsm.LegID) fsm.LegID {
	if p := parentLeg(leg); p != "" {
		return p
	}
	return leg
}

func (o *observer) setState(s *sessionObs, state string) {
	if s.state == state {
		return
	}
	if o.m != nil {
		o.m.sessions.move(o.role, s.state, state)
	}
	s.state = state
}

func (o *observer) open(leg fsm.LegID, now time.Time) *sessionObs {
	root := rootLeg(leg)
	if s := o.sess[root]; s != nil {
		return s
	}
	s := &sessionObs{started: now, outcomes: map[string]int{}}
	o.sess[root] = s
	o.setState(s, stateSetup)
	return s
}

func statusOfOutcome(oc core.Outcome) int {
	if oc.Kind == core.Delivered {
		return 200
	}
	return oc.Status
}

func (o *observer) outcome(s *sessionObs, member string, oc core.Outcome, now time.Time) {
	if !oc.Final() {
		return
	}
	st := statusOfOutcome(oc)
	if o.m != nil {
		o.m.outcomes.WithLabelValues(o.role, strconv.Itoa(st)).Inc()
	}
	if s == nil {
		return
	}
	if _, ok := s.outcomes[member]; !ok {
		s.order = append(s.order, member)
	}
	s.outcomes[member] = st
	s.lastOutcome = now
}

// messageStarts notes the first chunk of the session's message, arriving on the up leg
// (or leaving the transmitter): setup is over.
func (o *observer) messageStarts(s *sessionObs, now time.Time) {
	if !s.msgStart.IsZero() {
		return
	}
	s.msgStart = now
	if o.m != nil {
		o.m.setup.WithLabelValues(o.role).Observe(now.Sub(s.started).Seconds())
	}
	o.setState(s, stateTransfer)
}

// triggerName names the event that made a machine open a link as the spec names
// triggers (ok-received, ack-received, send-received); ok-sent when the same step
// answered upstream, the earliest trigger of an answerer. Other events keep their kind.
func triggerName(ev fsm.Event, okSent bool) string {
	if okSent {
		return "ok-sent"
	}
	switch ev.(type) {
	case fsm.OKReceived:
		return "ok-received"
	case fsm.AckReceived:
		return "ack-received"
	case fsm.SendReceived:
		return "send-received"
	}
	return ev.Kind()
}

// event observes the event a step starts with, before any of its actions is carried out.
func (o *observer) event(ev fsm.Event) {
	now := time.Now()
	o.touched, o.okSent, o.check = o.touched[:0], false, true
	o.touch(ev.EventLeg())
	switch x := ev.(type) {
	case fsm.InviteReceived:
		s := o.open(x.Leg, now)
		s.target, s.from, s.members = x.Target, x.From, len(x.Members)
		if o.n.cfg.Kind == fsm.RoleClientB {
			// Its INVITE is for the contact it registered; the record names the member.
			s.target = o.n.cfg.URI
		}
	case fsm.SendReceived:
		s := o.sess[x.Leg]
		if s == nil {
			break // a chunk on a down leg: not the session's message
		}
		if s.msgStart.IsZero() {
			if lm := o.n.media.legs[x.Leg]; lm != nil && lm.store != nil {
				s.messageID, s.bytes = lm.store.msg.MessageID, lm.store.msg.Total
			}
			o.messageStarts(s, now)
		}
		if x.Last {
			o.setState(s, stateEnding)
		}
		// A chunk in the middle of a message ends no session.
		o.check = x.Last
	case fsm.OKReceived:
		if s := o.sess[x.Leg]; s != nil && o.n.cfg.Kind == fsm.RoleClientA {
			s.status = 200
		}
	case fsm.RejectReceived:
		if s := o.sess[x.Leg]; s != nil && o.n.cfg.Kind == fsm.RoleClientA {
			s.status = x.Status
		}
	}
}

// touch notes a session the step concerns, to see afterwards whether it ended.
func (o *observer) touch(leg fsm.LegID) {
	if leg == "" {
		return
	}
	r := rootLeg(leg)
	for _, t := range o.touched {
		if t == r {
			return
		}
	}
	o.touched = append(o.touched, r)
}

// action observes an action of the step just before it is carried out, so that whatever
// it counts is counted before its effect can reach a peer: a scrape that follows anything
// the action caused (a REPORT upstream, a chunk at a member) sees it.
func (o *observer) action(ev fsm.Event, a fsm.Action) {
	now := time.Now()
	leg := a.ActionLeg()
	o.touch(leg)
	switch x := a.(type) {
	case fsm.SendInvite:
		if o.n.cfg.Kind == fsm.RoleClientA {
			s := o.open(x.Leg, now)
			s.target, s.from, s.members = x.Target, o.n.cfg.URI, len(x.Members)
		}
	case fsm.SendOK:
		o.okSent = true
		if s := o.sess[leg]; s != nil {
			s.status = 200
		}
	case fsm.SendReject:
		if o.m != nil {
			o.m.refusals.add(o.role, "sip-"+strconv.Itoa(x.Status))
		}
		s := o.sess[rootLeg(leg)]
		if s != nil {
			s.status = x.Status
		}
		for _, mo := range x.Outcomes {
			o.outcome(s, mo.Member, mo.Outcome, now)
		}
	case fsm.OpenLink, fsm.ReuseLink:
		if o.m != nil {
			_, reused := a.(fsm.ReuseLink)
			o.m.linkOpens.WithLabelValues(o.hop(leg), o.role, triggerName(ev, o.okSent), strconv.FormatBool(reused)).Inc()
		}
	case fsm.SendMessage:
		if s := o.sess[rootLeg(leg)]; s != nil {
			o.messageStarts(s, now)
		}
	case fsm.RelayChunk:
		o.relaying(x)
	case fsm.SendReport:
		o.outcome(o.sess[rootLeg(leg)], x.Member, x.Outcome, now)
	case fsm.Deliver:
		// A receiver reports nothing unless its sender asked (RFC 4975 §7.1.2): its own
		// outcome is the last chunk handed to its store.
		if x.Last {
			o.outcome(o.sess[rootLeg(leg)], o.n.cfg.URI, core.DeliveredOutcome(), now)
		}
	case fsm.Result, fsm.Fail:
		// The transmitter's results belong to its latest session, the only one Send
		// runs at a time.
		s := o.latest()
		if r, ok := x.(fsm.Result); ok {
			o.outcome(s, r.Member, r.Outcome, now)
		} else if s != nil {
			s.rest = x.(fsm.Fail).Status
			s.lastOutcome = now
		}
	}
}

// stepped ends the sessions the step concerned whose machines are all over.
func (o *observer) stepped() {
	if !o.check {
		return
	}
	for _, r := range o.touched {
		o.ended(r)
	}
}

// latest is the transmitter's newest session.
func (o *observer) latest() *sessionObs {
	var out *sessionObs
	for _, s := range o.sess {
		if out == nil || s.started.After(out.started) {
			out = s
		}
	}
	return out
}

// note observes what the driver saw outside the machine: a session refused by the MSRP
// session limit, the transmitter's message written whole.
func (o *observer) note(leg fsm.LegID, typ string) {
	switch typ {
	case "limit":
		if o.m != nil {
			o.m.refusals.add(o.role, "msrp-session-limit")
		}
	case "sent":
		if s := o.sess[rootLeg(leg)]; s != nil && s.state == stateTransfer {
			o.setState(s, stateEnding)
		}
	}
}

// sessionOf finds the machine's session known by root.
func (o *observer) sessionOf(root fsm.LegID) *core.Session {
	for _, s := range o.n.role.Sessions() {
		if s.Up != nil {
			if s.Up.Leg == root {
				return s
			}
			continue
		}
		for _, d := range s.Downs {
			if d.Leg == root {
				return s
			}
		}
	}
	return nil
}

func sessionOver(s *core.Session) bool {
	sides := s.Downs
	if s.Up != nil {
		sides = append([]*core.Side{s.Up}, sides...)
	}
	for _, sd := range sides {
		for _, m := range sd.M {
			if !m.Terminal() {
				return false
			}
		}
	}
	return true
}

// ended finishes the session known by root if every machine of it is over: its delivery
// time goes to the histogram, and its record to the log.
func (o *observer) ended(root fsm.LegID) {
	s := o.sess[root]
	if s == nil {
		return
	}
	if s.core == nil {
		if s.core = o.sessionOf(root); s.core == nil {
			return
		}
	}
	if !sessionOver(s.core) {
		return
	}
	delete(o.sess, root)
	o.setState(s, "")
	var delivery time.Duration
	if !s.msgStart.IsZero() && s.lastOutcome.After(s.msgStart) {
		delivery = s.lastOutcome.Sub(s.msgStart)
		if o.m != nil {
			o.m.delivery.WithLabelValues(o.role).Observe(delivery.Seconds())
		}
	}
	o.record(root, s, delivery)
}

// record logs the session record: one per session and role, at Info.
func (o *observer) record(root fsm.LegID, s *sessionObs, delivery time.Duration) {
	log := o.n.log
	if !log.Enabled(o.n.ctx, slog.LevelInfo) {
		return
	}
	attrs := []slog.Attr{slog.String("role", o.role), slog.String("leg", string(root))}
	switch o.n.cfg.Kind {
	case fsm.RolePFB, fsm.RoleClientB:
		attrs = append(attrs, slog.String("member", s.target))
	default:
		attrs = append(attrs, slog.String("group", s.target))
	}
	attrs = append(attrs, slog.String("sender", s.from))
	if s.members > 0 {
		attrs = append(attrs, slog.Int("members", s.members))
	}
	if s.messageID != "" {
		attrs = append(attrs, slog.String("message_id", s.messageID))
	}
	if s.bytes > 0 {
		attrs = append(attrs, slog.Int64("bytes", s.bytes))
	}
	attrs = append(attrs, slog.Int("sip_status", s.status))
	outs := make([]any, 0, len(s.order))
	delivered := 0
	for _, m := range s.order {
		st := s.outcomes[m]
		if st == 200 {
			delivered++
		}
		outs = append(outs, slog.Int(m, st))
	}
	attrs = append(attrs, slog.Group("outcomes", outs...), slog.Int("delivered", delivered))
	if s.rest != 0 {
		attrs = append(attrs, slog.Int("rest_status", s.rest))
	}
	if !s.msgStart.IsZero() {
		attrs = append(attrs, slog.Float64("setup_ms", ms(s.msgStart.Sub(s.started))))
	}
	if delivery > 0 {
		attrs = append(attrs, slog.Float64("delivery_ms", ms(delivery)))
	}
	log.LogAttrs(o.n.ctx, slog.LevelInfo, "session", attrs...)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// sending notes the transmitter's message as it goes out: its Message-ID and MSRP size.
func (o *observer) sending(leg fsm.LegID, id string, size int64) {
	if s := o.sess[rootLeg(leg)]; s != nil {
		s.messageID, s.bytes = id, size
	}
}

// relaying counts what the machine relays onto a down leg (RelayChunk): the bytes of
// chunks First..Last of the up leg's message, and the message once its last chunk goes.
// It runs on the node's goroutine before the relay is carried out, while the up leg's
// store still holds the chunks (the writer releases them once written).
func (o *observer) relaying(x fsm.RelayChunk) {
	if o.m == nil {
		return
	}
	up := o.n.media.legs[x.From]
	if up == nil || up.store == nil {
		return
	}
	hop := o.hop(x.Leg)
	if n := up.store.span(x.First, x.Last); n > 0 {
		o.m.bytes.WithLabelValues(o.role, hop).Add(float64(n))
	}
	if x.Final {
		o.m.messages.WithLabelValues(o.role, hop).Inc()
	}
}

// hop is a leg's hop, looked up once per leg: hopOf walks every session.
func (o *observer) hop(leg fsm.LegID) string {
	s := o.sess[rootLeg(leg)]
	if s == nil {
		return o.n.hopOf(leg)
	}
	h, ok := s.hops[leg]
	if !ok {
		if s.hops == nil {
			s.hops = map[fsm.LegID]string{}
		}
		h = o.n.hopOf(leg)
		s.hops[leg] = h
	}
	return h
}

// span is the number of bytes of chunks first..last still held.
func (s *chunkStore) span(first, last int) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for k := max(first, s.base+1); k <= last && k <= s.count; k++ {
		n += int64(len(s.chunks[k-s.base-1].body()))
	}
	return n
}
