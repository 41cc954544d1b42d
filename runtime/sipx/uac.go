package sipx

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// connectTimeout bounds connection set-up (a TCP dial) for one request.
const connectTimeout = 10 * time.Second

// Invite starts a new dialog on leg (an id the caller chooses; it must not
// be in use and must not have the form "in:N" of incoming legs): an INVITE to target with a new
// Call-ID, From tag and CSeq 1 (RFC 3261 §8.1.1). From is Config.Identity;
// from, if not empty, is carried as P-Asserted-Identity (RFC 3325). The
// Request-URI and To are target. The INVITE goes to Config.Proxy as a
// preloaded route (§8.1.2), or straight to target when no proxy is set.
// Route headers in extra extend the preloaded route set after the proxy
// (e.g. a client's originating PF); every other extra header is copied.
//
// Invite returns once the INVITE has been handed to the transport. Then
// Handler.Response reports the final response: each 2xx (retransmissions
// too), or the one non-2xx, or a Local 408/503 when no response came.
func (e *Endpoint) Invite(leg, target, from string, parts []Part, extra []Header) error {
	if leg == "" || reservedLeg(leg) {
		return fmt.Errorf("%w: %q (empty, or the form %q+digits of incoming legs)", ErrLegExists, leg, inPrefix)
	}
	ruri, err := parseURI(target)
	if err != nil {
		return err
	}
	if err := checkExtra(extra, true); err != nil {
		return err
	}
	routes, err := preloadedRoutes(extra)
	if err != nil {
		return err
	}
	firstHop := ruri
	if len(routes) > 0 {
		firstHop = routes[0]
	}
	if e.cfg.Proxy == "" && !hostIsIP(firstHop) && e.cfg.Resolver == nil {
		return fmt.Errorf("%w: %s (set Config.Proxy or Config.Resolver, or address the first hop by IP)", ErrNoRoute, firstHop.String())
	}

	// Config.Transport where the next hop's URI leaves the transport open; a
	// URI sent straight to that names one (a Contact with ;transport=tcp from
	// Lookup) or a sips: URI decides itself (RFC 3263 §4.1, see start).
	transport := e.cfg.Transport
	l := &legState{
		id:         leg,
		outgoing:   true,
		transport:  transport,
		callID:     randToken(16) + "@" + uriHost(e.cfg.Advertise),
		localTag:   randToken(8),
		local:      bareURI(e.identity),
		remote:     bareURI(ruri),
		inviteCSeq: 1,
		localCSeq:  1,
	}
	req := sip.NewRequest(sip.INVITE, ruri)
	via := e.newVia(l.transport)
	req.AppendHeader(via)
	e.appendOutboundRoute(req)
	for _, r := range routes {
		req.AppendHeader(&sip.RouteHeader{Address: r})
	}
	maxf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&maxf)
	fromH := &sip.FromHeader{Address: l.local, Params: sip.NewParams()}
	fromH.Params.Add("tag", l.localTag)
	req.AppendHeader(fromH)
	req.AppendHeader(&sip.ToHeader{Address: l.remote, Params: sip.NewParams()})
	cid := sip.CallIDHeader(l.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: l.inviteCSeq, MethodName: sip.INVITE})
	req.AppendHeader(sip.NewHeader("Contact", e.contactValue(e.contactUser(), l.transport, false)))
	if from != "" {
		if _, err := parseURI(from); err != nil {
			return err
		}
		req.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<"+strings.Trim(from, "<>")+">"))
	}
	appendExtra(req, extra)
	if err := setBody(req, parts); err != nil {
		return err
	}
	e.setTransport(req, via, l.transport)
	l.req = req

	if !e.enter() {
		return ErrClosed
	}
	defer e.work.Done()
	e.mu.Lock()
	if _, used := e.legs[leg]; used {
		e.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrLegExists, leg)
	}
	e.legs[leg] = l
	e.mu.Unlock()

	slot, ok := e.inviteWin.take(transport)
	if !ok {
		// The window is full: the INVITE goes out when an earlier one is answered.
		// The caller has its leg now; a failure to send reaches it as a final
		// response (503, as for a transport failure after sending, §8.1.3.1).
		if !e.goWork(func() {
			slot, ok := e.inviteWin.wait(e.ctx)
			if !ok {
				e.end(l)
				return
			}
			if err := e.launch(l, req, transport, target, slot); err != nil {
				e.log.Debug("INVITE not sent", "leg", l.id, "error", err)
				e.onFinal(l, nil, 503)
			}
		}) {
			e.end(l)
			return ErrClosed
		}
		return nil
	}
	return e.launch(l, req, transport, target, slot)
}

