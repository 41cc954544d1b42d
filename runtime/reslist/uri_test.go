package reslist

import (
	"errors"
	"testing"
)

func TestCheckURI(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{"sip:bob@b.example", nil},
		{"SIPS:bob@b.example:5061;transport=tls", nil},
		{"sip:b.example", nil},
		{"sip:+15551234567@gw.example;user=phone", nil},
		{"sip:a@[::1]:5060", nil},
		{"tel:+15551234567", ErrInvalid},
		{"im:bob@b.example", ErrInvalid},
		{"sip:", ErrInvalid},
		{"sip:bob@", ErrInvalid},
		{"sip:bob@;x", ErrInvalid},
		{"sip::5060", ErrInvalid},
		{"bob@b.example", ErrInvalid},
		{"sip:bob@b.example\r\nX: y", ErrInvalid},
		{"sip:b\u00f6b@b.example", ErrInvalid},
		{"sip:\"bob\"@b", ErrInvalid},
	}
	for _, tc := range tests {
		if err := checkURI(tc.in); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("checkURI(%q) = %v, want %v", tc.in, err, tc.want)
		}
	}
}

func TestURIKey(t *testing.T) {
	same := [][2]string{
		{"sip:bob@b.example", "SIP:bob@B.EXAMPLE"},
		{"sips:bob@b.example:5061;transport=tls", "sips:bob@B.example:5061;transport=tls"},
		{"sip:b.example", "sip:B.Example"},
	}
	for _, p := range same {
		if uriKey(p[0]) != uriKey(p[1]) {
			t.Errorf("%q and %q should be the same member", p[0], p[1])
		}
	}
	different := [][2]string{
		{"sip:bob@b.example", "sip:Bob@b.example"}, // user part is case-sensitive (RFC 3261 §19.1.4)
		{"sip:bob@b.example", "sips:bob@b.example"},
		{"sip:bob@b.example", "sip:bob@b.example;transport=tcp"},
	}
	for _, p := range different {
		if uriKey(p[0]) == uriKey(p[1]) {
			t.Errorf("%q and %q should be different members", p[0], p[1])
		}
	}
}
