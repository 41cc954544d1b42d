package msrpsdp

import "strings"

// Shared fixtures for the tests of this package.

// designOffer is the offer of DESIGN.md §6, byte for byte as Marshal writes it.
const designOffer = "v=0\r\n" +
	"o=- 2890844526 1 IN IP4 127.0.0.1\r\n" +
	"s=-\r\n" +
	"c=IN IP4 127.0.0.1\r\n" +
	"t=0 0\r\n" +
	"m=message 40001 TCP/MSRP *\r\n" +
	"a=path:msrp://127.0.0.1:40001/a1b2c3;tcp\r\n" +
	"a=accept-types:message/cpim\r\n" +
	"a=accept-wrapped-types:*\r\n" +
	"a=sendonly\r\n" +
	"a=setup:active\r\n" +
	"a=max-size:104857600\r\n"

// designMedia is designOffer as a Media.
var designMedia = Media{
	Host:               "127.0.0.1",
	Port:               40001,
	Path:               []string{"msrp://127.0.0.1:40001/a1b2c3;tcp"},
	Setup:              SetupActive,
	Direction:          SendOnly,
	AcceptTypes:        []string{"message/cpim"},
	AcceptWrappedTypes: []string{"*"},
	MaxSize:            104857600,
}

// sdpLines joins lines with CRLF and a trailing CRLF.
func sdpLines(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n" }

// head is the session part every test SDP starts with.
var head = []string{"v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0"}

// offer builds a session description from head plus the given lines.
func offer(lines ...string) string { return sdpLines(append(append([]string{}, head...), lines...)...) }

// mline is a valid m=message line and the attributes it needs.
var mline = []string{
	"m=message 40001 TCP/MSRP *",
	"a=path:msrp://127.0.0.1:40001/a1b2c3;tcp",
	"a=accept-types:message/cpim",
}

// with returns mline followed by extra lines.
func with(extra ...string) []string { return append(append([]string{}, mline...), extra...) }
