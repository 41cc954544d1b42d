package msrp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The probes of issue 11 (items 4 and 7): each plays a hostile or careless
// peer with bytes the test spells out, reads the endpoint's answers with a
// parser of its own (probePeer, written from RFC 4975 §7 and §9, sharing no
// code with the package), and checks the refusal, that nothing reached a
// session's sink (which is where a store or a relay would get it), and that
// the connection and the other sessions go on working.

// probePeer is a raw MSRP peer on a TCP connection.
type probePeer struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

// probeFrame is what probePeer parsed of a frame from the endpoint.
type probeFrame struct {
	tid     string
	method  string // "" for a response
	status  int
	headers map[string]string // by lower-case name; first value
}

func dialProbe(t *testing.T, ctx context.Context, addr net.Addr, local string) *probePeer {
	t.Helper()
	d := net.Dialer{}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	nc, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	return &probePeer{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (p *probePeer) write(frames ...string) {
	p.t.Helper()
	if _, err := io.WriteString(p.nc, strings.Join(frames, "")); err != nil {
		p.t.Fatal(err)
	}
}

// read parses one frame: "MSRP" SP tid SP (method / code [SP comment]) CRLF,
// header lines, an optional body after a blank line, and the end-line
// "-------" tid flag CRLF (RFC 4975 §9).
func (p *probePeer) read() (probeFrame, error) {
	var fr probeFrame
	line, err := p.br.ReadString('\n')
	if err != nil {
		return fr, err
	}
	parts := strings.SplitN(strings.TrimRight(line, "\r\n"), " ", 4)
	if len(parts) < 3 || parts[0] != "MSRP" {
		return fr, fmt.Errorf("not an MSRP start-line: %q", line)
	}
	fr.tid, fr.headers = parts[1], map[string]string{}
	if code, err := strconv.Atoi(parts[2]); err == nil && len(parts[2]) == 3 {
		fr.status = code
	} else {
		fr.method = parts[2]
	}
	end := "-------" + fr.tid
	inBody := false
	for {
		l, err := p.br.ReadString('\n')
		if err != nil {
			return fr, err
		}
		l = strings.TrimRight(l, "\r\n")
		if strings.HasPrefix(l, end) && len(l) == len(end)+1 {
			return fr, nil
		}
		if inBody {
			continue
		}
		if l == "" {
			inBody = true
			continue
		}
		k, v, _ := strings.Cut(l, ":")
		k = strings.ToLower(k)
		if _, dup := fr.headers[k]; !dup {
			fr.headers[k] = strings.TrimSpace(v)
		}
	}
}

// next returns the next response, skipping requests (REPORTs).
func (p *probePeer) next() probeFrame {
	p.t.Helper()
	for {
		fr, err := p.read()
		if err != nil {
			p.t.Fatalf("reading the endpoint's answer: %v", err)
		}
		if fr.method == "" {
			return fr
		}
	}
}

// expect reads the next response and checks its transaction and status.
func (p *probePeer) expect(tid string, status int) probeFrame {
	p.t.Helper()
	fr := p.next()
	if fr.tid != tid || fr.status != status {
		p.t.Fatalf("answer %s %d, want %s %d", fr.tid, fr.status, tid, status)
	}
	return fr
}

// closedByServer reports whether the endpoint closed the connection (the
// read ends without data before the connection's deadline).
func (p *probePeer) closedByServer() error {
	b, err := p.br.ReadByte()
	var ne net.Error
	switch {
	case err == nil:
		return fmt.Errorf("the endpoint sent %q instead of closing", b)
	case errors.As(err, &ne) && ne.Timeout():
		return errors.New("the endpoint kept the connection open")
	}
	return nil // EOF or reset: closed
}

// probeSEND spells out a SEND (RFC 4975 §7.1.1); ctype "" means no body.
func probeSEND(tid, to, from, msgID, rng, ctype, body string, flag byte) string {
	s := "MSRP " + tid + " SEND\r\nTo-Path: " + to + "\r\nFrom-Path: " + from + "\r\nMessage-ID: " + msgID + "\r\nByte-Range: " + rng + "\r\n"
	if ctype != "" {
		s += "Content-Type: " + ctype + "\r\n\r\n" + body + "\r\n"
	}
	return s + "-------" + tid + string(flag) + "\r\n"
}

// probeREPORT spells out a success REPORT (RFC 4975 §7.1.2).
func probeREPORT(tid, to, from, msgID, rng string) string {
	return "MSRP " + tid + " REPORT\r\nTo-Path: " + to + "\r\nFrom-Path: " + from + "\r\nMessage-ID: " + msgID +
		"\r\nByte-Range: " + rng + "\r\nStatus: 000 200 OK\r\n-------" + tid + "$\r\n"
}

// recorder is a session's Accept: it counts the messages offered to it and
// keeps what their sinks were given, which is all a store or a relay behind
// the session would ever see.
type recorder struct {
	mu       sync.Mutex
	accepted int
	bodies   map[string]*bytes.Buffer
	done     chan string // Message-IDs of messages completed
	reports  int
}

func newRecorder() *recorder {
	return &recorder{bodies: map[string]*bytes.Buffer{}, done: make(chan string, 64)}
}

func (r *recorder) accept(im *IncomingMessage) (Sink, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.accepted++
	b := &bytes.Buffer{}
	r.bodies[im.MessageID] = b
	return &recSink{r: r, id: im.MessageID, b: b}, nil
}

func (r *recorder) onReport(*Frame) {
	r.mu.Lock()
	r.reports++
	r.mu.Unlock()
}

func (r *recorder) counts() (accepted, reports int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.accepted, r.reports
}

func (r *recorder) body(id string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b := r.bodies[id]; b != nil {
		return b.String()
	}
	return ""
}

func (r *recorder) waitDone(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	for {
		select {
		case got := <-r.done:
			if got == id {
				return
			}
		case <-ctx.Done():
			t.Fatalf("message %s never completed", id)
		}
	}
}

type recSink struct {
	r  *recorder
	id string
	b  *bytes.Buffer
}

func (s *recSink) WriteChunk(c *Chunk) error {
	s.r.mu.Lock()
	s.b.Write(c.Body)
	s.r.mu.Unlock()
	return nil
}

func (s *recSink) Close(err error) error {
	if err == nil {
		s.r.done <- s.id
	}
	return nil
}

// TestProbeForgedPaths (issue 11 item 4, RFC 4975 §7.3): once a session is
// bound, every SEND and REPORT on it is matched by both paths. A SEND whose
// From-Path is not the bound peer's gets 403, also when it continues the
// peer's own message; a REPORT from a forged From-Path, or naming a session
// that is not bound to this connection, is dropped (REPORTs are never
// answered); a To-Path naming no session gets 481. None of it reaches a
// sink, and the peer's message and a second session on the same connection
// complete byte-exact.
func TestProbeForgedPaths(t *testing.T) {
	ctx := testCtx(t)
	b := newTestEndpoint(t, Config{UnknownSessionHold: -1})
	peer, peer2 := "msrp://127.0.0.1:9/peer1;tcp", "msrp://127.0.0.1:9/peer2;tcp"
	forged := "msrp://127.0.0.1:9/mallory;tcp"
	rec, rec2 := newRecorder(), newRecorder()
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("bbbb"), Remote: Path{MustParseURI(peer)},
		Accept: rec.accept, OnReport: rec.onReport, DetachedReports: true})
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("cccc"), Remote: Path{MustParseURI(peer2)},
		Accept: rec2.accept, OnReport: rec2.onReport, DetachedReports: true})
	to, to2 := b.uri("bbbb").String(), b.uri("cccc").String()

	p := dialProbe(t, ctx, b.addr, "")
	p.write(probeSEND("bind0001", to, peer, "mbind", "1-0/0", "", "", '$'),
		probeSEND("bind0002", to2, peer2, "mbind", "1-0/0", "", "", '$'),
		probeSEND("good0001", to, peer, "msg1", "1-6/12", "text/plain", "hello ", '+'))
	p.expect("bind0001", 200)
	p.expect("bind0002", 200)
	p.expect("good0001", 200)

	for _, tc := range []struct {
		name, frame string
		status      int // 0: a REPORT, dropped without an answer
	}{
		{"forged From-Path continuing the peer's message", probeSEND("forg0001", to, forged, "msg1", "7-12/12", "text/plain", "EVIL!!", '$'), 403},
		{"forged From-Path, new message", probeSEND("forg0002", to, forged, "msg2", "1-4/4", "text/plain", "EVIL", '$'), 403},
		{"the other session's peer", probeSEND("forg0003", to, peer2, "msg3", "1-4/4", "text/plain", "EVIL", '$'), 403},
		{"forged From-Path behind a relay URI", probeSEND("forg0004", to, peer+" "+forged, "msg4", "1-4/4", "text/plain", "EVIL", '$'), 403},
		{"To-Path naming no session", probeSEND("forg0005", b.uri("nosuch").String(), peer, "msg5", "1-4/4", "text/plain", "EVIL", '$'), 481},
		{"REPORT with a forged From-Path", probeREPORT("forg0006", to, forged, "msg1", "1-12/12"), 0},
		{"REPORT from the wrong session's peer", probeREPORT("forg0007", to2, peer, "msg1", "1-12/12"), 0},
		{"REPORT to no session", probeREPORT("forg0008", b.uri("nosuch").String(), peer, "msg1", "1-12/12"), 0},
	} {
		p.write(tc.frame)
		if tc.status != 0 {
			if fr := p.next(); fr.tid != tc.frame[5:13] || fr.status != tc.status {
				t.Fatalf("%s: answered %s %d, want %d", tc.name, fr.tid, fr.status, tc.status)
			}
		}
		// The second session is unharmed after each probe: a SEND on it is
		// the next thing answered (so no REPORT was answered either).
		tid := "acc2" + tc.frame[9:13]
		p.write(probeSEND(tid, to2, peer2, "m2"+tc.frame[9:13], "1-2/2", "text/plain", "ok", '$'))
		p.expect(tid, 200)
	}
	// The real peer's REPORT still reaches its session, and its message
	// completes with its own bytes only.
	p.write(probeREPORT("rep00001", to, peer, "msg0", "1-1/1"),
		probeSEND("good0002", to, peer, "msg1", "7-12/12", "text/plain", "world!", '$'))
	p.expect("good0002", 200)
	rec.waitDone(t, ctx, "msg1")
	if got := rec.body("msg1"); got != "hello world!" {
		t.Fatalf("stored %q, want %q", got, "hello world!")
	}
	if acc, reps := rec.counts(); acc != 1 || reps != 1 {
		t.Fatalf("session saw %d messages and %d REPORTs, want 1 and 1 (the forged ones must not reach it)", acc, reps)
	}
	if acc, reps := rec2.counts(); acc != 8 || reps != 0 {
		t.Fatalf("second session saw %d messages and %d REPORTs, want 8 and 0", acc, reps)
	}
}

