package reslist

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"reflect"
	"strings"
	"testing"
)

func TestParseMultipartRFC5366(t *testing.T) {
	parts, err := ParseMultipart(rfc5366ContentType, []byte(rfc5366Body))
	if err != nil {
		t.Fatal(err)
	}
	want := []Part{
		{ContentType: "application/sdp", Body: []byte(rfc5366SDP)},
		{ContentType: ContentType, Disposition: Disposition, Body: []byte(rfc5366List)},
	}
	if !reflect.DeepEqual(parts, want) {
		t.Fatalf("got %q\nwant %q", parts, want)
	}
	uris, err := Parse(parts[1].Body)
	if err != nil || !reflect.DeepEqual(uris, rfc5366URIs) {
		t.Fatalf("list in the body: %q, %v", uris, err)
	}
}

func TestMultipartRoundTrip(t *testing.T) {
	tests := [][]Part{
		{{ContentType: "application/sdp", Body: []byte(rfc5366SDP)},
			{ContentType: ContentType, Disposition: Disposition, Body: Marshal(rfc5366URIs)}},
		{{ContentType: "text/plain; charset=utf-8", Disposition: "render;handling=optional", Body: []byte("")}},
		{{ContentType: "application/octet-stream", Body: []byte("--\r\n--boundary\r\n\x00\xff")},
			{ContentType: "application/octet-stream", Body: []byte("\r\n\r\n")}},
	}
	for i, parts := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			ct, body, err := MarshalMultipart(parts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseMultipart(ct, body)
			if err != nil {
				t.Fatalf("ParseMultipart: %v\n%s\n%q", err, ct, body)
			}
			if len(got) != len(parts) {
				t.Fatalf("%d parts, want %d", len(got), len(parts))
			}
			for j := range parts {
				if got[j].ContentType != parts[j].ContentType || got[j].Disposition != parts[j].Disposition || !bytes.Equal(got[j].Body, parts[j].Body) {
					t.Errorf("part %d: got %q, want %q", j, got[j], parts[j])
				}
			}
		})
	}
}

func TestMarshalMultipartShape(t *testing.T) {
	ct, body, err := MarshalMultipart([]Part{
		{ContentType: "application/sdp", Body: []byte("v=0\r\n")},
		{ContentType: ContentType, Disposition: Disposition, Body: []byte("<x/>")},
	})
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("Content-Type %q: %v", ct, err)
	}
	b := params["boundary"]
	if !strings.HasPrefix(b, "cpmlink-") || len(b) > 70 {
		t.Fatalf("boundary %q", b)
	}
	want := "--" + b + "\r\n" +
		"Content-Type: application/sdp\r\n" +
		"\r\n" +
		"v=0\r\n" +
		"\r\n--" + b + "\r\n" +
		"Content-Disposition: recipient-list\r\n" +
		"Content-Type: application/resource-lists+xml\r\n" +
		"\r\n" +
		"<x/>" +
		"\r\n--" + b + "--\r\n"
	if string(body) != want {
		t.Fatalf("body:\n%q\nwant\n%q", body, want)
	}
	// The boundary is random: two bodies do not share it.
	ct2, _, _ := MarshalMultipart([]Part{{ContentType: "text/plain", Body: nil}})
	if ct2 == ct {
		t.Fatal("same boundary twice")
	}
}

