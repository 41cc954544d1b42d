package sipx

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// sipgo's INVITE server transaction sends 100 Trying on a timer of its own,
// Timer_1xx, unless a response was sent first; but a timer that has fired
// and whose callback has not yet run sends its 100 whatever was sent in
// between, so that under load a 100 followed the 200 on the wire (SIPp, as
// ClientA of TestForeignClients, aborted on it: RFC 3261 §17.2.1 has no
// provisional response after a final one). onInvite sends its own 100 at
// once, so sipgo's timer is put where it never fires. Timer_1xx is a
// package variable of sipgo's, read when a transaction starts; sipx is the
// only user of sipgo's transaction layer in cpmlink.
func init() { sip.Timer_1xx = noTimer1xx }

// noTimer1xx is longer than any INVITE transaction lives (Timer C is 3 min).
const noTimer1xx = 24 * time.Hour

// onInvite handles a new INVITE server transaction. It runs on the goroutine
// sipgo started for the request and holds the transaction open until the
// driver decides (sipgo terminates the transaction when the handler returns,
// RFC 3261 §17.2.1 wants it open until the final response).
func (e *Endpoint) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if !e.enter() {
		e.refuse(tx, req)
		return
	}
	defer e.work.Done()

	from, to, callID, cseq := req.From(), req.To(), req.CallID(), req.CSeq()
	if from == nil || to == nil || callID == nil || cseq == nil || tagOf(from.Params) == "" {
		e.respond(tx, req, 400, "Missing From, To, Call-ID, CSeq or From tag", nil)
		return
	}
	if toTag := tagOf(to.Params); toTag != "" {
		// A re-INVITE (RFC 3261 §14.2). cpmlink never modifies a session,
		// so a known dialog gets 488; an unknown one 481 (§12.2.2).
		e.mu.Lock()
		_, known := e.dialogs[dialogID{callID.Value(), toTag, tagOf(from.Params)}]
		e.mu.Unlock()
		if known {
			e.respond(tx, req, 488, "", []sip.Header{sip.NewHeader("Warning", `399 sipx "re-INVITE not supported"`)})
		} else {
			e.respond(tx, req, 481, "", nil)
		}
		return
	}
	// Who sent it, before anything else is done for it (RFC 3261 §22.3,
	// RFC 3325 §5): a challenge, or a refusal, ends the transaction here.
	identity, status, reason, authHdrs := e.identify(req)
	if status != 0 {
		e.respond(tx, req, status, reason, authHdrs)
		return
	}
	contact := req.Contact()
	if contact == nil {
		e.respond(tx, req, 400, "Missing Contact", nil)
		return
	}
	if status, hdrs := checkInviteBody(req); status != 0 {
		e.respond(tx, req, status, "", hdrs)
		return
	}
	parts, err := bodyOf(req)
	if err != nil {
		e.respond(tx, req, 400, "Malformed Body", []sip.Header{sip.NewHeader("Warning", `399 sipx "`+strings.ReplaceAll(err.Error(), `"`, `'`)+`"`)})
		return
	}

	// Learn of a CANCEL before the Invite callback can be posted: sipgo
	// answers a CANCEL for a transaction without a hook with 487 and we
	// would never know.
	cancelled := make(chan struct{})
	var once sync.Once
	if !tx.OnCancel(func(*sip.Request) { once.Do(func() { close(cancelled) }) }) {
		return // already cancelled and answered 487 by sipgo
	}
	// 100 Trying at once (RFC 3261 §17.2.1: a TU that may take longer than
	// 200 ms). sipgo's own 200 ms timer for it is stopped by any INVITE
	// retransmission, so with T1 < 200 ms it never fires; and the caller
	// may only CANCEL after a provisional response (§9.1).
	e.respond(tx, req, 100, "", nil)

	key := inviteID{callID.Value(), tagOf(from.Params), cseq.SeqNo}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		e.respond(tx, req, 503, "", nil)
		return
	}
	if _, dup := e.invites[key]; dup {
		e.mu.Unlock()
		// Same From tag, Call-ID and CSeq as an INVITE in progress but
		// another transaction: a merged request (RFC 3261 §8.2.2.2).
		e.respond(tx, req, 482, "", nil)
		return
	}
	e.nextIn++
	l := &legState{
		id:           inPrefix + strconv.FormatUint(e.nextIn, 10),
		transport:    strings.ToUpper(req.Transport()),
		callID:       callID.Value(),
		localTag:     randToken(8),
		remoteTag:    tagOf(from.Params),
		local:        bareURI(to.Address),
		remote:       bareURI(from.Address),
		inviteCSeq:   cseq.SeqNo,
		remoteCSeq:   cseq.SeqNo,
		remoteTarget: *contact.Address.Clone(),
		invite:       req,
		holding:      true,
		decide:       make(chan decision, 1),
		acked:        make(chan struct{}),
		done:         make(chan struct{}),
	}
	// The route set of the UAS is the Record-Route list in order
	// (RFC 3261 §12.1.1).
	for _, h := range req.GetHeaders("Record-Route") {
		if rr, ok := h.(*sip.RecordRouteHeader); ok {
			l.routeSet = append(l.routeSet, *rr.Address.Clone())
		}
	}
	e.legs[l.id] = l
	e.invites[key] = l
	if e.h.Invite != nil {
		toURI := bareURI(to.Address)
		in := IncomingInvite{
			RequestURI: req.Recipient.String(),
			From:       identity,
			To:         toURI.String(),
			Parts:      parts,
			Headers:    headersOf(req),
			Transport:  l.transport,
		}
		id := l.id
		e.post(func() { e.h.Invite(id, in) })
	}
	e.mu.Unlock()
	e.log.Debug("INVITE held", "leg", l.id, "call-id", l.callID)
	e.hold(l, tx, cancelled)
}