// cpim wraps a payload of type inner in message/cpim (RFC 3862 §3).
func cpim(inner, payload string) string {
	return "From: <sip:alice@a.example>\r\nTo: <sip:bob@b.example>\r\n\r\nContent-Type: " + inner + "\r\n\r\n" + payload
}

// TestProbeAcceptTypes (issue 11 item 4, RFC 4975 §8.6): a message whose
// Content-Type the session's accept-types do not allow, or a message/cpim
// whose wrapped type accept-wrapped-types does not allow, is refused with
// 415 on its first chunk and on every later one; its sink never sees a byte
// (a 0-byte file is exactly what must not happen). Accepted messages on the
// same connection and session go through.
func TestProbeAcceptTypes(t *testing.T) {
	ctx := testCtx(t)
	b := newTestEndpoint(t, Config{UnknownSessionHold: -1})
	peer := "msrp://127.0.0.1:9/peer;tcp"
	// What cpmlink's roles advertise: a=accept-types:message/cpim,
	// a=accept-wrapped-types:*.
	anyWrapped, strict := newRecorder(), newRecorder()
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("star"), Remote: Path{MustParseURI(peer)},
		AcceptTypes: []string{"message/cpim"}, AcceptWrappedTypes: []string{"*"}, Accept: anyWrapped.accept})
	// A stricter offer: cpim wrapping text/* or image/png only.
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("strict"), Remote: Path{MustParseURI(peer)},
		AcceptTypes: []string{"message/cpim"}, AcceptWrappedTypes: []string{"text/*", "image/png"}, Accept: strict.accept})
	star, str := b.uri("star").String(), b.uri("strict").String()
	p := dialProbe(t, ctx, b.addr, "")
	p.write(probeSEND("bind0001", star, peer, "mbind", "1-0/0", "", "", '$'),
		probeSEND("bind0002", str, peer, "mbind", "1-0/0", "", "", '$'))
	p.expect("bind0001", 200)
	p.expect("bind0002", 200)

	longHeaders := "From: <sip:alice@a.example>\r\nTo: <sip:bob@b.example>\r\nSubject: " + strings.Repeat("s", 40)
	for _, tc := range []struct {
		name, to, msgID, ctype, body string
		status                       int
	}{
		{"text/plain where only message/cpim is accepted", star, "bad1", "text/plain", "hello", 415},
		{"type with parameters, still not accepted", star, "bad2", "text/plain; charset=utf-8", "hello", 415},
		{"cpim wrapping anything, wrapped *", star, "acc1", "message/cpim", cpim("application/x-anything", "data"), 200},
		{"upper-case type", star, "acc2", "Message/CPIM", cpim("text/plain", "data"), 200},
		{"cpim wrapping application/octet-stream", str, "bad3", "message/cpim", cpim("application/octet-stream", "data"), 415},
		{"cpim wrapping text/plain", str, "acc3", "message/cpim", cpim("text/plain; charset=utf-8", "data"), 200},
		{"cpim wrapping image/png", str, "acc4", "message/cpim", cpim("image/png", "data"), 200},
		{"cpim wrapping image/jpeg", str, "bad4", "message/cpim", cpim("image/jpeg", "data"), 415},
		{"cpim headers not whole in the first chunk", str, "bad5", "message/cpim", longHeaders, 415},
		{"cpim without a wrapped Content-Type (text/plain by RFC 2045)", str, "acc5", "message/cpim", "From: <sip:a@a>\r\n\r\n\r\ndata", 200},
	} {
		// First chunk, then the rest: the answer to the rest must be the
		// same as to the first (a refused message stays refused).
		n := len(tc.body)
		p.write(probeSEND("frst"+tc.msgID, tc.to, peer, tc.msgID, fmt.Sprintf("1-%d/%d", n, n+4), tc.ctype, tc.body, '+'),
			probeSEND("last"+tc.msgID, tc.to, peer, tc.msgID, fmt.Sprintf("%d-%d/%d", n+1, n+4, n+4), tc.ctype, "tail", '$'))
		for _, tid := range []string{"frst" + tc.msgID, "last" + tc.msgID} {
			if fr := p.next(); fr.tid != tid || fr.status != tc.status {
				t.Fatalf("%s: answered %s %d, want %s %d", tc.name, fr.tid, fr.status, tid, tc.status)
			}
		}
	}
	for rec, want := range map[*recorder][]string{anyWrapped: {"acc1", "acc2"}, strict: {"acc3", "acc4", "acc5"}} {
		if acc, _ := rec.counts(); acc != len(want) {
			t.Errorf("%d messages reached the sink, want %d (%v)", acc, len(want), want)
		}
		for _, id := range want {
			rec.waitDone(t, ctx, id)
		}
		for _, id := range []string{"bad1", "bad2", "bad3", "bad4", "bad5"} {
			if got := rec.body(id); got != "" {
				t.Errorf("refused message %s reached a sink: %q", id, got)
			}
		}
	}
}

