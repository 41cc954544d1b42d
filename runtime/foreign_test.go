package runtime_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
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
)

// foreignMember is a minimal receiving client written for this test from RFC 3261 (SIP over
// UDP) and RFC 4975 (MSRP over TCP), sharing no code with runtime/sipx or runtime/msrp. It
// registers, answers an INVITE with an SDP answer whose a=path names its listener, answers
// ACK and BYE as a UAS must, and answers every MSRP SEND with 200 OK. It never sends a
// REPORT: the minimal standard client that cpmlink must count as delivered from its 200s.
type foreignMember struct {
	aor string
	// status answers every SEND (200 OK unless set).
	status int
	// deaf makes the member stop reading its MSRP connection once it has answered the
	// bind (the bodiless SEND, RFC 4975 §7.1.1): the relay's writes to it back up until
	// its write timeout. bound is closed then.
	deaf  bool
	bound chan struct{}
	// hangUpAfter makes the member's user hang up once that many chunks with a body
	// arrived: once its dialog is confirmed (RFC 3261 §15) it sends BYE, answers no SEND
	// after it, and closes its MSRP connection when the BYE's final response arrives.
	hangUpAfter int
	stop        chan struct{}
	udp         *net.UDPConn
	ln          net.Listener
	path        string
	// acked is closed when the ACK of the member's 2xx arrives.
	acked     chan struct{}
	ackedOnce sync.Once
	// byeDone is closed when the BYE's final response arrives (byeStatus).
	byeDone chan struct{}
	byeOnce sync.Once

	mu      sync.Mutex
	message bytes.Buffer // the chunks of the one message, in Byte-Range order
	chunks  int          // how many chunks with a body it stored
	done    chan struct{}
	once    sync.Once
	errs    []error
	conns   []net.Conn
	wg      sync.WaitGroup

	// dialog is what the INVITE set up, for the member's own in-dialog requests.
	dialog *uasDialog
	// byeStatus is the final status of the member's BYE; afterBye counts the MSRP
	// requests read after the BYE went out (until the member closed its connection), and
	// lastFlag is the continuation flag of the last of them.
	byeStatus int
	afterBye  int
	lastFlag  byte
}

func newForeignMember(t *testing.T, aor string) *foreignMember {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &foreignMember{aor: aor, udp: udp, ln: ln, done: make(chan struct{}), bound: make(chan struct{}), stop: make(chan struct{}),
		acked: make(chan struct{}), byeDone: make(chan struct{})}
	p.path = fmt.Sprintf("msrp://%s/%s;tcp", ln.Addr(), token())
	t.Cleanup(func() {
		udp.Close()
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close() // a relay may keep an idle connection open for reuse
		}
		p.mu.Unlock()
		close(p.stop)
		p.wg.Wait()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, err := range p.errs {
			t.Errorf("raw member: %v", err)
		}
	})
	return p
}

func token() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (p *foreignMember) fail(err error) {
	p.mu.Lock()
	p.errs = append(p.errs, err)
	p.mu.Unlock()
}

// register binds the member's AOR to its UDP address at registrar (RFC 3261 §10.2).
func (p *foreignMember) register(ctx context.Context, registrar string) error {
	local := p.udp.LocalAddr().String()
	user := strings.TrimPrefix(strings.SplitN(p.aor, "@", 2)[0], "sip:")
	req := "REGISTER sip:" + registrar + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK" + token() + ";rport\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <" + p.aor + ">;tag=" + token() + "\r\n" +
		"To: <" + p.aor + ">\r\n" +
		"Call-ID: " + token() + "@127.0.0.1\r\n" +
		"CSeq: 1 REGISTER\r\n" +
		"Contact: <sip:" + user + "@" + local + ">\r\n" +
		"Expires: 3600\r\n" +
		"Content-Length: 0\r\n\r\n"
	to, err := net.ResolveUDPAddr("udp", registrar)
	if err != nil {
		return err
	}
	if _, err := p.udp.WriteToUDP([]byte(req), to); err != nil {
		return err
	}
	buf := make([]byte, 65535)
	for {
		deadline, _ := ctx.Deadline()
		p.udp.SetReadDeadline(deadline)
		n, _, err := p.udp.ReadFromUDP(buf)
		if err != nil {
			return err
		}
		line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "SIP/2.0" {
			continue
		}
		code, _ := strconv.Atoi(f[1])
		switch {
		case code < 200:
			continue
		case code < 300:
			p.udp.SetReadDeadline(time.Time{})
			return nil
		}
		return fmt.Errorf("REGISTER: %s", line)
	}
}

