package sipx

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// What a request may ask of sipx beyond its method: extensions (Require,
// Proxy-Require) and body formats (Content-Type, Accept). RFC 3261 §8.2.2.3,
// §8.2.3, §16.3 step 5 and RFC 4475 §3.3.5, §3.3.6, §3.3.15.

// knownMethods are the methods sipx recognises without implementing them:
// 405 with Allow (RFC 3261 §8.2.1); any other method is unknown: 501
// (§21.5.2, RFC 4475 §3.1.1.2).
var knownMethods = map[string]bool{
	"REGISTER": true, "MESSAGE": true, "INFO": true, "UPDATE": true, "PRACK": true,
	"SUBSCRIBE": true, "NOTIFY": true, "REFER": true, "PUBLISH": true,
}

// unsupported lists the option tags of the named header (Require at a UAS,
// Proxy-Require at a proxy): sipx supports no extension that needs one.
func unsupported(req *sip.Request, header string) []string {
	var tags []string
	for _, h := range req.GetHeaders(header) {
		for _, t := range strings.Split(h.Value(), ",") {
			if t = strings.TrimSpace(t); t != "" {
				tags = append(tags, t)
			}
		}
	}
	return tags
}

// guard answers 420 Bad Extension to a request that requires an extension
// (RFC 3261 §8.2.2.3), before its handler runs. ACK and CANCEL are exempt:
// ACK has no response and a CANCEL's Require is not processed.
func (e *Endpoint) guard(h func(*sip.Request, sip.ServerTransaction)) func(*sip.Request, sip.ServerTransaction) {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if req.IsAck() || req.IsCancel() {
			h(req, tx)
			return
		}
		if tags := unsupported(req, "Require"); len(tags) > 0 {
			if !e.enter() {
				e.refuse(tx, req)
				return
			}
			defer e.work.Done()
			e.respond(tx, req, 420, "", []sip.Header{sip.NewHeader("Unsupported", strings.Join(tags, ", "))})
			return
		}
		h(req, tx)
	}
}

// inviteAccepts is what the body of an INVITE may be, and what sipx's
// responses carry (the Accept of OPTIONS).
const inviteAccepts = "application/sdp, multipart/mixed"

// checkInviteBody answers 415 to a body sipx cannot take (RFC 3261 §8.2.3)
// and 406 to an INVITE whose Accept leaves out SDP, the only answer body a
// UAS can send (§21.4.7, RFC 4475 §3.3.15). It returns the status, 0 if fine.
func checkInviteBody(req *sip.Request) (int, []sip.Header) {
	if len(req.Body()) > 0 {
		ct := ""
		if h := req.ContentType(); h != nil {
			ct = strings.ToLower(strings.TrimSpace(strings.SplitN(h.Value(), ";", 2)[0]))
		}
		if ct != "application/sdp" && ct != "multipart/mixed" {
			return 415, []sip.Header{sip.NewHeader("Accept", inviteAccepts)}
		}
	}
	hs := req.GetHeaders("Accept")
	if len(hs) == 0 {
		return 0, nil
	}
	for _, h := range hs {
		for _, t := range strings.Split(h.Value(), ",") {
			t = strings.ToLower(strings.TrimSpace(strings.SplitN(t, ";", 2)[0]))
			if t == "" || t == "application/sdp" || t == "application/*" || t == "*/*" {
				return 0, nil
			}
		}
	}
	return 406, []sip.Header{sip.NewHeader("Warning", `399 sipx "only application/sdp answers"`)}
}
