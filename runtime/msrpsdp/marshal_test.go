package msrpsdp

import (
	"reflect"
	"strings"
	"testing"
)

func TestMarshalDesignOffer(t *testing.T) {
	got, err := Marshal(designMedia, 2890844526, 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != designOffer {
		t.Fatalf("Marshal:\n%s\nwant (DESIGN.md §6):\n%s", got, designOffer)
	}
}

func TestMarshalAddressTypeAndTransport(t *testing.T) {
	m := Media{
		Host:        "2001:db8::7",
		Port:        2855,
		TLS:         true,
		Path:        []string{"msrps://[2001:db8::7]:2855/s1;tcp"},
		AcceptTypes: []string{"message/cpim"},
	}
	b, err := Marshal(m, 7, 8)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{
		"o=- 7 8 IN IP6 2001:db8::7\r\n",
		"c=IN IP6 2001:db8::7\r\n",
		"m=message 2855 TCP/TLS/MSRP *\r\n",
		"a=sendrecv\r\n", // Direction "" is written explicitly
	} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in\n%s", want, s)
		}
	}
	for _, absent := range []string{"a=setup", "a=max-size", "a=accept-wrapped-types"} {
		if strings.Contains(s, absent) {
			t.Errorf("%s written for a zero field:\n%s", absent, s)
		}
	}
	if !strings.HasSuffix(s, "\r\n") || strings.Contains(strings.ReplaceAll(s, "\r\n", ""), "\n") {
		t.Errorf("line ends are not all CRLF:\n%q", s)
	}
}

// TestRoundTrip checks Parse(Marshal(m)) == m for every kind of Media.
func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		m    Media
	}{
		{"design offer", designMedia},
		{"answer", Media{Host: "127.0.0.1", Port: 41002, Path: []string{"msrp://127.0.0.1:41002/kjd8s9;tcp"},
			Setup: SetupPassive, Direction: RecvOnly, AcceptTypes: []string{"message/cpim"}, AcceptWrappedTypes: []string{"*"}}},
		{"ipv6", Media{Host: "::1", Port: 2855, Path: []string{"msrp://[::1]:2855/x;tcp"},
			Direction: SendRecv, AcceptTypes: []string{"message/cpim", "text/plain"}}},
		{"ipv4-mapped ipv6", Media{Host: "::ffff:192.0.2.1", Port: 9, Path: []string{"msrp://[::ffff:192.0.2.1]:9/x;tcp"},
			Direction: Inactive, AcceptTypes: []string{"*"}}},
		{"tls through relays", Media{Host: "192.0.2.10", Port: 12763, TLS: true,
			Path:  []string{"msrps://relay1.example.net:2855/r1;tcp", "msrps://[2001:db8::1];tcp", "msrps://alice@192.0.2.10:12763/me-1;tcp;x=y"},
			Setup: SetupActpass, Direction: SendOnly, AcceptTypes: []string{"message/cpim", "image/*"},
			AcceptWrappedTypes: []string{"text/plain", "application/octet-stream"}, MaxSize: 1}},
		{"largest values", Media{Host: "255.255.255.255", Port: 65535, Path: []string{"msrp://h:65535/s;tcp"},
			Direction: SendRecv, AcceptTypes: []string{"a/b"}, MaxSize: 999999999999999999}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Marshal(tc.m, 42, 3)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse(Marshal(m)): %v\n%s", err, b)
			}
			if !reflect.DeepEqual(got, tc.m) {
				t.Fatalf("round trip:\n got %#v\nwant %#v\n%s", got, tc.m, b)
			}
		})
	}
}

func TestMarshalEmptyDirectionIsSendRecv(t *testing.T) {
	m := designMedia
	m.Direction = ""
	b, err := Marshal(m, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Direction != SendRecv {
		t.Fatalf("Direction %q, want sendrecv", got.Direction)
	}
}
