package runtime

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/runtime/msrpsdp"
	"github.com/cpmlink/cpmlink/runtime/reslist"
	"github.com/cpmlink/cpmlink/runtime/sipx"
)

// The SDP and MSRP content a node offers and accepts (RFC 4975 §8).
const (
	cpimType     = "message/cpim"
	maxSize      = 1 << 40
	sdpType      = "application/sdp"
	listType     = "application/resource-lists+xml"
	outcomeField = "X-CPM-Outcome"
)

// sdpPart renders the MSRP parameters a machine put in an action as an SDP body.
func sdpPart(p fsm.SDP, direction string) sipx.Part {
	m := msrpsdp.Media{Host: p.Host, Port: p.Port, TLS: p.TLS, Path: strings.Fields(p.Path), Setup: p.Setup.String(),
		Direction: direction, AcceptTypes: []string{cpimType}, AcceptWrappedTypes: []string{"*"}, MaxSize: maxSize}
	body, err := msrpsdp.Marshal(m, sdpSessionID(p.Path), 1)
	if err != nil {
		// The machine only puts parameters it built from its own configuration here.
		panic(fmt.Sprintf("runtime: our own SDP does not marshal: %v", err))
	}
	return sipx.Part{ContentType: sdpType, Body: body}
}

// sdpSessionID derives the o= session id from the MSRP path, so that a retransmitted
// answer says the same.
func sdpSessionID(path string) uint64 {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(path); i++ {
		h ^= uint64(path[i])
		h *= 1099511628211
	}
	return h >> 2
}

func resourceListPart(uris []string) sipx.Part {
	return sipx.Part{ContentType: listType, Disposition: "recipient-list", Body: reslist.Marshal(uris)}
}

// parseSDP reads the MSRP parameters from the SDP part of a body.
func parseSDP(parts []sipx.Part) (fsm.SDP, error) {
	for _, p := range parts {
		if strings.HasPrefix(strings.ToLower(p.ContentType), sdpType) {
			m, err := msrpsdp.Parse(p.Body)
			if err != nil {
				return fsm.SDP{}, err
			}
			setup, err := core.ParseSetup(m.Setup)
			if err != nil {
				return fsm.SDP{}, err
			}
			return fsm.SDP{Host: m.Host, Port: m.Port, Path: strings.Join(m.Path, " "), Setup: setup, TLS: m.TLS}, nil
		}
	}
	return fsm.SDP{}, fmt.Errorf("no %s part", sdpType)
}

// parseMembers reads an ad-hoc group's resource list (RFC 5366), if the body has one.
func parseMembers(parts []sipx.Part) ([]string, error) {
	for _, p := range parts {
		if strings.HasPrefix(strings.ToLower(p.ContentType), listType) {
			return reslist.Parse(p.Body)
		}
	}
	return nil, nil
}

// outcomeHeaders carries per-member outcomes on a final non-2xx response, so that a
// transmitter whose group rejects the session still learns each member's outcome.
func outcomeHeaders(os []fsm.MemberOutcome) []sipx.Header {
	var out []sipx.Header
	for _, o := range os {
		out = append(out, sipx.Header{Name: outcomeField, Value: fmt.Sprintf("<%s>;status=%d", o.Member, o.Outcome.Status)})
	}
	return out
}

func parseOutcomes(hs []sipx.Header) []fsm.MemberOutcome {
	var out []fsm.MemberOutcome
	for _, h := range hs {
		if !strings.EqualFold(h.Name, outcomeField) {
			continue
		}
		uri, params, ok := strings.Cut(h.Value, ";")
		uri = strings.Trim(strings.TrimSpace(uri), "<>")
		st, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(params), "status="))
		if !ok || err != nil || uri == "" {
			continue
		}
		o := core.FailedOutcome(st)
		if st == 200 {
			o = core.DeliveredOutcome()
		}
		out = append(out, fsm.MemberOutcome{Member: uri, Outcome: o})
	}
	return out
}

