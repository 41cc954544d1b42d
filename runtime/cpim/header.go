package cpim

import (
	"fmt"
	"mime"
	"strconv"
	"strings"
	"time"
)

// NoContentLength as Header.ContentLength leaves the Content-Length header
// out: the payload then runs to the end of the message/cpim body.
const NoContentLength = -1

// Header is everything in a message/cpim body before the payload.
type Header struct {
	// From is the sender, as the From header's value: [Formal-name] "<" URI ">"
	// (RFC 3862 §5.1), e.g. "<sip:alice@a.example>". Required.
	From string
	// To is the first recipient, the first To header (RFC 3862 §5.2).
	// Required. Further To headers, if any, are kept in Extra.
	To string
	// DateTime is the DateTime header (RFC 3862 §5.4, RFC 3339); the zero
	// time leaves it out. Marshal writes it with its own offset and up to
	// nanoseconds, so Read gives back the same instant and offset.
	DateTime time.Time
	// NS are the NS headers' values (RFC 3862 §5.6), e.g.
	// "imdn <urn:ietf:params:imdn>", in order. Marshal writes them before
	// Extra, so a prefix is always declared before a header that uses it.
	NS []string
	// Extra are the other CPIM headers, in order: imdn.Message-ID,
	// imdn.Disposition-Notification, Subject, cc, further To headers, ...
	// Names are case-sensitive (RFC 3862 §3.1) and may carry one "prefix.".
	Extra []Field
	// ContentType is the Content-Type of the encapsulated payload, e.g.
	// "application/octet-stream" or "text/plain; charset=utf-8". Required.
	ContentType string
	// ContentLength is the payload's size in bytes for a Content-Length
	// header, or NoContentLength (-1) to leave it out. Note that the zero
	// value 0 means "Content-Length: 0"; Wrap and Read hold the payload to it.
	ContentLength int64
	// ContentHeaders are the other MIME headers of the encapsulated object
	// (Content-ID, Content-Disposition, ...), in order. Read trims their
	// values. (An addition to the minimal brief: without it a header such as
	// IMDN's Content-Disposition: notification would be lost.)
	ContentHeaders []Field
}

// Field is one header line: Name ": " Value.
type Field struct{ Name, Value string }

// Marshal returns the exact bytes that precede the payload: the CPIM header
// block, CRLF, the MIME header block, CRLF. It does not validate: values with
// CR or LF would corrupt the framing, so check untrusted values with
// Validate first (Wrap does).
func (h Header) Marshal() []byte {
	n := 64 + len(h.From) + len(h.To) + len(h.ContentType)
	for _, s := range h.NS {
		n += len(s) + 6
	}
	for _, f := range h.Extra {
		n += len(f.Name) + len(f.Value) + 4
	}
	for _, f := range h.ContentHeaders {
		n += len(f.Name) + len(f.Value) + 4
	}
	b := make([]byte, 0, n)
	b = appendCPIM(b, "From", h.From)
	b = appendCPIM(b, "To", h.To)
	if !h.DateTime.IsZero() {
		b = appendCPIM(b, "DateTime", h.DateTime.Format(time.RFC3339Nano))
	}
	for _, s := range h.NS {
		b = appendCPIM(b, "NS", s)
	}
	for _, f := range h.Extra {
		b = appendCPIM(b, f.Name, f.Value)
	}
	b = append(b, "\r\n"...)
	b = appendMIME(b, "Content-Type", h.ContentType)
	if h.ContentLength >= 0 {
		b = appendMIME(b, "Content-Length", strconv.FormatInt(h.ContentLength, 10))
	}
	for _, f := range h.ContentHeaders {
		b = appendMIME(b, f.Name, f.Value)
	}
	return append(b, "\r\n"...)
}

// appendCPIM writes one CPIM header (RFC 3862 §3.1):
//
//	Header = Header-name ":" *( ";" Parameter ) SP Header-value CRLF
//
// A value that starts with ";" carries its parameters (e.g. ";lang=fr x")
// and follows the colon directly.
func appendCPIM(b []byte, name, value string) []byte {
	b = append(append(b, name...), ':')
	if !strings.HasPrefix(value, ";") {
		b = append(b, ' ')
	}
	return append(append(b, value...), "\r\n"...)
}

func appendMIME(b []byte, name, value string) []byte {
	return append(append(append(append(b, name...), ": "...), value...), "\r\n"...)
}

