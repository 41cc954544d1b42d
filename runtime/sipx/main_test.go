package sipx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind, and
// shrinks sipgo's process-wide timers (allowed here, in the test binary:
// every endpoint of this process shares them) so that transaction timeouts
// happen within a test's deadline: T1 50ms makes Timer B 3.2s.
func TestMain(m *testing.M) {
	sip.SetDefaultLogger(slog.New(slog.DiscardHandler))
	sip.SetTimers(50*time.Millisecond, 4*time.Second, 5*time.Second)
	goleak.VerifyTestMain(m)
}

func init() {
	// Quiet unless asked: SIPX_TEST_LOG=1 prints sipx and sipgo debug logs.
	if os.Getenv("SIPX_TEST_LOG") != "" {
		testLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	// SIPX_TEST_WIRE=1 prints every SIP message sipgo reads or writes.
	sip.SIPDebug = os.Getenv("SIPX_TEST_WIRE") != ""
}

var testLogger *slog.Logger

// testCtx bounds every wait in a test.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// event is one Handler callback, recorded.
type event struct {
	kind string // invite, ack, cancel, bye, response, failed
	leg  string
	in   IncomingInvite
	res  Response
	err  error
}

func (ev event) String() string {
	switch ev.kind {
	case "response":
		return fmt.Sprintf("%s(%s, %d %s)", ev.kind, ev.leg, ev.res.Status, ev.res.Reason)
	case "failed":
		return fmt.Sprintf("%s(%s, %v)", ev.kind, ev.leg, ev.err)
	case "invite":
		// Enough to tell which call an unexpected INVITE belongs to: a stray from
		// another test reusing the port, or one of ours delivered twice.
		return fmt.Sprintf("%s(%s, from %s over %s, Call-ID %s, Via %s)", ev.kind, ev.leg, ev.in.From, ev.in.Transport,
			ev.in.Header("Call-ID"), ev.in.Header("Via"))
	}
	return fmt.Sprintf("%s(%s)", ev.kind, ev.leg)
}

// recorder is a Handler that queues every callback, as a driver's mailbox
// would.
type recorder struct {
	ch chan event
}

func newRecorder() *recorder { return &recorder{ch: make(chan event, 4096)} }

func (r *recorder) handler() Handler {
	return Handler{
		Invite:   func(leg string, in IncomingInvite) { r.ch <- event{kind: "invite", leg: leg, in: in} },
		Ack:      func(leg string) { r.ch <- event{kind: "ack", leg: leg} },
		Cancel:   func(leg string) { r.ch <- event{kind: "cancel", leg: leg} },
		Bye:      func(leg string) { r.ch <- event{kind: "bye", leg: leg} },
		Response: func(leg string, res Response) { r.ch <- event{kind: "response", leg: leg, res: res} },
		Failed:   func(leg string, err error) { r.ch <- event{kind: "failed", leg: leg, err: err} },
	}
}

// next returns the next callback, which must be of kind.
func (r *recorder) next(t *testing.T, ctx context.Context, kind string) event {
	t.Helper()
	return r.nextOf(t, ctx, kind)
}

// nextOf returns the next callback, which must be of one of kinds: for peers whose
// requests may be handled in either order (sipgo handles each on its own goroutine).
func (r *recorder) nextOf(t *testing.T, ctx context.Context, kinds ...string) event {
	t.Helper()
	select {
	case ev := <-r.ch:
		if !slices.Contains(kinds, ev.kind) {
			t.Fatalf("next callback is %v, want one of %v", ev, kinds)
		}
		return ev
	case <-ctx.Done():
		t.Fatalf("no %v callback: %v", kinds, ctx.Err())
	}
	return event{}
}

// none checks that no callback is queued right now.
func (r *recorder) none(t *testing.T) {
	t.Helper()
	select {
	case ev := <-r.ch:
		t.Fatalf("unexpected callback %v", ev)
	default:
	}
}

type testEP struct {
	*Endpoint
	rec *recorder
}

func startEP(t *testing.T, cfg Config) *testEP {
	t.Helper()
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.T1 == 0 {
		cfg.T1 = 100 * time.Millisecond
	}
	if cfg.Logger == nil && testLogger != nil {
		cfg.Logger = testLogger
	}
	rec := newRecorder()
	e, err := Start(context.Background(), cfg, rec.handler())
	if err != nil {
		t.Fatalf("Start(%s): %v", cfg.Name, err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close(%s): %v", cfg.Name, err)
		}
	})
	return &testEP{Endpoint: e, rec: rec}
}

// hops records what a Proxy forwarded.
type hops struct {
	mu  sync.Mutex
	all []proxyHop
	ch  chan proxyHop
}

func (h *hops) observe(x proxyHop) {
	h.mu.Lock()
	h.all = append(h.all, x)
	h.mu.Unlock()
	select {
	case h.ch <- x:
	default:
	}
}

// waitFor waits until the proxy has forwarded a message matching pred.
func (h *hops) waitFor(t *testing.T, ctx context.Context, what string, pred func(proxyHop) bool) proxyHop {
	t.Helper()
	for {
		h.mu.Lock()
		for _, x := range h.all {
			if pred(x) {
				h.mu.Unlock()
				return x
			}
		}
		h.mu.Unlock()
		select {
		case <-h.ch:
		case <-ctx.Done():
			t.Fatalf("proxy never forwarded %s", what)
		}
	}
}

