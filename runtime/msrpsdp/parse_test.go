package msrpsdp

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseValid(t *testing.T) {
	base := Media{Host: "127.0.0.1", Port: 40001, Path: []string{"msrp://127.0.0.1:40001/a1b2c3;tcp"},
		Direction: SendRecv, AcceptTypes: []string{"message/cpim"}}
	mod := func(f func(*Media)) Media {
		m := base
		f(&m)
		return m
	}
	tests := []struct {
		name string
		in   string
		want Media
	}{
		{"design offer", designOffer, designMedia},
		{"design offer with LF line ends (RFC 4566 §5 tolerance)",
			strings.ReplaceAll(designOffer, "\r\n", "\n"), designMedia},
		{"no line end after the last line", strings.TrimSuffix(designOffer, "\r\n"), designMedia},
		{"minimal: no direction means sendrecv, no setup", offer(mline...), base},
		{"answer", sdpLines("v=0", "o=- 9 2 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
			"m=message 41002 TCP/MSRP *",
			"a=path:msrp://127.0.0.1:41002/kjd8s9;tcp",
			"a=accept-types:message/cpim",
			"a=accept-wrapped-types:*",
			"a=recvonly",
			"a=setup:passive"),
			Media{Host: "127.0.0.1", Port: 41002, Path: []string{"msrp://127.0.0.1:41002/kjd8s9;tcp"}, Setup: SetupPassive,
				Direction: RecvOnly, AcceptTypes: []string{"message/cpim"}, AcceptWrappedTypes: []string{"*"}}},
		{"ipv6", sdpLines("v=0", "o=- 1 1 IN IP6 2001:db8::2", "s=-", "c=IN IP6 2001:db8::2", "t=0 0",
			"m=message 40002 TCP/MSRP *", "a=path:msrp://[2001:db8::2]:40002/v6;tcp", "a=accept-types:message/cpim"),
			Media{Host: "2001:db8::2", Port: 40002, Path: []string{"msrp://[2001:db8::2]:40002/v6;tcp"},
				Direction: SendRecv, AcceptTypes: []string{"message/cpim"}}},
		{"tls", offer("m=message 40001 TCP/TLS/MSRP *", "a=path:msrps://127.0.0.1:40001/t1;tcp", "a=accept-types:message/cpim"),
			mod(func(m *Media) { m.TLS = true; m.Path = []string{"msrps://127.0.0.1:40001/t1;tcp"} })},
		{"relays in the path, own URI last", offer("m=message 40001 TCP/MSRP *",
			"a=path:msrp://relay.example.net:2855/r1;tcp msrp://127.0.0.1:40001/a1b2c3;tcp", "a=accept-types:message/cpim"),
			mod(func(m *Media) {
				m.Path = []string{"msrp://relay.example.net:2855/r1;tcp", "msrp://127.0.0.1:40001/a1b2c3;tcp"}
			})},
		{"m= port and c= address differ from the path (RFC 4975 §8.1: path wins)",
			offer("m=message 9 TCP/MSRP *", "a=path:msrp://198.51.100.7:40001/a1b2c3;tcp", "a=accept-types:message/cpim"),
			mod(func(m *Media) { m.Port = 9; m.Path = []string{"msrp://198.51.100.7:40001/a1b2c3;tcp"} })},
		{"media-level c= wins over session level",
			offer(with("c=IN IP4 192.0.2.5")...), mod(func(m *Media) { m.Host = "192.0.2.5" })},
		{"c= only at media level",
			sdpLines("v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0", "m=message 40001 TCP/MSRP *", "c=IN IP4 192.0.2.6",
				"a=path:msrp://127.0.0.1:40001/a1b2c3;tcp", "a=accept-types:message/cpim"),
			mod(func(m *Media) { m.Host = "192.0.2.6" })},
		{"session-level direction and setup",
			sdpLines(append(append([]string{}, head...), append([]string{"a=sendonly", "a=setup:actpass"}, mline...)...)...),
			mod(func(m *Media) { m.Direction = SendOnly; m.Setup = SetupActpass })},
		{"media level overrides session level",
			sdpLines(append(append([]string{}, head...), append([]string{"a=sendonly", "a=setup:actpass"}, with("a=recvonly", "a=setup:passive")...)...)...),
			mod(func(m *Media) { m.Direction = RecvOnly; m.Setup = SetupPassive })},
		{"setup is case-insensitive (RFC 5234 literals)", offer(with("a=setup:ACTIVE")...),
			mod(func(m *Media) { m.Setup = SetupActive })},
		{"unknown attributes ignored", offer(with("a=connection:new", "a=msrp-cema", "a=file-selector:name:\"x\"", "a=PATH:junk")...), base},
		{"other lines pion knows", sdpLines("v=0", "o=alice 1 2 IN IP4 127.0.0.1", "s=chat", "i=info", "c=IN IP4 127.0.0.1",
			"b=AS:64", "t=0 0", "m=message 40001 TCP/MSRP *", "i=title", "b=AS:10",
			"a=path:msrp://127.0.0.1:40001/a1b2c3;tcp", "a=accept-types:message/cpim"), base},
		{"type wildcards", offer("m=message 40001 TCP/MSRP *", "a=path:msrp://127.0.0.1:40001/a1b2c3;tcp", "a=accept-types:message/cpim image/* *"),
			mod(func(m *Media) { m.AcceptTypes = []string{"message/cpim", "image/*", "*"} })},
		{"relay without session-id", offer("m=message 40001 TCP/MSRP *",
			"a=path:msrp://relay.example.net;tcp msrp://127.0.0.1:40001/a1b2c3;tcp", "a=accept-types:message/cpim"),
			mod(func(m *Media) {
				m.Path = []string{"msrp://relay.example.net;tcp", "msrp://127.0.0.1:40001/a1b2c3;tcp"}
			})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.in))
			if err != nil {
				t.Fatalf("Parse: %v\n%s", err, tc.in)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Parse:\n got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		code     int
		reason   string // substring of Error.Reason
		rejected bool
	}{
		{"empty", "", WarnMiscellaneous, "empty", false},
		{"too large", offer(with("a=x:" + strings.Repeat("y", MaxSDPBytes))...), WarnMiscellaneous, "at most 16384", false},
		{"NUL byte", offer(with("a=x:\x00")...), WarnMiscellaneous, "NUL", false},
		{"bare CR", strings.Replace(designOffer, "a=sendonly\r\n", "a=sendonly\r", 1), WarnMiscellaneous, "bare CR", false},
		{"not SDP", "hello\r\n", WarnMiscellaneous, "malformed SDP", false},
		{"v=1", strings.Replace(designOffer, "v=0", "v=1", 1), WarnMiscellaneous, "malformed SDP", false},
		{"no s= line", strings.Replace(designOffer, "s=-\r\n", "", 1), WarnMiscellaneous, "malformed SDP", false},
		{"huge port number", offer("m=message 99999999999999999999999 TCP/MSRP *", mline[1], mline[2]), WarnMiscellaneous, "malformed SDP", false},
		{"no media", offer(), WarnMediaNotAvailable, "no m=message", false},
		{"two m=message lines", offer(append(with(), mline...)...), WarnMediaNotAvailable, "2 m= lines", false},
		{"m=message and m=audio", offer(with("m=audio 49170 RTP/AVP 0")...), WarnMediaNotAvailable, "2 m= lines", false},
		{"m=audio", offer("m=audio 49170 RTP/AVP 0", mline[1], mline[2]), WarnMediaNotAvailable, "'audio' not available", false},
		{"port 0", offer("m=message 0 TCP/MSRP *", mline[1], mline[2]), WarnMediaNotAvailable, "port 0", true},
		{"port 0 without path", offer("m=message 0 TCP/MSRP *"), WarnMediaNotAvailable, "port 0", true},
		{"port range", offer("m=message 40001/2 TCP/MSRP *", mline[1], mline[2]), WarnMiscellaneous, "port range", false},
		{"RTP transport", offer("m=message 40001 RTP/AVP *", mline[1], mline[2]), WarnIncompatibleTransport, "'RTP/AVP'", false},
		{"TCP/MSRP/TLS", offer("m=message 40001 TCP/MSRP/TLS *", mline[1], mline[2]), WarnIncompatibleTransport, "TCP/MSRP/TLS", false},
		{"TLS transport, msrp path", offer("m=message 40001 TCP/TLS/MSRP *", mline[1], mline[2]), WarnIncompatibleTransport, "does not match", false},
		{"TCP transport, msrps path", offer("m=message 40001 TCP/MSRP *", "a=path:msrps://127.0.0.1:40001/a;tcp", mline[2]), WarnIncompatibleTransport, "does not match", false},
		{"mixed schemes in path", offer("m=message 40001 TCP/MSRP *", "a=path:msrps://r.example:1/r;tcp msrp://127.0.0.1:40001/a;tcp", mline[2]), WarnIncompatibleTransport, "does not match", false},
		{"format not *", offer("m=message 40001 TCP/MSRP 0", mline[1], mline[2]), WarnIncompatibleFormat, "want *", false},
		{"two formats", offer("m=message 40001 TCP/MSRP * *", mline[1], mline[2]), WarnIncompatibleFormat, "want *", false},
		{"no c=", sdpLines("v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0", mline[0], mline[1], mline[2]), WarnIncompatibleAddress, "no c=", false},
		{"c= host name (RFC 4975 §8.7 style)", strings.Replace(designOffer, "c=IN IP4 127.0.0.1", "c=IN IP4 alice.example.com", 1), WarnIncompatibleAddress, "not an IP4 literal", false},
		{"c= IP4 with an IPv6 address", strings.Replace(designOffer, "c=IN IP4 127.0.0.1", "c=IN IP4 ::1", 1), WarnIncompatibleAddress, "not an IP4", false},
		{"c= IP6 with an IPv4 address", strings.Replace(designOffer, "c=IN IP4 127.0.0.1", "c=IN IP6 127.0.0.1", 1), WarnIncompatibleAddress, "not an IP6", false},
		{"c= with zone", strings.Replace(designOffer, "c=IN IP4 127.0.0.1", "c=IN IP6 fe80::1%eth0", 1), WarnIncompatibleAddress, "not an IP6", false},
		{"c= multicast with TTL", strings.Replace(designOffer, "c=IN IP4 127.0.0.1", "c=IN IP4 224.2.1.1/127", 1), WarnIncompatibleAddress, "224.2.1.1/127", false},
		{"c= without address", strings.Replace(designOffer, "c=IN IP4 127.0.0.1", "c=IN IP4", 1), WarnIncompatibleAddress, "no c=", false},
		{"no path", offer(mline[0], mline[2]), WarnAttributeNotUnderstood, "a=path missing", false},
		{"empty path", offer(mline[0], "a=path:", mline[2]), WarnAttributeNotUnderstood, "a=path is empty", false},
		{"path without value", offer(mline[0], "a=path", mline[2]), WarnAttributeNotUnderstood, "a=path is empty", false},
		{"path double space", offer(mline[0], "a=path:msrp://r:1/r;tcp  msrp://h:2/s;tcp", mline[2]), WarnAttributeNotUnderstood, "bad spacing", false},
		{"path trailing space", offer(mline[0], mline[1]+" ", mline[2]), WarnAttributeNotUnderstood, "bad spacing", false},
		{"path with tab", offer(mline[0], "a=path:msrp://r:1/r;tcp\tmsrp://h:2/s;tcp", mline[2]), WarnAttributeNotUnderstood, "control", false},
		{"path sip URI", offer(mline[0], "a=path:sip:alice@a.example", mline[2]), WarnAttributeNotUnderstood, "no scheme", false},
		{"path http URI", offer(mline[0], "a=path:http://h:1/s;tcp", mline[2]), WarnAttributeNotUnderstood, "not msrp: or msrps:", false},
		{"path no transport", offer(mline[0], "a=path:msrp://h:1/s", mline[2]), WarnAttributeNotUnderstood, "no transport", false},
		{"path udp transport", offer(mline[0], "a=path:msrp://h:1/s;udp", mline[2]), WarnAttributeNotUnderstood, "want tcp", false},
		{"path empty param", offer(mline[0], "a=path:msrp://h:1/s;tcp;", mline[2]), WarnAttributeNotUnderstood, "empty parameter", false},
		{"path port 0", offer(mline[0], "a=path:msrp://h:0/s;tcp", mline[2]), WarnAttributeNotUnderstood, "port out of range", false},
		{"path port huge", offer(mline[0], "a=path:msrp://h:99999999999/s;tcp", mline[2]), WarnAttributeNotUnderstood, "bad port", false},
		{"path empty host", offer(mline[0], "a=path:msrp://:1/s;tcp", mline[2]), WarnAttributeNotUnderstood, "empty host", false},
		{"path bad ipv6", offer(mline[0], "a=path:msrp://[1.2.3.4]:1/s;tcp", mline[2]), WarnAttributeNotUnderstood, "bad IPv6", false},
		{"path empty session-id", offer(mline[0], "a=path:msrp://h:1/;tcp", mline[2]), WarnAttributeNotUnderstood, "empty session-id", false},
		{"path bad session-id", offer(mline[0], "a=path:msrp://h:1/a%20b;tcp", mline[2]), WarnAttributeNotUnderstood, "bad session-id", false},
		{"own URI without session-id", offer(mline[0], "a=path:msrp://h:1;tcp", mline[2]), WarnAttributeNotUnderstood, "no session-id", false},
		{"33 path URIs", offer(mline[0], "a=path:"+strings.TrimSpace(strings.Repeat("msrp://h:1/s;tcp ", 33)), mline[2]), WarnAttributeNotUnderstood, "33 items", false},
		{"two paths", offer(with(mline[1])...), WarnAttributeNotUnderstood, "a=path repeated", false},
		{"no accept-types", offer(mline[0], mline[1]), WarnAttributeNotUnderstood, "a=accept-types missing", false},
		{"accept-type without subtype", offer(mline[0], mline[1], "a=accept-types:cpim"), WarnAttributeNotUnderstood, "'cpim'", false},
		{"two accept-types", offer(with(mline[2])...), WarnAttributeNotUnderstood, "repeated", false},
		{"empty wrapped types", offer(with("a=accept-wrapped-types:")...), WarnAttributeNotUnderstood, "is empty", false},
		{"max-size 0", offer(with("a=max-size:0")...), WarnAttributeNotUnderstood, "max-size:0", false},
		{"max-size negative", offer(with("a=max-size:-5")...), WarnAttributeNotUnderstood, "not a decimal", false},
		{"max-size huge", offer(with("a=max-size:99999999999999999999")...), WarnAttributeNotUnderstood, "not a decimal", false},
		{"max-size twice", offer(with("a=max-size:1", "a=max-size:2")...), WarnAttributeNotUnderstood, "repeated", false},
		{"setup holdconn", offer(with("a=setup:holdconn")...), WarnAttributeNotUnderstood, "holdconn", false},
		{"setup unknown", offer(with("a=setup:eager")...), WarnAttributeNotUnderstood, "'eager'", false},
		{"setup empty", offer(with("a=setup")...), WarnAttributeNotUnderstood, "''", false},
		{"setup twice", offer(with("a=setup:active", "a=setup:passive")...), WarnAttributeNotUnderstood, "repeated", false},
		{"two directions", offer(with("a=sendonly", "a=recvonly")...), WarnAttributeNotUnderstood, "more than one direction", false},
		{"direction with value", offer(with("a=sendonly:yes")...), WarnAttributeNotUnderstood, "takes no value", false},
		{"direction with trailing space", offer(with("a=sendonly ")...), WarnAttributeNotUnderstood, "whitespace", false},
		{"two session-level setups", sdpLines(append(append([]string{}, head...), append([]string{"a=setup:active", "a=setup:active"}, mline...)...)...),
			WarnAttributeNotUnderstood, "session-level", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse([]byte(tc.in))
			var e *Error
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &e) {
				t.Fatalf("Parse = %#v, %v; want an *Error wrapping ErrInvalid\n%s", m, err, tc.in)
			}
			if e.Code != tc.code {
				t.Errorf("code %d, want %d (%s)", e.Code, tc.code, e.Reason)
			}
			if !strings.Contains(e.Reason, tc.reason) {
				t.Errorf("reason %q does not contain %q", e.Reason, tc.reason)
			}
			if got := errors.Is(err, ErrRejected); got != tc.rejected {
				t.Errorf("errors.Is(err, ErrRejected) = %v, want %v", got, tc.rejected)
			}
			if r := warningSafe(e.Reason); r != "" {
				t.Errorf("reason %q is not Warning-safe: %s", e.Reason, r)
			}
		})
	}
}
