package sipx

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestBodyRoundTrip: what encodeBody writes, decodeBody reads back part by
// part (RFC 2046 §5.1 multipart/mixed; RFC 5366 recipient-list).
func TestBodyRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parts []Part
	}{
		{"none", nil},
		{"sdp", []Part{{ContentType: "application/sdp", Body: []byte(sdpOffer)}}},
		{"single with disposition", []Part{{ContentType: "application/resource-lists+xml", Disposition: "recipient-list", Body: resourceList(3)}}},
		{"adhoc group", []Part{
			{ContentType: "application/sdp", Body: []byte(sdpOffer)},
			{ContentType: "application/resource-lists+xml", Disposition: "recipient-list", Body: resourceList(40)},
		}},
		{"binary and boundary-like text", []Part{
			{ContentType: "application/octet-stream", Body: []byte("\x00\r\n--sipx-\r\n\xff")},
			{ContentType: "text/plain", Body: []byte("--\r\n--")},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, ct, disp, err := encodeBody(tc.parts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeBody(body, ct, disp)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.parts) {
				t.Fatalf("%d parts back, want %d", len(got), len(tc.parts))
			}
			for i := range got {
				w := tc.parts[i]
				if got[i].ContentType != w.ContentType || got[i].Disposition != w.Disposition || !bytes.Equal(got[i].Body, w.Body) {
					t.Errorf("part %d = %+v, want %+v", i, got[i], w)
				}
			}
		})
	}
}

// TestBodyDecodeErrors: broken multipart bodies are errors, never panics or
// unbounded allocation; other content types pass through untouched.
func TestBodyDecodeErrors(t *testing.T) {
	many := strings.Repeat("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n", maxParts+1) + "--b--\r\n"
	for _, tc := range []struct {
		name, ct, body string
		wantErr        bool
	}{
		{"no boundary", "multipart/mixed", "--x\r\n\r\n", true},
		{"no closing delimiter", "multipart/mixed;boundary=b", "--b\r\nContent-Type: text/plain\r\n\r\nx", true},
		{"no parts", "multipart/mixed;boundary=b", "--b--\r\n", true},
		{"too many parts", "multipart/mixed;boundary=b", many, true},
		{"unparsable content type passes through", "application/sdp; ===", "v=0\r\n", false},
		{"plain", "text/plain", "hello", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parts, err := decodeBody([]byte(tc.body), tc.ct, "")
			if tc.wantErr != (err != nil) {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrBadBody) {
				t.Fatalf("error %v is not ErrBadBody", err)
			}
			if !tc.wantErr && (len(parts) != 1 || string(parts[0].Body) != tc.body || parts[0].ContentType != tc.ct) {
				t.Fatalf("parts %+v", parts)
			}
		})
	}
}

// FuzzDecodeBody: arbitrary multipart bodies never panic, and whatever
// decodes re-encodes to something that decodes the same — except a single
// empty part, which as a SIP body is the same as no body at all.
func FuzzDecodeBody(f *testing.F) {
	body, ct, _, _ := encodeBody([]Part{{ContentType: "application/sdp", Body: []byte(sdpOffer)}, {ContentType: "application/resource-lists+xml", Disposition: "recipient-list", Body: resourceList(2)}})
	f.Add(body, ct)
	f.Add([]byte("--b\r\n\r\nx\r\n--b--\r\n"), "multipart/mixed;boundary=b")
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		parts, err := decodeBody(body, ct, "")
		if err != nil || (len(parts) == 1 && len(parts[0].Body) == 0) {
			return
		}
		b2, ct2, d2, err := encodeBody(parts)
		if err != nil {
			return // e.g. a part without Content-Type
		}
		again, err := decodeBody(b2, ct2, d2)
		if err != nil || len(again) != len(parts) {
			t.Fatalf("re-encoded body does not decode: %v", err)
		}
		for i := range again {
			if !bytes.Equal(again[i].Body, parts[i].Body) {
				t.Fatalf("part %d changed", i)
			}
		}
	})
}
