package reslist

import "errors"

// Sentinel errors; every error this package returns wraps one of them.
var (
	// ErrInvalid means the body is not a resource list or multipart body we
	// accept: malformed XML or MIME, a wrong root or namespace, an entry
	// without a usable sip:/sips: URI, a part without a Content-Type.
	ErrInvalid = errors.New("reslist: invalid body")
	// ErrTooLarge means a size, count or nesting bound was exceeded.
	ErrTooLarge = errors.New("reslist: too large")
	// ErrUnsupported means the list uses something a URI-list server would
	// have to fetch from elsewhere (RFC 4826 <external>, <entry-ref>), or a
	// multipart part uses a Content-Transfer-Encoding other than the
	// identity ones. A CF answers 403 or 415 rather than guess.
	ErrUnsupported = errors.New("reslist: unsupported")
)

// clipErr returns the message of an error from encoding/xml, mime or
// net/textproto, clipped: those packages quote the offending input (a 5 KB
// entity name, a whole malformed header line), and our error strings must
// not grow with hostile input.
func clipErr(err error) string {
	msg := err.Error()
	if len(msg) > 160 {
		msg = msg[:160] + "..."
	}
	return msg
}
