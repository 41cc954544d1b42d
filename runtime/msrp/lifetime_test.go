package msrp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Connection and session lifetime: one session's failure stays that session's
// (RFC 4975 §5.4 connection sharing), and a 200 is never given for a chunk the
// session does not take (§7.2).

// TestAbortLeavesPeerSessionsOnAcceptedConnection: A dials B and puts two
// sessions on the connection; B has seen the bind of the first only when it
// aborts it. B must not close the connection: A's second session, already on
// it, binds and delivers byte-exact, and a later session is still carried.
// (A closed connection here failed every session A had put on it: the fig3
// trace where one aborted session took the CF's other sessions with it.)
func TestAbortLeavesPeerSessionsOnAcceptedConnection(t *testing.T) {
	ctx := testCtx(t)
	a := newTestEndpoint(t, Config{})
	b := newTestEndpoint(t, Config{UnknownSessionHold: -1})
	sinks := make(chan *bytes.Buffer, 2)
	done := make(chan *WriterSink, 2)
	accept := func(*IncomingMessage) (Sink, error) {
		var buf bytes.Buffer
		ws := NewWriterSink(&buf, 0)
		sinks <- &buf
		done <- ws
		return ws, nil
	}
	downA1 := make(chan error, 1)
	sb1 := mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("b1"), Remote: Path{a.uri("a1")}})
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("b2"), Remote: Path{a.uri("a2")}, Accept: accept})
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("b3"), Remote: Path{a.uri("a3")}, Accept: accept})
	sa1 := mustSession(t, a.Endpoint, SessionConfig{Local: a.uri("a1"), Remote: Path{b.uri("b1")},
		OnLinkDown: func(err error) { downA1 <- err }})
	sa2 := mustSession(t, a.Endpoint, SessionConfig{Local: a.uri("a2"), Remote: Path{b.uri("b2")}})
	if _, err := sa1.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	// a2 is on the connection, its bind not yet sent: B cannot know of it.
	if l, err := sa2.Dial(ctx); err != nil || !l.Reused {
		t.Fatalf("second session: %+v, %v (want the pooled connection)", l, err)
	}
	sb1.Abort(errors.New("the state machine gave up"))
	if n := b.Conns(); n != 1 {
		t.Fatalf("B holds %d connections after the abort, want the shared one kept", n)
	}

	deliver := func(s *Session, msg []byte) {
		t.Helper()
		if _, err := s.Send(ctx, &Message{ContentType: "application/octet-stream", Body: bytes.NewReader(msg), Size: int64(len(msg))}); err != nil {
			t.Fatalf("%s: send: %v", s.Local(), err)
		}
		buf, ws := <-sinks, <-done
		waitClosed(t, ctx, ws.Done())
		if ws.Err() != nil || !bytes.Equal(buf.Bytes(), msg) {
			t.Fatalf("%s: received %d bytes (err %v), want %d byte-exact", s.Local(), buf.Len(), ws.Err(), len(msg))
		}
	}
	answered, err := sa2.Bind(ctx)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-answered:
	case <-ctx.Done():
		t.Fatal("no answer to the second session's bind")
	}
	if err != nil {
		t.Fatalf("the second session's bind failed after the first was aborted: %v", err)
	}
	deliver(sa2, randBytes(40<<10, 11))

	// A session started after the abort is carried too.
	sa3 := mustSession(t, a.Endpoint, SessionConfig{Local: a.uri("a3"), Remote: Path{b.uri("b3")}})
	if l, err := sa3.Connect(ctx); err != nil || !l.Reused {
		t.Fatalf("later session: %+v, %v (want the pooled connection)", l, err)
	}
	deliver(sa3, randBytes(9<<10, 12))

	// Only the aborted session's peer learns of it, when it sends: 481.
	select {
	case err := <-downA1:
		t.Fatalf("a1's link went down with the other session's abort: %v", err)
	default:
	}
	if _, err := sa1.Send(ctx, &Message{ContentType: "text/plain", Body: strings.NewReader("hello?")}); StatusOf(err) != StatusNoSession {
		t.Fatalf("send to the aborted session = %v, want 481", err)
	}
	if n := a.Conns(); n != 1 {
		t.Fatalf("A holds %d connections, want the one shared", n)
	}
}

