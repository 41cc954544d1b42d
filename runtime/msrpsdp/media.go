package msrpsdp

import (
	"net/netip"
	"strconv"
)

// Values of Media.Setup: the a=setup attribute of RFC 4145 §4 as RFC 6135
// applies it to MSRP. Setup "" means the attribute is absent; RFC 4975 §5.4
// then makes the offerer the active party.
const (
	SetupActive  = "active"  // this party opens the TCP connection
	SetupPassive = "passive" // this party accepts it
	SetupActpass = "actpass" // either; only in an offer
)

// Values of Media.Direction (RFC 4566 §6; RFC 4975 §8.9 for MSRP).
const (
	SendOnly = "sendonly"
	RecvOnly = "recvonly"
	SendRecv = "sendrecv" // the default when no direction attribute is present
	Inactive = "inactive"
)

// Limits on list attributes; RFC 4975 sets none, nothing sane comes close.
const maxTypes = 64

// Media is one MSRP media description: what a party tells its peer about
// where and how to reach its MSRP endpoint (RFC 4975 §8). Every field maps to
// one SDP line; Parse fills every field it finds and Marshal writes exactly
// these fields back.
type Media struct {
	// Host is the c= connection address, an IPv4 or IPv6 literal without
	// brackets or zone. It is informative only: MSRP connects to the URIs in
	// Path (RFC 4975 §8.1), so it need not equal the host of any of them.
	Host string
	// Port is the m=message port, 1-65535. Like Host, informative only and not
	// compared with the port of any Path URI (see doc of Parse); 0 would
	// decline the stream and is reported as ErrRejected instead.
	Port int
	// TLS selects TCP/TLS/MSRP instead of TCP/MSRP. It must agree with the
	// scheme of every Path URI: msrps when true, msrp when false.
	TLS bool
	// Path is the a=path attribute: MSRP URIs in the order the peer visits
	// them, relays first and the party's own URI (which must carry a
	// session-id) last (RFC 4975 §8.2, RFC 4976 §5). At least one, at most 32.
	Path []string
	// Setup is the a=setup value: "", SetupActive, SetupPassive or
	// SetupActpass. "" means absent (RFC 4975's rule: the offerer connects).
	// RFC 4145's "holdconn" is refused: a large message needs a connection.
	Setup string
	// Direction is SendOnly, RecvOnly, SendRecv or Inactive. Parse reports
	// SendRecv when the SDP has no direction attribute; Marshal writes "" as
	// SendRecv and always writes the attribute, so that no peer has to guess
	// (IMS policy tears down a sendrecv answer to a sendonly offer).
	Direction string
	// AcceptTypes is a=accept-types, required by RFC 4975 §8.6: media types
	// (type/subtype, type/* or *) the party accepts. At least one.
	AcceptTypes []string
	// AcceptWrappedTypes is a=accept-wrapped-types (RFC 4975 §8.6): types the
	// party accepts only inside a wrapper such as message/cpim. nil = absent.
	AcceptWrappedTypes []string
	// MaxSize is a=max-size in bytes (RFC 4975 §8.6), 0 = absent. Parse
	// refuses a=max-size:0, which would make every message too large.
	MaxSize int64
}

// validate checks everything about m that does not depend on the SDP text,
// so that Marshal refuses exactly the values Parse could never return.
func (m Media) validate() *Error {
	addr, err := netip.ParseAddr(m.Host)
	if err != nil || addr.Zone() != "" {
		return invalid(WarnIncompatibleAddress, "connection address "+q(m.Host)+" is not an IPv4 or IPv6 literal")
	}
	if m.Port < 1 || m.Port > 65535 {
		return invalid(WarnMiscellaneous, "media port "+strconv.Itoa(m.Port)+" out of range")
	}
	if len(m.Path) == 0 {
		return invalid(WarnAttributeNotUnderstood, "a=path missing or empty (RFC 4975 8.2)")
	}
	if len(m.Path) > maxPathURIs {
		return invalid(WarnAttributeNotUnderstood, "a=path has "+strconv.Itoa(len(m.Path))+" URIs, at most "+strconv.Itoa(maxPathURIs))
	}
	for i, s := range m.Path {
		u, reason := parsePathURI(s)
		if reason != "" {
			return invalid(WarnAttributeNotUnderstood, reason)
		}
		if u.secure != m.TLS {
			return invalid(WarnIncompatibleTransport, "path URI "+q(s)+" does not match the "+proto(m.TLS)+" transport (RFC 4975 8.1)")
		}
		if i == len(m.Path)-1 && u.sessionID == "" {
			return invalid(WarnAttributeNotUnderstood, "last path URI "+q(s)+" has no session-id (RFC 4975 6)")
		}
	}
	switch m.Setup {
	case "", SetupActive, SetupPassive, SetupActpass:
	default:
		return invalid(WarnAttributeNotUnderstood, "a=setup value "+q(m.Setup)+" not supported (RFC 6135)")
	}
	switch m.Direction {
	case "", SendOnly, RecvOnly, SendRecv, Inactive:
	default:
		return invalid(WarnAttributeNotUnderstood, "direction "+q(m.Direction)+" unknown")
	}
	if len(m.AcceptTypes) == 0 {
		return invalid(WarnAttributeNotUnderstood, "a=accept-types missing or empty (RFC 4975 8.6)")
	}
	if r := checkTypes("accept-types", m.AcceptTypes); r != "" {
		return invalid(WarnAttributeNotUnderstood, r)
	}
	if r := checkTypes("accept-wrapped-types", m.AcceptWrappedTypes); r != "" {
		return invalid(WarnAttributeNotUnderstood, r)
	}
	if m.MaxSize < 0 {
		return invalid(WarnAttributeNotUnderstood, "a=max-size negative")
	}
	return nil
}

func proto(tls bool) string {
	if tls {
		return "TCP/TLS/MSRP"
	}
	return "TCP/MSRP"
}

// checkTypes checks a list of accept-types tokens:
//
//	accept-type = media-type / "*"        (RFC 4975 §9)
//	media-type  = type "/" (subtype / "*")  with type, subtype RFC 2045 tokens
//
// "type/*" is accepted too: RFC 4975 §8.6 allows it in accept-types.
func checkTypes(attr string, types []string) string {
	if len(types) > maxTypes {
		return "a=" + attr + " has " + strconv.Itoa(len(types)) + " types, at most " + strconv.Itoa(maxTypes)
	}
	for _, t := range types {
		if !validType(t) {
			return "a=" + attr + " type " + q(t) + " is not type/subtype or *"
		}
	}
	return ""
}

func validType(t string) bool {
	if t == "*" {
		return true
	}
	typ, sub, ok := cutByte(t, '/')
	return ok && isToken(typ) && (sub == "*" || isToken(sub))
}

func cutByte(s string, c byte) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// isToken reports whether s is an RFC 2045 §5.1 token: printable ASCII
// without space and tspecials.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f {
			return false
		}
		switch c {
		case '(', ')', '<', '>', '@', ',', ';', ':', '\\', '"', '/', '[', ']', '?', '=':
			return false
		}
	}
	return true
}
