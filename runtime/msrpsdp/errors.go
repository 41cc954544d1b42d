package msrpsdp

import (
	"errors"
	"strconv"
	"strings"
)

// ErrInvalid is wrapped by every error Parse and Marshal return: the session
// description (or the Media value) is not an acceptable MSRP media
// description. A SIP user agent answers an INVITE whose SDP fails with 488
// Not Acceptable Here (RFC 3261 §21.4.26).
var ErrInvalid = errors.New("msrpsdp: invalid MSRP session description")

// ErrRejected is wrapped, next to ErrInvalid, when the m=message line has port
// 0: the media stream is declined (RFC 3264 §6 for an answer, §8.2 for an
// offer), so there is nothing to connect to.
var ErrRejected = errors.New("msrpsdp: media stream rejected (port 0)")

// SIP warn-codes (RFC 3261 §20.43) that Error.Code takes.
const (
	WarnIncompatibleAddress    = 301 // "Incompatible network address formats"
	WarnIncompatibleTransport  = 302 // "Incompatible transport protocol"
	WarnMediaNotAvailable      = 304 // "Media type not available"
	WarnIncompatibleFormat     = 305 // "Incompatible media format"
	WarnAttributeNotUnderstood = 306 // "Attribute not understood"
	WarnParameterNotUnderstood = 307 // "Session description parameter not understood"
	WarnMiscellaneous          = 399 // "Miscellaneous warning"
)

// Error is the error Parse and Marshal return. It wraps ErrInvalid (and
// ErrRejected for a port-0 media line), so callers test with errors.Is and
// reach the details with errors.As.
type Error struct {
	// Code is the SIP warn-code that best describes the problem (one of the
	// Warn constants), for a Warning header on the 488.
	Code int
	// Reason is one short line of printable ASCII without double quotes or
	// backslashes, so it can go into a Warning header's quoted-string as is.
	// Offending values are quoted with single quotes and truncated.
	Reason string

	rejected bool
}

func (e *Error) Error() string { return "msrpsdp: invalid MSRP session description: " + e.Reason }

// Unwrap returns ErrInvalid, plus ErrRejected for a port-0 media line.
func (e *Error) Unwrap() []error {
	if e.rejected {
		return []error{ErrInvalid, ErrRejected}
	}
	return []error{ErrInvalid}
}

// Warning returns the value of a SIP Warning header for this error (RFC 3261
// §20.43: warn-code SP warn-agent SP warn-text), e.g.
//
//	307 pf-a.example.com "a=path missing"
//
// agent is the host (or pseudonym) of the role that rejects the SDP.
func (e *Error) Warning(agent string) string {
	return strconv.Itoa(e.Code) + " " + agent + ` "` + e.Reason + `"`
}

// invalid builds an *Error; the reason is made Warning-safe here so that no
// caller can forget to.
func invalid(code int, reason string) *Error {
	return &Error{Code: code, Reason: sanitize(reason)}
}

// maxQuoted bounds one offending value quoted in a reason: a hostile SDP must
// not turn into a huge Warning header.
const maxQuoted = 64

// q quotes an offending value for a reason: in single quotes, truncated to
// maxQuoted bytes, with control bytes, non-ASCII and quote characters written
// as %XX so the reason stays Warning-safe and still shows what was sent.
func q(s string) string {
	cut := false
	if len(s) > maxQuoted {
		s, cut = s[:maxQuoted], true
	}
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '\'' {
			b.WriteString("%" + strconv.FormatUint(uint64(c)|0x100, 16)[1:])
			continue
		}
		b.WriteByte(c)
	}
	b.WriteByte('\'')
	if cut {
		b.WriteString("...")
	}
	return b.String()
}

// sanitize keeps a reason within qdtext (RFC 3261 §25.1) minus the quoted-pair
// escapes: printable ASCII without '"' and '\'.
func sanitize(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\'')
		case c < 0x20 || c >= 0x7f:
			b.WriteByte('?')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
