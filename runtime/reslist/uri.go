package reslist

import (
	"fmt"
	"strings"
)

// maxURILen bounds one entry's URI. RFC 3261 sets none; nothing sane comes
// close.
const maxURILen = 2048

// checkURI accepts sip: and sips: URIs only (RFC 3261 §19.1). The CF routes
// each member to its terminating PF by the URI's domain (issue 4 §4); a tel:
// URI has no domain and would need ENUM or a gateway, which cpmlink does not
// have, so it is refused here rather than failing later.
//
// This is a plausibility check, not a SIP URI parser (the SIP stack parses
// the URI when it builds the request): scheme, a non-empty host, and only
// printable ASCII without the characters that would break a header
// (space, '<', '>', '"').
func checkURI(u string) error {
	if len(u) > maxURILen {
		return fmt.Errorf("%w: entry URI of %d bytes", ErrTooLarge, len(u))
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		if c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '"' {
			return fmt.Errorf("%w: entry URI %q has a byte %#x not allowed in a SIP URI", ErrInvalid, clip(u), c)
		}
	}
	scheme, rest, ok := strings.Cut(u, ":")
	if !ok || !(strings.EqualFold(scheme, "sip") || strings.EqualFold(scheme, "sips")) {
		return fmt.Errorf("%w: entry URI %q is not sip: or sips:", ErrInvalid, clip(u))
	}
	hostport := rest
	if i := strings.IndexAny(hostport, ";?"); i >= 0 {
		hostport = hostport[:i]
	}
	if at := strings.LastIndexByte(hostport, '@'); at >= 0 {
		hostport = hostport[at+1:]
	}
	if hostport == "" || hostport[0] == ':' {
		return fmt.Errorf("%w: entry URI %q has no host", ErrInvalid, clip(u))
	}
	return nil
}

// uriKey is what two URIs must share to be the same member: scheme and
// host compare case-insensitively, the rest exactly (RFC 3261 §19.1.4,
// simplified: parameters are compared as written).
func uriKey(u string) string {
	scheme, rest, _ := strings.Cut(u, ":")
	end := len(rest)
	if i := strings.IndexAny(rest, ";?"); i >= 0 {
		end = i
	}
	user, host := "", rest[:end]
	if at := strings.LastIndexByte(host, '@'); at >= 0 {
		user, host = host[:at+1], host[at+1:]
	}
	return strings.ToLower(scheme) + ":" + user + strings.ToLower(host) + rest[end:]
}

// clip shortens a value quoted in an error.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