func startProxy(t *testing.T, routes map[string]string) (*Proxy, *hops) {
	t.Helper()
	h := &hops{ch: make(chan proxyHop, 1024)}
	p, err := StartProxy(context.Background(), ProxyConfig{Host: "127.0.0.1", Routes: routes, Logger: testLogger, observe: h.observe})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p, h
}

// setRoutes fills in a proxy's routing table once the endpoints exist (the
// endpoints need the proxy's address first).
func (p *Proxy) setRoutes(t *testing.T, routes map[string]string) {
	t.Helper()
	for d, a := range routes {
		if err := p.SetRoute(d, a); err != nil {
			t.Fatal(err)
		}
	}
}

// rawPeer is a hand-driven SIP peer on a UDP socket, for exact (and
// malformed) bytes and for observing retransmissions.
type rawPeer struct {
	t    *testing.T
	pc   net.PacketConn
	sr   *stampedReader
	to   *net.UDPAddr
	addr string
	// arrived is when the kernel received the message read last (the
	// time it was read where the kernel says nothing).
	arrived time.Time
}

func newRawPeer(t *testing.T, to string) *rawPeer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return rawPeerOn(t, pc, to)
}

// rawPeerOn makes a raw peer of a bound socket, sending to to; the socket is closed at
// the test's end.
func rawPeerOn(t *testing.T, pc net.PacketConn, to string) *rawPeer {
	t.Helper()
	t.Cleanup(func() { _ = pc.Close() })
	ua, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		t.Fatal(err)
	}
	return &rawPeer{t: t, pc: pc, sr: newStampedReader(t, pc), to: ua, addr: pc.LocalAddr().String()}
}

// send writes msg with "\n" turned into CRLF and Content-Length filled in
// where it says {{CL}}.
func (p *rawPeer) send(msg string) {
	p.t.Helper()
	if _, err := p.pc.WriteTo(rawWire(msg), p.to); err != nil {
		p.t.Fatal(err)
	}
}

// rawWire is msg as the raw peers send it: "\n" turned into CRLF and
// Content-Length filled in where it says {{CL}}.
func rawWire(msg string) []byte {
	msg = strings.ReplaceAll(msg, "\r\n", "\n")
	head, body, _ := strings.Cut(msg, "\n\n")
	head = strings.ReplaceAll(head, "{{CL}}", fmt.Sprint(len(strings.ReplaceAll(body, "\n", "\r\n"))))
	return []byte(strings.ReplaceAll(head+"\n\n"+body, "\n", "\r\n"))
}

// read returns the next SIP message, or nil when ctx (or the optional
// shorter deadline) ends first.
func (p *rawPeer) read(ctx context.Context, within time.Duration) sip.Message {
	p.t.Helper()
	dl, _ := ctx.Deadline()
	if within > 0 && time.Now().Add(within).Before(dl) {
		dl = time.Now().Add(within)
	}
	_ = p.pc.SetReadDeadline(dl)
	buf := make([]byte, 65535)
	for {
		n, at, err := p.sr.read(buf)
		if at.IsZero() {
			at = time.Now()
		}
		p.arrived = at
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil
			}
			p.t.Fatalf("raw peer read: %v", err)
		}
		m, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
		if err != nil {
			p.t.Fatalf("endpoint sent unparsable bytes: %v\n%s", err, buf[:n])
		}
		return m
	}
}

// readResponse skips requests and provisional responses until a final
// response arrives; nil if none within.
func (p *rawPeer) readFinal(ctx context.Context, within time.Duration) *sip.Response {
	p.t.Helper()
	for {
		m := p.read(ctx, within)
		if m == nil {
			return nil
		}
		if r, ok := m.(*sip.Response); ok && r.StatusCode >= 200 {
			return r
		}
	}
}

func (p *rawPeer) port() string {
	_, port, _ := net.SplitHostPort(p.addr)
	return port
}

const sdpOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=message 40001 TCP/MSRP *\r\na=path:msrp://127.0.0.1:40001/a1b2c3;tcp\r\na=accept-types:message/cpim\r\na=sendonly\r\n"
const sdpAnswer = "v=0\r\no=- 2 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=message 41002 TCP/MSRP *\r\na=path:msrp://127.0.0.1:41002/kjd8s9;tcp\r\na=accept-types:message/cpim\r\na=recvonly\r\n"

const largeMsgTags = `+g.oma.sip-im.large-message;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.largemsg"`

// largeMessageHeaders are the INVITE headers of OMA CPM large message mode
// (DESIGN.md §6).
func largeMessageHeaders() []Header {
	return []Header{
		{"Accept-Contact", "*;+g.oma.sip-im.large-message"},
		{"P-Preferred-Service", "urn:urn-7:3gpp-service.ims.icsi.oma.cpm.largemsg"},
		{"Contribution-ID", "abcdef-0001"},
		{"Conversation-ID", "conv-0001"},
	}
}

// freeTCPPort returns a loopback TCP port that was free a moment ago.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
