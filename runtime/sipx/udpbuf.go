package sipx

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// udpBuffer is the receive (and send) buffer asked for on every SIP UDP socket. A CF
// fans one INVITE out per member at once, and every 200 comes back through the same
// SIP/IP core: 1000 members are about 1000 datagrams of about 1 KB in a burst, and the
// kernel charges each datagram its whole buffer (a few KB on loopback), far beyond the
// usual default of 208 KiB. A datagram the buffer cannot take is dropped, and its
// INVITE waits for Timer A (RFC 3261 §17.1.1.2: T1, 500 ms) to be sent again; at 1000
// members the default lost 5,487 datagrams in one run (UdpRcvbufErrors). 8 MiB holds
// several such bursts. Linux caps the request at net.core.rmem_max / wmem_max unless
// the process may exceed them (CAP_NET_ADMIN: SO_RCVBUFFORCE); see setUDPBuffers and
// docs/runtime-sip.md for the sysctl.
const udpBuffer = 8 << 20

// setUDPBuffers sizes uc's buffers to udpBuffer, as far as the system allows. It never
// fails: a smaller buffer only makes a burst wait for retransmissions.
func setUDPBuffers(uc *net.UDPConn) {
	forceUDPBuffers(uc, udpBuffer) // privileged: beyond the sysctl caps (Linux)
	if udpReadBuffer(uc) < udpBuffer {
		_ = uc.SetReadBuffer(udpBuffer)
	}
	if udpWriteBuffer(uc) < udpBuffer {
		_ = uc.SetWriteBuffer(udpBuffer)
	}
}

// retransmitted counts the INVITEs this process's endpoints sent again over UDP
// (RFC 3261 §17.1.1.2, Timer A): each one is a datagram that was lost, or an answer
// that came later than T1. A burst that loses nothing sends none.
var retransmitted atomic.Uint64

// RetransmittedInvites is how many INVITE retransmissions the endpoints of this
// process have sent since it started (over UDP; reliable transports never
// retransmit, §17.1.1.2). The proxy's forwarding of them is not counted again.
func RetransmittedInvites() uint64 { return retransmitted.Load() }

// inviteWatch tells an INVITE's retransmission from its first sending by its branch
// (RFC 3261 §17.1.3: a retransmission is the same request, same top Via branch). It
// remembers the branches sent over the last two periods of 64*T1 at the longest, so
// that its memory is bounded by the rate of INVITEs, not by the life of the process.
type inviteWatch struct {
	mu       sync.Mutex
	cur, old map[string]struct{}
	since    time.Time
	keep     time.Duration
	now      func() time.Time
}

func newInviteWatch(t1 time.Duration) *inviteWatch {
	return &inviteWatch{cur: map[string]struct{}{}, old: map[string]struct{}{}, since: time.Now(), keep: 64 * t1, now: time.Now}
}

// sent notes a datagram the endpoint writes and counts it if it is an INVITE sent before.
func (w *inviteWatch) sent(b []byte) {
	if !bytes.HasPrefix(b, []byte("INVITE ")) {
		return
	}
	branch := topBranch(b)
	if branch == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if now := w.now(); now.Sub(w.since) > w.keep {
		w.old, w.cur, w.since = w.cur, map[string]struct{}{}, now
	}
	if _, ok := w.cur[branch]; ok {
		retransmitted.Add(1)
		return
	}
	if _, ok := w.old[branch]; ok {
		retransmitted.Add(1)
		w.cur[branch] = struct{}{}
		return
	}
	w.cur[branch] = struct{}{}
}

// topBranch is the branch parameter of the first Via header of a serialized request.
func topBranch(b []byte) string {
	if end := bytes.Index(b, []byte("\r\n\r\n")); end >= 0 {
		b = b[:end]
	}
	for _, line := range bytes.Split(b, []byte("\r\n"))[1:] {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		name = bytes.TrimSpace(name)
		if !bytes.EqualFold(name, []byte("Via")) && !bytes.EqualFold(name, []byte("v")) {
			continue
		}
		i := bytes.Index(bytes.ToLower(value), []byte("branch="))
		if i < 0 {
			return ""
		}
		v := value[i+len("branch="):]
		if j := bytes.IndexAny(v, ";,> \t"); j >= 0 {
			v = v[:j]
		}
		return string(v)
	}
	return ""
}

// watchedPacketConn is an endpoint's UDP socket as sipgo sees it: precheck on the way
// in, the INVITE retransmission count on the way out.
type watchedPacketConn struct {
	precheckPacketConn
	w *inviteWatch
}

func (c watchedPacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.w.sent(b)
	return c.precheckPacketConn.WriteTo(b, addr)
}

// defaultInviteWindow is Config.InviteWindow's default.
const defaultInviteWindow = 64

// initialInviteWindow is where an endpoint's window starts (or its ceiling, if lower).
const initialInviteWindow = 8

