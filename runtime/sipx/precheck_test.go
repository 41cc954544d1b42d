package sipx

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// memConn is a net.Conn that reads from a buffer and keeps what is written.
type memConn struct {
	r   *bytes.Reader
	out bytes.Buffer
}

func (c *memConn) Read(b []byte) (int, error)       { return c.r.Read(b) }
func (c *memConn) Write(b []byte) (int, error)      { return c.out.Write(b) }
func (c *memConn) Close() error                     { return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// TestPrecheckIPv6Host: RFC 5118 §4.2's unbracketed IPv6 reference in a
// Request-URI is answered 400.
func TestPrecheckIPv6Host(t *testing.T) {
	head := "OPTIONS sip:user@2001:db8::10 SIP/2.0\r\nTo: sip:user@2001:db8::10\r\nFrom: sip:user@example.com;tag=81x2\r\n" +
		"Via: SIP/2.0/UDP [::1];branch=z9hG4bKas3-111\r\nCall-ID: SSG9559905523997077@hlau_4100\r\nMax-Forwards: 70\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0"
	ck := checkMessage([]byte(head), nil)
	if ck.pass != nil || !bytes.HasPrefix(ck.answer, []byte("SIP/2.0 400 ")) {
		t.Fatalf("pass %q, answer %q", ck.pass, ck.answer)
	}
}

// FuzzPrecheck: whatever a peer sends on a stream, the pre-check neither
// panics nor hands on more than it received (plus the ": " it may add to a
// header field written without a space), and ends within the bytes given.
func FuzzPrecheck(f *testing.F) {
	for _, tc := range tortureCases {
		b, err := tortureBytes(tc.dir, tc.name)
		if err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\nContent-Length: 99999999999\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := newPrecheckConn(&memConn{r: bytes.NewReader(data)})
		out, err := io.ReadAll(c)
		if err != nil && err != errFraming {
			t.Fatal(err)
		}
		if len(out) > 2*len(data)+16 {
			t.Fatalf("%d bytes out of %d in", len(out), len(data))
		}
		_, _ = precheckPacketConnCheck(data)
	})
}

// precheckPacketConnCheck runs the datagram path without a socket.
func precheckPacketConnCheck(data []byte) (checked, bool) {
	end := bytes.Index(data, []byte("\r\n\r\n"))
	if end < 0 {
		return checked{}, false
	}
	_ = contentLength(data[:end])
	return checkMessage(data[:end], data[end+4:]), true
}

// benchInvite is an INVITE as cpmlink's roles send one: every request of a set-up
// crosses the pre-check at the core and at the role that takes it.
const benchInvite = "INVITE sip:m17@b7.example SIP/2.0\r\n" +
	"Via: SIP/2.0/TCP 127.0.0.1:40319;branch=z9hG4bK.8f2a9c1e3b7d4a60;alias\r\n" +
	"Via: SIP/2.0/TCP 127.0.0.1:38065;branch=z9hG4bK.1c0b9e7d2a4f6e13;rport=51234;received=127.0.0.1\r\n" +
	"Max-Forwards: 69\r\n" +
	"Record-Route: <sip:127.0.0.1:38065;transport=tcp;lr>\r\n" +
	"From: <sip:g1@cf.example>;tag=a73kszlfl\r\n" +
	"To: <sip:m17@b7.example>\r\n" +
	"Call-ID: 3848276298220188511@cf.example\r\n" +
	"CSeq: 1 INVITE\r\n" +
	"Contact: <sip:pfb7@127.0.0.1:40319;transport=tcp>\r\n" +
	"P-Asserted-Identity: <sip:g1@cf.example>\r\n" +
	"Accept-Contact: *;+g.oma.sip-im.large-message\r\n" +
	"Content-Type: application/sdp\r\n" +
	"Content-Length: 197\r\n\r\n" +
	"v=0\r\no=- 3848276298 3848276298 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=message 42917 TCP/MSRP *\r\na=accept-types:message/cpim\r\na=path:msrp://127.0.0.1:42917/s7fj29;tcp\r\na=setup:actpass\r\n"

// TestBenchInviteFramed: the benchmark's INVITE is well framed and passes whole.
func TestBenchInviteFramed(t *testing.T) {
	c := newPrecheckConn(&memConn{r: bytes.NewReader([]byte(benchInvite))})
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != benchInvite {
		t.Fatalf("handed on\n%q\nwant\n%q", out, benchInvite)
	}
}

// BenchmarkPrecheckInvite: what the pre-check costs one request on a stream.
func BenchmarkPrecheckInvite(b *testing.B) {
	msg := []byte(benchInvite)
	buf := make([]byte, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		c := newPrecheckConn(&memConn{r: bytes.NewReader(msg)})
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
	}
}

// TestPrecheckUnfolds: a request with a folded header field is handed on unfolded
// (normalize), and one written plainly is handed on as it came.
func TestPrecheckUnfolds(t *testing.T) {
	folded := strings.Replace(benchInvite, "Max-Forwards: 69\r\n", "Subject: a long\r\n  subject\r\nMax-Forwards: 69\r\n", 1)
	end := strings.Index(folded, "\r\n\r\n")
	ck := checkMessage([]byte(folded[:end]), []byte(folded[end+4:]))
	if ck.pass == nil {
		t.Fatalf("folded request refused: %q", ck.answer)
	}
	if !bytes.Contains(ck.pass, []byte("\r\nSubject: a long subject\r\n")) {
		t.Errorf("folded field not unfolded:\n%s", ck.pass)
	}
	end = strings.Index(benchInvite, "\r\n\r\n")
	ck = checkMessage([]byte(benchInvite[:end]), []byte(benchInvite[end+4:]))
	if string(ck.pass) != benchInvite {
		t.Errorf("plain request changed:\n%q", ck.pass)
	}
}
