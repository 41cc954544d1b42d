package runtime_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/runtime"
	"github.com/cpmlink/cpmlink/runtime/sipx"
)

// msrpWire is the MSRP side of a foreign ClientA, written from RFC 4975 §7 in the test:
// it writes SENDs as text and reads frames line by line (everything cpmlink sends it is
// bodiless: responses, the bind SEND, REPORTs).
type msrpWire struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func newMSRPWire(t *testing.T, ctx context.Context, nc net.Conn) *msrpWire {
	t.Helper()
	t.Cleanup(func() { _ = nc.Close() })
	if d, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(d)
	}
	return &msrpWire{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// wireMsg is a frame read: transaction id, method ("" for a response), status and headers.
type wireMsg struct {
	tid, method string
	status      int
	headers     map[string]string
}

func (w *msrpWire) read() wireMsg {
	w.t.Helper()
	line := func() string {
		s, err := w.br.ReadString('\n')
		if err != nil {
			w.t.Fatalf("reading MSRP: %v", err)
		}
		return strings.TrimSuffix(s, "\r\n")
	}
	start := strings.Fields(line())
	if len(start) < 3 || start[0] != "MSRP" {
		w.t.Fatalf("MSRP start line %q", start)
	}
	m := wireMsg{tid: start[1], headers: map[string]string{}}
	if st, err := strconv.Atoi(start[2]); err == nil {
		m.status = st
	} else {
		m.method = start[2]
	}
	for {
		l := line()
		if strings.HasPrefix(l, "-------"+m.tid) {
			return m
		}
		if k, v, ok := strings.Cut(l, ":"); ok {
			m.headers[strings.ToLower(k)] = strings.TrimSpace(v)
		}
	}
}

// sendChunks writes msg as SEND chunks of n bytes (RFC 4975 §7.1.1).
func (w *msrpWire) sendChunks(to, from, msgID, prefix string, msg []byte, n int) []string {
	w.t.Helper()
	return w.sendFirstChunks(to, from, msgID, prefix, msg, n, len(msg))
}

// sendFirstChunks writes the first upto bytes of msg as SEND chunks of n bytes. Each
// Byte-Range names the whole message's size and only the chunk that ends the message is
// marked complete ('$'), so a sender that stops short leaves the message incomplete at
// the relays (RFC 4975 §7.1.1), as a sender that drops mid-message does.
func (w *msrpWire) sendFirstChunks(to, from, msgID, prefix string, msg []byte, n, upto int) []string {
	w.t.Helper()
	var tids []string
	for i, start := 0, 0; start < upto; i, start = i+1, start+n {
		end := min(start+n, upto)
		flag := "+"
		if end == len(msg) {
			flag = "$"
		}
		tid := fmt.Sprintf("%s%04d", prefix, i)
		frame := fmt.Sprintf("MSRP %s SEND\r\nTo-Path: %s\r\nFrom-Path: %s\r\nMessage-ID: %s\r\nByte-Range: %d-%d/%d\r\n"+
			"Content-Type: message/cpim\r\n\r\n%s\r\n-------%s%s\r\n", tid, to, from, msgID, start+1, end, len(msg), msg[start:end], tid, flag)
		if _, err := w.nc.Write([]byte(frame)); err != nil {
			w.t.Fatal(err)
		}
		tids = append(tids, tid)
	}
	return tids
}

// answers reads until each of tids has its response and returns the statuses, skipping
// the requests (REPORTs) that come meanwhile.
func (w *msrpWire) answers(tids []string) map[string]int {
	w.t.Helper()
	got := map[string]int{}
	for len(got) < len(tids) {
		if m := w.read(); m.method == "" {
			got[m.tid] = m.status
		}
	}
	return got
}

// TestDoubleConnectLosesNothing: fig3 (PF-A opens the link to ClientA after the ACK) with
// a foreign ClientA that connects to PF-A as well (a confused or hostile peer: its offer
// said a=setup:passive, but it does what RFC 4975 has an offerer do by default), and
// sends its whole message on its own connection before PF-A's arrives. PF-A's session
// is the active party: the chunks on the client's connection are answered 506, never
// 200 (a 200 takes responsibility for a chunk, RFC 4975 §7.2), nothing fails, and the
// message the client then sends on PF-A's connection reaches every member byte-exact.
// A later send through the same deployment (the same PF-A↔CF connection, reused) is
// delivered too. (On main the client's connection bound the session: 200 for every
// chunk, PF-A's own dial failed "session already exists", its abort took the link down,
// and no member got anything.)
func TestDoubleConnectLosesNothing(t *testing.T) {
	t.Parallel()
	v, _ := fsm.VariantByName("fig3")
	ctx := testCtx(t, time.Minute)
	const members = 2
	r := startGroup(t, ctx, runtime.GroupConfig{Variant: v, Members: members, PFBs: 1, StoreDir: t.TempDir(),
		Guard: 10 * time.Second})

	f := inviteForeign(t, ctx, r.g, "dbl-1")
	ours, theirs, hostport := f.ours, f.theirs, f.hostport

	// The message: CPIM (RFC 3862) around the payload, its headers whole in chunk 1.
	body := payload(7*1500-120, 31)
	cpimMsg := cpimWrap(body)
	const chunk = 1500

	// The double connect: the client's own connection, and the whole message on it
	// before the ACK, so before PF-A opens its link (the frames wait for the session).
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		t.Fatal(err)
	}
	own := newMSRPWire(t, ctx, nc)
	ownTIDs := own.sendChunks(theirs, ours, "dblmsg01", "own", cpimMsg, chunk)
	if err := f.probe.Ack("dbl-1"); err != nil {
		t.Fatal(err)
	}
	for tid, st := range own.answers(ownTIDs) {
		if st != 506 {
			t.Errorf("chunk %s on the client's own connection answered %d, want 506", tid, st)
		}
	}

	// PF-A's link (fig3: PF-A opens after the ACK): answer its bind, send the message.
	link := f.acceptLink(t, ctx)
	linkTIDs := link.sendChunks(theirs, ours, "dblmsg02", "lnk", cpimMsg, chunk)
	for tid, st := range link.answers(linkTIDs) {
		if st != 200 {
			t.Fatalf("chunk %s on PF-A's connection answered %d", tid, st)
		}
	}
	for i, m := range r.g.Members {
		got, err := m.WaitReceived(ctx, 0)
		if err != nil {
			t.Fatalf("%s never stored the message: %v", r.members[i], err)
		}
		if got[0].SHA256 != sum(body) || got[0].Bytes != int64(len(body)) {
			t.Errorf("%s stored %d bytes %s, want %d byte-exact", r.members[i], got[0].Bytes, got[0].SHA256, len(body))
		}
	}
	_ = f.probe.Bye("dbl-1")
	if err := r.g.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}

	// A later session through the same PF-A↔CF connection.
	later := payload(30<<10, 32)
	r.outcome, r.sendErr = r.g.ClientA.Send(ctx, runtime.GroupURI, nil, runtime.Message{Size: int64(len(later)),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(later)), nil }, ContentType: "application/octet-stream"})
	if r.sendErr != nil {
		t.Fatalf("later send: %v", r.sendErr)
	}
	for i, m := range r.g.Members {
		if got := r.outcome.Of(r.members[i]); got.Kind != core.Delivered {
			t.Errorf("later send: %s: sender learned %v", r.members[i], got)
		}
		rec := m.Received()
		if len(rec) != 2 || rec[1].SHA256 != sum(later) {
			t.Errorf("%s stored %d messages, want the later one as the second byte-exact", r.members[i], len(rec))
		}
	}
}