// launch sends a new leg's INVITE in a client transaction and reads its responses;
// slot is its place in the INVITE window, given back at its first response.
func (e *Endpoint) launch(l *legState, req *sip.Request, transport, target string, slot *windowSlot) error {
	ctx, cancel := context.WithTimeout(e.ctx, connectTimeout)
	defer cancel()
	tx, err := e.start(ctx, req, transport)
	if err != nil {
		slot.release()
		e.end(l)
		if errors.Is(err, ErrNoRoute) || errors.Is(err, ErrBadURI) {
			return fmt.Errorf("INVITE %s: %w", target, err)
		}
		return fmt.Errorf("%w: INVITE %s: %w", ErrTransport, target, err)
	}
	// The transport the INVITE went on: what in-dialog requests fall back to.
	e.mu.Lock()
	l.transport = req.Transport()
	e.mu.Unlock()
	if !strings.EqualFold(l.transport, transportUDP) {
		slot.release() // only UDP retransmits (RFC 3261 §17.1.1.2): TCP paces itself
	}
	// Retransmitted 2xx reach us through this hook (RFC 6026 §7.2: the
	// transaction stays in Accepted for 64*T1 and passes them up). Register
	// it before reading the first response: sipgo holds the transaction
	// lock while it hands that one over, so none can slip past.
	tx.OnRetransmission(func(res *sip.Response) { e.onFinal(l, res) })
	if !e.goWork(func() { e.pump(l, tx, slot) }) {
		slot.release()
		tx.Terminate()
		return ErrClosed
	}
	return nil
}

// appendOutboundRoute preloads the outbound proxy as a loose route
// (RFC 3261 §8.1.2, §16.12).
func (e *Endpoint) appendOutboundRoute(req *sip.Request) {
	if e.cfg.Proxy == "" {
		return
	}
	u, _ := proxyURI(e.cfg.Proxy) // validated by normalize
	req.AppendHeader(&sip.RouteHeader{Address: u})
}

// pump reads the INVITE client transaction until its first final response.
func (e *Endpoint) pump(l *legState, tx sip.ClientTransaction, slot *windowSlot) {
	defer slot.release()
	// The INVITE's place in the window is given back at its first response, or
	// after T1 without one (a peer that does not answer holds the others back
	// for one retransmission interval at most); how long it took sizes the window.
	slow := time.AfterFunc(sip.T1, slot.answered)
	defer slow.Stop()
	for {
		select {
		case res := <-tx.Responses():
			slot.answered()
			if res.IsProvisional() {
				e.onProvisional(l)
				continue
			}
			if res.StatusCode == 401 || res.StatusCode == 407 {
				if next := e.reinviteAuthorized(l, res); next != nil {
					tx = next
					continue
				}
			}
			e.onFinal(l, res)
			return
		case <-tx.Done():
			// No final response: RFC 3261 §8.1.3.1 treats a timeout as 408
			// and a transport failure as 503.
			status := 503
			if errors.Is(tx.Err(), sip.ErrTransactionTimeout) {
				status = 408
			}
			e.onFinal(l, nil, status)
			return
		case <-e.ctx.Done():
			tx.Terminate()
			return
		}
	}
}