// hold waits for the driver's decision on l and carries it out.
func (e *Endpoint) hold(l *legState, tx sip.ServerTransaction, cancelled <-chan struct{}) {
	timer := time.NewTimer(e.cfg.HoldTimeout)
	defer timer.Stop()
	select {
	case d := <-l.decide:
		select {
		case <-cancelled:
			// The CANCEL was first (RFC 3261 §9.2); sipgo answered 487.
			d.result <- ErrCancelled
			e.cancelled(l)
			return
		default:
		}
		err := tx.Respond(d.res)
		if errors.Is(err, sip.ErrTransactionCanceled) {
			// The CANCEL won the race inside sipgo after the check above:
			// sipgo answered 487 and did not send our response, but keeps
			// it as the one its Timer G retransmits. Put a 487 back.
			_ = tx.Respond(e.response(l, 487, "", nil, nil))
			d.result <- ErrCancelled
			e.cancelled(l)
			return
		}
		// A leg that ends here ends before the driver's call returns, so that the
		// driver's next call on it gets ErrUnknownLeg, not a race with this goroutine.
		if err != nil {
			e.end(l)
			d.result <- fmt.Errorf("%w: %w", ErrTransport, err)
			return
		}
		if d.res.IsSuccess() {
			d.result <- nil
			e.confirm(l, tx, d.res)
			return
		}
		e.end(l) // the transaction absorbs retransmissions and the ACK
		d.result <- nil
	case <-cancelled:
		e.cancelled(l)
	case <-timer.C:
		e.abandon(l, ErrHoldExpired)
		_ = tx.Respond(e.response(l, 408, "", nil, nil))
	case <-tx.Done():
		// A CANCEL ends the transaction too (sipgo's 487, then the ACK, or Timer H),
		// and when both are ready before this select runs, select picks at random.
		// sipgo calls the OnCancel hook before it sends the 487, so once the
		// transaction is done, cancelled is closed if a CANCEL ended it: the driver
		// must hear "cancelled", not a transport failure.
		select {
		case <-cancelled:
			e.cancelled(l)
			return
		default:
		}
		e.abandon(l, fmt.Errorf("%w: INVITE transaction ended: %v", ErrTransport, tx.Err()))
	case <-e.ctx.Done():
		e.abandon(l, nil)
		_ = tx.Respond(e.response(l, 503, "", nil, nil))
	}
}

