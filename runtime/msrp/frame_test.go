package msrp

import (
	"bytes"
	"strings"
	"testing"
)

// crlf turns the readable "\n" of test literals into MSRP's CRLF.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// Frames in the serializer's canonical header order, from RFC 4975 §4 and
// §7.1.2 and from DESIGN.md §6: each must parse and serialize back to the
// same bytes.
var canonicalFrames = map[string]string{
	"rfc4975 §4 SEND": crlf(`MSRP a786hjs2 SEND
To-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp
From-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp
Message-ID: 87652491
Byte-Range: 1-25/25
Content-Type: text/plain

Hey Bob, are you there?
-------a786hjs2$
`),
	"rfc4975 §4 response": crlf(`MSRP a786hjs2 200 OK
To-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp
From-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp
-------a786hjs2$
`),
	"rfc4975 §7.1.2 REPORT": crlf(`MSRP dkei38sd REPORT
To-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp
From-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp
Message-ID: 12339sdqwer
Byte-Range: 1-106/106
Status: 000 200 OK
-------dkei38sd$
`),
	"REPORT with extension headers (per-member outcome)": crlf(`MSRP rep00001 REPORT
To-Path: msrp://127.0.0.1:40001/a1b2c3;tcp
From-Path: msrp://127.0.0.1:41002/kjd8s9;tcp
Message-ID: 87652491
Byte-Range: 1-5120/5120
Status: 000 413 Message Too Large
X-Cpmlink-Member: sip:bob@example.com
X-Cpmlink-Of: 3
-------rep00001$
`),
	"design chunk with reports": crlf(`MSRP a786hjs2 SEND
To-Path: msrp://127.0.0.1:41002/kjd8s9;tcp
From-Path: msrp://127.0.0.1:40001/a1b2c3;tcp
Message-ID: 87652491
Byte-Range: 1-10/5120
Failure-Report: yes
Success-Report: yes
Content-Type: message/cpim

0123456789
-------a786hjs2+
`),
	"relay path, ext and MIME headers": crlf(`MSRP 49fi4c2 SEND
To-Path: msrp://relay.example.com:2855/ab;tcp msrp://bob.example.com:8888/9di4e;tcp
From-Path: msrp://alice.example.com:7777/iau39;tcp
Message-ID: 12339sdqwer
Byte-Range: 1-*/*
Failure-Report: partial
X-Cpm-Hint: keep me
Content-Disposition: inline
Content-Type: text/plain;charset=utf-8

body with -------49fi4c2 inside but not at a line start, and
-------49fi4c2x not a flag
-------49fi4c2#
`),
	"bodiless bind SEND": crlf(`MSRP bind0001 SEND
To-Path: msrp://127.0.0.1:41002/kjd8s9;tcp
From-Path: msrp://127.0.0.1:40001/a1b2c3;tcp
Message-ID: m0000001
Byte-Range: 1-0/0
-------bind0001$
`),
	"empty body with content type": crlf(`MSRP e0000001 SEND
To-Path: msrp://h:1/s;tcp
From-Path: msrp://h:2/t;tcp
Message-ID: m0000001
Content-Type: text/plain


-------e0000001$
`),
	"AUTH": crlf(`MSRP auth0001 AUTH
To-Path: msrp://127.0.0.1:2855;tcp
From-Path: msrp://127.0.0.1:40001/a1b2c3;tcp
-------auth0001$
`),
	"AUTH response with Use-Path": crlf(`MSRP auth0001 200 OK
To-Path: msrp://127.0.0.1:40001/a1b2c3;tcp
From-Path: msrp://127.0.0.1:2855;tcp
Use-Path: msrp://127.0.0.1:2855/s1x2;tcp
Expires: 1800
-------auth0001$
`),
	"response without comment": crlf(`MSRP a786hjs2 413
To-Path: msrp://h:1/s;tcp
From-Path: msrp://h:2/t;tcp
-------a786hjs2$
`),
}

func TestFrameRoundTrip(t *testing.T) {
	for name, wire := range canonicalFrames {
		t.Run(name, func(t *testing.T) {
			var f Frame
			if err := NewReader(strings.NewReader(wire), Limits{}).ReadFrame(&f); err != nil {
				t.Fatalf("ReadFrame: %v", err)
			}
			if err := f.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if got := string(f.Marshal()); got != wire {
				t.Fatalf("round trip differs:\n got %q\nwant %q", got, wire)
			}
			var buf bytes.Buffer
			if err := WriteFrame(&buf, &f); err != nil || buf.String() != wire {
				t.Fatalf("WriteFrame = %q, %v", buf.String(), err)
			}
		})
	}
}

func TestFrameFields(t *testing.T) {
	var f Frame
	if err := NewReader(strings.NewReader(canonicalFrames["design chunk with reports"]), Limits{}).ReadFrame(&f); err != nil {
		t.Fatal(err)
	}
	if f.TID != "a786hjs2" || f.Method != MethodSEND || f.MessageID != "87652491" ||
		f.ByteRange != (ByteRange{1, 10, 5120}) || f.SuccessReport != ReportYes ||
		f.FailureReport != ReportYes || f.ContentType != "message/cpim" ||
		string(f.Body) != "0123456789" || f.Flag != FlagMore {
		t.Fatalf("fields: %+v", f)
	}
	if f.ToPath[0].Port != 41002 || f.FromPath[0].SessionID != "a1b2c3" {
		t.Fatalf("paths: %v %v", f.ToPath, f.FromPath)
	}
	f = Frame{}
	if err := NewReader(strings.NewReader(canonicalFrames["rfc4975 §7.1.2 REPORT"]), Limits{}).ReadFrame(&f); err != nil {
		t.Fatal(err)
	}
	if f.ReportStatus == nil || *f.ReportStatus != (ReportStatus{0, 200, "OK"}) {
		t.Fatalf("Status = %+v", f.ReportStatus)
	}
	f = Frame{}
	if err := NewReader(strings.NewReader(canonicalFrames["AUTH response with Use-Path"]), Limits{}).ReadFrame(&f); err != nil {
		t.Fatal(err)
	}
	if v, ok := f.Header("use-path"); !ok || v != "msrp://127.0.0.1:2855/s1x2;tcp" {
		t.Fatalf("Use-Path = %q %v", v, ok)
	}
}

func TestContainsEndLine(t *testing.T) {
	tests := []struct {
		body string
		want bool
	}{
		{"plain", false},
		{"x\r\n-------abcd$\r\nrest", true},
		{"x\r\n-------abcd+\r\n", true},
		{"x\r\n-------abcd#", true}, // the body's own trailing CRLF completes it
		{"x\r\n-------abcd", false},
		{"x\r\n-------abcdz\r\n", false},
		{"-------abcd$\r\n", false}, // no CRLF before it inside the body region
		{"x\n-------abcd$\r\n", false},
	}
	for _, tc := range tests {
		if got := containsEndLine([]byte(tc.body), "abcd"); got != tc.want {
			t.Errorf("containsEndLine(%q) = %v, want %v", tc.body, got, tc.want)
		}
	}
}
