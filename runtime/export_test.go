package runtime

import (
	"errors"

	"github.com/cpmlink/cpmlink/fsm"
)

// HoldForTest makes n's goroutine stop, once it has run what is queued now, until release
// is called (or n closes); until then, each post to n's inbox sends on posted, which never
// blocks the poster. A test uses it to put the driver's events in an order that sockets
// give only by chance.
func HoldForTest(n *Node) (posted <-chan struct{}, release func()) {
	ch := make(chan struct{}, 64)
	gate := make(chan struct{})
	n.post(func() {
		select {
		case <-gate:
		case <-n.ctx.Done():
		}
	})
	n.in.mu.Lock()
	n.in.onPost = func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	n.in.mu.Unlock()
	released := false
	return ch, func() {
		n.in.mu.Lock()
		n.in.onPost = nil
		n.in.mu.Unlock()
		if !released {
			released = true
			close(gate)
		}
	}
}

// DialedForTest makes n call f (off its goroutine) each time one of its legs' MSRP
// connections is dialed (or taken from the pool), before the bind is posted to n.
func DialedForTest(n *Node, f func(leg string)) {
	h := func(leg fsm.LegID) { f(string(leg)) }
	n.media.dialed.Store(&h)
}

// ForgetForTest makes n send on forgot each time it forgets a session (Node.forget); it
// never blocks n.
func ForgetForTest(n *Node, forgot chan<- struct{}) {
	onGoroutine(n, func() {
		n.onForget = func() {
			select {
			case forgot <- struct{}{}:
			default:
			}
		}
	})
}

// HeldForTest counts, on n's goroutine, the sessions its machine holds and the entries
// its driver keeps per leg (node and media maps): what forgetting must bring to 0.
func HeldForTest(n *Node) (sessions, legs int) {
	onGoroutine(n, func() {
		sessions = len(n.role.Sessions())
		m := n.media
		legs = len(n.upHeaders) + len(n.dialogs) + len(n.okSeen) + len(n.acked) + len(n.forgets) +
			len(m.legs) + len(m.peers) + len(m.downs) + len(m.dead) + len(m.up) + len(m.held)
	})
	return sessions, legs
}

// ExecutedForTest makes n call f, on its goroutine, with each action as n carries it out.
func ExecutedForTest(n *Node, f func(fsm.Action)) {
	onGoroutine(n, func() { n.onExec = f })
}

// onGoroutine runs f on n's goroutine, which owns what f touches, and returns once it ran.
func onGoroutine(n *Node, f func()) {
	done := make(chan struct{})
	n.post(func() {
		defer close(done)
		f()
	})
	<-done
}

// GoneForTest takes n off the network as its host vanishing would: its SIP and MSRP
// sockets close, so its peers learn it from their connections, and nothing it sends
// afterwards reaches anyone. Its driver keeps running until the node is closed.
func GoneForTest(n *Node) error {
	return errors.Join(n.sip.Close(), n.media.ep.Close())
}
