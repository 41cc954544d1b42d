package runtime_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/runtime"
)

// haveIPv6Loopback reports whether ::1 can be bound here (a container may have no IPv6).
func haveIPv6Loopback() bool {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// TestBindAndAdvertise: an instance binds what the operator configures — a wildcard or an
// IPv6 address — and puts the address peers should use on the wire: in SIP Via and
// Contact and in SDP c= and a=path. A SIP peer written here from RFC 3261 (not sipx)
// registers as an extra ad-hoc member, reads the INVITE its PF-B sends it byte by byte and
// declines it (486); every other member still gets the message byte-exact.
func TestBindAndAdvertise(t *testing.T) {
	for _, tc := range []struct {
		name, host, advertise, want, transport string
		ipv6                                   bool
	}{
		{"wildcard IPv4 advertising 127.0.0.1/udp", "0.0.0.0", "127.0.0.1", "127.0.0.1", "udp", false},
		{"wildcard IPv4 advertising 127.0.0.1/tcp", "0.0.0.0", "127.0.0.1", "127.0.0.1", "tcp", false},
		{"IPv6 loopback/udp", "::1", "", "::1", "udp", true},
		{"IPv6 loopback/tcp", "::1", "", "::1", "tcp", true},
		{"wildcard IPv6 advertising ::1/udp", "::", "::1", "::1", "udp", true},
		{"wildcard IPv6 advertising ::1/tcp", "::", "::1", "::1", "tcp", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ipv6 && !haveIPv6Loopback() {
				t.Skip("this machine cannot bind ::1 (no IPv6 loopback): nothing to test over IPv6")
			}
			t.Parallel()
			ctx := testCtx(t, time.Minute)
			v, _ := fsm.VariantByName("fig1")
			r := startGroup(t, ctx, runtime.GroupConfig{Variant: v, Members: 2, PFBs: 1, Transport: tc.transport,
				ChunkSize: 32 << 10, Host: tc.host, Advertise: tc.advertise})
			for _, n := range r.g.Nodes() {
				for what, addr := range map[string]string{"SIPAddr": n.SIPAddr(), "MSRPAddr": n.MSRPAddr()} {
					if h, _, _ := net.SplitHostPort(addr); h != tc.want {
						t.Errorf("%s.%s = %s, want host %s", n.Name(), what, addr, tc.want)
					}
				}
			}
			// The Contact each member registered with, as its PF-B stored it from the wire.
			for _, m := range r.members {
				if contact, ok := r.g.PFBs[0].Lookup(m); !ok || !strings.Contains(contact, "@"+uriHost(tc.want)+":") {
					t.Errorf("%s registered contact %q, want one at %s", m, contact, tc.want)
				}
			}

			peer := startRawMember(t, ctx, tc.want, "sip:raw@b1.example", r.g.PFBs[0].SIPAddr())
			invite := make(chan []byte, 1)
			go peer.declineInvite(invite)
			msg := payload(100<<10, 11)
			r.send(t, ctx, runtime.AdHocURI, append(append([]string(nil), r.members...), "sip:raw@b1.example"), msg)
			r.checkDelivered(t, msg, nil)
			if o := r.outcome.Of("sip:raw@b1.example"); o.Kind != core.Failed || o.Status != 486 {
				t.Errorf("the raw member declined; the sender learned %v", o)
			}
			var raw []byte
			select {
			case raw = <-invite:
			case <-ctx.Done():
				t.Fatal("the raw member got no INVITE")
			}
			if raw == nil {
				t.Fatal("the raw member could not read its INVITE")
			}
			checkAdvertised(t, raw, tc.want, tc.host)
		})
	}
}

func uriHost(ip string) string {
	if strings.Contains(ip, ":") {
		return "[" + ip + "]"
	}
	return ip
}

// checkAdvertised reads an INVITE as it came off the wire: every Via and the Contact, and
// the SDP's c= and a=path, name the advertised address and never the bound wildcard.
func checkAdvertised(t *testing.T, raw []byte, want, bound string) {
	t.Helper()
	head, body, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(head, "\r\n\r\n"...))))
	tp.ReadLine() // request line
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("INVITE headers: %v\n%s", err, raw)
	}
	at := uriHost(want)
	vias := append(h.Values("Via"), h.Values("V")...)
	if len(vias) < 2 {
		t.Errorf("INVITE has Vias %q: want the core's and the PF-B's", vias)
	}
	for _, via := range vias {
		for _, one := range strings.Split(via, ",") {
			if !strings.Contains(one, " "+at+":") {
				t.Errorf("Via %q does not name %s", one, at)
			}
		}
	}
	contact := h.Get("Contact")
	if contact == "" {
		contact = h.Get("M")
	}
	if !strings.Contains(contact, "@"+at+":") {
		t.Errorf("Contact %q does not name %s", contact, at)
	}
	sdp := string(body)
	if i := strings.Index(sdp, "v=0"); i >= 0 {
		sdp = sdp[i:]
	}
	family := "IP4"
	if strings.Contains(want, ":") {
		family = "IP6"
	}
	if !strings.Contains(sdp, "\r\nc=IN "+family+" "+want+"\r\n") {
		t.Errorf("SDP c= does not name %s:\n%s", want, sdp)
	}
	if !strings.Contains(sdp, "a=path:msrp://"+at+":") {
		t.Errorf("SDP a=path does not name %s:\n%s", at, sdp)
	}
	if bound != want && (strings.Contains(string(raw), " "+bound+"\r\n") || strings.Contains(string(raw), uriHost(bound)+":")) {
		t.Errorf("the INVITE names the bound wildcard %s:\n%s", bound, raw)
	}
}

