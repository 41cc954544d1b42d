//go:build unix

package main

// A minimal MSRP endpoint written from RFC 4975 for the foreign-client interop test
// (interop_test.go): raw frames over TCP, nothing from cpmlink. It must never import
// runtime/msrp, runtime/msrpsdp, runtime/sipx or any other cpmlink package (TestPeerImports
// holds it to that): a peer that shares our code would prove nothing about our code.
//
// It is as small as the test allows: one session per connection, TCP only (no TLS, no
// relays), the headers RFC 4975 §7 requires and nothing else, and every read bounded by the
// caller's context.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// errPeer prefixes what the peer reports about the other side's MSRP.
var errPeer = errors.New("msrp peer")

// maxFrame bounds a frame the peer reads (headers and body); our chunks are far smaller.
const maxFrame = 1 << 20

// msrpFrame is one MSRP request or response (RFC 4975 §7).
type msrpFrame struct {
	tid    string
	method string // SEND, REPORT ... ; "" for a response
	status int    // a response's status code
	header map[string]string
	body   []byte
	flag   byte // continuation flag of the end-line: '$', '+' or '#'
}

func (f *msrpFrame) get(name string) string { return f.header[strings.ToLower(name)] }

func (f *msrpFrame) String() string {
	if f.method == "" {
		return fmt.Sprintf("%d response (tid %s)", f.status, f.tid)
	}
	return fmt.Sprintf("%s %s Byte-Range %s (%d bytes)", f.method, f.get("Message-ID"), f.get("Byte-Range"), len(f.body))
}

// byteRange parses Byte-Range: start-end/total (RFC 4975 §9: end and total may be "*").
func (f *msrpFrame) byteRange() (start, end, total int64, err error) {
	v := f.get("Byte-Range")
	se, tot, ok := strings.Cut(v, "/")
	s, e, ok2 := strings.Cut(se, "-")
	if !ok || !ok2 {
		return 0, 0, 0, fmt.Errorf("%w: Byte-Range %q", errPeer, v)
	}
	if start, err = strconv.ParseInt(s, 10, 64); err != nil || start < 1 {
		return 0, 0, 0, fmt.Errorf("%w: Byte-Range %q", errPeer, v)
	}
	end, total = -1, -1
	if e != "*" {
		if end, err = strconv.ParseInt(e, 10, 64); err != nil {
			return 0, 0, 0, fmt.Errorf("%w: Byte-Range %q", errPeer, v)
		}
	}
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
			return 0, 0, 0, fmt.Errorf("%w: Byte-Range %q", errPeer, v)
		}
	}
	return start, end, total, nil
}

// readFrame reads one frame: the start line, the header fields, then either the end-line
// at once (no body) or a blank line, the body and CRLF end-line (RFC 4975 §7.1, §7.2).
func readFrame(r *bufio.Reader) (*msrpFrame, error) {
	line, err := readLine(r)
	if err != nil {
		return nil, err
	}
	parts := strings.SplitN(line, " ", 4)
	if len(parts) < 3 || parts[0] != "MSRP" || parts[1] == "" {
		return nil, fmt.Errorf("%w: bad start line %q", errPeer, line)
	}
	f := &msrpFrame{tid: parts[1], header: map[string]string{}}
	if code, err := strconv.Atoi(parts[2]); err == nil && len(parts[2]) == 3 {
		f.status = code
	} else if len(parts) == 3 {
		f.method = parts[2]
	} else {
		return nil, fmt.Errorf("%w: bad start line %q", errPeer, line)
	}
	end := "-------" + f.tid
	size := len(line)
	for {
		l, err := readLine(r)
		if err != nil {
			return nil, err
		}
		size += len(l)
		if size > maxFrame {
			return nil, fmt.Errorf("%w: header section over %d bytes", errPeer, maxFrame)
		}
		if strings.HasPrefix(l, end) && len(l) == len(end)+1 {
			f.flag = l[len(l)-1]
			return f, nil
		}
		if l == "" {
			break
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			return nil, fmt.Errorf("%w: header line %q", errPeer, l)
		}
		f.header[strings.ToLower(name)] = strings.TrimSpace(value)
	}
	// The body runs to CRLF end-line; the sender chose a transaction id that does not
	// occur in it (RFC 4975 §7.1).
	var body []byte
	for {
		seg, err := r.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
		if len(body) >= 2 && bytes.HasSuffix(body, []byte("\r\n")) && len(seg) == len(end)+3 &&
			bytes.HasPrefix(seg, []byte(end)) && bytes.HasSuffix(seg, []byte("\r\n")) {
			f.flag = seg[len(end)]
			f.body = body[:len(body)-2]
			return f, nil
		}
		body = append(body, seg...)
		if len(body)+size > maxFrame {
			return nil, fmt.Errorf("%w: body over %d bytes", errPeer, maxFrame)
		}
	}
}