// TestProbeHugeHeader (issue 11 item 4): a header section over
// Limits.MaxHeaderBytes is answered 413 when its transaction can be
// identified (start-line, To-Path and From-Path within the limit) and the
// connection goes on; a 200 KB header line costs no 200 KB of memory. When
// the paths themselves are over the limit nobody can be answered, and the
// connection is closed; sessions on other connections are unharmed.
func TestProbeHugeHeader(t *testing.T) {
	ctx := testCtx(t)
	b := newTestEndpoint(t, Config{UnknownSessionHold: -1})
	peer := "msrp://127.0.0.1:9/peer;tcp"
	rec := newRecorder()
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("bbbb"), Remote: Path{MustParseURI(peer)}, Accept: rec.accept})
	to := b.uri("bbbb").String()
	p := dialProbe(t, ctx, b.addr, "")
	p.write(probeSEND("bind0001", to, peer, "mbind", "1-0/0", "", "", '$'))
	p.expect("bind0001", 200)

	big := []byte("MSRP huge0001 SEND\r\nTo-Path: " + to + "\r\nFrom-Path: " + peer + "\r\nMessage-ID: big1\r\nByte-Range: 1-4/4\r\nX-Big: " +
		strings.Repeat("b", 200<<10) + "\r\nContent-Type: text/plain\r\n\r\nEVIL\r\n-------huge0001$\r\n")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := p.nc.Write(big); err != nil {
		t.Fatal(err)
	}
	p.expect("huge0001", 413)
	runtime.ReadMemStats(&after)
	// The whole process allocated less than half the header it was sent:
	// nothing was sized from it (the reader's buffer predates the frame).
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 100<<10 {
		t.Errorf("reading a 200 KiB header section allocated %d bytes", grew)
	}
	// Too many header fields are over a limit too.
	p.write("MSRP many0001 SEND\r\nTo-Path: " + to + "\r\nFrom-Path: " + peer + "\r\nMessage-ID: big2\r\n" +
		strings.Repeat("X-A: b\r\n", 100) + "-------many0001$\r\n")
	p.expect("many0001", 413)
	// Same connection, same session: a message goes through, and nothing
	// of the refused frames was delivered.
	p.write(probeSEND("good0001", to, peer, "msg1", "1-5/5", "text/plain", "hello", '$'))
	p.expect("good0001", 200)
	rec.waitDone(t, ctx, "msg1")
	if acc, _ := rec.counts(); acc != 1 || rec.body("msg1") != "hello" {
		t.Fatalf("%d messages reached the sink (%q), want only msg1", acc, rec.body("msg1"))
	}

	// A To-Path over the limit: no address to answer, the connection closes.
	q := dialProbe(t, ctx, b.addr, "")
	q.write("MSRP huge0002 SEND\r\nTo-Path: msrp://127.0.0.1:9/" + strings.Repeat("s", 200<<10) + ";tcp\r\nFrom-Path: " + peer + "\r\n-------huge0002$\r\n")
	if err := q.closedByServer(); err != nil {
		t.Fatal(err)
	}
	// The first connection and its session are unharmed.
	p.write(probeSEND("good0002", to, peer, "msg2", "1-5/5", "text/plain", "again", '$'))
	p.expect("good0002", 200)
	rec.waitDone(t, ctx, "msg2")
}