func TestMarshalMultipartRefuses(t *testing.T) {
	many := make([]Part, MaxParts+1)
	for i := range many {
		many[i] = Part{ContentType: "text/plain"}
	}
	tests := []struct {
		name  string
		parts []Part
		want  error
	}{
		{"no parts", nil, ErrInvalid},
		{"too many parts", many, ErrTooLarge},
		{"no Content-Type", []Part{{Body: []byte("x")}}, ErrInvalid},
		{"Content-Type without subtype", []Part{{ContentType: "text"}}, ErrInvalid},
		{"Content-Type with CRLF", []Part{{ContentType: "text/plain\r\nX-Injected: 1"}}, ErrInvalid},
		{"Content-Type with trailing space", []Part{{ContentType: "text/plain "}}, ErrInvalid},
		{"Disposition with LF", []Part{{ContentType: "text/plain", Disposition: "session\nX: y"}}, ErrInvalid},
		{"bad Disposition", []Part{{ContentType: "text/plain", Disposition: ";;"}}, ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := MarshalMultipart(tc.parts); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseMultipartInvalid(t *testing.T) {
	const ct = "multipart/mixed;boundary=b"
	part := func(headers, body string) string { return "--b\r\n" + headers + "\r\n" + body + "\r\n" }
	end := "--b--\r\n"
	manyParts := strings.Repeat(part("Content-Type: text/plain\r\n", "x"), MaxParts+1) + end
	tests := []struct {
		name string
		ct   string
		body string
		want error
	}{
		{"bad Content-Type", "multipart/mixed;;", part("Content-Type: text/plain\r\n", "x") + end, ErrInvalid},
		{"not multipart", "application/sdp", "v=0\r\n", ErrInvalid},
		{"multipart/alternative", "multipart/alternative;boundary=b", part("Content-Type: text/plain\r\n", "x") + end, ErrInvalid},
		{"no boundary", "multipart/mixed", part("Content-Type: text/plain\r\n", "x") + end, ErrInvalid},
		{"boundary too long", "multipart/mixed;boundary=" + strings.Repeat("b", 71), "", ErrInvalid},
		{"empty body", ct, "", ErrInvalid},
		{"only the closing delimiter", ct, end, ErrInvalid},
		{"boundary never appears", ct, "just text\r\n", ErrInvalid},
		{"part without Content-Type", ct, part("Content-Disposition: session\r\n", "x") + end, ErrInvalid},
		{"part with two Content-Types", ct, part("Content-Type: text/plain\r\nContent-Type: text/html\r\n", "x") + end, ErrInvalid},
		{"part with two Content-Dispositions", ct, part("Content-Type: text/plain\r\nContent-Disposition: a\r\nContent-Disposition: b\r\n", "x") + end, ErrInvalid},
		{"part with bad Content-Type", ct, part("Content-Type: text\r\n", "x") + end, ErrInvalid},
		{"base64 part", ct, part("Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n", "eA==") + end, ErrUnsupported},
		{"quoted-printable part", ct, part("Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n", "x=3D") + end, ErrUnsupported},
		{"malformed part header", ct, part("Content-Type text/plain\r\n", "x") + end, ErrInvalid},
		{"long malformed part header (error stays short)", ct, part("Content-Type"+strings.Repeat("x", 5000)+"\r\n", "x") + end, ErrInvalid},
		{"too many parts", ct, manyParts, ErrTooLarge},
		{"too large", ct, part("Content-Type: text/plain\r\n", strings.Repeat("x", MaxMultipartBytes)) + end, ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parts, err := ParseMultipart(tc.ct, []byte(tc.body))
			if !errors.Is(err, tc.want) {
				t.Fatalf("ParseMultipart = %q, %v; want %v", parts, err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "reslist: ") || len(err.Error()) > 400 {
				t.Fatalf("error %q: no package prefix or too long", err)
			}
		})
	}
}

func TestParseMultipartTolerates(t *testing.T) {
	// Preamble, epilogue, an identity Content-Transfer-Encoding, a quoted
	// boundary, folded and extra part headers: all legal MIME (RFC 2046 §5.1.1).
	body := "preamble\r\n--b b\r\n" +
		"Content-Type: application/sdp\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n" +
		"Content-ID: <1@x>\r\n" +
		"\r\n" +
		"v=0\r\n" +
		"\r\n--b b\r\n" +
		"content-type: application/resource-lists+xml\r\n" +
		"Content-Disposition:\r\n recipient-list\r\n" +
		"\r\n" +
		"<x/>" +
		"\r\n--b b--\r\nepilogue"
	parts, err := ParseMultipart(`multipart/mixed; boundary="b b"`, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || parts[0].MediaType() != "application/sdp" || string(parts[0].Body) != "v=0\r\n" ||
		parts[1].MediaType() != ContentType || parts[1].Disposition != Disposition || string(parts[1].Body) != "<x/>" {
		t.Fatalf("parts %q", parts)
	}
}

func TestPartMediaType(t *testing.T) {
	for in, want := range map[string]string{
		"application/SDP":                "application/sdp",
		"text/plain; charset=utf-8":      "text/plain",
		"Application/Resource-Lists+XML": ContentType,
		"":                               "",
		";;":                             "",
	} {
		if got := (Part{ContentType: in}).MediaType(); got != want {
			t.Errorf("MediaType(%q) = %q, want %q", in, got, want)
		}
	}
}
