package msrp

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// DefaultPort is used for comparison and dialling when an MSRP URI has no
// port (RFC 4975 §15.5 registers 2855 for msrp and msrps).
const DefaultPort = 2855

// maxURILen bounds one URI; RFC 4975 does not, but nothing sane comes close.
const maxURILen = 2048

// URI is an MSRP URI (RFC 4975 §6):
//
//	msrp-scheme "://" [userinfo "@"] host [":" port] ["/" session-id] ";" transport *(";" param)
//
// String returns exactly the text the URI was parsed from, so URIs round-trip
// byte for byte.
type URI struct {
	Scheme    string   // "msrp" or "msrps", as written (compared case-insensitively)
	User      string   // userinfo without "@"; ignored by Equal
	Host      string   // host name, IPv4 literal or bracket-less IPv6 literal
	Port      int      // 0 when absent; see EffectivePort
	SessionID string   // may be empty (a relay URI in Use-Path has one, an AUTH target may not)
	Transport string   // "tcp" or another ALPHANUM token
	Params    []string // ";"-separated URI parameters after the transport, raw
}

// ParseURI parses one MSRP URI. It allocates only the fields it returns,
// never in proportion to anything the input merely claims.
func ParseURI(s string) (URI, error) {
	var u URI
	if len(s) > maxURILen {
		return u, fmt.Errorf("%w: %d bytes", ErrInvalidURI, len(s))
	}
	i := strings.Index(s, "://")
	if i < 0 {
		return u, fmt.Errorf("%w: no scheme in %q", ErrInvalidURI, s)
	}
	u.Scheme = s[:i]
	if !strings.EqualFold(u.Scheme, "msrp") && !strings.EqualFold(u.Scheme, "msrps") {
		return u, fmt.Errorf("%w: scheme %q", ErrInvalidURI, u.Scheme)
	}
	rest := s[i+3:]
	semi := strings.IndexByte(rest, ';')
	if semi < 0 {
		return u, fmt.Errorf("%w: no transport in %q", ErrInvalidURI, s)
	}
	hier, params := rest[:semi], rest[semi+1:]
	// The authority ends at the first "/" (session-id may itself contain "/").
	authority := hier
	if slash := strings.IndexByte(hier, '/'); slash >= 0 {
		authority = hier[:slash]
		u.SessionID = hier[slash+1:]
		if u.SessionID == "" {
			return u, fmt.Errorf("%w: empty session-id in %q", ErrInvalidURI, s)
		}
		for j := 0; j < len(u.SessionID); j++ {
			if !isSessionIDChar(u.SessionID[j]) {
				return u, fmt.Errorf("%w: session-id %q", ErrInvalidURI, u.SessionID)
			}
		}
	}
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		u.User = authority[:at]
		authority = authority[at+1:]
		for j := 0; j < len(u.User); j++ {
			if c := u.User[j]; c <= ' ' || c >= 0x7f || c == '/' || c == '@' {
				return u, fmt.Errorf("%w: userinfo %q", ErrInvalidURI, u.User)
			}
		}
	}
	host, port, err := splitHostPort(authority)
	if err != nil {
		return u, fmt.Errorf("%w: %q: %v", ErrInvalidURI, s, err)
	}
	u.Host, u.Port = host, port
	parts := strings.Split(params, ";")
	u.Transport = parts[0]
	if u.Transport == "" || !isAlnum(u.Transport) {
		return u, fmt.Errorf("%w: transport %q", ErrInvalidURI, u.Transport)
	}
	if len(parts) > 1 {
		u.Params = parts[1:]
		for _, p := range u.Params {
			if p == "" || !isParam(p) {
				return u, fmt.Errorf("%w: parameter %q", ErrInvalidURI, p)
			}
		}
	}
	return u, nil
}

func splitHostPort(a string) (string, int, error) {
	if a == "" {
		return "", 0, fmt.Errorf("empty host")
	}
	var host, portStr string
	if a[0] == '[' {
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return "", 0, fmt.Errorf("unterminated IPv6 literal")
		}
		host = a[1:end]
		if net.ParseIP(host) == nil || !strings.Contains(host, ":") {
			return "", 0, fmt.Errorf("bad IPv6 literal %q", host)
		}
		rest := a[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return "", 0, fmt.Errorf("junk after IPv6 literal")
			}
			portStr = rest[1:]
			if portStr == "" {
				return "", 0, fmt.Errorf("empty port")
			}
		}
	} else {
		host = a
		if c := strings.IndexByte(a, ':'); c >= 0 {
			host, portStr = a[:c], a[c+1:]
			if portStr == "" {
				return "", 0, fmt.Errorf("empty port")
			}
		}
		if host == "" {
			return "", 0, fmt.Errorf("empty host")
		}
		for j := 0; j < len(host); j++ {
			c := host[j]
			if !(isAlnumByte(c) || c == '-' || c == '.' || c == '_') {
				return "", 0, fmt.Errorf("bad host %q", host)
			}
		}
	}
	if portStr == "" {
		return host, 0, nil
	}
	if len(portStr) > 5 {
		return "", 0, fmt.Errorf("bad port %q", portStr)
	}
	p, err := strconv.Atoi(portStr)
	if err != nil || p < 1 || p > 65535 || portStr[0] == '+' || portStr[0] == '-' {
		return "", 0, fmt.Errorf("bad port %q", portStr)
	}
	return host, p, nil
}

