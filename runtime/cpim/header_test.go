package cpim

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestMarshal(t *testing.T) {
	if got := string(designHeader().Marshal()); got != designWire {
		t.Fatalf("Marshal:\n%q\nwant\n%q", got, designWire)
	}
}

func TestMarshalOptionalParts(t *testing.T) {
	h := Header{
		From:           "Alice <im:alice@example.com>",
		To:             "<sip:bob@b.example>",
		Extra:          []Field{{"Subject", ";lang=fr beau temps"}, {"Subject", ""}},
		ContentType:    "text/plain; charset=utf-8",
		ContentLength:  NoContentLength,
		ContentHeaders: []Field{{"Content-ID", "<1@x>"}},
	}
	want := "From: Alice <im:alice@example.com>\r\n" +
		"To: <sip:bob@b.example>\r\n" +
		"Subject:;lang=fr beau temps\r\n" + // parameters follow the colon (RFC 3862 §3.1)
		"Subject: \r\n" +
		"\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-ID: <1@x>\r\n" +
		"\r\n"
	if got := string(h.Marshal()); got != want {
		t.Fatalf("Marshal:\n%q\nwant\n%q", got, want)
	}
}

func TestMarshalDateTimeKeepsOffsetAndFraction(t *testing.T) {
	h := designHeader()
	h.DateTime = time.Date(2000, 12, 13, 13, 40, 0, 123456789, time.FixedZone("", -8*3600))
	if !strings.Contains(string(h.Marshal()), "DateTime: 2000-12-13T13:40:00.123456789-08:00\r\n") {
		t.Fatalf("DateTime not RFC 3339 with offset:\n%s", h.Marshal())
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Header)
		ok     bool
	}{
		{"design", func(*Header) {}, true},
		{"no content length", func(h *Header) { h.ContentLength = NoContentLength }, true},
		{"utf-8 and tab in values", func(h *Header) { h.From = "Ålice\t<sip:a@a.example>" }, true},
		{"second To in Extra", func(h *Header) { h.Extra = append(h.Extra, Field{"To", "<sip:c@c.example>"}) }, true},
		{"no From", func(h *Header) { h.From = "" }, false},
		{"no To", func(h *Header) { h.To = "" }, false},
		{"CRLF in From (header injection)", func(h *Header) { h.From = "<sip:a@a>\r\nTo: <sip:evil@x>" }, false},
		{"LF in To", func(h *Header) { h.To = "a\nb" }, false},
		{"NUL in NS", func(h *Header) { h.NS = []string{"x\x00"} }, false},
		{"empty NS", func(h *Header) { h.NS = []string{""} }, false},
		{"year 10000", func(h *Header) { h.DateTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, false},
		{"Extra name with space", func(h *Header) { h.Extra = []Field{{"My Header", "x"}} }, false},
		{"Extra name with colon", func(h *Header) { h.Extra = []Field{{"a:b", "x"}} }, false},
		{"Extra name with two dots", func(h *Header) { h.Extra = []Field{{"a.b.c", "x"}} }, false},
		{"Extra name with empty prefix", func(h *Header) { h.Extra = []Field{{".b", "x"}} }, false},
		{"Extra From", func(h *Header) { h.Extra = []Field{{"From", "x"}} }, false},
		{"Extra DateTime", func(h *Header) { h.Extra = []Field{{"DateTime", "x"}} }, false},
		{"Extra NS", func(h *Header) { h.Extra = []Field{{"NS", "x"}} }, false},
		{"Extra value with CR", func(h *Header) { h.Extra = []Field{{"Subject", "a\rb"}} }, false},
		{"no Content-Type", func(h *Header) { h.ContentType = "" }, false},
		{"bad Content-Type", func(h *Header) { h.ContentType = "text" }, false},
		{"Content-Type with CRLF", func(h *Header) { h.ContentType = "text/plain\r\nX: y" }, false},
		{"Content-Type with leading space", func(h *Header) { h.ContentType = " text/plain" }, false},
		{"Content-Length -2", func(h *Header) { h.ContentLength = -2 }, false},
		{"ContentHeaders Content-Length", func(h *Header) { h.ContentHeaders = []Field{{"content-length", "5"}} }, false},
		{"ContentHeaders empty name", func(h *Header) { h.ContentHeaders = []Field{{"", "5"}} }, false},
		{"ContentHeaders value with trailing space", func(h *Header) { h.ContentHeaders = []Field{{"Content-ID", "x "}} }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := designHeader()
			tc.change(&h)
			err := h.Validate()
			if tc.ok && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate = %v, want ErrInvalid", err)
			}
		})
	}
}