// serve answers SIP requests and accepts the MSRP connection until the sockets close.
func (p *foreignMember) serve() {
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		p.serveSIP()
	}()
	go func() {
		defer p.wg.Done()
		for {
			c, err := p.ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, c)
			p.mu.Unlock()
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer c.Close()
				p.serveMSRP(c)
			}()
		}
	}()
}

// sipHeaders splits a SIP message into its start line, headers (compact forms expanded,
// RFC 3261 §7.3.3) and body.
func sipHeaders(msg string) (string, [][2]string, string) {
	head, body, _ := strings.Cut(msg, "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	compact := map[string]string{"v": "Via", "f": "From", "t": "To", "i": "Call-ID", "m": "Contact", "l": "Content-Length", "c": "Content-Type"}
	var hs [][2]string
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		if long, ok := compact[strings.ToLower(name)]; ok {
			name = long
		}
		hs = append(hs, [2]string{name, strings.TrimSpace(value)})
	}
	return lines[0], hs, body
}

func (p *foreignMember) serveSIP() {
	buf := make([]byte, 65535)
	toTag := token()
	for {
		n, from, err := p.udp.ReadFromUDP(buf)
		if err != nil {
			return
		}
		start, hs, _ := sipHeaders(string(buf[:n]))
		f := strings.Fields(start)
		if len(f) >= 2 && f[0] == "SIP/2.0" {
			p.response(f[1], hs)
			continue
		}
		if len(f) < 3 || f[2] != "SIP/2.0" {
			continue // not SIP
		}
		var body, ctype string
		switch f[0] {
		case "ACK":
			p.ackedOnce.Do(func() { close(p.acked) })
			continue // RFC 3261 §17.2.1: an ACK gets no response
		case "INVITE":
			p.learnDialog(hs, toTag)
			// RFC 4975 §8: the answer's a=path is where the offerer (PF-B, which opens the
			// link in FIG. 1) connects.
			host, port, _ := net.SplitHostPort(p.ln.Addr().String())
			body = "v=0\r\no=- 1 1 IN IP4 " + host + "\r\ns=-\r\nc=IN IP4 " + host + "\r\nt=0 0\r\n" +
				"m=message " + port + " TCP/MSRP *\r\na=accept-types:message/cpim\r\na=accept-wrapped-types:*\r\n" +
				"a=path:" + p.path + "\r\na=recvonly\r\n"
			ctype = "application/sdp"
		}
		var res strings.Builder
		res.WriteString("SIP/2.0 200 OK\r\n")
		for _, h := range hs {
			switch h[0] {
			case "Via", "From", "Call-ID", "CSeq", "Record-Route":
				res.WriteString(h[0] + ": " + h[1] + "\r\n")
			case "To":
				v := h[1]
				if !strings.Contains(v, "tag=") {
					v += ";tag=" + toTag
				}
				res.WriteString("To: " + v + "\r\n")
			}
		}
		res.WriteString("Contact: <sip:member@" + p.udp.LocalAddr().String() + ">\r\n")
		if ctype != "" {
			res.WriteString("Content-Type: " + ctype + "\r\n")
		}
		res.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
		if _, err := p.udp.WriteToUDP([]byte(res.String()), from); err != nil {
			return
		}
	}
}

// uasDialog is the member's side of the dialog an INVITE made (RFC 3261 §12.1.1), what
// its own requests in the dialog need (§12.2.1.1).
type uasDialog struct {
	callID string
	// from and to are the From and To of the member's requests: the INVITE's To with the
	// member's tag, and its From (with the caller's tag).
	from, to string
	// target is the remote target (the INVITE's Contact URI); routes the route set, the
	// INVITE's Record-Route entries in their order.
	target string
	routes []string
}

