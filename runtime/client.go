package runtime

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
)

// MemberResult is one member's outcome as the transmitter learned it.
type MemberResult struct {
	Member  string
	Outcome core.Outcome
}

// resultSet collects a transmitter's Result and Fail actions.
type resultSet struct {
	mu      sync.Mutex
	members map[string]core.Outcome
	rest    core.Outcome
	changed chan struct{}
}

func newResultSet() *resultSet {
	return &resultSet{members: map[string]core.Outcome{}, changed: make(chan struct{}, 1)}
}

func (r *resultSet) signal() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *resultSet) record(member string, o core.Outcome) {
	r.mu.Lock()
	r.members[member] = o
	r.mu.Unlock()
	r.signal()
}

func (r *resultSet) failRest(status int) {
	r.mu.Lock()
	r.rest = core.FailedOutcome(status)
	r.mu.Unlock()
	r.signal()
}

func (r *resultSet) snapshot() ([]MemberResult, core.Outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]MemberResult, 0, len(r.members))
	for m, o := range r.members {
		out = append(out, MemberResult{m, o})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Member < out[j].Member })
	return out, r.rest
}

// Outcome is what a transmitter learned about one message.
type Outcome struct {
	// Members are the members it heard of, each with its outcome.
	Members []MemberResult
	// Rest, when final, applies to every member not listed: the session failed before
	// their outcome came back (with the SIP or MSRP status that says why).
	Rest core.Outcome
}

// Of returns the outcome of a member.
func (o Outcome) Of(member string) core.Outcome {
	for _, m := range o.Members {
		if m.Member == member {
			return m.Outcome
		}
	}
	return o.Rest
}

// ErrNotTransmitter is returned by Send on a node that is not a ClientA.
var ErrNotTransmitter = errors.New("runtime: only a transmitter (ClientA) sends")

// ErrBadMessage is returned by Send for a message it cannot send; nothing was sent.
var ErrBadMessage = errors.New("runtime: bad message")

// defaultContentType is the payload type of a Message that names none (RFC 2046 §4.5.1:
// data of unknown type).
const defaultContentType = "application/octet-stream"

// check catches a caller's mistakes before any signalling starts, so that they come back
// as an error rather than as every member failing once the link is up.
func (m *Message) check() error {
	if m.Open == nil {
		return fmt.Errorf("%w: no Open", ErrBadMessage)
	}
	if m.Size < 0 {
		return fmt.Errorf("%w: size %d", ErrBadMessage, m.Size)
	}
	if m.ContentType == "" {
		m.ContentType = defaultContentType
	}
	if _, _, err := mime.ParseMediaType(m.ContentType); err != nil || strings.ContainsAny(m.ContentType, "\r\n") {
		return fmt.Errorf("%w: content type %q is not a media type (RFC 2045 §5.1)", ErrBadMessage, m.ContentType)
	}
	return nil
}

