package sipx

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// parseTrusted reads a TrustedHosts entry: an IP or a CIDR prefix.
func parseTrusted(s string) (netip.Prefix, error) {
	s = strings.Trim(strings.TrimSpace(s), "[]")
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%w: trusted host %q is not an IP or CIDR prefix", ErrConfig, s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// trustSet is a parsed TrustedHosts: nil means no trust domain.
type trustSet []netip.Prefix

func newTrustSet(hosts []string) trustSet {
	if hosts == nil {
		return nil
	}
	ts := trustSet{}
	for _, h := range hosts {
		p, _ := parseTrusted(h) // validated by normalize
		ts = append(ts, p)
	}
	return ts
}

// trusts reports whether the source host:port of a message is in the set.
// The address is where the message really came from (the socket's peer), not
// anything the message says about itself.
func (ts trustSet) trusts(source string) bool {
	host, _, err := net.SplitHostPort(source)
	if err != nil {
		host = source
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range ts {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// stripPAI removes every P-Asserted-Identity (RFC 3325 §5: a PAI that did not
// come from within the trust domain is not believed and is not passed on).
func stripPAI(req *sip.Request) bool {
	if len(req.GetHeaders("P-Asserted-Identity")) == 0 {
		return false
	}
	req.RemoveHeader("P-Asserted-Identity")
	return true
}

// pai is the first P-Asserted-Identity URI (RFC 3325 §9.1), "" if none.
func pai(req *sip.Request) string {
	for _, h := range req.GetHeaders("P-Asserted-Identity") {
		for _, v := range strings.Split(h.Value(), ",") {
			var u sip.Uri
			var p sip.HeaderParams
			if _, err := sip.ParseAddressValue(strings.TrimSpace(v), &u, &p); err == nil {
				return u.String()
			}
		}
	}
	return ""
}

// identify decides who sent a dialog-creating INVITE. It returns the
// identity, or a status (with headers) to refuse the request with:
//
//   - With Auth.Invites, the sender must answer a digest challenge (407);
//     the identity is the authenticated user's AOR, the From must name it
//     (else 403), and any PAI it sent is dropped: this endpoint is where the
//     identity is asserted (RFC 3325 §4).
//   - Else, with a trust domain, a PAI from a trusted source is believed; a
//     PAI from anyone else is removed, and without a believed PAI the INVITE
//     is refused 403 — a From is never taken as an identity.
//   - Else (no trust domain), a PAI or the From, as before.
//
// This runs for every INVITE, not only a dialog's first.
func (e *Endpoint) identify(req *sip.Request) (id string, status int, reason string, hdrs []sip.Header) {
	trusted := e.trust != nil && e.trust.trusts(req.Source())
	if e.trust != nil && !trusted {
		stripPAI(req)
	}
	if e.auth != nil && e.cfg.Auth.Invites {
		stripPAI(req)
		user, v := e.auth.check(req, "Proxy-Authorization")
		switch v {
		case authOK:
		case authBad:
			return "", 400, "Bad Proxy-Authorization", nil
		default:
			for _, c := range e.auth.challenges(v == authStale) {
				hdrs = append(hdrs, sip.NewHeader("Proxy-Authenticate", c))
			}
			return "", 407, "", hdrs
		}
		if from := req.From(); from == nil || aorKey(from.Address) != user.AOR {
			return "", 403, "From Does Not Match Authenticated Identity", nil
		}
		// The credentials are for this hop only (RFC 3261 §22.3: a proxy
		// consumes the Proxy-Authorization for its realm).
		req.RemoveHeader("Proxy-Authorization")
		return user.AOR, 0, "", nil
	}
	if e.trust != nil {
		if id := pai(req); id != "" {
			return id, 0, "", nil
		}
		return "", 403, "No Asserted Identity", nil
	}
	return assertedIdentity(req), 0, "", nil
}

// privacyID reports whether the request asks for identity privacy
// (RFC 3325 §7, RFC 3323 "id").
func privacyID(req *sip.Request) bool {
	for _, h := range req.GetHeaders("Privacy") {
		for _, v := range strings.FieldsFunc(h.Value(), func(r rune) bool { return r == ';' || r == ',' || r == ' ' }) {
			if strings.EqualFold(v, "id") {
				return true
			}
		}
	}
	return false
}
