package msrp

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseURI(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want URI
		err  bool
	}{
		{name: "rfc4975 example", in: "msrp://atlanta.example.com:7654/jshA7weztas;tcp",
			want: URI{Scheme: "msrp", Host: "atlanta.example.com", Port: 7654, SessionID: "jshA7weztas", Transport: "tcp"}},
		{name: "design wire fact", in: "msrp://127.0.0.1:40001/a1b2c3;tcp",
			want: URI{Scheme: "msrp", Host: "127.0.0.1", Port: 40001, SessionID: "a1b2c3", Transport: "tcp"}},
		{name: "msrps with user and params", in: "msrps://bob@relay.example.net:2855/s/1+2=;tcp;foo=bar;baz",
			want: URI{Scheme: "msrps", User: "bob", Host: "relay.example.net", Port: 2855, SessionID: "s/1+2=", Transport: "tcp", Params: []string{"foo=bar", "baz"}}},
		{name: "no port no session (AUTH target)", in: "msrp://relay.example.net;tcp",
			want: URI{Scheme: "msrp", Host: "relay.example.net", Transport: "tcp"}},
		{name: "ipv6", in: "msrp://[::1]:40001/x;tcp",
			want: URI{Scheme: "msrp", Host: "::1", Port: 40001, SessionID: "x", Transport: "tcp"}},
		{name: "upper-case scheme kept", in: "MSRP://H:1/s;TCP",
			want: URI{Scheme: "MSRP", Host: "H", Port: 1, SessionID: "s", Transport: "TCP"}},
		{name: "sip scheme", in: "sip://a:1/s;tcp", err: true},
		{name: "no transport", in: "msrp://a:1/s", err: true},
		{name: "empty transport", in: "msrp://a:1/s;", err: true},
		{name: "port zero", in: "msrp://a:0/s;tcp", err: true},
		{name: "port too big", in: "msrp://a:65536/s;tcp", err: true},
		{name: "port signed", in: "msrp://a:+80/s;tcp", err: true},
		{name: "empty port", in: "msrp://a:/s;tcp", err: true},
		{name: "empty host", in: "msrp://:80/s;tcp", err: true},
		{name: "empty session", in: "msrp://a:80/;tcp", err: true},
		{name: "space in session", in: "msrp://a:80/a b;tcp", err: true},
		{name: "bad ipv6", in: "msrp://[zz]:80/s;tcp", err: true},
		{name: "unterminated ipv6", in: "msrp://[::1:80/s;tcp", err: true},
		{name: "empty param", in: "msrp://a:80/s;tcp;", err: true},
		{name: "ctl in param", in: "msrp://a:80/s;tcp;a\x01", err: true},
		{name: "empty", in: "", err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseURI(tc.in)
			if tc.err {
				if !errors.Is(err, ErrInvalidURI) {
					t.Fatalf("ParseURI(%q) error = %v, want ErrInvalidURI", tc.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURI(%q): %v", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseURI(%q) = %#v, want %#v", tc.in, got, tc.want)
			}
			if s := got.String(); s != tc.in {
				t.Fatalf("round trip: %q became %q", tc.in, s)
			}
		})
	}
}

func TestURIEqual(t *testing.T) {
	// RFC 4975 §6.1: scheme and host case-insensitive, port exact (absent =
	// 2855), session-id case-sensitive, transport case-insensitive, userinfo
	// and parameters ignored.
	tests := []struct {
		a, b string
		eq   bool
	}{
		{"msrp://a.example:1/s;tcp", "MSRP://A.EXAMPLE:1/s;TCP", true},
		{"msrp://u@a:1/s;tcp;x=1", "msrp://a:1/s;tcp", true},
		{"msrp://a/s;tcp", "msrp://a:2855/s;tcp", true},
		{"msrp://a:1/s;tcp", "msrp://a:1/S;tcp", false},
		{"msrp://a:1/s;tcp", "msrps://a:1/s;tcp", false},
		{"msrp://a:1/s;tcp", "msrp://a:2/s;tcp", false},
		{"msrp://a:1/s;tcp", "msrp://b:1/s;tcp", false},
		{"msrp://a:1/s;tcp", "msrp://a:1/s;sctp", false},
	}
	for _, tc := range tests {
		a, b := MustParseURI(tc.a), MustParseURI(tc.b)
		if a.Equal(b) != tc.eq || b.Equal(a) != tc.eq {
			t.Errorf("Equal(%s, %s) = %v, want %v", tc.a, tc.b, a.Equal(b), tc.eq)
		}
	}
}

func TestParsePath(t *testing.T) {
	p, err := ParsePath("msrp://r1:1/a;tcp msrp://r2:2/b;tcp msrp://c:3/c;tcp")
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 3 || p[2].SessionID != "c" {
		t.Fatalf("got %v", p)
	}
	if got := p.Reverse().String(); got != "msrp://c:3/c;tcp msrp://r2:2/b;tcp msrp://r1:1/a;tcp" {
		t.Fatalf("Reverse = %q", got)
	}
	for _, bad := range []string{"", " msrp://a:1/s;tcp", "msrp://a:1/s;tcp ", "msrp://a:1/s;tcp  msrp://b:1/s;tcp", "x"} {
		if _, err := ParsePath(bad); err == nil {
			t.Errorf("ParsePath(%q) accepted", bad)
		}
	}
}

func TestURIAddr(t *testing.T) {
	if got := MustParseURI("msrp://[::1]/s;tcp").Addr(); got != "[::1]:2855" {
		t.Fatalf("Addr = %q", got)
	}
	if !MustParseURI("MSRPS://h:1/s;tcp").Secure() {
		t.Fatal("msrps not secure")
	}
}

func FuzzParseURI(f *testing.F) {
	for _, s := range []string{
		"msrp://127.0.0.1:40001/a1b2c3;tcp", "msrps://u@[::1]:1/s/x+=;tcp;p=1", "msrp://h;tcp",
		"msrp://h:99999/s;tcp", "msrp://[::1/s;tcp", "msrp://h:1/;tcp", "msrp://@:1/s;tcp",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s)
		if err != nil {
			return
		}
		v, err := ParseURI(u.String())
		if err != nil {
			t.Fatalf("ParseURI(%q).String() = %q does not parse: %v", s, u.String(), err)
		}
		if !reflect.DeepEqual(u, v) || !u.Equal(v) {
			t.Fatalf("round trip of %q: %#v != %#v", s, u, v)
		}
	})
}