func readLine(r *bufio.Reader) (string, error) {
	l, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if !strings.HasSuffix(l, "\r\n") {
		return "", fmt.Errorf("%w: line %q does not end in CRLF", errPeer, l)
	}
	return l[:len(l)-2], nil
}

// randomID is a transaction or message id: letters and digits (RFC 4975 §9 ident).
func randomID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// writeRequest writes a request; header holds the fields after To-Path and From-Path, in
// order, which RFC 4975 §7.1 requires first.
func writeRequest(w io.Writer, method, to, from string, header [][2]string, body []byte, flag byte) (string, error) {
	tid := randomID()
	var b bytes.Buffer
	fmt.Fprintf(&b, "MSRP %s %s\r\nTo-Path: %s\r\nFrom-Path: %s\r\n", tid, method, to, from)
	for _, h := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	if body != nil {
		b.WriteString("\r\n")
		b.Write(body)
		b.WriteString("\r\n")
	}
	fmt.Fprintf(&b, "-------%s%c\r\n", tid, flag)
	_, err := w.Write(b.Bytes())
	return tid, err
}

// msrpConn is one TCP connection of the peer, with a reader goroutine that answers the
// other side's requests as RFC 4975 says and hands everything to the test.
type msrpConn struct {
	c    net.Conn
	path string // our own URI on this connection
	wmu  sync.Mutex
	// frames receives every frame read, in order; closed when the connection ends.
	frames chan *msrpFrame
	err    error // why the reader stopped; read after frames is closed
	// respond makes the reader answer each SEND (200, as Failure-Report allows).
	respond bool
}

func newConn(c net.Conn, path string) *msrpConn {
	mc := &msrpConn{c: c, path: path, frames: make(chan *msrpFrame, 256), respond: true}
	go mc.read()
	return mc
}

func (mc *msrpConn) read() {
	defer close(mc.frames)
	r := bufio.NewReaderSize(mc.c, 64<<10)
	for {
		f, err := readFrame(r)
		if err != nil {
			mc.err = err
			return
		}
		if f.method == "SEND" && mc.respond {
			// RFC 4975 §7.1.1: Failure-Report "no" wants no response, "partial" only
			// negative ones; absent means "yes". A REPORT is never answered (§7.1.2).
			if fr := f.get("Failure-Report"); fr == "" || fr == "yes" {
				mc.wmu.Lock()
				_, _ = fmt.Fprintf(mc.c, "MSRP %s 200 OK\r\nTo-Path: %s\r\nFrom-Path: %s\r\n-------%s$\r\n", f.tid, f.get("From-Path"), mc.path, f.tid)
				mc.wmu.Unlock()
			}
		}
		select {
		case mc.frames <- f:
		default:
			mc.err = fmt.Errorf("%w: the test fell behind", errPeer)
			return
		}
	}
}

// write sends a request and returns its transaction id.
func (mc *msrpConn) write(method, to string, header [][2]string, body []byte, flag byte) (string, error) {
	mc.wmu.Lock()
	defer mc.wmu.Unlock()
	return writeRequest(mc.c, method, to, mc.path, header, body, flag)
}

