package msrp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: every
// goroutine the package starts must end when its endpoint is closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testCtx bounds every wait in a test.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// testEndpoint is an Endpoint serving a loopback listener on a free port.
type testEndpoint struct {
	*Endpoint
	addr *net.TCPAddr
}

func newTestEndpoint(t *testing.T, cfg Config) *testEndpoint {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ep := NewEndpoint(cfg)
	served := make(chan error, 1)
	go func() { served <- ep.Serve(l) }()
	t.Cleanup(func() {
		_ = ep.Close()
		// ErrClosed: the Serve goroutine first ran after Close (an endpoint
		// that only dials may finish its test before that).
		if err := <-served; err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return &testEndpoint{Endpoint: ep, addr: l.Addr().(*net.TCPAddr)}
}

// uri returns an msrp URI for session id on this endpoint's listener.
func (te *testEndpoint) uri(id string) URI {
	return MustParseURI(fmt.Sprintf("msrp://127.0.0.1:%d/%s;tcp", te.addr.Port, id))
}

// clientURI is a local URI for an endpoint that only dials (the port is
// informational: RFC 4975 matches sessions by the whole URI, not the socket).
func clientURI(id string) URI { return MustParseURI("msrp://127.0.0.1:9/" + id + ";tcp") }

func mustSession(t *testing.T, ep *Endpoint, cfg SessionConfig) *Session {
	t.Helper()
	s, err := ep.NewSession(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// rawPeer is a hand-driven MSRP peer on a raw TCP connection, for feeding
// exact (and malformed) bytes and reading the answers.
type rawPeer struct {
	t  *testing.T
	nc net.Conn
	rd *Reader
}

func dialRaw(t *testing.T, addr *net.TCPAddr) *rawPeer {
	t.Helper()
	nc, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawPeer{t: t, nc: nc, rd: NewReader(bufio.NewReader(nc), Limits{})}
}

func (p *rawPeer) send(s string) {
	p.t.Helper()
	if _, err := p.nc.Write([]byte(s)); err != nil {
		p.t.Fatal(err)
	}
}

// next reads the next frame the endpoint sent.
func (p *rawPeer) next() *Frame {
	p.t.Helper()
	var f Frame
	if err := p.rd.ReadFrame(&f); err != nil {
		p.t.Fatalf("reading from endpoint: %v", err)
	}
	return &f
}

// sendFrame builds a SEND with readable defaults.
func rawSEND(tid, to, from, msgID, rng, body string, flag byte, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "MSRP %s SEND\r\nTo-Path: %s\r\nFrom-Path: %s\r\nMessage-ID: %s\r\n", tid, to, from, msgID)
	if rng != "" {
		fmt.Fprintf(&b, "Byte-Range: %s\r\n", rng)
	}
	for _, e := range extra {
		b.WriteString(e + "\r\n")
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Type: text/plain\r\n\r\n%s\r\n", body)
	}
	fmt.Fprintf(&b, "-------%s%c\r\n", tid, flag)
	return b.String()
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// waitClosed waits for ch to be closed, bounded by ctx.
func waitClosed(t *testing.T, ctx context.Context, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-ctx.Done():
		t.Fatal("timed out waiting")
	}
}