// Validate reports whether Marshal would write h as bytes that Read gives
// back as h: required headers present, names well formed, no value with a
// line break or other control byte.
func (h Header) Validate() error {
	if h.From == "" {
		return fmt.Errorf("%w: no From (RFC 3862 §5.1)", ErrInvalid)
	}
	if h.To == "" {
		return fmt.Errorf("%w: no To (RFC 3862 §5.2)", ErrInvalid)
	}
	for _, v := range []string{h.From, h.To} {
		if err := checkCPIMValue(v); err != nil {
			return err
		}
	}
	if !h.DateTime.IsZero() && (h.DateTime.Year() < 0 || h.DateTime.Year() > 9999) {
		return fmt.Errorf("%w: DateTime year %d outside RFC 3339", ErrInvalid, h.DateTime.Year())
	}
	for _, s := range h.NS {
		if s == "" {
			return fmt.Errorf("%w: empty NS", ErrInvalid)
		}
		if err := checkCPIMValue(s); err != nil {
			return err
		}
	}
	for _, f := range h.Extra {
		if err := checkCPIMName(f.Name); err != nil {
			return err
		}
		switch f.Name {
		case "From", "DateTime", "NS":
			return fmt.Errorf("%w: %s belongs in its own field, not in Extra", ErrInvalid, f.Name)
		}
		if err := checkCPIMValue(f.Value); err != nil {
			return err
		}
	}
	// mime.ParseMediaType takes "text" alone; a Content-Type needs
	// type "/" subtype (RFC 2045 §5.1).
	mt, _, err := mime.ParseMediaType(h.ContentType)
	if err != nil {
		return fmt.Errorf("%w: Content-Type %q: %v", ErrInvalid, clip(h.ContentType), err)
	}
	if typ, sub, ok := strings.Cut(mt, "/"); !ok || typ == "" || sub == "" {
		return fmt.Errorf("%w: Content-Type %q is not type/subtype", ErrInvalid, clip(h.ContentType))
	}
	if err := checkMIMEValue(h.ContentType); err != nil {
		return err
	}
	if h.ContentLength < NoContentLength {
		return fmt.Errorf("%w: Content-Length %d", ErrInvalid, h.ContentLength)
	}
	for _, f := range h.ContentHeaders {
		if err := checkMIMEName(f.Name); err != nil {
			return err
		}
		if err := checkMIMEValue(f.Value); err != nil {
			return err
		}
	}
	return nil
}

// checkCPIMName checks Header-name = [ Name-prefix "." ] Name (RFC 3862
// §3.1), a Name being a token: printable ASCII without separators or ".".
func checkCPIMName(name string) error {
	prefix, n, dotted := strings.Cut(name, ".")
	if !dotted {
		prefix, n = "", name
	}
	if !isName(n) || (dotted && !isName(prefix)) {
		return fmt.Errorf("%w: header name %q", ErrInvalid, clip(name))
	}
	return nil
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}.`, c) >= 0 {
			return false
		}
	}
	return true
}

// checkCPIMValue refuses control bytes (CR and LF above all: they would end
// the line) in a header value. HTAB and UTF-8 are allowed.
func checkCPIMValue(v string) error {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return fmt.Errorf("%w: control byte %#x in header value %q", ErrInvalid, c, clip(v))
		}
	}
	return nil
}

// checkMIMEName checks an RFC 5322 §3.6.8 field-name, and that it is not
// one of the headers Header has a field for.
func checkMIMEName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty MIME header name", ErrInvalid)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return fmt.Errorf("%w: MIME header name %q", ErrInvalid, clip(name))
		}
	}
	if strings.EqualFold(name, "Content-Type") || strings.EqualFold(name, "Content-Length") {
		return fmt.Errorf("%w: %s belongs in its own field", ErrInvalid, name)
	}
	return nil
}

// checkMIMEValue is checkCPIMValue plus no surrounding whitespace, which Read
// trims from MIME header values.
func checkMIMEValue(v string) error {
	if err := checkCPIMValue(v); err != nil {
		return err
	}
	if trimOWS(v) != v {
		return fmt.Errorf("%w: MIME header value %q has surrounding whitespace", ErrInvalid, clip(v))
	}
	return nil
}

// clip shortens a value quoted in an error: a hostile header must not make
// a huge error string.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// trimOWS trims SP and HTAB, the only whitespace RFC 5322 folds around a
// MIME header value (strings.TrimSpace would also eat Unicode spaces).
func trimOWS(s string) string {
	return strings.Trim(s, " \t")
}