// headerURI is the URI of a name-addr or addr-spec header value (RFC 3261 §20: without
// angle brackets, what follows ';' is a header parameter).
func headerURI(v string) string {
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j > 0 {
			return v[i+1 : i+j]
		}
	}
	u, _, _ := strings.Cut(strings.TrimSpace(v), ";")
	return u
}

// hostPort is where a SIP URI points: its host and port (5060 by default, RFC 3261 §19.1.2).
func hostPort(uri string) (string, error) {
	rest, ok := strings.CutPrefix(uri, "sip:")
	if !ok {
		return "", fmt.Errorf("not a sip URI: %q", uri)
	}
	if strings.Contains(strings.ToLower(rest), "transport=tcp") || strings.Contains(strings.ToLower(rest), "transport=tls") {
		return "", fmt.Errorf("the member speaks SIP over UDP only: %q", uri)
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	rest, _, _ = strings.Cut(rest, ";")
	rest, _, _ = strings.Cut(rest, "?")
	if _, _, err := net.SplitHostPort(rest); err != nil {
		rest = net.JoinHostPort(rest, "5060")
	}
	return rest, nil
}

// learnDialog keeps what the (first) INVITE says of the dialog it makes.
func (p *foreignMember) learnDialog(hs [][2]string, toTag string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dialog != nil {
		return // a retransmission
	}
	d := &uasDialog{}
	for _, h := range hs {
		switch h[0] {
		case "Call-ID":
			d.callID = h[1]
		case "From":
			d.to = h[1]
		case "To":
			d.from = h[1]
			if !strings.Contains(d.from, "tag=") {
				d.from += ";tag=" + toTag
			}
		case "Contact":
			d.target = headerURI(h[1])
		case "Record-Route":
			for _, rr := range strings.Split(h[1], ",") {
				d.routes = append(d.routes, strings.TrimSpace(rr))
			}
		}
	}
	p.dialog = d
}

// response takes a response to one of the member's own requests: the BYE's final one
// ends the hang-up, and the member closes its MSRP connection.
func (p *foreignMember) response(code string, hs [][2]string) {
	status, _ := strconv.Atoi(code)
	bye := false
	for _, h := range hs {
		if h[0] == "CSeq" {
			f := strings.Fields(h[1])
			bye = len(f) == 2 && f[1] == "BYE"
		}
	}
	if !bye || status < 200 {
		return
	}
	p.mu.Lock()
	first := p.byeStatus == 0
	if first {
		p.byeStatus = status
	}
	conns := p.conns
	p.mu.Unlock()
	if !first {
		return // a retransmitted response
	}
	close(p.byeDone)
	for _, c := range conns {
		c.Close()
	}
}

// bye sends the member's BYE in its dialog (RFC 3261 §12.2.1.1, §15.1.1): the remote
// target as Request-URI, the route set as Route, the dialog's tags and Call-ID, a CSeq of
// the member's own (it sent no request in the dialog before) and its own Via. Over UDP it
// retransmits as a non-INVITE client transaction does (§17.1.2.2: Timer E, from T1
// doubling up to T2, until Timer F) until a final response arrives.
func (p *foreignMember) bye() error {
	p.mu.Lock()
	d := p.dialog
	p.mu.Unlock()
	if d == nil {
		return errors.New("BYE: no dialog")
	}
	next := d.target
	if len(d.routes) > 0 {
		next = headerURI(d.routes[0]) // every proxy here loose-routes (;lr)
	}
	addr, err := hostPort(next)
	if err != nil {
		return fmt.Errorf("BYE: %w", err)
	}
	to, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return fmt.Errorf("BYE: %w", err)
	}
	var req strings.Builder
	req.WriteString("BYE " + d.target + " SIP/2.0\r\n")
	req.WriteString("Via: SIP/2.0/UDP " + p.udp.LocalAddr().String() + ";branch=z9hG4bK" + token() + ";rport\r\n")
	req.WriteString("Max-Forwards: 70\r\n")
	for _, r := range d.routes {
		req.WriteString("Route: " + r + "\r\n")
	}
	req.WriteString("From: " + d.from + "\r\nTo: " + d.to + "\r\nCall-ID: " + d.callID + "\r\n")
	req.WriteString("CSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n")
	msg := []byte(req.String())
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		const t1, t2 = 500 * time.Millisecond, 4 * time.Second
		timerF := time.NewTimer(64 * t1)
		defer timerF.Stop()
		for wait := t1; ; wait = min(2*wait, t2) {
			if _, err := p.udp.WriteToUDP(msg, to); err != nil {
				return // the member is closing
			}
			timerE := time.NewTimer(wait)
			select {
			case <-p.byeDone:
				timerE.Stop()
				return
			case <-p.stop:
				timerE.Stop()
				return
			case <-timerF.C:
				timerE.Stop()
				p.fail(errors.New("BYE: no final response (Timer F)"))
				return
			case <-timerE.C:
			}
		}
	}()
	return nil
}

