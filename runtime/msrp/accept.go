package msrp

import (
	"bytes"
	"strings"
)

// cpimType is the wrapper whose inner type accept-wrapped-types governs
// (RFC 4975 §8.6; RFC 3862).
const cpimType = "message/cpim"

// checkTypes applies the session's SDP content negotiation (RFC 4975 §8.6) to
// the first chunk of an incoming message and returns the status to refuse it
// with, 415, or 200. The Content-Type must match AcceptTypes; a message/cpim
// message must also wrap a type that AcceptTypes or AcceptWrappedTypes
// allows, read from the CPIM body in this chunk. A session without
// AcceptTypes accepts everything.
func (s *Session) checkTypes(f *Frame) (int, string) {
	acc, wrapped := s.cfg.AcceptTypes, s.cfg.AcceptWrappedTypes
	if acc == nil {
		return StatusOK, ""
	}
	outer := mediaType(f.ContentType)
	if !typeMatches(acc, outer) {
		return StatusUnsupportedMedia, "Content-Type " + outer + " not in accept-types"
	}
	// A "*" in either list accepts any wrapped type: nothing to read.
	if outer != cpimType || containsStar(acc) || containsStar(wrapped) {
		return StatusOK, ""
	}
	// The CPIM headers open the message: a first chunk that does not start
	// it, or does not hold them whole, cannot be checked, and an unchecked
	// type would be stored.
	inner, ok := "", false
	if f.Range().Start == 1 {
		inner, ok = wrappedType(f.Body)
	}
	if !ok {
		return StatusUnsupportedMedia, "wrapped Content-Type not in the first chunk"
	}
	inner = mediaType(inner)
	if !typeMatches(acc, inner) && !typeMatches(wrapped, inner) {
		return StatusUnsupportedMedia, "wrapped Content-Type " + inner + " not in accept-wrapped-types"
	}
	return StatusOK, ""
}

func containsStar(pats []string) bool {
	for _, p := range pats {
		if p == "*" {
			return true
		}
	}
	return false
}

// mediaType reduces a Content-Type value to its lower-case type/subtype:
// parameters do not take part in accept-types matching (RFC 4975 §8.6 lists
// media types; RFC 2045 §5.1 makes type and subtype case-insensitive).
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// typeMatches reports whether media type t (from mediaType) matches one of
// the accept-types patterns: "*", "type/*" or "type/subtype" (RFC 4975 §8.6,
// §9 accept-types grammar).
func typeMatches(pats []string, t string) bool {
	typ, _, _ := strings.Cut(t, "/")
	for _, p := range pats {
		p = strings.ToLower(strings.TrimSpace(p))
		switch {
		case p == "*", p == t:
			return true
		case strings.HasSuffix(p, "/*") && p[:len(p)-2] == typ && typ != "":
			return true
		}
	}
	return false
}

// wrappedType returns the Content-Type of the MIME object a message/cpim body
// wraps: RFC 3862 §3 puts the CPIM message headers first, a blank line, then
// the MIME headers of the object, another blank line, then the object. It
// reports false when the MIME headers do not end within b. An object without
// a Content-Type is text/plain (RFC 2045 §5.2).
func wrappedType(b []byte) (string, bool) {
	crlf := []byte("\r\n")
	// The CPIM header block, up to and including its blank line.
	for {
		line, rest, ok := bytes.Cut(b, crlf)
		if !ok {
			return "", false
		}
		b = rest
		if len(line) == 0 {
			break
		}
	}
	ct := ""
	for {
		line, rest, ok := bytes.Cut(b, crlf)
		if !ok {
			return "", false
		}
		b = rest
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok && equalFoldASCII(strings.TrimSpace(string(name)), "Content-Type") {
			ct = strings.TrimSpace(string(value))
		}
	}
	if ct == "" {
		ct = "text/plain"
	}
	return ct, true
}