// keptHeaders are the INVITE headers a B2BUA carries from its up leg to its down legs.
var keptHeaders = map[string]bool{"contribution-id": true, "conversation-id": true}

// sipHandler turns what the SIP endpoint receives into events for the machine. Each
// callback only posts: the node's goroutine does the rest.
func (n *Node) sipHandler() sipx.Handler {
	return sipx.Handler{
		Invite: func(leg string, in sipx.IncomingInvite) {
			n.post(func() {
				offer, err := parseSDP(in.Parts)
				if err == nil {
					var members []string
					members, err = parseMembers(in.Parts)
					if err == nil {
						var kept []sipx.Header
						for _, h := range in.Headers {
							if keptHeaders[strings.ToLower(h.Name)] {
								kept = append(kept, h)
							}
						}
						n.upHeaders[fsm.LegID(leg)] = kept
						n.media.learned(fsm.LegID(leg), offer)
						n.step(fsm.InviteReceived{Leg: fsm.LegID(leg), Target: in.RequestURI, From: in.From, Offer: offer, Members: members})
						return
					}
				}
				// A body we cannot read gets 488 with the reason (RFC 3261 §21.4.26); it
				// never reaches the machine, and nothing else is disturbed.
				n.note(fsm.LegID(leg), "bad-body", "", err.Error())
				warning := fmt.Sprintf("399 %s %q", n.cfg.Host, strings.ReplaceAll(err.Error(), `"`, "'"))
				var se *msrpsdp.Error
				if errors.As(err, &se) {
					warning = se.Warning(n.cfg.Host) // the SDP's own warn-code (RFC 3261 §20.43)
				}
				if rerr := n.sip.Reject(leg, 488, "", []sipx.Header{{Name: "Warning", Value: warning}}); rerr != nil {
					n.log.Warn("488", "err", rerr)
				}
			})
		},
		Ack:    func(leg string) { n.event(fsm.AckReceived{Leg: fsm.LegID(leg)}) },
		Cancel: func(leg string) { n.event(fsm.CancelReceived{Leg: fsm.LegID(leg)}) },
		Bye:    func(leg string) { n.event(fsm.ByeReceived{Leg: fsm.LegID(leg)}) },
		// sipx gave up on a leg by itself (an INVITE held past its limit, a 2xx never
		// acknowledged): the machine's own guard timer covers the same loss, so this
		// is only recorded.
		Failed: func(leg string, err error) {
			n.post(func() { n.note(fsm.LegID(leg), "sip-failed", "", err.Error()) })
		},
		Response: func(leg string, r sipx.Response) {
			n.post(func() {
				l := fsm.LegID(leg)
				if r.Status >= 300 {
					n.step(fsm.RejectReceived{Leg: l, Status: r.Status, Outcomes: parseOutcomes(r.Headers)})
					return
				}
				answer, err := parseSDP(r.Parts)
				if err != nil {
					// A 2xx we cannot use: the dialog exists, so it is acknowledged and
					// ended; for the machine the INVITE failed.
					n.note(l, "bad-body", "", err.Error())
					n.sip.Ack(leg)
					n.sip.Bye(leg)
					n.step(fsm.RejectReceived{Leg: l, Status: 488})
					return
				}
				if n.okSeen[l] {
					// A retransmitted 2xx: our ACK was lost (RFC 3261 §13.2.2.4). It is
					// acknowledged again once the machine has acknowledged the first; the
					// machine itself sees one 200 per leg.
					if n.acked[l] {
						if err := n.sip.Ack(leg); err != nil {
							n.log.Warn("re-ACK", "leg", leg, "err", err)
						}
					}
					return
				}
				n.okSeen[l] = true
				n.media.learned(l, answer)
				n.step(fsm.OKReceived{Leg: l, Answer: answer})
			})
		},
	}
}