// breakableConn is a dialled connection whose writes the test makes fail (a
// peer gone, a broken pipe) while its reader has not noticed yet: reads go on
// until the test lets Close through, as for a reader busy in a sink.
type breakableConn struct {
	net.Conn
	mu      sync.Mutex
	broken  bool
	release <-chan struct{}
	once    sync.Once
}

func (c *breakableConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	broken := c.broken
	c.mu.Unlock()
	if broken {
		return 0, &net.OpError{Op: "write", Net: "tcp", Err: syscall.EPIPE}
	}
	return c.Conn.Write(p)
}

func (c *breakableConn) Close() error {
	c.once.Do(func() {
		go func() {
			<-c.release
			_ = c.Conn.Close()
		}()
	})
	return nil
}

func (c *breakableConn) breakWrites() {
	c.mu.Lock()
	c.broken = true
	c.mu.Unlock()
}

// TestPoolDropsConnectionWhoseWriteFailed: a connection whose write failed
// leaves the pool at once, before its reader notices: the next session to
// the same peer gets a new connection and delivers, instead of being bound
// to the dead one (broken pipe, then 408).
func TestPoolDropsConnectionWhoseWriteFailed(t *testing.T) {
	ctx := testCtx(t)
	release := make(chan struct{})
	var (
		mu     sync.Mutex
		dialed []*breakableConn
	)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		bc := &breakableConn{Conn: nc, release: release}
		mu.Lock()
		dialed = append(dialed, bc)
		mu.Unlock()
		return bc, nil
	}
	a := newTestEndpoint(t, Config{Dial: dial})
	b := newTestEndpoint(t, Config{})
	// Registered after the endpoints, so it runs before they close.
	t.Cleanup(func() { close(release) })
	var got bytes.Buffer
	ws := NewWriterSink(&got, 0)
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("b1"), Remote: Path{a.uri("a1")}})
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("b2"), Remote: Path{a.uri("a2")},
		Accept: func(*IncomingMessage) (Sink, error) { return ws, nil }})
	sa1 := mustSession(t, a.Endpoint, SessionConfig{Local: a.uri("a1"), Remote: Path{b.uri("b1")}})
	if _, err := sa1.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	dialed[0].breakWrites()
	mu.Unlock()
	if _, err := sa1.Send(ctx, &Message{ContentType: "text/plain", Body: strings.NewReader("lost")}); err == nil {
		t.Fatal("a send on a connection whose writes fail succeeded")
	}
	sa2 := mustSession(t, a.Endpoint, SessionConfig{Local: a.uri("a2"), Remote: Path{b.uri("b2")}})
	l, err := sa2.Connect(ctx)
	if err != nil {
		t.Fatalf("a session after the connection died: %v", err)
	}
	if l.Reused {
		t.Fatal("the pool handed out the connection whose write had failed")
	}
	msg := randBytes(20<<10, 13)
	if _, err := sa2.Send(ctx, &Message{ContentType: "application/octet-stream", Body: bytes.NewReader(msg), Size: int64(len(msg))}); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ctx, ws.Done())
	if !bytes.Equal(got.Bytes(), msg) {
		t.Fatalf("received %d bytes, want %d byte-exact", got.Len(), len(msg))
	}
}