// reinviteAuthorized answers a 401/407 to our INVITE (RFC 3261 §22.2,
// §22.3): the same INVITE with the next CSeq, a new branch and our
// credentials, in a new client transaction (sipgo's old one ACKs the
// challenge, §17.1.1.3). Once per INVITE, again only for a stale nonce; nil
// when the challenge is the final answer.
func (e *Endpoint) reinviteAuthorized(l *legState, res *sip.Response) sip.ClientTransaction {
	e.mu.Lock()
	if l.cancelWanted || l.ended || l.authTries >= 3 || (l.authTries > 0 && !staleChallenge(res)) {
		e.mu.Unlock()
		return nil
	}
	l.authTries++
	req := l.req.Clone()
	cseq := l.inviteCSeq + 1
	e.mu.Unlock()
	req.RemoveHeader("Via")
	via := e.newVia(l.transport)
	req.PrependHeader(via)
	req.CSeq().SeqNo = cseq
	if !e.authorize(req, res) {
		return nil
	}
	e.setTransport(req, via, via.Transport)
	ctx, cancel := context.WithTimeout(e.ctx, connectTimeout)
	defer cancel()
	tx, err := e.ua.TransactionLayer().Request(ctx, req)
	if err != nil {
		e.log.Debug("authorized INVITE not sent", "leg", l.id, "error", err)
		return nil
	}
	e.mu.Lock()
	l.req = req
	l.inviteCSeq, l.localCSeq = cseq, cseq
	l.transport = req.Transport()
	l.provisional = false
	e.mu.Unlock()
	tx.OnRetransmission(func(res *sip.Response) { e.onFinal(l, res) })
	return tx
}

func (e *Endpoint) onProvisional(l *legState) {
	e.mu.Lock()
	l.provisional = true
	send := l.cancelWanted && !l.cancelSent && l.final == 0
	if send {
		l.cancelSent = true
	}
	e.mu.Unlock()
	if send {
		e.sendCancel(l)
	}
}