// Send hands the transmitter a message for a group (a pre-defined group URI, or an ad-hoc
// list of members) and waits until its machine knows every member's outcome, or ctx ends.
// When ctx ends first, the transmitter gives up on the message at once, as if its guard
// timer fired: it cancels an INVITE still pending (or ends the dialog), aborts the link,
// and every member without an outcome fails with 408; the session then ends through the
// whole chain as a timeout would end it. Send returns what the transmitter learned either
// way, complete once it has given up, with ctx's error. A transmitter whose policy is to
// hang up after its last 200 (NodeConfig.Sender) learns no outcome: Send returns, with
// none, once its session is over.
func (n *Node) Send(ctx context.Context, target string, members []string, msg Message) (Outcome, error) {
	if n.cfg.Kind != fsm.RoleClientA {
		return Outcome{}, ErrNotTransmitter
	}
	if err := msg.check(); err != nil {
		return Outcome{}, err
	}
	if msg.To == "" {
		msg.To = target
	}
	// key names the session Start made, read and written on the node's goroutine only:
	// the session to watch is this one, not the last in key order (the keys sort as
	// strings: clientA-10 before clientA-9), and not one that straggles on.
	var key fsm.LegID
	n.post(func() {
		before := map[fsm.LegID]bool{}
		for _, s := range n.role.Sessions() {
			before[s.Key] = true
		}
		n.media.source = &msg
		n.step(fsm.Start{Target: target, Members: members})
		for _, s := range n.role.Sessions() {
			if !before[s.Key] {
				key = s.Key
			}
		}
	})
	hangsUp := n.cfg.Sender != core.SenderWaits
	for {
		_, stepped := n.state()
		complete := make(chan bool, 1)
		n.post(func() {
			if key == "" {
				// Start made no session: as before, the last one says.
				ss := n.role.Sessions()
				complete <- len(ss) > 0 && (ss[len(ss)-1].Results.Complete() || hangsUp && n.role.Terminal())
				return
			}
			s := n.session(key)
			// A session the node forgot was over (Node.lookBack).
			complete <- s == nil || s.Results.Complete() || hangsUp && s.Over()
		})
		select {
		case done := <-complete:
			if done {
				ms, rest := n.results.snapshot()
				return Outcome{Members: ms, Rest: rest}, nil
			}
		case <-ctx.Done():
			return n.giveUp(ctx, &key)
		}
		select {
		case <-n.results.changed:
		case <-stepped:
		case <-ctx.Done():
			return n.giveUp(ctx, &key)
		}
	}
}

// session returns the session of a key, nil if there is none (any more); on the node's
// goroutine.
func (n *Node) session(key fsm.LegID) *core.Session {
	for _, s := range n.role.Sessions() {
		if s.Key == key {
			return s
		}
	}
	return nil
}

// giveUp ends the transmitter's wait for the message of session *key (read on the node's
// goroutine) now: every guard timer of its session fires at once. That is the spec's own way for a sender to stop waiting (a
// Timeout at the transmitter's down side), so giving up adds no path the machines do not
// have. A side with no timer armed is not waiting, and is left alone.
func (n *Node) giveUp(ctx context.Context, key *fsm.LegID) (Outcome, error) {
	done := make(chan struct{})
	n.post(func() {
		defer close(done)
		var s *core.Session
		if *key != "" {
			s = n.session(*key)
		} else if ss := n.role.Sessions(); len(ss) > 0 {
			s = ss[len(ss)-1]
		}
		if s == nil {
			return
		}
		// The armed sides are listed first: a Timeout may arm new timers.
		var legs []fsm.LegID
		for _, d := range s.Downs {
			if _, ok := n.timers[d.Leg]; ok {
				legs = append(legs, d.Leg)
			}
		}
		for _, leg := range legs {
			// A Timeout fired before may have ended this wait too: the machine sees only
			// the timeouts of waits it is in, as arm guarantees for a timer's own.
			if _, ok := n.timers[leg]; ok {
				n.fire(leg)
			}
		}
	})
	select {
	case <-done:
	case <-n.ctx.Done():
	}
	ms, rest := n.results.snapshot()
	return Outcome{Members: ms, Rest: rest}, fmt.Errorf("runtime: waiting for the outcome: %w", ctx.Err())
}

// Received lists the messages a receiver stored, complete and byte-exact.
func (n *Node) Received() []Received {
	r, _ := n.media.receivedMessages()
	return r
}

// WaitReceived waits until the receiver has stored more than after messages and returns
// them all, bounded by ctx.
func (n *Node) WaitReceived(ctx context.Context, after int) ([]Received, error) {
	for {
		r, arrived := n.media.receivedMessages()
		if len(r) > after {
			return r, nil
		}
		select {
		case <-arrived:
		case <-ctx.Done():
			return r, fmt.Errorf("runtime: %s: waiting for a message: %w", n.cfg.Name, ctx.Err())
		}
	}
}

// ErrNotReceiver is returned by HangUp on a node that is not a member (ClientB).
var ErrNotReceiver = errors.New("runtime: only a member (ClientB) hangs up")