// serveMSRP reads MSRP requests (RFC 4975 §7, §9) and answers each SEND with 200 OK,
// unless Failure-Report says no or partial (§7.1.1).
func (p *foreignMember) serveMSRP(c net.Conn) {
	r := bufio.NewReader(c)
	hungUp := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "MSRP" {
			p.fail(fmt.Errorf("bad MSRP start line %q", line))
			return
		}
		tid, method := f[1], f[2]
		end := "-------" + tid
		hs := map[string]string{}
		var body []byte
		flag := byte(0)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			l = strings.TrimRight(l, "\r\n")
			if strings.HasPrefix(l, end) && len(l) == len(end)+1 {
				flag = l[len(l)-1] // no body
				break
			}
			if l == "" {
				// The body runs up to CRLF and the end-line (§7.1).
				var b bytes.Buffer
				marker := []byte("\r\n" + end)
				for !bytes.HasSuffix(b.Bytes(), marker) {
					c, err := r.ReadByte()
					if err != nil {
						return
					}
					b.WriteByte(c)
				}
				body = b.Bytes()[:b.Len()-len(marker)]
				fl, err := r.ReadString('\n')
				if err != nil || len(fl) < 1 {
					return
				}
				flag = fl[0]
				break
			}
			name, value, _ := strings.Cut(l, ":")
			hs[strings.ToLower(strings.TrimSpace(name))] = strings.TrimSpace(value)
		}
		if hungUp {
			// The session is over for the member: it reads on only to see what its
			// relay still sends, until the BYE's response closes the connection.
			p.mu.Lock()
			p.afterBye++
			p.lastFlag = flag
			p.mu.Unlock()
			continue
		}
		if method != "SEND" {
			continue // REPORTs get no response (§7.1.2); nothing else is expected
		}
		if len(body) > 0 && p.status == 0 {
			// Byte-Range: start-end/total (§7.1.1); chunks arrive in order on one link.
			br := hs["byte-range"]
			startS, _, _ := strings.Cut(br, "-")
			start, err := strconv.ParseInt(startS, 10, 64)
			p.mu.Lock()
			if err != nil || start != int64(p.message.Len())+1 {
				p.mu.Unlock()
				p.fail(fmt.Errorf("chunk at %q after %d bytes", br, p.message.Len()))
				return
			}
			p.message.Write(body)
			p.chunks++
			p.mu.Unlock()
		}
		status, phrase := 200, "OK"
		if p.status != 0 && len(body) > 0 {
			status, phrase = p.status, "Refused"
		}
		if fr := strings.ToLower(hs["failure-report"]); fr != "no" && (fr != "partial" || status != 200) {
			toPath := hs["from-path"]
			fromPath := strings.Fields(hs["to-path"])[0]
			res := "MSRP " + tid + " " + strconv.Itoa(status) + " " + phrase + "\r\nTo-Path: " + toPath + "\r\nFrom-Path: " + fromPath + "\r\n" + end + "$\r\n"
			if _, err := io.WriteString(c, res); err != nil {
				return
			}
		}
		if flag == '$' && len(body) > 0 {
			p.once.Do(func() { close(p.done) })
		}
		if p.deaf && len(body) == 0 {
			close(p.bound)
			<-p.stop
			return
		}
		p.mu.Lock()
		hangUp := p.hangUpAfter > 0 && p.chunks >= p.hangUpAfter
		p.mu.Unlock()
		if hangUp {
			// A callee sends BYE only once its 2xx is acknowledged (RFC 3261 §15).
			select {
			case <-p.acked:
			case <-p.stop:
				return
			}
			if err := p.bye(); err != nil {
				p.fail(err)
				return
			}
			hungUp = true
		}
	}
}

