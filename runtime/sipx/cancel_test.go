package sipx

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// holdGate is a slog.Handler that stops the goroutine holding an incoming INVITE at
// its "INVITE held" record, the last thing it does before it waits on the driver, the
// CANCEL and the transaction, until the test lets it go: a way to make those ready in
// an order the scheduler would rarely choose.
type holdGate struct {
	held    chan struct{}
	release chan struct{}
	// done lets every held goroutine go when the test ends, failed or not, so that the
	// endpoint's Close, which waits for them, does not hang a failed test.
	done chan struct{}
}

func (g *holdGate) Enabled(context.Context, slog.Level) bool { return true }
func (g *holdGate) WithAttrs([]slog.Attr) slog.Handler       { return g }
func (g *holdGate) WithGroup(string) slog.Handler            { return g }
func (g *holdGate) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "INVITE held" {
		return nil
	}
	select {
	case g.held <- struct{}{}:
	case <-g.done:
		return nil
	}
	select {
	case <-g.release:
	case <-g.done:
	}
	return nil
}

// TestCancelEndsTransactionFirst: a CANCEL whose transaction has ended (sipgo's 487
// sent and ACKed) before the goroutine holding the INVITE looks at it reaches the
// driver as Handler.Cancel, the leg waiting for its Reject, never as Handler.Failed
// with a transport error. Seen once through Kamailio over TLS, under load; here the
// gate holds that goroutine back until a repeated CANCEL is answered 481, which means
// the INVITE transaction is gone. The goroutine then finds both the CANCEL and the
// transaction's end, and a select without an order between them picks the failure
// half the time: twelve rounds.
func TestCancelEndsTransactionFirst(t *testing.T) {
	const rounds = 12
	ctx := testCtx(t)
	gate := &holdGate{held: make(chan struct{}), release: make(chan struct{}), done: make(chan struct{})}
	b := startEP(t, Config{Name: "bob", Identity: "sip:bob@b.example", Logger: slog.New(gate)})
	t.Cleanup(func() { close(gate.done) }) // runs before startEP's Close
	for i := range rounds {
		p := dialRawTCP(t, ctx, b.TCPAddr())
		call := &rawCall{target: "sip:bob@" + b.TCPAddr(), callID: fmt.Sprintf("%s-%d@raw", randToken(6), i),
			fromTag: randToken(4), branch: "z9hG4bK-raw" + randToken(6)}
		p.send(call.request("INVITE", p.addr, "", "Contact: <sip:peer@"+p.addr+";transport=tcp>\nContent-Type: application/sdp\n", sdpOffer))
		select {
		case <-gate.held:
		case <-ctx.Done():
			t.Fatalf("round %d: the INVITE was never held", i)
		}
		inv := b.rec.next(t, ctx, "invite")
		p.send(call.request("CANCEL", p.addr, "", "", ""))
		var toTag string
		for got := map[string]int{}; got["INVITE"] == 0 || got["CANCEL"] == 0; {
			res := p.readFinal(ctx)
			got[string(res.CSeq().MethodName)] = res.StatusCode
			if res.CSeq().MethodName == sip.INVITE {
				if res.StatusCode != 487 {
					t.Fatalf("round %d: the cancelled INVITE got %d", i, res.StatusCode)
				}
				toTag = tagOf(res.To().Params)
			}
		}
		p.send(call.request("ACK", p.addr, toTag, "", ""))
		// The INVITE transaction ends on the ACK (Timer I is 0 over TCP); a CANCEL that
		// finds none is answered 481 (RFC 3261 §9.2).
		for p.send(call.request("CANCEL", p.addr, "", "", "")); p.readFinal(ctx).StatusCode != 481; {
			p.send(call.request("CANCEL", p.addr, "", "", ""))
		}
		gate.release <- struct{}{}
		if ev := b.rec.next(t, ctx, "cancel"); ev.leg != inv.leg {
			t.Fatalf("round %d: cancel of %s, want %s", i, ev.leg, inv.leg)
		}
		if err := b.Reject(inv.leg, 487, "", nil); err != nil {
			t.Fatalf("round %d: Reject after the cancel: %v", i, err)
		}
	}
	b.rec.none(t)
}

// request is a request of c's INVITE transaction over TCP from addr: the INVITE, its
// CANCEL (same branch, RFC 3261 §9.1) or the ACK of a non-2xx (same branch, §17.1.1.3).
func (c *rawCall) request(method, addr, toTag, extra, body string) string {
	to := "<" + c.target + ">"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	return fmt.Sprintf("%s %s SIP/2.0\n"+
		"Via: SIP/2.0/TCP %s;branch=%s\n"+
		"Max-Forwards: 70\n"+
		"From: <sip:peer@127.0.0.1>;tag=%s\n"+
		"To: %s\n"+
		"Call-ID: %s\n"+
		"CSeq: 1 %s\n"+
		"%s"+
		"Content-Length: {{CL}}\n\n%s", method, c.target, addr, c.branch, c.fromTag, to, c.callID, method, extra, body)
}

// rawTCP is a hand-driven SIP peer on one TCP connection: rawPeer's counterpart where a
// transaction must end at once (Timer I and J are zero on a reliable transport).
type rawTCP struct {
	t    *testing.T
	nc   net.Conn
	r    *bufio.Reader
	addr string
}

func dialRawTCP(t *testing.T, ctx context.Context, to string) *rawTCP {
	t.Helper()
	nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", to)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	return &rawTCP{t: t, nc: nc, r: bufio.NewReader(nc), addr: nc.LocalAddr().String()}
}

func (p *rawTCP) send(msg string) {
	p.t.Helper()
	if _, err := p.nc.Write(rawWire(msg)); err != nil {
		p.t.Fatal(err)
	}
}

// readFinal returns the next final response, framed by its Content-Length
// (RFC 3261 §18.3), skipping provisional ones and requests.
func (p *rawTCP) readFinal(ctx context.Context) *sip.Response {
	p.t.Helper()
	for {
		var head strings.Builder
		length := 0
		for {
			line, err := p.r.ReadString('\n')
			if err != nil {
				p.t.Fatalf("raw TCP peer read: %v (%v)", err, ctx.Err())
			}
			if line == "\r\n" && head.Len() == 0 {
				continue // keep-alive (RFC 5626 §3.5.1)
			}
			head.WriteString(line)
			if line == "\r\n" {
				break
			}
			if k, v, ok := strings.Cut(line, ":"); ok && (strings.EqualFold(strings.TrimSpace(k), "Content-Length") || strings.TrimSpace(k) == "l") {
				if length, err = strconv.Atoi(strings.TrimSpace(v)); err != nil {
					p.t.Fatalf("raw TCP peer: Content-Length %q", v)
				}
			}
		}
		body := make([]byte, length)
		if _, err := io.ReadFull(p.r, body); err != nil {
			p.t.Fatalf("raw TCP peer read body: %v", err)
		}
		m, err := sip.ParseMessage(append([]byte(head.String()), body...))
		if err != nil {
			p.t.Fatalf("endpoint sent unparsable bytes: %v\n%s", err, head.String())
		}
		if r, ok := m.(*sip.Response); ok && r.StatusCode >= 200 {
			return r
		}
	}
}
