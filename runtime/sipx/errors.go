package sipx

import (
	"errors"
	"fmt"
)

// Sentinel errors. Functions wrap them with %w and the offending value.
var (
	// ErrClosed: the Endpoint or Proxy has been closed.
	ErrClosed = errors.New("sipx: closed")
	// ErrConfig: a Config or ProxyConfig value is invalid.
	ErrConfig = errors.New("sipx: bad configuration")
	// ErrUnknownLeg: no leg with that id (never existed, or already ended).
	ErrUnknownLeg = errors.New("sipx: unknown leg")
	// ErrLegExists: Invite was given a leg id that is already in use, or one
	// of the form sipx gives incoming legs ("in:" and digits).
	ErrLegExists = errors.New("sipx: leg id already in use")
	// ErrWrongDirection: the call needs a leg of the other direction (Answer
	// on a leg we originated, Cancel on a leg we received, ...).
	ErrWrongDirection = errors.New("sipx: operation does not fit the leg's direction")
	// ErrFinal: the INVITE of the leg already has a final response.
	ErrFinal = errors.New("sipx: INVITE already has a final response")
	// ErrCancelled: the held INVITE was cancelled by the caller (RFC 3261 §9.2).
	ErrCancelled = errors.New("sipx: INVITE was cancelled")
	// ErrNoDialog: the leg has no established dialog (no 2xx yet), so there
	// is nothing to ACK or BYE; Cancel is the way out of a pending INVITE.
	ErrNoDialog = errors.New("sipx: no dialog on leg")
	// ErrNoRoute: the request cannot be routed: no outbound proxy configured
	// and the Request-URI host is not an IP address.
	ErrNoRoute = errors.New("sipx: no route")
	// ErrBadURI: a SIP URI that does not parse.
	ErrBadURI = errors.New("sipx: bad SIP URI")
	// ErrBadStatus: a status code that does not fit the call (Reject needs 300-699).
	ErrBadStatus = errors.New("sipx: bad status code")
	// ErrReservedHeader: an extra header that sipx itself owns (Via, Call-ID, ...).
	ErrReservedHeader = errors.New("sipx: header is managed by sipx")
	// ErrBadBody: a body that cannot be encoded or decoded (multipart/mixed).
	ErrBadBody = errors.New("sipx: malformed body")
	// ErrTooLarge: a response larger than UDP may carry (RFC 3261 §18.1.1:
	// 1300 bytes); responses follow the transport of the request (§18.2.2)
	// and cannot switch to TCP.
	ErrTooLarge = errors.New("sipx: message too large for UDP")
	// ErrNoAck: our 2xx was retransmitted for 64*T1 without an ACK
	// (RFC 3261 §13.3.1.4); sipx ended the dialog with a BYE.
	ErrNoAck = errors.New("sipx: 2xx never acknowledged")
	// ErrHoldExpired: the driver neither answered nor rejected a held INVITE
	// within Config.HoldTimeout; sipx answered it 480.
	ErrHoldExpired = errors.New("sipx: held INVITE expired")
	// ErrRejected: a request we sent got a non-2xx final response; the
	// returned error is a *StatusError.
	ErrRejected = errors.New("sipx: request rejected")
	// ErrTransport: sending failed at the transport layer.
	ErrTransport = errors.New("sipx: transport failure")
)

// StatusError is a final non-2xx response to a request sipx sent on the
// caller's behalf (REGISTER). errors.Is(err, ErrRejected) holds for it.
type StatusError struct {
	Method string
	Status int
	Reason string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("sipx: %s answered %d %s", e.Method, e.Status, e.Reason)
}

// Is makes errors.Is(err, ErrRejected) true.
func (e *StatusError) Is(target error) bool { return target == ErrRejected }