// wirePeer is a peer written from RFC 4975 §7 for these tests: it writes
// frames as literal text and reads the endpoint's frames line by line,
// without runtime/msrp's encoder or parser. Every frame here is bodiless or
// has a short text body without the end-line in it.
type wirePeer struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func newWirePeer(t *testing.T, nc net.Conn) *wirePeer {
	t.Helper()
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &wirePeer{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (p *wirePeer) write(s string) {
	p.t.Helper()
	if _, err := io.WriteString(p.nc, s); err != nil {
		p.t.Fatal(err)
	}
}

// wireFrame is what the peer read: the start line's fields and the header
// lines.
type wireFrame struct {
	tid, method string
	status      int
	headers     []string
}

func (f wireFrame) header(name string) string {
	for _, h := range f.headers {
		if n, v, ok := strings.Cut(h, ":"); ok && strings.EqualFold(n, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// read reads one frame: "MSRP tid method" or "MSRP tid code [comment]",
// headers, then everything up to the end-line "-------tid" + flag.
func (p *wirePeer) read() wireFrame {
	p.t.Helper()
	line := func() string {
		s, err := p.br.ReadString('\n')
		if err != nil {
			p.t.Fatalf("reading from the endpoint: %v", err)
		}
		return strings.TrimSuffix(s, "\r\n")
	}
	start := strings.Fields(line())
	if len(start) < 3 || start[0] != "MSRP" {
		p.t.Fatalf("start line %q", start)
	}
	f := wireFrame{tid: start[1]}
	if _, err := fmt.Sscanf(start[2], "%d", &f.status); err != nil {
		f.method, f.status = start[2], 0
	}
	inHeaders := true
	for {
		l := line()
		if strings.HasPrefix(l, "-------"+f.tid) {
			return f
		}
		if l == "" {
			inHeaders = false
		} else if inHeaders {
			f.headers = append(f.headers, l)
		}
	}
}

// wireSEND is a SEND request as RFC 4975 §7.1.1 writes it.
func wireSEND(tid, to, from, msgID string, start, end, total int, body string, flag byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "MSRP %s SEND\r\nTo-Path: %s\r\nFrom-Path: %s\r\nMessage-ID: %s\r\nByte-Range: %d-%d/%d\r\n",
		tid, to, from, msgID, start, end, total)
	if body != "" {
		fmt.Fprintf(&b, "Content-Type: text/plain\r\n\r\n%s\r\n", body)
	}
	fmt.Fprintf(&b, "-------%s%c\r\n", tid, flag)
	return b.String()
}

// sendChunks sends msg in chunks of n bytes on the peer's connection and
// returns the status of each answer.
func (p *wirePeer) sendChunks(to, from, msgID, tidPrefix, msg string, n int) []int {
	p.t.Helper()
	var got []int
	for i, start := 0, 0; start < len(msg); i, start = i+1, start+n {
		end := min(start+n, len(msg))
		flag := byte('+')
		if end == len(msg) {
			flag = '$'
		}
		tid := fmt.Sprintf("%s%04d", tidPrefix, i)
		p.write(wireSEND(tid, to, from, msgID, start+1, end, len(msg), msg[start:end], flag))
		r := p.read()
		if r.tid != tid || r.method != "" {
			p.t.Fatalf("answer %+v to %s", r, tid)
		}
		got = append(got, r.status)
	}
	return got
}

// TestSendOnAnotherConnectionNever200: a session bound to one connection
// answers every SEND for it on a second connection 506, and takes none of
// its chunks (a 200 would take responsibility for them, RFC 4975 §7.2);
// the first connection goes on and delivers byte-exact.
func TestSendOnAnotherConnectionNever200(t *testing.T) {
	ctx := testCtx(t)
	b := newTestEndpoint(t, Config{})
	peerURI := "msrp://127.0.0.1:7/peer1234;tcp"
	accepted := make(chan *bytes.Buffer, 2)
	var ws *WriterSink
	sb := mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("bbbb"), Remote: Path{MustParseURI(peerURI)},
		Accept: func(*IncomingMessage) (Sink, error) {
			var buf bytes.Buffer
			ws = NewWriterSink(&buf, 0)
			accepted <- &buf
			return ws, nil
		}})
	to := b.uri("bbbb").String()
	dial := func() *wirePeer {
		nc, err := net.Dial("tcp", b.addr.String())
		if err != nil {
			t.Fatal(err)
		}
		return newWirePeer(t, nc)
	}
	first, second := dial(), dial()
	first.write(wireSEND("bind0001", to, peerURI, "bindmsg1", 1, 0, 0, "", '$'))
	if r := first.read(); r.status != StatusOK {
		t.Fatalf("bind on the first connection answered %d", r.status)
	}
	waitClosed(t, ctx, sb.Up())
	msg := "seven chunks of text from the wrong connection"
	for i, st := range second.sendChunks(to, peerURI, "lostmsg1", "sec", msg, 7) {
		if st != StatusWrongConnection {
			t.Errorf("chunk %d on the second connection answered %d, want 506", i+1, st)
		}
	}
	select {
	case <-accepted:
		t.Fatal("the session took a message from a connection it is not bound to")
	default:
	}
	for i, st := range first.sendChunks(to, peerURI, "goodmsg1", "fst", msg, 7) {
		if st != StatusOK {
			t.Fatalf("chunk %d on the bound connection answered %d", i+1, st)
		}
	}
	buf := <-accepted
	waitClosed(t, ctx, ws.Done())
	if buf.String() != msg {
		t.Fatalf("stored %q, want %q", buf.String(), msg)
	}
}

// TestActiveSessionRefusesPeerConnection: the double connect of fig3. The
// session is the active party (it will dial), and the peer connects to it
// as well and sends a whole message on its own connection before the dial:
// every chunk gets 506 and nothing reaches the session, which stays
// unbound. Then the session dials the peer, binds, and the peer's message
// on that connection is delivered byte-exact.
func TestActiveSessionRefusesPeerConnection(t *testing.T) {
	ctx := testCtx(t)
	b := newTestEndpoint(t, Config{})
	ln := listenLoopback(t)
	peerURI := fmt.Sprintf("msrp://%s/peer5678;tcp", ln.Addr())
	accepted := make(chan *bytes.Buffer, 2)
	var ws *WriterSink
	sb := mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("bbbb"), Remote: Path{MustParseURI(peerURI)}, Active: true,
		Accept: func(*IncomingMessage) (Sink, error) {
			var buf bytes.Buffer
			ws = NewWriterSink(&buf, 0)
			accepted <- &buf
			return ws, nil
		}})
	to := b.uri("bbbb").String()
	nc, err := net.Dial("tcp", b.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	own := newWirePeer(t, nc)
	msg := "a message sent on the peer's own connection"
	for i, st := range own.sendChunks(to, peerURI, "wrongcon", "own", msg, 7) {
		if st != StatusWrongConnection {
			t.Errorf("chunk %d on the peer's connection answered %d, want 506", i+1, st)
		}
	}
	select {
	case <-accepted:
		t.Fatal("the active session took a message from the peer's own connection")
	default:
	}
	if _, up := sb.Link(); up {
		t.Fatal("the peer's connection bound the active session")
	}

	// The session's own dial binds it.
	type conn struct {
		nc  net.Conn
		err error
	}
	acc := make(chan conn, 1)
	go func() {
		c, err := ln.Accept()
		acc <- conn{c, err}
	}()
	connected := make(chan error, 1)
	go func() {
		_, err := sb.Connect(ctx)
		connected <- err
	}()
	var ac conn
	select {
	case ac = <-acc:
	case <-ctx.Done():
		t.Fatal("the session never dialed")
	}
	if ac.err != nil {
		t.Fatal(ac.err)
	}
	dialedIn := newWirePeer(t, ac.nc)
	bind := dialedIn.read()
	if bind.method != "SEND" || bind.header("To-Path") != peerURI {
		t.Fatalf("the session's first frame: %+v", bind)
	}
	dialedIn.write(fmt.Sprintf("MSRP %s 200 OK\r\nTo-Path: %s\r\nFrom-Path: %s\r\n-------%s$\r\n",
		bind.tid, bind.header("From-Path"), peerURI, bind.tid))
	select {
	case err := <-connected:
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Connect never returned")
	}
	for i, st := range dialedIn.sendChunks(to, peerURI, "rightcon", "dia", msg, 7) {
		if st != StatusOK {
			t.Fatalf("chunk %d on the session's connection answered %d", i+1, st)
		}
	}
	buf := <-accepted
	waitClosed(t, ctx, ws.Done())
	if buf.String() != msg {
		t.Fatalf("stored %q, want %q", buf.String(), msg)
	}
}