// onFinal takes a final response to our INVITE, or synthesizes one with
// status when res is nil.
func (e *Endpoint) onFinal(l *legState, res *sip.Response, status ...int) {
	var r Response
	if res == nil {
		r = Response{Status: status[0], Reason: reasonPhrase(status[0]), Local: true}
	} else {
		r = toResponse(res)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if res != nil && res.IsSuccess() {
		toTag := tagOf(res.To().Params)
		if l.dialog && toTag != l.remoteTag {
			// A 2xx from another fork (RFC 3261 §13.2.2.4). cpmlink's
			// cores never fork; the stray dialog is left alone.
			e.log.Warn("2xx from a second fork ignored", "leg", l.id, "to-tag", toTag)
			return
		}
		if !l.dialog && !l.ended {
			// The UAC side of the dialog (RFC 3261 §12.1.2): remote target
			// from Contact, route set from Record-Route in reverse.
			l.dialog = true
			l.final = res.StatusCode
			l.remoteTag = toTag
			if c := res.Contact(); c != nil {
				l.remoteTarget = *c.Address.Clone()
			} else {
				l.remoteTarget = *l.req.Recipient.Clone()
			}
			l.routeSet = nil
			for _, h := range res.GetHeaders("Record-Route") {
				if rr, ok := h.(*sip.RecordRouteHeader); ok {
					l.routeSet = append(l.routeSet, *rr.Address.Clone())
				}
			}
			slices.Reverse(l.routeSet)
			e.dialogs[l.dialogID()] = l
		}
		if l.ended {
			return
		}
	} else {
		if l.final != 0 || l.ended {
			return
		}
		l.final = r.Status
		e.endLocked(l) // sipgo's transaction ACKs a non-2xx (§17.1.1.3)
	}
	if e.h.Response != nil {
		id := l.id
		e.post(func() { e.h.Response(id, r) })
	}
}

// onStrayResponse gets responses no client transaction matched: a 2xx
// retransmitted after our INVITE transaction ended (RFC 3261 §13.2.2.4 still
// wants it ACKed). Others are dropped.
func (e *Endpoint) onStrayResponse(res *sip.Response) {
	cseq, from, to, callID := res.CSeq(), res.From(), res.To(), res.CallID()
	if cseq == nil || cseq.MethodName != sip.INVITE || !res.IsSuccess() || from == nil || to == nil || callID == nil {
		return
	}
	e.mu.Lock()
	l := e.dialogs[dialogID{callID.Value(), tagOf(from.Params), tagOf(to.Params)}]
	e.mu.Unlock()
	if l != nil && l.outgoing {
		e.onFinal(l, res)
	}
}

// Ack sends the ACK for the 2xx received on leg (RFC 3261 §13.2.2.4): a
// transaction of its own, Request-URI the remote target (the 2xx's Contact),
// Route from its Record-Route, the INVITE's CSeq number. Each call sends one
// ACK; call it again for each retransmitted 2xx.
func (e *Endpoint) Ack(leg string) error {
	e.mu.Lock()
	l, err := e.legLocked(leg, true)
	if err != nil {
		e.mu.Unlock()
		return err
	}
	if !l.dialog {
		e.mu.Unlock()
		return fmt.Errorf("%w: leg %s has no 2xx to ACK", ErrNoDialog, leg)
	}
	req, err := e.inDialogLocked(l, sip.ACK)
	e.mu.Unlock()
	if err != nil {
		return err
	}
	// No transaction: the ACK for a 2xx is sent straight to the transport.
	ctx, cancel := context.WithTimeout(e.ctx, connectTimeout)
	defer cancel()
	if err := e.write(ctx, req, req.Transport()); err != nil {
		if errors.Is(err, ErrNoRoute) {
			return fmt.Errorf("ACK on %s: %w", leg, err)
		}
		return fmt.Errorf("%w: ACK on %s: %w", ErrTransport, leg, err)
	}
	return nil
}

// Cancel cancels the INVITE pending on leg (RFC 3261 §9.1). Until a
// provisional response has arrived the CANCEL is held back, as §9.1
// requires, and sent with the first one. The INVITE then ends with 487
// through Handler.Response — or with a 2xx that crossed the CANCEL, which
// the driver must ACK and BYE. It returns ErrFinal if the INVITE already has
// a final response; a second call is a no-op.
func (e *Endpoint) Cancel(leg string) error {
	e.mu.Lock()
	l, err := e.legLocked(leg, true)
	if err != nil {
		e.mu.Unlock()
		return err
	}
	if l.final != 0 {
		e.mu.Unlock()
		return fmt.Errorf("%w: leg %s got %d", ErrFinal, leg, l.final)
	}
	if l.cancelWanted {
		e.mu.Unlock()
		return nil
	}
	l.cancelWanted = true
	send := l.provisional
	l.cancelSent = send
	e.mu.Unlock()
	if send {
		e.sendCancel(l)
	}
	return nil
}

// sendCancel sends CANCEL for l's INVITE: same Request-URI, Call-ID, From,
// To, CSeq number, the INVITE's top Via (so its branch matches the INVITE
// transaction) and Route (RFC 3261 §9.1).
func (e *Endpoint) sendCancel(l *legState) {
	inv := l.req
	c := sip.NewRequest(sip.CANCEL, *inv.Recipient.Clone())
	c.AppendHeader(inv.Via().Clone())
	sip.CopyHeaders("Route", inv, c)
	maxf := sip.MaxForwardsHeader(70)
	c.AppendHeader(&maxf)
	c.AppendHeader(sip.HeaderClone(inv.From()))
	c.AppendHeader(sip.HeaderClone(inv.To()))
	c.AppendHeader(sip.HeaderClone(inv.CallID()))
	c.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	c.SetBody(nil)
	// To where the INVITE went (RFC 3261 §9.1: the CANCEL follows the
	// INVITE's transaction), on its connection.
	c.SetTransport(inv.Transport())
	c.SetDestination(inv.Destination())
	c.Laddr = inv.Laddr
	e.sendNonInvite(c)
}

// Bye ends the dialog of leg with a BYE (RFC 3261 §15.1.1); either side may
// call it. The leg is gone when Bye returns; the BYE's response is only
// logged. On an incoming leg whose 2xx is not yet ACKed the BYE waits for
// the ACK (or for the 64*T1 give-up), as §15 requires.
func (e *Endpoint) Bye(leg string) error {
	e.mu.Lock()
	l := e.legs[leg]
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	if l == nil {
		e.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrUnknownLeg, leg)
	}
	if !l.dialog {
		e.mu.Unlock()
		return fmt.Errorf("%w: leg %s (Cancel a pending INVITE, Reject a held one)", ErrNoDialog, leg)
	}
	if !l.outgoing && !l.ackSeen {
		l.byeAfterAck = true
		e.mu.Unlock()
		return nil
	}
	req, err := e.inDialogLocked(l, sip.BYE)
	if err == nil {
		e.endLocked(l)
	}
	e.mu.Unlock()
	if err != nil {
		return err
	}
	if !e.sendInDialog(req) {
		return ErrClosed
	}
	return nil
}