// next returns the next frame, or an error when the connection ends or ctx does.
func (mc *msrpConn) next(ctx context.Context) (*msrpFrame, error) {
	select {
	case f, ok := <-mc.frames:
		if !ok {
			return nil, fmt.Errorf("%w: connection ended: %v", errPeer, mc.err)
		}
		return f, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: waiting for a frame: %w", errPeer, ctx.Err())
	}
}

// drain returns the frames read so far that nobody has taken, without waiting.
func (mc *msrpConn) drain() []*msrpFrame {
	var fs []*msrpFrame
	for {
		select {
		case f, ok := <-mc.frames:
			if !ok {
				return fs
			}
			fs = append(fs, f)
		default:
			return fs
		}
	}
}

func (mc *msrpConn) Close() error { return mc.c.Close() }

// msrpPeer is one endpoint: a listener on the client host's loopback address and the URI
// that names the session.
type msrpPeer struct {
	ln   net.Listener
	Port int
	Path string // msrp://127.0.0.2:PORT/SESSION;tcp (RFC 4975 §6)
}

func newMSRPPeer() (*msrpPeer, error) {
	ln, err := net.Listen("tcp", clientHost+":0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	return &msrpPeer{ln: ln, Port: port, Path: fmt.Sprintf("msrp://%s:%d/%s;tcp", clientHost, port, randomID())}, nil
}

func (p *msrpPeer) Close() error { return p.ln.Close() }

// accept waits for the other side to connect (we are the passive party).
func (p *msrpPeer) accept(ctx context.Context) (*msrpConn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := p.ln.Accept()
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		return newConn(r.c, p.Path), nil
	case <-ctx.Done():
		p.ln.Close() // ends the Accept; the peer is done with listening either way
		return nil, fmt.Errorf("%w: nobody connected: %w", errPeer, ctx.Err())
	}
}