// payload returns what the member received without its CPIM envelope (RFC 3862 §2: the
// message headers, a blank line, the MIME headers, a blank line, the content).
func (p *foreignMember) payload() ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.message.Bytes()
	for i := 0; i < 2; i++ {
		k := bytes.Index(b, []byte("\r\n\r\n"))
		if k < 0 {
			return nil, errors.New("no CPIM envelope")
		}
		b = b[k+4:]
	}
	return b, nil
}

// TestForeignMemberReportedDelivered: a member that is a minimal RFC 4975 client of the
// test's own (it answers every SEND with 200 and sends no REPORT, although the sender
// asked for one) is reported delivered to the sender: PF-B counts its 200s as the
// delivery. Our own member beside it is reported delivered too.
func TestForeignMemberReportedDelivered(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 30*time.Second)
	v, _ := fsm.VariantByName("fig1") // PF-B opens hop4: the member only listens
	msg := payload(120<<10+5, 3)
	cfg := runtime.GroupConfig{Variant: v, Members: 2, PFBs: 1, ChunkSize: 16 << 10, StoreDir: t.TempDir(), Foreign: map[int]bool{0: true}}
	r := startGroup(t, ctx, cfg)
	foreign := newForeignMember(t, r.members[0])
	if err := foreign.register(ctx, r.g.PFBs[0].SIPAddr()); err != nil {
		t.Fatalf("registering the raw member: %v", err)
	}
	foreign.serve()
	r.send(t, ctx, runtime.GroupURI, nil, msg)
	select {
	case <-foreign.done:
	case <-ctx.Done():
		t.Fatal("the raw member never got the end of the message")
	}
	got, err := foreign.payload()
	if err != nil || sum(got) != sum(msg) {
		t.Errorf("the raw member holds %d bytes (%v), not the message", len(got), err)
	}
	for i, uri := range r.members {
		if o := r.outcome.Of(uri); o.Kind != core.Delivered {
			t.Errorf("member %d (%s): the sender learned %v, want delivered", i, uri, o)
		}
	}
	if rec := r.g.Members[0].Received(); len(rec) != 1 || rec[0].SHA256 != sum(msg) {
		t.Errorf("our member stored %+v", rec)
	}
}

// TestForeignMemberRefusing: a raw member that answers the SENDs with 415 (RFC 4975
// §7.1.1: a non-200 response) is reported failed with that status, and our member beside
// it is delivered.
func TestForeignMemberRefusing(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 30*time.Second)
	v, _ := fsm.VariantByName("fig1")
	msg := payload(40<<10+1, 4)
	cfg := runtime.GroupConfig{Variant: v, Members: 2, PFBs: 1, ChunkSize: 16 << 10, StoreDir: t.TempDir(), Foreign: map[int]bool{0: true}}
	r := startGroup(t, ctx, cfg)
	foreign := newForeignMember(t, r.members[0])
	foreign.status = 415
	if err := foreign.register(ctx, r.g.PFBs[0].SIPAddr()); err != nil {
		t.Fatalf("registering the raw member: %v", err)
	}
	foreign.serve()
	r.send(t, ctx, runtime.GroupURI, nil, msg)
	if o := r.outcome.Of(r.members[0]); o.Kind != core.Failed || o.Status != 415 {
		t.Errorf("the refusing member: the sender learned %v, want failed 415", o)
	}
	if o := r.outcome.Of(r.members[1]); o.Kind != core.Delivered {
		t.Errorf("our member: the sender learned %v, want delivered", o)
	}
	if rec := r.g.Members[0].Received(); len(rec) != 1 || rec[0].SHA256 != sum(msg) {
		t.Errorf("our member stored %+v", rec)
	}
}

