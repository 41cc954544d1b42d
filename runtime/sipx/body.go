package sipx

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"strings"
)

// Part is one body part. An INVITE or response with one part carries that
// part as its body (Content-Type and, if set, Content-Disposition become
// message headers); with several parts the body is multipart/mixed (RFC 2046
// §5.1.3), as an ad-hoc group INVITE needs: application/sdp next to
// application/resource-lists+xml with Content-Disposition: recipient-list
// (RFC 5366 §4).
type Part struct {
	ContentType string // e.g. "application/sdp"; required when Body is not empty
	Disposition string // Content-Disposition value, e.g. "recipient-list"; optional
	Body        []byte
}

// maxParts bounds how many parts sipx decodes from one body, so that a hostile
// multipart body cannot make it allocate without limit (the body itself is
// bounded by sipgo's 65535-byte message limit).
const maxParts = 32

// encodeBody turns parts into a body and the Content-Type (and, for a single
// part, Content-Disposition) header values.
func encodeBody(parts []Part) (body []byte, contentType, disposition string, err error) {
	switch len(parts) {
	case 0:
		return nil, "", "", nil
	case 1:
		p := parts[0]
		if len(p.Body) > 0 && p.ContentType == "" {
			return nil, "", "", fmt.Errorf("%w: part without Content-Type", ErrBadBody)
		}
		return p.Body, p.ContentType, p.Disposition, nil
	}
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if err := w.SetBoundary(newBoundary()); err != nil {
		return nil, "", "", fmt.Errorf("%w: %v", ErrBadBody, err)
	}
	for i, p := range parts {
		if p.ContentType == "" {
			return nil, "", "", fmt.Errorf("%w: part %d without Content-Type", ErrBadBody, i)
		}
		h := textproto.MIMEHeader{}
		h.Set("Content-Type", p.ContentType)
		if p.Disposition != "" {
			h.Set("Content-Disposition", p.Disposition)
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			return nil, "", "", fmt.Errorf("%w: %v", ErrBadBody, err)
		}
		if _, err := pw.Write(p.Body); err != nil {
			return nil, "", "", fmt.Errorf("%w: %v", ErrBadBody, err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, "", "", fmt.Errorf("%w: %v", ErrBadBody, err)
	}
	return buf.Bytes(), "multipart/mixed;boundary=" + w.Boundary(), "", nil
}

// decodeBody splits a received body into parts: the parts of a multipart/*
// body, or the body itself as the only part. An empty body has no parts.
func decodeBody(body []byte, contentType, disposition string) ([]Part, error) {
	if len(body) == 0 {
		return nil, nil
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || !strings.HasPrefix(mt, "multipart/") {
		// Not multipart (or a Content-Type we cannot parse, which we pass
		// through verbatim: judging the content is the driver's job).
		return []Part{{ContentType: contentType, Disposition: disposition, Body: body}}, nil
	}
	boundary := params["boundary"]
	if boundary == "" {
		return nil, fmt.Errorf("%w: %s without boundary", ErrBadBody, mt)
	}
	r := multipart.NewReader(bytes.NewReader(body), boundary)
	var parts []Part
	for {
		// NextRawPart: the parts are SIP bodies, not mail; no
		// Content-Transfer-Encoding is applied behind our back.
		p, err := r.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadBody, err)
		}
		if len(parts) == maxParts {
			return nil, fmt.Errorf("%w: more than %d parts", ErrBadBody, maxParts)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadBody, err)
		}
		ct := p.Header.Get("Content-Type")
		if ct == "" {
			// The MIME default (RFC 2046 §5.1).
			ct = "text/plain"
		}
		parts = append(parts, Part{
			ContentType: ct,
			Disposition: p.Header.Get("Content-Disposition"),
			Body:        b,
		})
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("%w: multipart body without parts", ErrBadBody)
	}
	return parts, nil
}

func newBoundary() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "sipx-" + hex.EncodeToString(b[:])
}