// releaseLocked stops l from accepting a decision and fails one that raced in.
func (l *legState) releaseLocked(err error) {
	l.holding = false
	select {
	case d := <-l.decide:
		d.result <- err
	default:
	}
}

// cancelled marks l as cancelled and tells the driver. The leg stays until
// the driver's Reject, so that Reject(leg, 487) succeeds.
func (e *Endpoint) cancelled(l *legState) {
	e.mu.Lock()
	defer e.mu.Unlock()
	l.releaseLocked(ErrCancelled)
	l.cancelled = true
	if l.dialog {
		delete(e.dialogs, l.dialogID())
		l.dialog = false
	}
	if e.h.Cancel != nil {
		id := l.id
		e.post(func() { e.h.Cancel(id) })
	}
}

// abandon ends a held leg that got no decision; err (if not nil) goes to
// Handler.Failed.
func (e *Endpoint) abandon(l *legState, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err == nil {
		err = ErrClosed
	} else {
		e.postFailed(l, err)
	}
	l.releaseLocked(err)
	e.endLocked(l)
}

// confirm retransmits our 2xx until the ACK arrives (RFC 3261 §13.3.1.4):
// first after T1, doubling up to T2, for at most 64*T1. sipgo follows RFC
// 6026 and leaves 2xx retransmission to the TU. The RFC retransmits over
// reliable transports too, since the ACK is end to end and a later hop may be
// UDP. Without an ACK the dialog is confirmed but ended with a BYE.
func (e *Endpoint) confirm(l *legState, tx sip.ServerTransaction, res *sip.Response) {
	interval := e.cfg.T1
	retx := time.NewTimer(interval)
	defer retx.Stop()
	giveUp := time.NewTimer(64 * e.cfg.T1)
	defer giveUp.Stop()
	for {
		select {
		case <-l.acked:
			e.afterAck(l)
			return
		case <-tx.Acks():
			// An ACK that matched the INVITE transaction (a peer reusing
			// the INVITE's branch, RFC 2543 style) comes this way.
			e.gotAck(l)
			e.afterAck(l)
			return
		case <-l.done:
			return // BYE in either direction
		case <-retx.C:
			e.resend(tx, res)
			interval = min(2*interval, t2)
			retx.Reset(interval)
		case <-giveUp.C:
			e.mu.Lock()
			if l.ackSeen || l.ended {
				e.mu.Unlock()
				continue // the ACK won the race; the cases above finish
			}
			e.postFailed(l, ErrNoAck)
			req, err := e.inDialogLocked(l, sip.BYE)
			e.endLocked(l)
			e.mu.Unlock()
			if err == nil {
				e.sendInDialog(req)
			}
			return
		case <-e.ctx.Done():
			return
		}
	}
}

func (e *Endpoint) resend(tx sip.ServerTransaction, res *sip.Response) {
	select {
	case <-tx.Done():
		// The transaction is gone (Timer L); the transport still knows the
		// way back.
		if err := e.ua.TransportLayer().WriteMsg(res); err != nil {
			e.log.Debug("2xx retransmission failed", "error", err)
		}
	default:
		if err := tx.Respond(res); err != nil {
			e.log.Debug("2xx retransmission failed", "error", err)
		}
	}
}

// afterAck sends a BYE the driver asked for before the ACK arrived.
func (e *Endpoint) afterAck(l *legState) {
	e.mu.Lock()
	if !l.byeAfterAck || l.ended {
		e.mu.Unlock()
		return
	}
	req, err := e.inDialogLocked(l, sip.BYE)
	e.endLocked(l)
	e.mu.Unlock()
	if err == nil {
		e.sendInDialog(req)
	}
}

func (e *Endpoint) gotAck(l *legState) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if l.ackSeen || l.ended {
		return // a duplicate ACK (one per 2xx retransmission) is absorbed
	}
	l.ackSeen = true
	close(l.acked)
	if e.h.Ack != nil {
		id := l.id
		e.post(func() { e.h.Ack(id) })
	}
}