// TestProbeUnknownSessionBurst (issue 11 item 4, RFC 4975 §7.3): a burst of
// SENDs for sessions that do not exist does not stall the connection. A few
// are held for Config.UnknownSessionHold (the SDP/SEND race), the rest are
// answered 481 at once, and a SEND for a known session written after the
// whole burst is answered before any held frame's hold ends. Each held
// frame is answered 481 when its hold ends.
func TestProbeUnknownSessionBurst(t *testing.T) {
	ctx := testCtx(t)
	const hold = 3 * time.Second
	b := newTestEndpoint(t, Config{UnknownSessionHold: hold})
	peer := "msrp://127.0.0.1:9/peer;tcp"
	rec := newRecorder()
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("known"), Remote: Path{MustParseURI(peer)}, Accept: rec.accept})
	known := b.uri("known").String()
	p := dialProbe(t, ctx, b.addr, "")
	p.write(probeSEND("bind0001", known, peer, "mbind", "1-0/0", "", "", '$'))
	p.expect("bind0001", 200)

	const burst = 40
	var frames []string
	for i := range burst {
		frames = append(frames, probeSEND(fmt.Sprintf("unkn%04d", i), b.uri(fmt.Sprintf("ghost%d", i)).String(), peer,
			fmt.Sprintf("ghost%03d", i), "1-5/5", "text/plain", "ghost", '$'))
	}
	frames = append(frames, probeSEND("good0001", known, peer, "msg1", "1-5/5", "text/plain", "hello", '$'))
	start := time.Now()
	p.write(frames...)
	// Answers until the known session's 200: only immediate 481s.
	immediate := 0
	for {
		fr := p.next()
		if fr.tid == "good0001" {
			if fr.status != 200 {
				t.Fatalf("known session answered %d", fr.status)
			}
			break
		}
		if fr.status != 481 {
			t.Fatalf("%s answered %d, want 481", fr.tid, fr.status)
		}
		immediate++
	}
	waited := time.Since(start)
	if waited >= hold {
		t.Fatalf("the known session's SEND waited %v behind the burst (hold %v)", waited, hold)
	}
	t.Logf("known session answered %v after a burst of %d frames for unknown sessions (%d answered 481 at once)", waited, burst, immediate)
	if immediate == 0 || immediate == burst {
		t.Fatalf("%d of %d unknown-session frames answered at once; want some held, the rest at once", immediate, burst)
	}
	// The held ones get 481 when their hold ends.
	for range burst - immediate {
		if fr := p.next(); fr.status != 481 || !strings.HasPrefix(fr.tid, "unkn") {
			t.Fatalf("held frame answered %s %d, want 481", fr.tid, fr.status)
		}
	}
	rec.waitDone(t, ctx, "msg1")
	if acc, _ := rec.counts(); acc != 1 {
		t.Fatalf("%d messages reached the known session, want 1", acc)
	}
}

