package msrpsdp

import (
	"errors"
	"testing"
)

// TestMarshalRefusesWhatParseWould checks Media.validate through Marshal: a
// Media that Parse could never return must not reach the wire.
func TestMarshalRefusesWhatParseWould(t *testing.T) {
	good := designMedia
	tests := []struct {
		name   string
		change func(*Media)
		code   int
	}{
		{"host name", func(m *Media) { m.Host = "a.example" }, WarnIncompatibleAddress},
		{"host empty", func(m *Media) { m.Host = "" }, WarnIncompatibleAddress},
		{"host with zone", func(m *Media) { m.Host = "fe80::1%eth0" }, WarnIncompatibleAddress},
		{"host bracketed", func(m *Media) { m.Host = "[::1]" }, WarnIncompatibleAddress},
		{"port 0", func(m *Media) { m.Port = 0 }, WarnMiscellaneous},
		{"port too big", func(m *Media) { m.Port = 65536 }, WarnMiscellaneous},
		{"no path", func(m *Media) { m.Path = nil }, WarnAttributeNotUnderstood},
		{"path with space", func(m *Media) { m.Path = []string{"msrp://h:1/a b;tcp"} }, WarnAttributeNotUnderstood},
		{"tls with msrp path", func(m *Media) { m.TLS = true }, WarnIncompatibleTransport},
		{"last path URI without session", func(m *Media) { m.Path = []string{"msrp://127.0.0.1:1;tcp"} }, WarnAttributeNotUnderstood},
		{"too many path URIs", func(m *Media) {
			m.Path = nil
			for range maxPathURIs + 1 {
				m.Path = append(m.Path, "msrp://h:1/s;tcp")
			}
		}, WarnAttributeNotUnderstood},
		{"setup holdconn", func(m *Media) { m.Setup = "holdconn" }, WarnAttributeNotUnderstood},
		{"setup upper case", func(m *Media) { m.Setup = "ACTIVE" }, WarnAttributeNotUnderstood},
		{"direction", func(m *Media) { m.Direction = "sendonly " }, WarnAttributeNotUnderstood},
		{"no accept-types", func(m *Media) { m.AcceptTypes = nil }, WarnAttributeNotUnderstood},
		{"accept-type without subtype", func(m *Media) { m.AcceptTypes = []string{"text"} }, WarnAttributeNotUnderstood},
		{"accept-type with CRLF", func(m *Media) { m.AcceptTypes = []string{"text/plain\r\na=x"} }, WarnAttributeNotUnderstood},
		{"wrapped type empty", func(m *Media) { m.AcceptWrappedTypes = []string{""} }, WarnAttributeNotUnderstood},
		{"negative max-size", func(m *Media) { m.MaxSize = -1 }, WarnAttributeNotUnderstood},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := good
			m.Path = append([]string(nil), good.Path...)
			tc.change(&m)
			b, err := Marshal(m, 1, 1)
			var e *Error
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &e) {
				t.Fatalf("Marshal = %q, %v; want an *Error wrapping ErrInvalid", b, err)
			}
			if e.Code != tc.code {
				t.Errorf("code %d, want %d (%s)", e.Code, tc.code, e.Reason)
			}
		})
	}
}

func TestValidType(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"*", true},
		{"message/cpim", true},
		{"image/*", true},
		{"application/vnd.3gpp.sms+xml", true},
		{"text", false},
		{"/plain", false},
		{"text/", false},
		{"text/plain;charset=utf-8", false}, // parameters are not part of accept-types
		{"text/pl ain", false},
		{"text/plain/x", false},
		{"", false},
		{"t\xe9xt/plain", false},
	}
	for _, tc := range tests {
		if got := validType(tc.in); got != tc.want {
			t.Errorf("validType(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