// inviteWindow paces an endpoint's INVITEs over UDP: at most limit of them wait for
// their first response at a time, and the others go out, in order, as those are
// answered. A CF fans one INVITE out per member at once; every hop on the way (the
// SIP/IP core, the PF-B) must take each one, and the PF-B answer it (100 Trying, RFC
// 3261 §17.2.1), before T1 (500 ms) or Timer A sends it again (§17.1.1.2). Unpaced, a
// burst of 1000 queued long enough behind one another to be retransmitted by the
// hundred, each retransmission adding to the queue.
//
// A fixed window is wrong both ways: how long the path takes to answer depends on how
// busy the hops are, which a sender cannot know in advance. With 64 INVITEs out, 1000
// members and a message of 1 MB relayed to the members already up (the same CPUs), 386
// INVITEs were sent again in 2 runs of `cpmlink bench`; with 8 none, but 8 would slow a
// fan-out whose answers come back in a millisecond. So the window follows the time
// to the first response, as a delay-based congestion window does (the idea of TCP
// Vegas and LEDBAT, RFC 6817, applied to RFC 3261 §17.1.1.2's timer): it starts at 8,
// each INVITE answered within T1/8 widens it by one, up to the ceiling
// (Config.InviteWindow), and one answered after T1/4 or not at all within T1 halves
// it, once for the INVITEs that were out together (those sent before a cut do not cut
// it again): it shrinks long before an answer takes T1. (Thresholds of T1/4 and T1/2
// left 144 and 582 retransmissions in two series of 3 runs, T1/8 and T1/4 272 and 109:
// docs/performance.md.) The INVITEs that wait do so in the sender's queue, where no
// timer runs, instead of in the receivers' queues, where Timer A does. A place is also given back after T1 without
// an answer, so that a peer that never answers holds the others back for one
// retransmission interval at most.
type inviteWindow struct {
	t1      time.Duration
	ceiling int // 0: no bound
	now     func() time.Time

	mu       sync.Mutex
	limit    float64
	inflight int
	waiters  []chan struct{} // FIFO; each is closed when it is given a place
	epoch    uint64          // counts the cuts
}

func newInviteWindow(n int, t1 time.Duration) *inviteWindow {
	if n < 0 {
		return &inviteWindow{}
	}
	return &inviteWindow{t1: t1, ceiling: n, limit: float64(min(n, initialInviteWindow)), now: time.Now}
}

// windowSlot is one INVITE's place in the window, from its sending to its first
// response (or T1 without one).
type windowSlot struct {
	w     *inviteWindow // nil: no bound (TCP, or no window)
	sent  time.Time
	epoch uint64
	once  sync.Once
}

// release gives the place back with nothing learnt (the INVITE was not sent, or its
// transaction ended without a response). It may be called more than once, as may
// answered and late, of which only the first counts.
func (s *windowSlot) release() { s.done(false) }

// answered gives the place back at the INVITE's first response, or at T1 without one
// (then it counts as late): how long it took adjusts the window.
func (s *windowSlot) answered() { s.done(true) }

func (s *windowSlot) done(measured bool) {
	if s == nil || s.w == nil {
		return
	}
	s.once.Do(func() { s.w.put(s, measured) })
}

// take gives a place for an INVITE to go on transport now, if there is one; over a
// reliable transport there is always one (TCP paces itself and never retransmits).
func (w *inviteWindow) take(transport string) (*windowSlot, bool) {
	if w.ceiling == 0 || !strings.EqualFold(transport, transportUDP) {
		return &windowSlot{}, true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.grabLocked()
	return s, s != nil
}

// wait gives the next free place, in order, or false once ctx ends.
func (w *inviteWindow) wait(ctx context.Context) (*windowSlot, bool) {
	w.mu.Lock()
	if s := w.grabLocked(); s != nil {
		w.mu.Unlock()
		return s, true
	}
	ch := make(chan struct{})
	w.waiters = append(w.waiters, ch)
	w.mu.Unlock()
	select {
	case <-ch:
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.slotLocked(), true
	case <-ctx.Done():
		w.mu.Lock()
		defer w.mu.Unlock()
		for i, c := range w.waiters {
			if c == ch {
				w.waiters = append(w.waiters[:i], w.waiters[i+1:]...)
				return nil, false
			}
		}
		// Given a place as ctx ended: hand it on.
		w.inflight--
		w.wake()
		return nil, false
	}
}

// grabLocked takes a free place, if there is one and nobody waits for one already
// (w.mu held).
func (w *inviteWindow) grabLocked() *windowSlot {
	if len(w.waiters) > 0 || w.inflight >= w.cap() {
		return nil
	}
	w.inflight++
	return w.slotLocked()
}

// slotLocked is the slot of a place just counted in inflight, timed from now (w.mu held).
func (w *inviteWindow) slotLocked() *windowSlot {
	return &windowSlot{w: w, sent: w.now(), epoch: w.epoch}
}

// cap is the number of INVITEs that may be out now (w.mu held).
func (w *inviteWindow) cap() int { return max(1, int(w.limit)) }

// put takes a place back; measured says whether the time since it was taken is the
// time to the INVITE's first response (or T1 without one).
func (w *inviteWindow) put(s *windowSlot, measured bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.inflight--
	if measured {
		rtt := w.now().Sub(s.sent)
		switch {
		case rtt < w.t1/8:
			w.limit = min(w.limit+1, float64(w.ceiling))
		case rtt >= w.t1/4 && s.epoch == w.epoch:
			w.limit = max(1, w.limit/2)
			w.epoch++
		}
	}
	w.wake()
}

// wake gives the free places to the waiters, in order (w.mu held).
func (w *inviteWindow) wake() {
	for len(w.waiters) > 0 && w.inflight < w.cap() {
		w.inflight++
		close(w.waiters[0])
		w.waiters = w.waiters[1:]
	}
}