// TestHeldFramesKeepOrder: frames that beat their session's registration are
// held without stopping the connection (another session's SEND is answered
// meanwhile), and once the session is registered they are handled in the
// order they arrived: the whole message is delivered byte-exact.
func TestHeldFramesKeepOrder(t *testing.T) {
	ctx := testCtx(t)
	b := newTestEndpoint(t, Config{UnknownSessionHold: 10 * time.Second})
	peer := "msrp://127.0.0.1:9/peer;tcp"
	other := newRecorder()
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("other"), Accept: other.accept})
	late := b.uri("late").String()
	p := dialProbe(t, ctx, b.addr, "")
	p.write(probeSEND("late0001", late, peer, "mbind", "1-0/0", "", "", '$'),
		probeSEND("late0002", late, peer, "msg1", "1-6/11", "text/plain", "hello ", '+'),
		probeSEND("late0003", late, peer, "msg1", "7-11/11", "text/plain", "world", '$'),
		probeSEND("othr0001", b.uri("other").String(), peer, "msg2", "1-2/2", "text/plain", "ok", '$'))
	// The other session's SEND is answered while the three wait.
	p.expect("othr0001", 200)
	rec := newRecorder()
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("late"), Remote: Path{MustParseURI(peer)}, Accept: rec.accept})
	for _, tid := range []string{"late0001", "late0002", "late0003"} {
		p.expect(tid, 200)
	}
	rec.waitDone(t, ctx, "msg1")
	if got := rec.body("msg1"); got != "hello world" {
		t.Fatalf("got %q", got)
	}
}

