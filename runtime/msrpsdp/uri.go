package msrpsdp

import (
	"net/netip"
	"strconv"
	"strings"
)

// maxURILen bounds one path URI. RFC 4975 sets no limit; nothing sane comes
// close, and the bound keeps a hostile a=path from growing reasons or work.
const maxURILen = 2048

// maxPathURIs bounds the URIs of one a=path: the party's own URI plus its
// relays (RFC 4976), a handful in practice.
const maxPathURIs = 32

// pathURI is what this package needs from one MSRP URI (RFC 4975 §6, §9):
//
//	MSRP-URI = msrp-scheme "://" authority ["/" session-id] ";" transport *( ";" URI-parameter )
//
// It is deliberately not a full URI type: runtime/msrp has one, and this
// package must not import it (see doc.go). Here we only check that the
// scheme, host, port, session-id and transport are well formed, so that a
// URI Parse accepts is one the MSRP layer can use.
type pathURI struct {
	secure    bool   // msrps
	host      string // bracket-less for IPv6
	port      int    // 0 when absent (2855 then, RFC 4975 §15.5)
	sessionID string // "" when absent (a relay URI may have none)
}

// parsePathURI checks one URI of an a=path. The reason it returns on failure
// is meant for Error.Reason.
func parsePathURI(s string) (pathURI, string) {
	var u pathURI
	if len(s) > maxURILen {
		return u, "path URI of " + strconv.Itoa(len(s)) + " bytes"
	}
	for i := 0; i < len(s); i++ {
		// Path URIs are space-separated tokens of printable ASCII (RFC 4975 §9).
		if s[i] <= ' ' || s[i] >= 0x7f {
			return u, "path URI " + q(s) + " has a control, space or non-ASCII byte"
		}
	}
	scheme, rest, ok := strings.Cut(s, "://")
	switch {
	case !ok:
		return u, "path URI " + q(s) + " has no scheme"
	case strings.EqualFold(scheme, "msrp"):
	case strings.EqualFold(scheme, "msrps"):
		u.secure = true
	default:
		return u, "path URI " + q(s) + " is not msrp: or msrps:"
	}
	hier, params, ok := strings.Cut(rest, ";")
	if !ok {
		return u, "path URI " + q(s) + " has no transport"
	}
	transport, params, more := strings.Cut(params, ";")
	// Both TCP/MSRP and TCP/TLS/MSRP run over TCP; "tcp" is the only transport
	// RFC 4975 §6 defines, and the m-line says TCP.
	if !strings.EqualFold(transport, "tcp") {
		return u, "path URI " + q(s) + " has transport " + q(transport) + ", want tcp"
	}
	for more {
		var p string
		p, params, more = strings.Cut(params, ";")
		if p == "" {
			return u, "path URI " + q(s) + " has an empty parameter"
		}
	}
	authority, sessionID, hasSession := strings.Cut(hier, "/")
	if hasSession {
		if sessionID == "" {
			return u, "path URI " + q(s) + " has an empty session-id"
		}
		for i := 0; i < len(sessionID); i++ {
			if !isSessionIDChar(sessionID[i]) {
				return u, "path URI " + q(s) + " has a bad session-id"
			}
		}
		u.sessionID = sessionID
	}
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		authority = authority[at+1:] // userinfo: allowed, unused here
	}
	host, port, reason := splitHostPort(authority)
	if reason != "" {
		return u, "path URI " + q(s) + ": " + reason
	}
	u.host, u.port = host, port
	return u, ""
}

// splitHostPort splits an RFC 3986 authority without userinfo. Host names are
// allowed here (RFC 4975 §6.2 resolves them); only c= must be a literal.
func splitHostPort(a string) (host string, port int, reason string) {
	var portStr string
	if strings.HasPrefix(a, "[") {
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return "", 0, "unterminated IPv6 literal"
		}
		host = a[1:end]
		addr, err := netip.ParseAddr(host)
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return "", 0, "bad IPv6 literal"
		}
		rest := a[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return "", 0, "junk after IPv6 literal"
			}
			portStr = rest[1:]
			if portStr == "" {
				return "", 0, "empty port"
			}
		}
	} else {
		host = a
		if c := strings.IndexByte(a, ':'); c >= 0 {
			host, portStr = a[:c], a[c+1:]
			if portStr == "" {
				return "", 0, "empty port"
			}
		}
		if host == "" {
			return "", 0, "empty host"
		}
		for i := 0; i < len(host); i++ {
			c := host[i]
			if !(isAlnum(c) || c == '-' || c == '.' || c == '_') {
				return "", 0, "bad host"
			}
		}
	}
	if portStr == "" {
		return host, 0, ""
	}
	if len(portStr) > 5 || !allDigits(portStr) {
		return "", 0, "bad port"
	}
	p, _ := strconv.Atoi(portStr) // at most 5 digits: cannot fail
	if p < 1 || p > 65535 {
		return "", 0, "port out of range"
	}
	return host, p, ""
}

func isSessionIDChar(c byte) bool {
	// session-id = 1*( unreserved / "+" / "=" / "/" ), RFC 4975 §9.
	return isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '=' || c == '/'
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