// ErrNoSession is returned by HangUp when the member has no session it may end: none, or
// none whose dialog is confirmed yet. A callee may send BYE only once the ACK for its 2xx
// arrived (RFC 3261 §15), and the member's machine ignores a hang-up before then, so
// HangUp says so (and how many sessions await their ACK) rather than let the hang-up be
// lost. A member may be handed chunks before its ACK: its PF-B may open the link as it
// sends the ACK, and the chunks can overtake it.
var ErrNoSession = errors.New("runtime: no confirmed session to hang up")

// HangUp is the member's user ending its sessions, as a standard client does when its user
// hangs up: each session whose dialog is confirmed sends BYE and closes its link, and a
// message still arriving on it is not stored. Its PF-B reports the member failed with 481
// (the session no longer exists) unless it already knew the outcome. The machine decides
// what goes on the wire, on the node's goroutine, as for any other event; HangUp returns
// once it has. A member receives on one session per message and its user does not tell
// them apart, so all of them end; one not yet confirmed is left alone, and HangUp returns
// ErrNoSession if it ended none.
func (n *Node) HangUp() error {
	if n.cfg.Kind != fsm.RoleClientB {
		return ErrNotReceiver
	}
	type count struct{ ended, unacked int }
	done := make(chan count, 1)
	n.post(func() {
		var c count
		var legs []fsm.LegID
		for _, s := range n.role.Sessions() {
			if s.Up == nil {
				continue
			}
			switch dialogState(s.Up) {
			case "confirmed":
				legs = append(legs, s.Up.Leg)
			case "answered":
				c.unacked++
			}
		}
		for _, leg := range legs {
			n.step(fsm.HangUp{Leg: leg})
		}
		c.ended = len(legs)
		done <- c
	})
	select {
	case c := <-done:
		switch {
		case c.ended > 0:
			return nil
		case c.unacked > 0:
			return fmt.Errorf("%w: %s: %d answered, awaiting the ACK", ErrNoSession, n.cfg.Name, c.unacked)
		}
		return fmt.Errorf("%w: %s", ErrNoSession, n.cfg.Name)
	case <-n.ctx.Done():
		return fmt.Errorf("runtime: %s: hanging up: the node is closed", n.cfg.Name)
	}
}

// dialogState is the state of an up side's dialog: its uas machine's, by the names
// model/cpmlink.yaml gives them. Only "confirmed" takes a hang-up; asking first keeps a
// hang-up the machine would ignore out of the trace.
func dialogState(sd *core.Side) string {
	for _, m := range sd.M {
		if m.Def().Name == "uas" {
			return m.Name()
		}
	}
	return ""
}

// WaitIdle waits until every session of the node's machine is over (BYE done, links
// closed), bounded by ctx.
func (n *Node) WaitIdle(ctx context.Context) error {
	for {
		idle, changed := n.state()
		if idle {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("runtime: %s: waiting for every session to end (%s): %w", n.cfg.Name, n.pending(), ctx.Err())
		}
	}
}

// pending says which sessions are not over and where their machines stand, for an error
// that must say what a node still waits for; it gives up after a second if the node's
// goroutine is busy.
func (n *Node) pending() string {
	out := make(chan string, 1)
	n.post(func() {
		var b strings.Builder
		for _, s := range n.role.Sessions() {
			if _, over := n.forgets[s.Key]; over || s.Over() {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "session %s:", s.Key)
			sides := s.Downs
			if s.Up != nil {
				sides = append([]*core.Side{s.Up}, sides...)
			}
			for _, sd := range sides {
				fmt.Fprintf(&b, " %s", sd.Leg)
				for _, m := range sd.M {
					fmt.Fprintf(&b, " %s=%s", m.Def().Name, m.Name())
				}
			}
		}
		out <- b.String()
	})
	select {
	case s := <-out:
		return s
	case <-time.After(time.Second):
		return "its goroutine is busy"
	case <-n.ctx.Done():
		return "closed"
	}
}