// TestProbeConnectionLimits (issue 11 item 7): Config.MaxConns refuses the
// connection one over the listener's bound, Config.MaxConnsPerHost the one
// over a source address's bound while another address still gets in, and
// the refused connections are closed at once; admitted ones work.
func TestProbeConnectionLimits(t *testing.T) {
	ctx := testCtx(t)
	peer := "msrp://127.0.0.1:9/peer;tcp"
	bind := func(p *probePeer, te *testEndpoint, id, tid string) {
		t.Helper()
		p.write(probeSEND(tid, te.uri(id).String(), peer, "mbind", "1-0/0", "", "", '$'))
		p.expect(tid, 200)
	}
	t.Run("per listener", func(t *testing.T) {
		b := newTestEndpoint(t, Config{MaxConns: 3, MaxConnsPerHost: -1})
		for _, id := range []string{"s1", "s2", "s3", "s4"} {
			mustSession(t, b.Endpoint, SessionConfig{Local: b.uri(id)})
		}
		var in []*probePeer
		for i, id := range []string{"s1", "s2", "s3"} {
			p := dialProbe(t, ctx, b.addr, "")
			bind(p, b, id, fmt.Sprintf("bind%04d", i))
			in = append(in, p)
		}
		extra := dialProbe(t, ctx, b.addr, "")
		if err := extra.closedByServer(); err != nil {
			t.Fatalf("a fourth connection: %v", err)
		}
		if st := b.Stats(); st.RefusedConns != 1 {
			t.Fatalf("RefusedConns = %d, want 1", st.RefusedConns)
		}
		// One leaves; once the endpoint has seen it go, a new one gets in.
		_ = in[0].nc.Close()
		waitFor(t, ctx, func() bool { return b.Conns() == 2 })
		p := dialProbe(t, ctx, b.addr, "")
		bind(p, b, "s4", "bind0010")
	})
	t.Run("per source address", func(t *testing.T) {
		b := newTestEndpoint(t, Config{MaxConnsPerHost: 2})
		for _, id := range []string{"s1", "s2", "s3"} {
			mustSession(t, b.Endpoint, SessionConfig{Local: b.uri(id)})
		}
		bind(dialProbe(t, ctx, b.addr, "127.0.0.1"), b, "s1", "bind0001")
		bind(dialProbe(t, ctx, b.addr, "127.0.0.1"), b, "s2", "bind0002")
		extra := dialProbe(t, ctx, b.addr, "127.0.0.1")
		if err := extra.closedByServer(); err != nil {
			t.Fatalf("a third connection from 127.0.0.1: %v", err)
		}
		// Another address of the loopback network is another host.
		bind(dialProbe(t, ctx, b.addr, "127.0.0.2"), b, "s3", "bind0003")
		if st := b.Stats(); st.RefusedConns != 1 {
			t.Fatalf("RefusedConns = %d, want 1", st.RefusedConns)
		}
	})
}

