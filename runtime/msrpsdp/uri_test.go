package msrpsdp

import (
	"strings"
	"testing"
)

func TestParsePathURI(t *testing.T) {
	tests := []struct {
		in     string
		want   pathURI
		reason string // "" for valid
	}{
		{in: "msrp://127.0.0.1:40001/a1b2c3;tcp", want: pathURI{host: "127.0.0.1", port: 40001, sessionID: "a1b2c3"}},
		{in: "MSRPS://Relay.Example.NET/s/1+2=;TCP;foo=bar;baz", want: pathURI{secure: true, host: "Relay.Example.NET", sessionID: "s/1+2="}},
		{in: "msrp://[::1]:2855/x;tcp", want: pathURI{host: "::1", port: 2855, sessionID: "x"}},
		{in: "msrp://[::1];tcp", want: pathURI{host: "::1"}},
		{in: "msrps://bob@h.example:1/s;tcp", want: pathURI{secure: true, host: "h.example", port: 1, sessionID: "s"}},
		{in: "msrp://h.example:65535/s;tcp", want: pathURI{host: "h.example", port: 65535, sessionID: "s"}},
		{in: strings.Repeat("x", maxURILen+1), reason: "bytes"},
		{in: "msrp://h:1/s;tcp\x00", reason: "control"},
		{in: "msrp://h:1/\xc3\xa9;tcp", reason: "non-ASCII"},
		{in: "msrp:h;tcp", reason: "no scheme"},
		{in: "sips://h:1/s;tcp", reason: "not msrp"},
		{in: "msrp://h:1/s", reason: "no transport"},
		{in: "msrp://h:1/s;", reason: "want tcp"},
		{in: "msrp://h:1/s;ws", reason: "want tcp"},
		{in: "msrp://h:1/s;tcp;;x", reason: "empty parameter"},
		{in: "msrp://h:1/;tcp", reason: "empty session-id"},
		{in: "msrp://h:1/a?b;tcp", reason: "bad session-id"},
		{in: "msrp://:1/s;tcp", reason: "empty host"},
		{in: "msrp:///s;tcp", reason: "empty host"},
		{in: "msrp://h:/s;tcp", reason: "empty port"},
		{in: "msrp://h:0/s;tcp", reason: "out of range"},
		{in: "msrp://h:65536/s;tcp", reason: "out of range"},
		{in: "msrp://h:+80/s;tcp", reason: "bad port"},
		{in: "msrp://h:123456/s;tcp", reason: "bad port"},
		{in: "msrp://h!x:1/s;tcp", reason: "bad host"},
		{in: "msrp://[::1:1/s;tcp", reason: "unterminated"},
		{in: "msrp://[::1]x/s;tcp", reason: "junk after"},
		{in: "msrp://[::1]:/s;tcp", reason: "empty port"},
		{in: "msrp://[fe80::1%25eth0]:1/s;tcp", reason: "bad IPv6"},
		{in: "msrp://[192.0.2.1]:1/s;tcp", reason: "bad IPv6"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, reason := parsePathURI(tc.in)
			if tc.reason != "" {
				if !strings.Contains(reason, tc.reason) {
					t.Fatalf("reason %q, want one containing %q", reason, tc.reason)
				}
				return
			}
			if reason != "" {
				t.Fatalf("unexpected reason %q", reason)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
