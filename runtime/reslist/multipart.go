package reslist

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"strings"
)

// Bounds on ParseMultipart. An ad-hoc group INVITE has two parts (SDP and
// the list, RFC 5366 §4); 16 leaves room for others. The body bound is the
// list's plus room for the SDP and the MIME framing.
const (
	MaxParts          = 16
	MaxMultipartBytes = MaxListBytes + 64<<10
)

// Part is one body part of a multipart/mixed SIP body.
type Part struct {
	// ContentType is the part's Content-Type, e.g. "application/sdp". Required.
	ContentType string
	// Disposition is the part's Content-Disposition, e.g. "recipient-list"
	// (RFC 5366 §4) or "session"; "" leaves the header out.
	Disposition string
	// Body is the part's content, unencoded (SIP bodies are binary, RFC
	// 3261 §7.4; no Content-Transfer-Encoding is applied or undone).
	Body []byte
}

// MediaType is the part's Content-Type without parameters, in lower case,
// for comparisons: "application/sdp", "application/resource-lists+xml".
func (p Part) MediaType() string {
	mt, _, err := mime.ParseMediaType(p.ContentType)
	if err != nil {
		return ""
	}
	return mt
}

// MarshalMultipart returns a multipart/mixed body (RFC 2046 §5.1.3) holding
// parts in order, and the Content-Type to send it with. The boundary is
// random (crypto/rand, 130 bits) and checked not to occur in any part.
func MarshalMultipart(parts []Part) (contentType string, body []byte, err error) {
	if len(parts) == 0 {
		return "", nil, fmt.Errorf("%w: no parts", ErrInvalid)
	}
	if len(parts) > MaxParts {
		return "", nil, fmt.Errorf("%w: %d parts, at most %d", ErrTooLarge, len(parts), MaxParts)
	}
	for _, p := range parts {
		if err := checkPart(p); err != nil {
			return "", nil, err
		}
	}
	boundary := ""
	for try := 0; boundary == ""; try++ {
		if try == 4 {
			// 130 random bits colliding four times means rand is broken.
			return "", nil, errors.New("reslist: no boundary found that is absent from the parts")
		}
		b := "cpmlink-" + rand.Text()
		boundary = b
		for _, p := range parts {
			if bytes.Contains(p.Body, []byte(b)) {
				boundary = ""
				break
			}
		}
	}
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if err := w.SetBoundary(boundary); err != nil {
		return "", nil, fmt.Errorf("reslist: boundary: %w", err) // cannot happen: base32 and '-'
	}
	for _, p := range parts {
		h := textproto.MIMEHeader{"Content-Type": {p.ContentType}}
		if p.Disposition != "" {
			h.Set("Content-Disposition", p.Disposition)
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			return "", nil, err // a bytes.Buffer does not fail
		}
		if _, err := pw.Write(p.Body); err != nil {
			return "", nil, err
		}
	}
	if err := w.Close(); err != nil {
		return "", nil, err
	}
	return mime.FormatMediaType("multipart/mixed", map[string]string{"boundary": boundary}), buf.Bytes(), nil
}

// ParseMultipart splits a multipart/mixed body into its parts, in order.
// contentType is the message's Content-Type header value. It refuses with
// ErrTooLarge a body over MaxMultipartBytes or more than MaxParts parts, and
// with ErrInvalid anything but multipart/mixed with a boundary, malformed
// MIME, a part without exactly one parseable Content-Type, and zero parts.
// A Content-Transfer-Encoding other than 7bit, 8bit or binary is
// ErrUnsupported: SIP bodies are not transfer-encoded (RFC 3261 §7.4), and
// decoding quietly would make Part.Body differ from what Marshal writes.
func ParseMultipart(contentType string, body []byte) ([]Part, error) {
	if len(body) > MaxMultipartBytes {
		return nil, fmt.Errorf("%w: multipart body of %d bytes, at most %d", ErrTooLarge, len(body), MaxMultipartBytes)
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, fmt.Errorf("%w: Content-Type %q: %s", ErrInvalid, clip(contentType), clipErr(err))
	}
	if mt != "multipart/mixed" {
		return nil, fmt.Errorf("%w: Content-Type %q, want multipart/mixed", ErrInvalid, clip(mt))
	}
	boundary := params["boundary"]
	// RFC 2046 §5.1.1: 1 to 70 characters.
	if boundary == "" || len(boundary) > 70 {
		return nil, fmt.Errorf("%w: multipart boundary missing or longer than 70 characters", ErrInvalid)
	}
	r := multipart.NewReader(bytes.NewReader(body), boundary)
	var parts []Part
	for {
		p, err := r.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: multipart: %s", ErrInvalid, clipErr(err))
		}
		if len(parts) == MaxParts {
			return nil, fmt.Errorf("%w: more than %d parts", ErrTooLarge, MaxParts)
		}
		part, err := readPart(p)
		if err != nil {
			return nil, err
		}
		parts = append(parts, part)
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("%w: multipart body without parts", ErrInvalid)
	}
	return parts, nil
}

func readPart(p *multipart.Part) (Part, error) {
	var part Part
	ct := p.Header.Values("Content-Type")
	if len(ct) != 1 {
		return part, fmt.Errorf("%w: part with %d Content-Type headers, want 1", ErrInvalid, len(ct))
	}
	part.ContentType = ct[0]
	if cd := p.Header.Values("Content-Disposition"); len(cd) > 1 {
		return part, fmt.Errorf("%w: part with %d Content-Disposition headers", ErrInvalid, len(cd))
	} else if len(cd) == 1 {
		part.Disposition = cd[0]
	}
	for _, te := range p.Header.Values("Content-Transfer-Encoding") {
		switch strings.ToLower(strings.TrimSpace(te)) {
		case "7bit", "8bit", "binary":
		default:
			return part, fmt.Errorf("%w: Content-Transfer-Encoding %q", ErrUnsupported, clip(te))
		}
	}
	if err := checkPart(part); err != nil {
		return part, err
	}
	// The whole body is already in memory and bounded; the limit only keeps
	// this loop honest should that ever change.
	b, err := io.ReadAll(io.LimitReader(p, MaxMultipartBytes+1))
	if err != nil {
		return part, fmt.Errorf("%w: multipart: %s", ErrInvalid, clipErr(err))
	}
	part.Body = b
	return part, nil
}

// checkPart holds parts to what MarshalMultipart can write and
// ParseMultipart read back unchanged.
func checkPart(p Part) error {
	if _, _, err := mime.ParseMediaType(p.ContentType); err != nil {
		return fmt.Errorf("%w: part Content-Type %q: %s", ErrInvalid, clip(p.ContentType), clipErr(err))
	}
	if !strings.Contains(p.ContentType, "/") {
		return fmt.Errorf("%w: part Content-Type %q is not type/subtype", ErrInvalid, clip(p.ContentType))
	}
	if p.Disposition != "" {
		if _, _, err := mime.ParseMediaType(p.Disposition); err != nil {
			return fmt.Errorf("%w: part Content-Disposition %q: %s", ErrInvalid, clip(p.Disposition), clipErr(err))
		}
	}
	for _, v := range []string{p.ContentType, p.Disposition} {
		if strings.Trim(v, " \t") != v {
			return fmt.Errorf("%w: header value %q has surrounding whitespace", ErrInvalid, clip(v))
		}
		for i := 0; i < len(v); i++ {
			if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
				return fmt.Errorf("%w: control byte %#x in header value %q", ErrInvalid, c, clip(v))
			}
		}
	}
	return nil
}