// waitFor waits until cond holds, bounded by ctx: for state the endpoint
// changes on its own goroutines after a peer's action (a closed connection
// is noticed by its reader).
func waitFor(t *testing.T, ctx context.Context, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("condition never held")
		}
	}
}

// TestProbeSilentConnections (issue 11 item 7): connections that never send
// a whole frame — idle ones, and one that trickles half a start-line — are
// closed after Config.FirstFrameTimeout, not after a minute; a connection
// that sent its binding SEND at the same time is not.
func TestProbeSilentConnections(t *testing.T) {
	ctx := testCtx(t)
	b := newTestEndpoint(t, Config{FirstFrameTimeout: 300 * time.Millisecond})
	rec := newRecorder()
	peer := "msrp://127.0.0.1:9/peer;tcp"
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("bbbb"), Remote: Path{MustParseURI(peer)}, Accept: rec.accept})
	good := dialProbe(t, ctx, b.addr, "")
	good.write(probeSEND("bind0001", b.uri("bbbb").String(), peer, "mbind", "1-0/0", "", "", '$'))
	good.expect("bind0001", 200)
	const idle = 50
	silent := make([]*probePeer, idle)
	for i := range silent {
		silent[i] = dialProbe(t, ctx, b.addr, "")
	}
	silent[0].write("MSRP abcd")
	start := time.Now()
	for i, p := range silent {
		if err := p.closedByServer(); err != nil {
			t.Fatalf("silent connection %d: %v", i, err)
		}
	}
	t.Logf("%d silent connections closed %v after they opened (FirstFrameTimeout 300ms)", idle, time.Since(start))
	if st := b.Stats(); st.SilentConns != idle {
		t.Fatalf("SilentConns = %d, want %d", st.SilentConns, idle)
	}
	// Every silent connection is gone; the one that spoke is still served.
	good.write(probeSEND("good0001", b.uri("bbbb").String(), peer, "msg1", "1-2/2", "text/plain", "ok", '$'))
	good.expect("good0001", 200)
	rec.waitDone(t, ctx, "msg1")
	waitFor(t, ctx, func() bool { return b.Conns() == 1 })
}

// TestMaxSessions (issue 11 item 7): NewSession beyond Config.MaxSessions
// fails with ErrLimit, and succeeds again once a session is closed.
func TestMaxSessions(t *testing.T) {
	ep := NewEndpoint(Config{MaxSessions: 2})
	defer ep.Close()
	s1, err := ep.NewSession(SessionConfig{Local: clientURI("one")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ep.NewSession(SessionConfig{Local: clientURI("two")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ep.NewSession(SessionConfig{Local: clientURI("three")}); !errors.Is(err, ErrLimit) {
		t.Fatalf("third session: %v, want ErrLimit", err)
	}
	_ = s1.Close()
	_ = s1.Close() // twice: counted once
	if _, err := ep.NewSession(SessionConfig{Local: clientURI("three")}); err != nil {
		t.Fatalf("after a Close: %v", err)
	}
	if _, err := ep.NewSession(SessionConfig{Local: clientURI("four")}); !errors.Is(err, ErrLimit) {
		t.Fatalf("fourth session: %v, want ErrLimit", err)
	}
}