// dial connects to the last URI of a path (we are the active party; no relays here).
func (p *msrpPeer) dial(ctx context.Context, toPath string) (*msrpConn, error) {
	uris := strings.Fields(toPath)
	if len(uris) == 0 {
		return nil, fmt.Errorf("%w: empty path", errPeer)
	}
	u, err := url.Parse(uris[0])
	if err != nil || u.Scheme != "msrp" {
		return nil, fmt.Errorf("%w: cannot dial %q", errPeer, uris[0])
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	return newConn(c, p.Path), nil
}

// sendResult is what a sender learned on its connection.
type sendResult struct {
	oks     int          // 200 responses to our chunks
	reports []*msrpFrame // REPORTs for our message
	other   []*msrpFrame // requests of the other side (its bodiless SEND ...)
}

// sendOptions are a sender's report choices (RFC 4975 §7.1.1, §7.1.2): "" leaves the
// header out (Success-Report defaults to no, Failure-Report to yes).
type sendOptions struct {
	successReport, failureReport string
	chunk                        int
	// stopAfter > 0 sends only that many chunks, none of them the last: a sender that
	// gives up mid-message.
	stopAfter int
}

// sendMessage sends body as one message in chunks (Byte-Range, "+" then "$") and waits
// for what the options make the other side owe us: a 200 per chunk when Failure-Report is
// yes, and a success REPORT covering the whole message when Success-Report is yes. A
// non-200 response ends it with an error.
func (mc *msrpConn) sendMessage(ctx context.Context, toPath, msgID string, body []byte, o sendOptions) (sendResult, error) {
	var res sendResult
	var header [][2]string
	n := int64(len(body))
	chunks := 0
	ours := map[string]bool{} // our chunks' transaction ids
	for off := int64(0); off < n; off += int64(o.chunk) {
		if o.stopAfter > 0 && chunks == o.stopAfter {
			break
		}
		end := min(off+int64(o.chunk), n)
		header = header[:0]
		header = append(header, [2]string{"Message-ID", msgID}, [2]string{"Byte-Range", fmt.Sprintf("%d-%d/%d", off+1, end, n)})
		if o.successReport != "" {
			header = append(header, [2]string{"Success-Report", o.successReport})
		}
		if o.failureReport != "" {
			header = append(header, [2]string{"Failure-Report", o.failureReport})
		}
		header = append(header, [2]string{"Content-Type", "message/cpim"})
		flag := byte('+')
		if end == n {
			flag = '$'
		}
		tid, err := mc.write("SEND", toPath, header, body[off:end], flag)
		if err != nil {
			return res, err
		}
		ours[tid] = true
		chunks++
	}
	wantOKs := o.failureReport == "" || o.failureReport == "yes"
	wantReport := o.successReport == "yes" && o.stopAfter == 0
	for (wantOKs && res.oks < chunks) || (wantReport && !fullReport(res.reports, n)) {
		f, err := mc.next(ctx)
		if err != nil {
			return res, fmt.Errorf("%d of %d chunks answered 200, success REPORT %v: %w", res.oks, chunks, fullReport(res.reports, n), err)
		}
		switch {
		case f.method == "" && !ours[f.tid]:
			res.other = append(res.other, f)
		case f.method == "" && f.status == 200:
			if !wantOKs {
				return res, fmt.Errorf("%w: a 200 to a chunk sent with Failure-Report: %s (RFC 4975 §7.1.1)", errPeer, o.failureReport)
			}
			res.oks++
		case f.method == "":
			return res, fmt.Errorf("%w: chunk answered %d", errPeer, f.status)
		case f.method == "REPORT" && f.get("Message-ID") == msgID:
			res.reports = append(res.reports, f)
		default:
			res.other = append(res.other, f)
		}
	}
	return res, nil
}

// fullReport: one of the REPORTs says 000 200 for bytes 1 to n (RFC 4975 §7.1.2).
func fullReport(reports []*msrpFrame, n int64) bool {
	for _, r := range reports {
		s, e, t, err := r.byteRange()
		if err == nil && strings.HasPrefix(r.get("Status"), "000 200") && s == 1 && (e == n || e == -1) && (t == n || t == -1) {
			return true
		}
	}
	return false
}

// received is a message a receiver reassembled.
type received struct {
	id            string
	body          []byte
	successReport string
	failureReport string
	fromPath      string
}

// receiveMessage reads SENDs until one message is complete: every byte of its Byte-Range
// total arrived and its last chunk ended in "$". Bodiless SENDs (a binding SEND, RFC 4975
// §7.1.1) are skipped. When the message asked for a success REPORT it sends one
// (Status: 000 200 OK, the whole range), as RFC 4975 §7.1.2 has the recipient do.
func (mc *msrpConn) receiveMessage(ctx context.Context) (*received, error) {
	type partial struct {
		buf  []byte
		got  int64
		last bool
	}
	msgs := map[string]*partial{}
	for {
		f, err := mc.next(ctx)
		if err != nil {
			return nil, err
		}
		if f.method == "" && f.status != 200 {
			// Our only request is the binding SEND of an active receiver.
			return nil, fmt.Errorf("%w: our binding SEND answered %d", errPeer, f.status)
		}
		if f.method != "SEND" || len(f.body) == 0 {
			continue
		}
		start, _, total, err := f.byteRange()
		if err != nil {
			return nil, err
		}
		if total < 0 || total > maxFrame*16 || start-1+int64(len(f.body)) > total {
			return nil, fmt.Errorf("%w: chunk %s does not fit its total", errPeer, f)
		}
		id := f.get("Message-ID")
		m := msgs[id]
		if m == nil {
			m = &partial{buf: make([]byte, total)}
			msgs[id] = m
		}
		copy(m.buf[start-1:], f.body)
		m.got += int64(len(f.body))
		m.last = m.last || f.flag == '$'
		if m.last && m.got >= total {
			r := &received{id: id, body: m.buf, successReport: f.get("Success-Report"), failureReport: f.get("Failure-Report"), fromPath: f.get("From-Path")}
			if r.successReport == "yes" {
				_, err := mc.write("REPORT", r.fromPath, [][2]string{{"Message-ID", id}, {"Byte-Range", fmt.Sprintf("1-%d/%d", total, total)}, {"Status", "000 200 OK"}}, nil, '$')
				if err != nil {
					return r, err
				}
			}
			return r, nil
		}
	}
}

// cpimPayload splits a message/cpim body (RFC 3862 §3: the message headers, a blank line,
// the MIME headers, a blank line, the content) and returns the content.
func cpimPayload(body []byte) ([]byte, error) {
	_, rest, ok := bytes.Cut(body, []byte("\r\n\r\n"))
	if !ok {
		return nil, fmt.Errorf("%w: CPIM without a header block", errPeer)
	}
	_, content, ok := bytes.Cut(rest, []byte("\r\n\r\n"))
	if !ok {
		return nil, fmt.Errorf("%w: CPIM without a MIME header block", errPeer)
	}
	return content, nil
}

// cpimWrap wraps payload for our foreign ClientA (RFC 3862; OMA CPM wraps every message).
func cpimWrap(from, to string, payload []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: <%s>\r\nTo: <%s>\r\nDateTime: %s\r\n\r\n", from, to, time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", len(payload))
	b.Write(payload)
	return b.Bytes()
}

