package msrpsdp

import (
	"bytes"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// MaxSDPBytes bounds the session description Parse reads. An INVITE over UDP
// carries at most ~1300 bytes in all (RFC 3261 §18.1.1); 16 KiB leaves room
// for long relay paths over TCP and keeps a hostile body cheap to refuse.
const MaxSDPBytes = 16 << 10

// Parse reads the MSRP media description out of a session description (an
// offer or an answer) and refuses anything cpmlink cannot use, strictly:
//
//   - exactly one m= line, and it is "m=message PORT TCP/MSRP *" or
//     "... TCP/TLS/MSRP *" (RFC 4975 §8.1); m=audio and the like, a second
//     m= line, a port range or another format list are refused, since our
//     answer could not mirror them (RFC 3264 §6);
//   - port 0 is refused with ErrRejected (next to ErrInvalid): the stream is
//     declined;
//   - a c= line at media or session level (media level wins, RFC 4566 §5.7)
//     whose address is an IP literal of its address type;
//   - exactly one a=path with 1-32 msrp: (for TCP/MSRP) or msrps: (for
//     TCP/TLS/MSRP) URIs whose transport is tcp, the last one with a
//     session-id (RFC 4975 §6, §8.2);
//   - exactly one a=accept-types (RFC 4975 §8.6), at most one
//     a=accept-wrapped-types and a=max-size (positive decimal);
//   - at most one direction attribute and at most one a=setup whose value is
//     active, passive or actpass (RFC 6135), each at media level or, failing
//     that, at session level (RFC 4566 §6, RFC 4145 §4).
//
// The m= port and the c= address are not compared with the path: RFC 4975
// §8.1 has MSRP connect to the a=path URIs and leaves c=/m= to SDP-aware
// middleboxes, which may rewrite them (RFC 6714 exists because they do).
// Unknown attributes (a=connection, a=file-selector, ...) are ignored.
//
// Lines may end in CRLF or, as RFC 4566 §5 asks parsers to tolerate, LF; a
// missing line end after the last line is tolerated too. A bare CR or a NUL
// byte is refused. Errors are *Error values wrapping ErrInvalid.
func Parse(b []byte) (Media, error) {
	var m Media
	if len(b) == 0 {
		return m, invalid(WarnMiscellaneous, "empty session description")
	}
	if len(b) > MaxSDPBytes {
		return m, invalid(WarnMiscellaneous, "session description of "+strconv.Itoa(len(b))+" bytes, at most "+strconv.Itoa(MaxSDPBytes))
	}
	for i, c := range b {
		if c == 0 {
			return m, invalid(WarnMiscellaneous, "NUL byte in session description")
		}
		// pion/sdp would keep a lone CR inside a value; SDP has no use for one.
		if c == '\r' && (i+1 == len(b) || b[i+1] != '\n') {
			return m, invalid(WarnMiscellaneous, "bare CR in session description")
		}
	}
	if b[len(b)-1] != '\n' {
		b = append(bytes.Clone(b), '\r', '\n')
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(b); err != nil {
		msg := err.Error()
		if len(msg) > 120 {
			msg = msg[:120] + "..."
		}
		return m, invalid(WarnMiscellaneous, "malformed SDP: "+msg)
	}
	switch n := len(sd.MediaDescriptions); {
	case n == 0:
		return m, invalid(WarnMediaNotAvailable, "no m=message line")
	case n > 1:
		return m, invalid(WarnMediaNotAvailable, strconv.Itoa(n)+" m= lines, want exactly one m=message")
	}
	md := sd.MediaDescriptions[0]
	mn := md.MediaName
	if mn.Media != "message" {
		return m, invalid(WarnMediaNotAvailable, "media "+q(mn.Media)+" not available, want message")
	}
	if mn.Port.Range != nil {
		return m, invalid(WarnMiscellaneous, "port range on m=message")
	}
	if mn.Port.Value == 0 {
		e := invalid(WarnMediaNotAvailable, "m=message declined with port 0")
		e.rejected = true
		return m, e
	}
	m.Port = mn.Port.Value
	switch p := strings.Join(mn.Protos, "/"); p {
	case "TCP/MSRP":
	case "TCP/TLS/MSRP":
		m.TLS = true
	default:
		return m, invalid(WarnIncompatibleTransport, "transport "+q(p)+", want TCP/MSRP or TCP/TLS/MSRP")
	}
	if len(mn.Formats) != 1 || mn.Formats[0] != "*" {
		return m, invalid(WarnIncompatibleFormat, "format list "+q(strings.Join(mn.Formats, " "))+", want * (RFC 4975 8.1)")
	}

	ci := md.ConnectionInformation
	if ci == nil {
		ci = sd.ConnectionInformation
	}
	if ci == nil || ci.Address == nil {
		return m, invalid(WarnIncompatibleAddress, "no c= connection address")
	}
	addr, err := netip.ParseAddr(ci.Address.Address)
	if err != nil || addr.Zone() != "" || (ci.AddressType == "IP4") != addr.Is4() {
		return m, invalid(WarnIncompatibleAddress, "c= address "+q(ci.Address.Address)+" is not an "+ci.AddressType+" literal")
	}
	m.Host = ci.Address.Address

	var seen [numAttrs]bool
	for _, a := range md.Attributes {
		if r := m.attribute(a, &seen); r != "" {
			return m, invalid(WarnAttributeNotUnderstood, r)
		}
	}
	// Direction and setup may also be given once for the whole session.
	var sseen [numAttrs]bool
	session := Media{}
	for _, a := range sd.Attributes {
		if k := kindOf(a.Key); k == attrDirection || k == attrSetup {
			if r := session.attribute(a, &sseen); r != "" {
				return m, invalid(WarnAttributeNotUnderstood, "session-level "+r)
			}
		}
	}
	if !seen[attrDirection] {
		m.Direction = session.Direction
	}
	if !seen[attrSetup] {
		m.Setup = session.Setup
	}
	if m.Direction == "" {
		m.Direction = SendRecv
	}
	if !seen[attrPath] {
		return m, invalid(WarnAttributeNotUnderstood, "a=path missing (RFC 4975 8.2)")
	}
	if !seen[attrAcceptTypes] {
		return m, invalid(WarnAttributeNotUnderstood, "a=accept-types missing (RFC 4975 8.6)")
	}
	if err := m.validate(); err != nil {
		return m, err
	}
	return m, nil
}

// The attributes Parse reads; everything else is ignored.
const (
	attrOther = iota
	attrPath
	attrAcceptTypes
	attrAcceptWrapped
	attrMaxSize
	attrSetup
	attrDirection
	numAttrs
)

func kindOf(key string) int {
	switch key {
	case "path":
		return attrPath
	case "accept-types":
		return attrAcceptTypes
	case "accept-wrapped-types":
		return attrAcceptWrapped
	case "max-size":
		return attrMaxSize
	case "setup":
		return attrSetup
	case SendOnly, RecvOnly, SendRecv, Inactive:
		return attrDirection
	}
	return attrOther
}

// attribute stores one a= line into m and returns a reason when it is
// malformed or repeated. seen tracks which kinds were already stored.
func (m *Media) attribute(a sdp.Attribute, seen *[numAttrs]bool) string {
	k := kindOf(a.Key)
	if k == attrOther {
		// "a=sendonly " must not quietly become sendrecv.
		if t := strings.TrimRight(a.Key, " \t"); t != a.Key && kindOf(t) != attrOther {
			return "a=" + t + " followed by whitespace"
		}
		return ""
	}
	if seen[k] {
		if k == attrDirection {
			return "more than one direction attribute"
		}
		return "a=" + a.Key + " repeated"
	}
	seen[k] = true
	switch k {
	case attrPath:
		list, r := splitList("path", a.Value, maxPathURIs)
		m.Path = list
		return r
	case attrAcceptTypes:
		list, r := splitList("accept-types", a.Value, maxTypes)
		m.AcceptTypes = list
		return r
	case attrAcceptWrapped:
		list, r := splitList("accept-wrapped-types", a.Value, maxTypes)
		m.AcceptWrappedTypes = list
		return r
	case attrMaxSize:
		// max-size-value = 1*DIGIT (RFC 4975 §9); 18 digits always fit an int64.
		if !allDigits(a.Value) || len(a.Value) > 18 {
			return "a=max-size value " + q(a.Value) + " is not a decimal size"
		}
		n, _ := strconv.ParseInt(a.Value, 10, 64) // at most 18 digits: cannot fail
		if n == 0 {
			return "a=max-size:0 would refuse every message"
		}
		m.MaxSize = n
	case attrSetup:
		// RFC 4145 §4: role tokens; ABNF literals are case-insensitive.
		switch v := strings.ToLower(a.Value); v {
		case SetupActive, SetupPassive, SetupActpass:
			m.Setup = v
		case "holdconn":
			return "a=setup:holdconn not supported for a large message"
		default:
			return "a=setup value " + q(a.Value) + " unknown (RFC 6135)"
		}
	case attrDirection:
		if a.Value != "" {
			return "a=" + a.Key + " takes no value"
		}
		m.Direction = a.Key
	}
	return ""
}

// splitList splits a single-space-separated attribute value (RFC 4975 §9:
// path = MSRP-URI *(SP MSRP-URI); accept-types likewise), refusing empty
// items and more than max of them before allocating for them.
func splitList(attr, v string, max int) ([]string, string) {
	if v == "" {
		return nil, "a=" + attr + " is empty"
	}
	if n := strings.Count(v, " ") + 1; n > max {
		return nil, "a=" + attr + " has " + strconv.Itoa(n) + " items, at most " + strconv.Itoa(max)
	}
	list := strings.Split(v, " ")
	for _, s := range list {
		if s == "" {
			return nil, "a=" + attr + " has bad spacing"
		}
	}
	return list, ""
}