// Answer sends 200 OK with parts to the INVITE held on leg and establishes
// the dialog. It returns once the 200 has been handed to the transport; sipx
// then retransmits it until the ACK arrives (Handler.Ack) or 64*T1 pass.
func (e *Endpoint) Answer(leg string, parts []Part, extra []Header) error {
	return e.decide(leg, 200, "OK", parts, extra)
}

// AnswerAsync is Answer for a caller that must not wait on the wire (an event
// loop that answers many legs): what Answer checks before anything is sent
// (the leg, a CANCEL already taken, the body, the size over UDP) is checked at
// once and returned, the dialog exists when it returns (so that an ACK, a BYE
// or the caller's next call on the leg finds it), and the channel yields the
// rest of Answer's result once the 200 has been handed to the transport:
// nil, ErrCancelled when a CANCEL won the race (the leg then waits for the
// caller's Reject, as after Handler.Cancel), or an ErrTransport.
func (e *Endpoint) AnswerAsync(leg string, parts []Part, extra []Header) (<-chan error, error) {
	return e.decideAsync(leg, 200, "OK", parts, extra)
}

// Reject sends a final non-2xx response (300-699) to the INVITE held on leg
// and ends the leg: 486, 480, 603, 404, 403, 488 (put a Warning or Reason in
// extra) ... After Handler.Cancel, Reject only releases the leg (sipgo has
// answered 487 already) and returns nil whatever the status.
func (e *Endpoint) Reject(leg string, status int, reason string, extra []Header) error {
	if status < 300 || status > 699 {
		return fmt.Errorf("%w: Reject with %d (want 300-699)", ErrBadStatus, status)
	}
	return e.decide(leg, status, reason, nil, extra)
}

func (e *Endpoint) decide(id string, status int, reason string, parts []Part, extra []Header) error {
	result, err := e.decideAsync(id, status, reason, parts, extra)
	if err != nil {
		return err
	}
	return <-result
}

// decideAsync queues the final response for the leg's holding goroutine (hold)
// and returns the channel its result comes on; a response that cannot be sent
// at all is refused at once.
func (e *Endpoint) decideAsync(id string, status int, reason string, parts []Part, extra []Header) (<-chan error, error) {
	if err := checkExtra(extra, false); err != nil {
		return nil, err
	}
	e.mu.Lock()
	l, err := e.legLocked(id, false)
	if err != nil {
		e.mu.Unlock()
		return nil, err
	}
	if l.cancelled {
		defer e.mu.Unlock()
		if status >= 300 {
			e.endLocked(l)
			done := make(chan error, 1)
			done <- nil
			return done, nil
		}
		return nil, fmt.Errorf("%w: leg %s", ErrCancelled, id)
	}
	if l.answered != 0 || !l.holding {
		e.mu.Unlock()
		return nil, fmt.Errorf("%w: leg %s", ErrFinal, id)
	}
	res := e.response(l, status, reason, parts, extra)
	if res == nil {
		e.mu.Unlock()
		return nil, fmt.Errorf("%w: leg %s", ErrBadBody, id)
	}
	if l.transport == "UDP" && len(res.String()) > udpMax {
		e.mu.Unlock()
		return nil, fmt.Errorf("%w: %d-byte response to an INVITE that came over UDP (RFC 3261 §18.2.2 keeps responses on the request's transport)", ErrTooLarge, len(res.String()))
	}
	l.answered = status
	if res.IsSuccess() {
		// The UAS side of the dialog exists once the 2xx is sent
		// (RFC 3261 §12.1.1); register it first so that a fast ACK finds it.
		l.dialog = true
		e.dialogs[l.dialogID()] = l
	}
	d := decision{res: res, result: make(chan error, 1)}
	l.decide <- d // cannot block: one decision per leg, buffered
	e.mu.Unlock()
	return d.result, nil
}