// TestPeerImports: the foreign clients share no code with cpmlink. The MSRP peer and the
// interop test import the standard library and, to launch sipp, runtime/kamailiotest
// only; the cpmlink processes they talk to run from the built binary.
func TestPeerImports(t *testing.T) {
	for _, file := range []string{"msrppeer_test.go", "interop_test.go"} {
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			first, _, _ := strings.Cut(path, "/")
			if strings.Contains(first, ".") && path != "github.com/cpmlink/cpmlink/runtime/kamailiotest" {
				t.Errorf("%s imports %s: a foreign client must not share cpmlink's code", file, path)
			}
		}
	}
}

// TestPeerRoundTrip: the peer's two halves talk to each other over loopback, so that a
// failure of TestForeignClients is cpmlink's, not the peer's: a binding SEND, a message in
// chunks with 200s, and the success REPORT it asked for.
func TestPeerRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := newMSRPPeer()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := newMSRPPeer()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	payload := bytes.Repeat([]byte("0123456789\r\n-------x$\r\n"), 3000) // 72 000 bytes, end-line look-alikes included
	body := cpimWrap("sip:alice@a.example", "sip:team@cf.example", payload)
	got := make(chan error, 1)
	go func() {
		conn, err := b.accept(ctx)
		if err != nil {
			got <- err
			return
		}
		defer conn.Close()
		if err := awaitBinding(ctx, conn, b.Path); err != nil {
			got <- err
			return
		}
		r, err := conn.receiveMessage(ctx)
		if err == nil {
			var content []byte
			if content, err = cpimPayload(r.body); err == nil && !bytes.Equal(content, payload) {
				err = fmt.Errorf("received %d bytes, not the %d sent", len(content), len(payload))
			}
		}
		got <- err
	}()
	conn, err := a.dial(ctx, b.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.write("SEND", b.Path, [][2]string{{"Message-ID", randomID()}, {"Byte-Range", "1-0/0"}}, nil, '$'); err != nil {
		t.Fatal(err)
	}
	res, err := conn.sendMessage(ctx, b.Path, "m1", body, sendOptions{successReport: "yes", chunk: 10000})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if chunks := (len(body) + 9999) / 10000; res.oks != chunks || !fullReport(res.reports, int64(len(body))) {
		t.Errorf("%d 200s for %d chunks, REPORTs %v", res.oks, chunks, res.reports)
	}
}