// rawMember is a SIP user agent written from RFC 3261 for this test: it registers over UDP
// and takes its INVITE over TCP (its Contact says transport=tcp).
type rawMember struct {
	t  *testing.T
	ln net.Listener
}

func startRawMember(t *testing.T, ctx context.Context, host, aor, registrar string) *rawMember {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	uc, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if d, ok := ctx.Deadline(); ok {
		uc.SetDeadline(d)
	}
	_, tport, _ := net.SplitHostPort(ln.Addr().String())
	_, uport, _ := net.SplitHostPort(uc.LocalAddr().String())
	user := strings.TrimPrefix(strings.SplitN(aor, "@", 2)[0], "sip:")
	domain := strings.SplitN(aor, "@", 2)[1]
	at := uriHost(host)
	reg := "REGISTER sip:" + domain + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + at + ":" + uport + ";branch=z9hG4bK-raw-reg-1;rport\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <" + aor + ">;tag=rawreg\r\n" +
		"To: <" + aor + ">\r\n" +
		"Call-ID: raw-register-1@" + at + "\r\n" +
		"CSeq: 1 REGISTER\r\n" +
		"Contact: <sip:" + user + "@" + at + ":" + tport + ";transport=tcp>\r\n" +
		"Expires: 600\r\n" +
		"Content-Length: 0\r\n\r\n"
	dst, err := net.ResolveUDPAddr("udp", registrar)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := uc.WriteTo([]byte(reg), dst); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		n, _, err := uc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("raw member: no answer to REGISTER: %v", err)
		}
		line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
		if strings.HasPrefix(line, "SIP/2.0 1") {
			continue
		}
		if line != "SIP/2.0 200 OK" {
			t.Fatalf("raw member: REGISTER answered %q", line)
		}
		break
	}
	return &rawMember{t: t, ln: ln}
}

// declineInvite takes one TCP connection, reads one INVITE (RFC 3261 §18.3: the body's
// length is Content-Length), hands its bytes to out, and answers 486 Busy Here (§8.2.6:
// the request's Vias, From, Call-ID and CSeq, a To with our tag). It sends nil on a
// failure; it ends when the listener closes.
func (p *rawMember) declineInvite(out chan<- []byte) {
	c, err := p.ln.Accept()
	if err != nil {
		out <- nil
		return
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		raw, h, err := readSIP(br)
		if err != nil {
			out <- nil
			return
		}
		if !bytes.HasPrefix(raw, []byte("INVITE ")) {
			continue // an ACK for our 486 goes hop by hop over UDP or here; nothing to do
		}
		var resp strings.Builder
		resp.WriteString("SIP/2.0 486 Busy Here\r\n")
		for _, v := range h.Values("Via") {
			resp.WriteString("Via: " + v + "\r\n")
		}
		resp.WriteString("From: " + h.Get("From") + "\r\n")
		resp.WriteString("To: " + h.Get("To") + ";tag=rawmember\r\n")
		resp.WriteString("Call-ID: " + h.Get("Call-ID") + "\r\n")
		resp.WriteString("CSeq: " + h.Get("CSeq") + "\r\n")
		resp.WriteString("Content-Length: 0\r\n\r\n")
		out <- raw
		if _, err := io.WriteString(c, resp.String()); err != nil {
			return
		}
		// Keep the connection until the peer is done with it (its ACK, then close).
		io.Copy(io.Discard, br)
		return
	}
}

// readSIP reads one SIP message from a stream.
func readSIP(br *bufio.Reader) ([]byte, textproto.MIMEHeader, error) {
	var head bytes.Buffer
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, nil, err
		}
		if head.Len() == 0 && strings.TrimSpace(line) == "" {
			continue // keep-alive CRLFs (RFC 5626 §3.5.1)
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(head.Bytes())))
	if _, err := tp.ReadLine(); err != nil {
		return nil, nil, err
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		return nil, nil, err
	}
	for short, long := range map[string]string{"V": "Via", "F": "From", "T": "To", "I": "Call-Id", "L": "Content-Length", "M": "Contact"} {
		h[textproto.CanonicalMIMEHeaderKey(long)] = append(h[textproto.CanonicalMIMEHeaderKey(long)], h[short]...)
	}
	n, err := strconv.Atoi(strings.TrimSpace(h.Get("Content-Length")))
	if err != nil || n < 0 || n > 1<<16 {
		return nil, nil, fmt.Errorf("content-length %q", h.Get("Content-Length"))
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return nil, nil, err
	}
	return append(head.Bytes(), body...), h, nil
}