// MustParseURI is ParseURI for constants in tests and examples; it panics on
// an invalid URI.
func MustParseURI(s string) URI {
	u, err := ParseURI(s)
	if err != nil {
		panic(err)
	}
	return u
}

// String returns the URI in its wire form.
func (u URI) String() string {
	return string(appendURI(make([]byte, 0, len(u.Scheme)+len(u.User)+len(u.Host)+len(u.SessionID)+len(u.Transport)+16), u))
}

// EffectivePort is Port, or DefaultPort when the URI has none.
func (u URI) EffectivePort() int {
	if u.Port == 0 {
		return DefaultPort
	}
	return u.Port
}

// Secure reports whether the scheme is msrps (TLS, RFC 4975 §6).
func (u URI) Secure() bool { return strings.EqualFold(u.Scheme, "msrps") }

// Addr is the host:port to dial for this URI. It does no DNS: cpmlink works
// with IP literals from SDP (RFC 4975 §6.2 resolution is out of scope).
func (u URI) Addr() string {
	return net.JoinHostPort(u.Host, strconv.Itoa(u.EffectivePort()))
}

// Equal compares two URIs as RFC 4975 §6.1 says: scheme and host
// case-insensitively, port numerically (absent means 2855), session-id
// exactly, transport case-insensitively; userinfo and parameters are ignored.
func (u URI) Equal(v URI) bool {
	return strings.EqualFold(u.Scheme, v.Scheme) &&
		strings.EqualFold(u.Host, v.Host) &&
		u.EffectivePort() == v.EffectivePort() &&
		u.SessionID == v.SessionID &&
		strings.EqualFold(u.Transport, v.Transport)
}

// sameAuthority reports whether a connection to v could carry traffic for u:
// same scheme, host and port (the pool's reuse key, RFC 4975 §5.4).
func (u URI) sameAuthority(v URI) bool {
	return strings.EqualFold(u.Scheme, v.Scheme) &&
		strings.EqualFold(u.Host, v.Host) &&
		u.EffectivePort() == v.EffectivePort()
}

// IsZero reports whether u is the zero URI.
func (u URI) IsZero() bool { return u.Scheme == "" && u.Host == "" }

func isSessionIDChar(c byte) bool {
	// session-id = 1*( unreserved / "+" / "=" / "/" ), RFC 4975 §9.
	return isAlnumByte(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '=' || c == '/'
}

func isAlnumByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAlnumByte(s[i]) {
			return false
		}
	}
	return true
}

// isParam accepts token ["=" token] loosely: printable, no separators that
// would break re-parsing.
func isParam(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == ';' {
			return false
		}
	}
	return true
}

// Path is an MSRP path: To-Path or From-Path, a space-separated list of URIs,
// leftmost first visited (RFC 4975 §5.2).
type Path []URI

// ParsePath parses a space-separated list of at least one URI.
func ParsePath(s string) (Path, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: empty path", ErrInvalidURI)
	}
	n := strings.Count(s, " ") + 1
	if n > maxPathURIs {
		return nil, fmt.Errorf("%w: %d URIs in a path", ErrTooLarge, n)
	}
	p := make(Path, 0, n)
	for s != "" {
		var f string
		f, s, _ = strings.Cut(s, " ")
		u, err := ParseURI(f)
		if err != nil {
			return nil, err
		}
		p = append(p, u)
	}
	if len(p) != n {
		return nil, fmt.Errorf("%w: bad spacing in path", ErrInvalidURI)
	}
	return p, nil
}

// maxPathURIs bounds the URIs in one path header; relays are few in practice.
const maxPathURIs = 32

// String returns the path in wire form.
func (p Path) String() string { return string(appendPath(nil, p)) }

// Reverse returns a new path in the opposite order: how a From-Path becomes
// the To-Path of a response or REPORT (RFC 4975 §7.2, §7.1.2).
func (p Path) Reverse() Path {
	r := make(Path, len(p))
	for i, u := range p {
		r[len(p)-1-i] = u
	}
	return r
}

// Equal compares two paths URI by URI with URI.Equal.
func (p Path) Equal(q Path) bool {
	if len(p) != len(q) {
		return false
	}
	for i := range p {
		if !p[i].Equal(q[i]) {
			return false
		}
	}
	return true
}