// response builds our response to l's INVITE with our To tag (the same for
// every response, RFC 3261 §8.2.6.2) and, for a 2xx, our Contact (§12.1.1).
// It returns nil if parts cannot be encoded.
func (e *Endpoint) response(l *legState, status int, reason string, parts []Part, extra []Header) *sip.Response {
	if reason == "" {
		reason = reasonPhrase(status)
	}
	res := sip.NewResponseFromRequest(l.invite, status, reason, nil)
	if to := res.To(); to != nil {
		to.Params.Add("tag", l.localTag)
	}
	if status >= 200 && status < 300 {
		res.AppendHeader(sip.NewHeader("Contact", e.contactValue(e.contactUser(), l.transport, secureDialog(l.invite))))
	}
	appendExtra(res, extra)
	if err := setBody(res, parts); err != nil {
		return nil
	}
	return res
}

// legLocked finds a leg of the given direction; the caller holds e.mu.
func (e *Endpoint) legLocked(id string, outgoing bool) (*legState, error) {
	if e.closed {
		return nil, ErrClosed
	}
	l := e.legs[id]
	if l == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownLeg, id)
	}
	if l.outgoing != outgoing {
		return nil, fmt.Errorf("%w: leg %s", ErrWrongDirection, id)
	}
	return l, nil
}

// onAck takes the ACK for a 2xx: a transaction of its own (RFC 3261
// §17.1.1.3), matched to its dialog. An ACK for no dialog of ours is
// dropped, as an ACK cannot be answered.
func (e *Endpoint) onAck(req *sip.Request, tx sip.ServerTransaction) {
	if !e.enter() {
		e.refuse(tx, req)
		return
	}
	defer e.work.Done()
	id, ok := inDialogID(req)
	if !ok {
		return
	}
	e.mu.Lock()
	l := e.dialogs[id]
	e.mu.Unlock()
	if l == nil || l.outgoing || req.CSeq() == nil || req.CSeq().SeqNo != l.inviteCSeq {
		e.log.Debug("ACK for no 2xx of ours dropped", "call-id", id.callID)
		return
	}
	e.gotAck(l)
}

// onBye ends a dialog (RFC 3261 §15.1.2): 200 and Handler.Bye, or 481 for a
// dialog we do not know.
func (e *Endpoint) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if !e.enter() {
		e.refuse(tx, req)
		return
	}
	defer e.work.Done()
	id, ok := inDialogID(req)
	if !ok {
		e.respond(tx, req, 481, "", nil)
		return
	}
	e.mu.Lock()
	l := e.dialogs[id]
	if l == nil {
		e.mu.Unlock()
		e.respond(tx, req, 481, "", nil)
		return
	}
	cseq := req.CSeq().SeqNo
	if l.remoteCSeq != 0 && cseq < l.remoteCSeq {
		e.mu.Unlock()
		// Out of order (RFC 3261 §12.2.2).
		e.respond(tx, req, 500, "CSeq Out Of Order", nil)
		return
	}
	l.remoteCSeq = cseq
	e.endLocked(l)
	var queued chan struct{}
	if e.h.Bye != nil && !e.closed {
		leg := l.id
		queued = make(chan struct{})
		e.post(func() { e.h.Bye(leg); close(queued) })
	}
	e.mu.Unlock()
	// The 200 goes out only once the driver has the BYE: a peer that closes its MSRP
	// connection when its BYE is answered would otherwise have the end of that
	// connection overtake the BYE on the way to the driver, which then takes the hang-up
	// for a broken link (408 instead of 481 for a member).
	if queued != nil {
		select {
		case <-queued:
		case <-e.events.done: // closing: the callback will not run
		}
	}
	e.respond(tx, req, 200, "", nil)
}

// onStrayCancel answers a CANCEL that matched no INVITE transaction
// (RFC 3261 §9.2); CANCELs that match are answered inside sipgo.
func (e *Endpoint) onStrayCancel(req *sip.Request, tx sip.ServerTransaction) {
	if !e.enter() {
		e.refuse(tx, req)
		return
	}
	defer e.work.Done()
	e.respond(tx, req, 481, "", nil)
}

// onOptions answers OPTIONS 200 (RFC 3261 §11.2), which also makes a cheap
// liveness probe.
func (e *Endpoint) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	if !e.enter() {
		e.refuse(tx, req)
		return
	}
	defer e.work.Done()
	allow := "INVITE, ACK, CANCEL, BYE, OPTIONS"
	if e.cfg.Registrar {
		allow += ", REGISTER"
	}
	e.respond(tx, req, 200, "", []sip.Header{sip.NewHeader("Allow", allow), sip.NewHeader("Accept", inviteAccepts)})
}

