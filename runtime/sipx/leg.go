package sipx

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// inPrefix starts the ids sipx gives incoming legs ("in:7"). Invite refuses
// exactly that form, so that the two namespaces never collide, and accepts
// ids derived from an incoming one ("in:7/2", a B2BUA's down leg).
const inPrefix = "in:"

// reservedLeg reports whether id has the form of an incoming leg's id.
func reservedLeg(id string) bool {
	n, ok := strings.CutPrefix(id, inPrefix)
	if !ok || n == "" {
		return ok
	}
	for _, c := range n {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// dialogID identifies a dialog from this endpoint's side (RFC 3261 §12):
// Call-ID, local tag, remote tag.
type dialogID struct{ callID, local, remote string }

// inviteID identifies an INVITE request regardless of its Via branch
// (Call-ID, From tag, CSeq number; RFC 3261 §8.2.2.2), so that a
// retransmission that bypasses sipgo's transaction matching does not open a
// second leg.
type inviteID struct {
	callID, fromTag string
	cseq            uint32
}

// legState is one dialog (or dialog attempt) of this endpoint. All fields are
// guarded by Endpoint.mu.
type legState struct {
	id       string
	outgoing bool
	// transport is what the INVITE travelled on at this endpoint ("UDP" or
	// "TCP"); in-dialog requests fall back to it when neither the route set
	// nor the remote target names one.
	transport string

	// Dialog state, RFC 3261 §12.1.
	callID       string
	localTag     string
	remoteTag    string
	local        sip.Uri // our URI: From of our INVITE, To of a received one
	remote       sip.Uri // the peer's URI
	inviteCSeq   uint32
	localCSeq    uint32
	remoteCSeq   uint32
	remoteTarget sip.Uri
	routeSet     []sip.Uri
	dialog       bool // a 2xx was sent or received
	ended        bool // removed from the endpoint's tables

	// Incoming legs (UAS).
	invite      *sip.Request
	holding     bool          // the INVITE handler waits for a decision
	decide      chan decision // Answer/Reject to the holding handler
	cancelled   bool          // CANCEL arrived while held
	answered    int           // status of our final response, 0 while held
	acked       chan struct{} // closed by the first ACK for our 2xx
	ackSeen     bool
	done        chan struct{} // closed when the leg ends: stops 2xx retransmission
	byeAfterAck bool          // Bye was called before the ACK (RFC 3261 §15)

	// Outgoing legs (UAC).
	req          *sip.Request // our INVITE, as sent
	provisional  bool         // a 1xx arrived: CANCEL may be sent (§9.1)
	cancelWanted bool
	cancelSent   bool
	final        int // status of the first final response, 0 while pending
	authTries    int // INVITEs re-sent with credentials (RFC 3261 §22.3)
}

// decision is Answer's or Reject's response, handed to the goroutine that
// holds the INVITE server transaction; result carries the send error back.
type decision struct {
	res    *sip.Response
	result chan error
}

func (l *legState) dialogID() dialogID { return dialogID{l.callID, l.localTag, l.remoteTag} }

// end is endLocked for callers that do not hold e.mu.
func (e *Endpoint) end(l *legState) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.endLocked(l)
}

// endLocked removes l from the tables and stops whatever waits on it. The
// caller holds Endpoint.mu.
func (e *Endpoint) endLocked(l *legState) {
	if l.ended {
		return
	}
	l.ended = true
	if e.legs[l.id] == l {
		delete(e.legs, l.id)
	}
	if l.dialog && e.dialogs[l.dialogID()] == l {
		delete(e.dialogs, l.dialogID())
	}
	if l.invite != nil {
		k := inviteID{l.callID, l.remoteTag, l.inviteCSeq}
		if e.invites[k] == l {
			delete(e.invites, k)
		}
	}
	if l.done != nil {
		close(l.done)
	}
}