// cpimWrap wraps a payload in CPIM (RFC 3862) as a foreign ClientA would.
func cpimWrap(body []byte) []byte {
	return append([]byte("From: <"+runtime.SenderURI+">\r\nTo: <"+runtime.GroupURI+">\r\n\r\n"+
		"Content-Type: application/octet-stream\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"), body...)
}

// foreign is a ClientA that cpmlink did not write: SIP through a sipx probe, MSRP from
// the test's own listener.
type foreign struct {
	probe    *sipx.Endpoint
	ln       net.Listener
	ours     string // our a=path
	theirs   string // PF-A's a=path
	hostport string // where PF-A's MSRP listens
}

// inviteForeign sends a foreign ClientA's INVITE for the group to PF-A and waits for the
// 200; the ACK is the caller's. The offer asks PF-A to connect (RFC 6135 a=setup:passive;
// fig3 has PF-A connect to ClientA anyway).
func inviteForeign(t *testing.T, ctx context.Context, g *runtime.Group, callID string) *foreign {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	f := &foreign{ln: ln, ours: "msrp://" + ln.Addr().String() + "/frgn" + callID + "7q2w9e4r;tcp"}
	answers := make(chan sipx.Response, 4)
	f.probe, err = sipx.Start(ctx, sipx.Config{Name: "probe-" + callID, Host: "127.0.0.1", Identity: runtime.SenderURI},
		sipx.Handler{Response: func(_ string, resp sipx.Response) { answers <- resp }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.probe.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	offer := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=message " + port + " TCP/MSRP *\r\n" +
		"a=path:" + f.ours + "\r\na=accept-types:message/cpim\r\na=accept-wrapped-types:*\r\na=setup:passive\r\na=sendonly\r\n"
	if err := f.probe.Invite(callID, runtime.GroupURI, "", []sipx.Part{{ContentType: "application/sdp", Body: []byte(offer)}},
		[]sipx.Header{{Name: "Accept-Contact", Value: "*;+g.oma.sip-im.large-message"},
			{Name: "Route", Value: "<sip:" + g.PFA.SIPAddr() + ";lr>"}}); err != nil {
		t.Fatal(err)
	}
	var ok sipx.Response
	select {
	case ok = <-answers:
	case <-ctx.Done():
		t.Fatal("no answer to the INVITE")
	}
	if ok.Status != 200 {
		t.Fatalf("INVITE answered %d %s", ok.Status, ok.Reason)
	}
	for _, p := range ok.Parts {
		for _, line := range strings.Split(string(p.Body), "\r\n") {
			if v, found := strings.CutPrefix(line, "a=path:"); found {
				f.theirs = v
			}
		}
	}
	f.hostport, _, _ = strings.Cut(strings.TrimPrefix(f.theirs, "msrp://"), "/")
	if f.theirs == "" || strings.Contains(f.theirs, " ") {
		t.Fatalf("PF-A's answer has a=path %q", f.theirs)
	}
	return f
}

// acceptLink takes the connection PF-A opens to the client (fig3: after the ACK) and
// answers its bind (RFC 4975 §7.1.1).
func (f *foreign) acceptLink(t *testing.T, ctx context.Context) *msrpWire {
	t.Helper()
	type accepted struct {
		nc  net.Conn
		err error
	}
	acc := make(chan accepted, 1)
	go func() {
		c, err := f.ln.Accept()
		acc <- accepted{c, err}
	}()
	var a accepted
	select {
	case a = <-acc:
	case <-ctx.Done():
		t.Fatal("PF-A never connected to the client")
	}
	if a.err != nil {
		t.Fatal(a.err)
	}
	link := newMSRPWire(t, ctx, a.nc)
	bind := link.read()
	if bind.method != "SEND" {
		t.Fatalf("PF-A's first frame: %+v", bind)
	}
	if _, err := fmt.Fprintf(a.nc, "MSRP %s 200 OK\r\nTo-Path: %s\r\nFrom-Path: %s\r\n-------%s$\r\n",
		bind.tid, bind.headers["from-path"], f.ours, bind.tid); err != nil {
		t.Fatal(err)
	}
	return link
}

// TestAbortSparesSharedConnection: fig3 with reuse on, so the CF opens one connection to
// PF-A and puts every session of that hop on it. A foreign ClientA's message is half way
// to the members when its sender drops its link; PF-A aborts its session on the shared
// connection at the moment the CF has already put a second session (the transmitter's
// message) on that connection but PF-A has not seen its bind yet (the CF is held between
// its dial and its bind). PF-A must abort that one session only: the second message
// reaches every member byte-exact, the half message is stored by none, and a later send is
// delivered too. (On main PF-A closed the connection, seeing no other session on it, and
// the CF's second session failed with it: the fig3 trace where one failing session took
// the others down.)
func TestAbortSparesSharedConnection(t *testing.T) {
	t.Parallel()
	v, _ := fsm.VariantByName("fig3")
	ctx := testCtx(t, time.Minute)
	const members = 2
	var (
		mu          sync.Mutex
		cf          *runtime.Node
		armed       bool
		foreignLeg  string // PF-A's onward leg of the foreign message
		release     func()
		delivering  = make(chan struct{}) // a member got a chunk of the foreign message
		dialed      = make(chan struct{}) // the CF put the second session on a connection
		aborted     = make(chan struct{}) // PF-A aborted the foreign message's onward leg
		deliverOnce sync.Once
		dialOnce    sync.Once
		abortOnce   sync.Once
	)
	var traceBuf lockedBuffer
	t.Cleanup(func() { keepTrace(t, traceBuf.Bytes()) })
	watch := recordWatch(func(rec runtime.Record) {
		switch {
		case rec.Role == "ClientB" && rec.Dir == "out" && rec.Type == "Deliver":
			deliverOnce.Do(func() { close(delivering) })
		case rec.Role == "PFA" && rec.Dir == "out" && rec.Type == "SendInvite":
			// The first onward leg PF-A invites is the foreign message's: the transmitter
			// sends only after that message reached a member.
			mu.Lock()
			if foreignLeg == "" {
				foreignLeg = rec.Leg
			}
			mu.Unlock()
		case rec.Role == "PFA" && rec.Dir == "out" && rec.Type == "AbortLink":
			// Only the abort of the foreign message's leg counts: an abort of the second
			// session's leg (its link-up timer, when the CF stays held) must not release it.
			mu.Lock()
			ours := rec.Leg == foreignLeg
			mu.Unlock()
			if ours {
				abortOnce.Do(func() { close(aborted) })
			}
		case rec.Role == "CF" && rec.Dir == "in" && rec.Type == "AckReceived":
			// Recorded before the machine's actions run: the hold is queued ahead of
			// the bind that the ReuseLink's dial will post.
			mu.Lock()
			if armed && release == nil {
				_, release = runtime.HoldForTest(cf)
			}
			mu.Unlock()
		}
	})
	g, err := runtime.StartGroup(ctx, runtime.GroupConfig{Variant: v, Members: members, PFBs: 1, StoreDir: t.TempDir(),
		Guard: 10 * time.Second, Trace: runtime.NewTracer(io.MultiWriter(watch, &traceBuf), nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		mu.Lock()
		if release != nil {
			release()
		}
		mu.Unlock()
		if err := g.Close(); err != nil {
			t.Errorf("closing the group: %v", err)
		}
	})
	mu.Lock()
	cf = g.CF
	mu.Unlock()
	r := &groupRun{g: g}
	for i := range members {
		r.members = append(r.members, runtime.MemberURI(i, 1))
	}

	// The foreign message, 8 chunks, of which the sender sends 3 and then drops its link.
	f := inviteForeign(t, ctx, g, "abt-1")
	if err := f.probe.Ack("abt-1"); err != nil {
		t.Fatal(err)
	}
	link := f.acceptLink(t, ctx)
	half := cpimWrap(payload(8*1500-120, 41))
	const chunk = 1500
	// Only the first 3 of the 8 chunks: the relays must see the message incomplete (the
	// last chunk sent ends with '+', every Byte-Range names the whole size), or PF-A rightly
	// keeps delivering it after the sender's link drops (RFC 4975 §7.2: a 200 to the last
	// chunk takes responsibility for the whole message) and aborts nothing.
	tids := link.sendFirstChunks(f.theirs, f.ours, "abtmsg01", "abt", half, chunk, 3*chunk)
	for tid, st := range link.answers(tids) {
		if st != 200 {
			t.Fatalf("chunk %s answered %d", tid, st)
		}
	}
	select {
	case <-delivering:
	case <-ctx.Done():
		t.Fatal("the foreign message never reached a member")
	}

	// The transmitter's message: the CF takes the pooled connection to PF-A for it and is
	// held before it sends the bind.
	runtime.DialedForTest(cf, func(string) { dialOnce.Do(func() { close(dialed) }) })
	mu.Lock()
	armed = true
	mu.Unlock()
	msg := payload(48<<10, 42)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		r.outcome, r.sendErr = g.ClientA.Send(ctx, runtime.GroupURI, nil, runtime.Message{Size: int64(len(msg)),
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(msg)), nil }, ContentType: "application/octet-stream"})
	}()
	select {
	case <-dialed:
	case <-ctx.Done():
		t.Fatal("the CF never dialed for the second message")
	}

	// The foreign sender drops its link mid-message: PF-A aborts the onward session.
	_ = link.nc.Close()
	select {
	case <-aborted:
	case <-ctx.Done():
		t.Fatal("PF-A never aborted the foreign message's onward leg")
	}
	mu.Lock()
	release()
	mu.Unlock()

	select {
	case <-sent:
	case <-ctx.Done():
		t.Fatal("the second send never completed")
	}
	if r.sendErr != nil {
		t.Fatalf("second send: %v (outcome %+v)", r.sendErr, r.outcome)
	}
	r.checkDelivered(t, msg, nil)
	_ = f.probe.Bye("abt-1")

	// A later session through the same connections.
	later := payload(20<<10, 43)
	r.outcome, r.sendErr = g.ClientA.Send(ctx, runtime.GroupURI, nil, runtime.Message{Size: int64(len(later)),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(later)), nil }, ContentType: "application/octet-stream"})
	if r.sendErr != nil {
		t.Fatalf("later send: %v", r.sendErr)
	}
	for i, m := range g.Members {
		if got := r.outcome.Of(r.members[i]); got.Kind != core.Delivered {
			t.Errorf("later send: %s: sender learned %v", r.members[i], got)
		}
		if rec := m.Received(); len(rec) != 2 || rec[1].SHA256 != sum(later) {
			t.Errorf("%s stored %d messages, want the later one as the second, byte-exact", r.members[i], len(rec))
		}
	}
	if err := g.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
}