// onOther answers methods sipx does not implement: 405 for those it knows
// (RFC 3261 §8.2.1), 501 for unknown ones (§21.5.2).
func (e *Endpoint) onOther(req *sip.Request, tx sip.ServerTransaction) {
	if !e.enter() {
		e.refuse(tx, req)
		return
	}
	defer e.work.Done()
	status := 405
	if !knownMethods[string(req.Method)] {
		status = 501
	}
	e.respond(tx, req, status, "", []sip.Header{sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS")})
}

// refuse turns away a request that arrived while the endpoint is closing.
//
// sipgo hands each received message to a goroutine of its own that nobody
// waits for. If that goroutine runs after Close has cleared sipgo's
// connection pool, sipgo finds no connection back to the sender and opens a
// new one (for UDP a new socket with a reader goroutine) that nothing would
// ever close. Every such goroutine ends up here, in a server handler, after
// the endpoint is marked closed: closing the transaction's connection (the
// shared UDP listener excepted) releases it.
func (e *Endpoint) refuse(tx sip.ServerTransaction, req *sip.Request) {
	if !req.IsAck() {
		e.respond(tx, req, 503, "", nil)
	}
	st, ok := tx.(*sip.ServerTx)
	if !ok {
		return
	}
	switch c := st.Connection().(type) {
	case *sip.UDPConnection:
		if !c.Listener {
			_ = c.Close()
		}
	case *sip.TCPConnection:
		_ = c.Close()
	}
}

// inDialogID is the dialog of an in-dialog request as seen by its receiver:
// the To tag is ours, the From tag the peer's.
func inDialogID(req *sip.Request) (dialogID, bool) {
	from, to, callID, cseq := req.From(), req.To(), req.CallID(), req.CSeq()
	if from == nil || to == nil || callID == nil || cseq == nil {
		return dialogID{}, false
	}
	local, remote := tagOf(to.Params), tagOf(from.Params)
	if local == "" || remote == "" {
		return dialogID{}, false
	}
	return dialogID{callID.Value(), local, remote}, true
}

func (e *Endpoint) respond(tx sip.ServerTransaction, req *sip.Request, status int, reason string, hdrs []sip.Header) {
	if reason == "" {
		reason = reasonPhrase(status)
	}
	res := sip.NewResponseFromRequest(req, status, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		e.log.Debug("response not sent", "status", status, "error", err)
	}
}

// ReasonPhrase is the reason phrase sipx sends with a status (RFC 3261 §21), or the
// class's name for a code it does not list.
func ReasonPhrase(status int) string { return reasonPhrase(status) }

func reasonPhrase(status int) string {
	switch status {
	case 100:
		return "Trying"
	case 180:
		return "Ringing"
	case 200:
		return "OK"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 407:
		return "Proxy Authentication Required"
	case 408:
		return "Request Timeout"
	case 406:
		return "Not Acceptable"
	case 415:
		return "Unsupported Media Type"
	case 416:
		return "Unsupported URI Scheme"
	case 420:
		return "Bad Extension"
	case 480:
		return "Temporarily Unavailable"
	case 481:
		return "Call/Transaction Does Not Exist"
	case 482:
		return "Loop Detected"
	case 483:
		return "Too Many Hops"
	case 486:
		return "Busy Here"
	case 487:
		return "Request Terminated"
	case 488:
		return "Not Acceptable Here"
	case 500:
		return "Server Internal Error"
	case 501:
		return "Not Implemented"
	case 503:
		return "Service Unavailable"
	case 505:
		return "Version Not Supported"
	case 603:
		return "Decline"
	case 604:
		return "Does Not Exist Anywhere"
	}
	switch status / 100 {
	case 3:
		return "Redirection"
	case 4:
		return "Request Failure"
	case 5:
		return "Server Failure"
	case 6:
		return "Global Failure"
	}
	return "Unknown"
}
