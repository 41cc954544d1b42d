package sipx

import (
	"bytes"
	"io"
	"net"
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