// TestDeafMemberDoesNotStallRelay: a member that stops reading its MSRP connection
// holds up only its own link. PF-B's relay writer to it blocks in a write that only
// msrp.Config.WriteTimeout (30 s) ends; when PF-B's guard gives the member up, the
// machine aborts that link (AbortLink) and a second message, to another member behind
// the same PF-B, must still be delivered well within the write timeout. Before the fix,
// aborting waited on the node's goroutine for the blocked writer (to end the message
// with '#', RFC 4975 §7.1.1), and every session of the PF-B waited with it.
func TestDeafMemberDoesNotStallRelay(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 2*time.Minute)
	// The deaf member's message must not fit in what the kernel buffers between PF-B and
	// the member (about 4 MiB on Linux loopback: tcp_wmem's maximum and the member's
	// receive window), so that PF-B's writer blocks; and it must fit in PF-B's store
	// (16 chunks), so that the store never holds the upstream back and no stall
	// detection drops the member before the guard aborts it.
	const chunk, guard = 512 << 10, 2 * time.Second
	first := payload(7<<20+3, 21)
	// Below the default write timeout (30 s), and above what the second message needs
	// (a few hundred ms on loopback, under -race too).
	const within = 10 * time.Second
	cfg := runtime.GroupConfig{Variant: fig1(t), Members: 2, PFBs: 1, ChunkSize: chunk, Guard: guard,
		StoreDir: t.TempDir(), Foreign: map[int]bool{0: true}}
	r := startGroup(t, ctx, cfg)
	deaf := newForeignMember(t, r.members[0])
	deaf.deaf = true
	if err := deaf.register(ctx, r.g.PFBs[0].SIPAddr()); err != nil {
		t.Fatalf("registering the deaf member: %v", err)
	}
	deaf.serve()
	aborting := make(chan struct{}, 1)
	runtime.ExecutedForTest(r.g.PFBs[0], func(a fsm.Action) {
		if _, ok := a.(fsm.AbortLink); ok {
			select {
			case aborting <- struct{}{}:
			default:
			}
		}
	})

	type sent struct {
		out runtime.Outcome
		err error
	}
	firstDone := make(chan sent, 1)
	go func() {
		out, err := r.g.ClientA.Send(ctx, runtime.AdHocURI, []string{r.members[0]}, runtime.Message{
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(first)), nil },
			Size: int64(len(first)), ContentType: "application/octet-stream"})
		firstDone <- sent{out, err}
	}()
	for _, ch := range []chan struct{}{deaf.bound, aborting} {
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatal("the deaf member's link was never bound and aborted")
		}
	}

	second := payload(40<<10+1, 22)
	ctx2, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	start := time.Now()
	out, err := r.g.ClientA.Send(ctx2, runtime.AdHocURI, []string{r.members[1]}, runtime.Message{
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(second)), nil },
		Size: int64(len(second)), ContentType: "application/octet-stream"})
	if o := out.Of(r.members[1]); err != nil || o.Kind != core.Delivered {
		t.Errorf("second message, while PF-B aborts the deaf member's link: %v after %v, outcome %v; want delivered within %v",
			err, time.Since(start).Round(time.Millisecond), o, within)
	}
	if rec := r.g.Members[0].Received(); len(rec) != 1 || rec[0].SHA256 != sum(second) {
		t.Errorf("the other member stored %+v, want the second message", rec)
	}

	var res sent
	select {
	case res = <-firstDone:
	case <-ctx.Done():
		t.Fatal("the first message never ended")
	}
	// PF-B's guard gave the member up: the sender learns it failed, it is not dropped.
	if o := res.out.Of(r.members[0]); res.err != nil || o.Kind != core.Failed {
		t.Errorf("deaf member: the sender learned %v (%v), want failed", o, res.err)
	}
	if err := r.g.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
}