// inDialogLocked builds a request inside l's dialog (RFC 3261 §12.2.1.1):
// Request-URI the remote target, Route the route set, tags and Call-ID of
// the dialog, and the next local CSeq (the INVITE's for an ACK).
func (e *Endpoint) inDialogLocked(l *legState, method sip.RequestMethod) (*sip.Request, error) {
	req := sip.NewRequest(method, *l.remoteTarget.Clone())
	transport := l.transport
	next := l.remoteTarget
	if len(l.routeSet) > 0 {
		next = l.routeSet[0]
	}
	switch tp := uriTransport(next); {
	case next.Scheme == "sips":
		transport = transportTLS
	case tp == transportUDP || tp == transportTCP || tp == transportTLS:
		transport = tp
	}
	if !hostIsIP(next) && e.cfg.Resolver == nil {
		return nil, fmt.Errorf("%w: next hop %s of leg %s is a name and no resolver is configured", ErrNoRoute, next.String(), l.id)
	}
	if _, strict := next.UriParams.Get("lr"); len(l.routeSet) > 0 && !strict {
		// A strict router (RFC 2543) would need the Request-URI swap of
		// §12.2.1.1; every proxy cpmlink meets loose-routes.
		e.log.Warn("strict router in route set treated as loose", "leg", l.id, "route", next.String())
	}
	via := e.newVia(transport)
	req.AppendHeader(via)
	for _, r := range l.routeSet {
		req.AppendHeader(&sip.RouteHeader{Address: *r.Clone()})
	}
	maxf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&maxf)
	fromH := &sip.FromHeader{Address: l.local, Params: sip.NewParams()}
	fromH.Params.Add("tag", l.localTag)
	req.AppendHeader(fromH)
	toH := &sip.ToHeader{Address: l.remote, Params: sip.NewParams()}
	toH.Params.Add("tag", l.remoteTag)
	req.AppendHeader(toH)
	cid := sip.CallIDHeader(l.callID)
	req.AppendHeader(&cid)
	seq := l.inviteCSeq
	if method != sip.ACK {
		l.localCSeq++
		seq = l.localCSeq
	}
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: method})
	req.SetBody(nil)
	e.setTransport(req, via, transport)
	return req, nil
}

// sendInDialog sends a non-INVITE request in its own client transaction and
// logs its final response; false if the endpoint is closing.
func (e *Endpoint) sendInDialog(req *sip.Request) bool { return e.sendNonInvite(req) }

func (e *Endpoint) sendNonInvite(req *sip.Request) bool {
	return e.goWork(func() {
		ctx, cancel := context.WithTimeout(e.ctx, connectTimeout)
		tx, err := e.start(ctx, req, req.Transport())
		cancel()
		if err != nil {
			e.log.Debug("request not sent", "method", req.Method, "error", err)
			return
		}
		defer tx.Terminate()
		for {
			select {
			case res := <-tx.Responses():
				if res.IsProvisional() {
					continue
				}
				e.log.Debug("final response", "method", req.Method, "status", res.StatusCode)
				return
			case <-tx.Done():
				e.log.Debug("no final response", "method", req.Method, "error", tx.Err())
				return
			case <-e.ctx.Done():
				return
			}
		}
	})
}
