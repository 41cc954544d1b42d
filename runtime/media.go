package runtime

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/runtime/cpim"
	"github.com/cpmlink/cpmlink/runtime/msrp"
	"github.com/cpmlink/cpmlink/runtime/sipx"
)

// Extension headers of the REPORTs that carry one member's outcome upstream.
const (
	memberHeader  = "CPM-Member"
	membersHeader = "CPM-Members"
)

// storeWindow is how many chunks a relay holds at most between its slowest and its
// fastest consumer.
const storeWindow = 16

// deliverer names the receiver's file as a consumer of its chunk store.
const deliverer = "deliver"

// media is a node's MSRP side: one endpoint, one session per leg that has a link.
type media struct {
	n  *Node
	ep *msrp.Endpoint
	ln net.Listener

	// The maps are touched only on the node's goroutine.
	legs  map[fsm.LegID]*legMedia
	peers map[fsm.LegID]fsm.SDP
	// downs lists, per up leg, the down legs the machine sent an INVITE on: the consumers
	// of what arrives on the up leg.
	downs map[fsm.LegID][]fsm.LegID
	dead  map[fsm.LegID]bool
	// up lists the legs whose LinkUp the machine took; held keeps the binds of legs
	// that reuse the connection another leg opened until that leg's own LinkUp: the
	// pool may hand out a connection before the leg that opened it has bound, but for
	// the machine (and the spec) a connection is up first for the leg that opened it.
	up   map[fsm.LegID]bool
	held map[fsm.LegID][]func()

	// source is what a transmitter sends, set by Send before its machine starts.
	source *Message

	mu       sync.Mutex
	received []Received
	// arrived is closed (and replaced) each time a message is stored.
	arrived chan struct{}

	wg sync.WaitGroup
}

// legMedia is one leg's link.
type legMedia struct {
	sess *msrp.Session
	// store holds the message arriving on this leg (up legs).
	store *chunkStore
	// out relays a message onto this leg (down legs).
	out *relayOut
	// file receives the message (a receiver's up leg).
	file *delivery
}

// Received describes a message a receiver stored.
type Received struct {
	MessageID string
	From      string
	File      string
	Bytes     int64
	SHA256    string
	At        time.Time
}

func startMedia(n *Node, addr string) (*media, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("runtime: %s: MSRP listener: %w", n.cfg.Name, err)
	}
	m := &media{n: n, ln: ln, legs: map[fsm.LegID]*legMedia{}, peers: map[fsm.LegID]fsm.SDP{},
		downs: map[fsm.LegID][]fsm.LegID{}, dead: map[fsm.LegID]bool{},
		up: map[fsm.LegID]bool{}, held: map[fsm.LegID][]func(){}, arrived: make(chan struct{})}
	m.ep = msrp.NewEndpoint(msrp.Config{ChunkSize: n.cfg.ChunkSize, TLSConfig: n.cfg.TLS})
	served := ln
	if n.cfg.TLS != nil {
		// msrps: the listener accepts TLS only, and every URI of ours says so.
		served = tls.NewListener(ln, n.cfg.TLS)
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.ep.Serve(served)
	}()
	return m, nil
}

func (m *media) addr() string { return m.ln.Addr().String() }

// errClosing ends what a closing node was still receiving.
var errClosing = errors.New("runtime: the node is closing")

// close ends every session and waits for the goroutines media started. The node's
// goroutine has ended, so the leg maps are ours.
func (m *media) close() error {
	err := m.ep.Close()
	for _, lm := range m.legs {
		if lm.file != nil {
			lm.file.pw.CloseWithError(errClosing)
		}
	}
	m.wg.Wait()
	return err
}

// learned remembers the peer's parameters a leg received in SDP, for a session that
// starts listening before it knows them (RFC 6135 actpass).
func (m *media) learned(leg fsm.LegID, p fsm.SDP) {
	m.peers[leg] = p
	if lm := m.legs[leg]; lm != nil {
		path, err := msrp.ParsePath(p.Path)
		if err == nil {
			err = lm.sess.SetRemote(path)
		}
		if err != nil {
			// Someone other than the peer the SDP names bound the session: give it up.
			m.n.note(leg, "wrong-peer", "abort", err.Error())
			lm.sess.Abort(err)
		}
	}
}

// session returns the leg's session, creating it with our parameters and, if known, the
// peer's.
func (m *media) session(leg fsm.LegID, local fsm.SDP) (*legMedia, error) {
	if lm := m.legs[leg]; lm != nil {
		return lm, nil
	}
	lu, err := msrp.ParseURI(local.Path)
	if err != nil {
		return nil, err
	}
	// The machine decides reuse (OpenLink or ReuseLink) from the variant; the pool follows
	// the same knob, so that both agree on what "an existing link" is.
	policy := msrp.ReuseOff
	if m.n.cfg.Variant.Reuse == fsm.ReuseOn {
		policy = msrp.ReuseAuthority
	}
	cfg := msrp.SessionConfig{Local: lu, ChunkSize: m.n.cfg.ChunkSize, DetachedReports: true, Reuse: &policy,
		OnLinkUp: func(l msrp.Link) {
			if !l.Active {
				m.n.event(fsm.LinkUp{Leg: leg, Conn: fsm.ConnID(l.RemoteAddr.String()), Reused: l.Reused})
			}
		},
		OnLinkDown: func(err error) {
			m.n.post(func() { m.linkFailed(leg, "link-down", "failed", err) })
		},
		OnReport: func(f *msrp.Frame) { m.onReport(leg, f) },
		Accept:   func(im *msrp.IncomingMessage) (msrp.Sink, error) { return m.accept1(leg, im) },
	}
	if p, ok := m.peers[leg]; ok {
		if path, err := msrp.ParsePath(p.Path); err == nil {
			cfg.Remote = path
		}
	}
	s, err := m.ep.NewSession(cfg)
	if err != nil {
		return nil, err
	}
	lm := &legMedia{sess: s}
	m.legs[leg] = lm
	return lm, nil
}

func statusOf(err error) int {
	if st := msrp.StatusOf(err); st >= 400 {
		return st
	}
	return 408
}

// accept makes the leg ready for the peer's connection (the passive party).
func (m *media) accept(leg fsm.LegID, local fsm.SDP) error {
	_, err := m.session(leg, local)
	return err
}

// open opens (or, with reuse, binds to an existing) connection for the leg (the active
// party); the outcome reaches the machine as LinkUp or LinkFailed.
func (m *media) open(leg fsm.LegID, local, peer fsm.SDP, conn fsm.ConnID, reuse bool) error {
	m.peers[leg] = peer
	lm, err := m.session(leg, local)
	if err != nil {
		return err
	}
	path, err := msrp.ParsePath(peer.Path)
	if err != nil {
		return err
	}
	if err := lm.sess.SetRemote(path); err != nil {
		return err
	}
	// The connection is dialed off the node's goroutine; the bind that tells the peer is
	// sent on it, together with the machine's LinkUp, so that the machine learns of its
	// link before the peer can: the spec's model of an opener (the explorer's too).
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		ctx, cancel := context.WithTimeout(m.n.ctx, m.n.cfg.Guard)
		defer cancel()
		link, err := lm.sess.Dial(ctx)
		if err != nil {
			m.n.post(func() {
				m.n.note(leg, "connect", "failed", err.Error())
				m.n.step(fsm.LinkFailed{Leg: leg, Status: statusOf(err)})
			})
			return
		}
		m.n.post(func() { m.bind(lm, leg, conn, reuse, link) })
	}()
	return nil
}

// bind sends the bind of a dialed link and hands the machine its LinkUp (on the node's
// goroutine); a bind the peer refuses later is a link failure.
func (m *media) bind(lm *legMedia, leg fsm.LegID, conn fsm.ConnID, reuse bool, link msrp.Link) {
	if m.dead[leg] {
		return
	}
	if base := fsm.LegID(conn); reuse && base != leg && !m.up[base] && !m.dead[base] {
		m.held[base] = append(m.held[base], func() { m.bind(lm, leg, conn, reuse, link) })
		return
	}
	ctx, cancel := context.WithTimeout(m.n.ctx, m.n.cfg.Guard)
	defer cancel()
	answered, err := lm.sess.Bind(ctx)
	if err != nil {
		m.n.note(leg, "connect", "failed", err.Error())
		m.n.step(fsm.LinkFailed{Leg: leg, Status: statusOf(err)})
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		select {
		case err = <-answered:
		case <-m.n.ctx.Done():
			return
		}
		if err != nil {
			m.n.post(func() { m.linkFailed(leg, "bind", "failed", err) })
		}
	}()
	if link.Reused != reuse {
		m.n.note(leg, "pool", "", fmt.Sprintf("the machine asked reuse=%v, the pool reused=%v", reuse, link.Reused))
	}
	m.linkUp(fsm.LinkUp{Leg: leg, Conn: conn, Reused: link.Reused})
}

// linkUp hands the machine a LinkUp, then those of the legs that waited for it.
func (m *media) linkUp(ev fsm.LinkUp) {
	m.up[ev.Leg] = true
	m.n.step(ev)
	m.release(ev.Leg)
}

// release binds the links held for the connection leg opened.
func (m *media) release(leg fsm.LegID) {
	held := m.held[leg]
	delete(m.held, leg)
	for _, bind := range held {
		bind()
	}
}

// close1 ends a leg's link; abort makes the peer see it fail.
func (m *media) close1(leg fsm.LegID, abort bool) {
	m.kill(leg, errors.New("runtime: link closed"))
	lm := m.legs[leg]
	if lm == nil {
		return
	}
	if abort {
		lm.sess.Abort(errors.New("runtime: the session failed"))
	} else {
		lm.sess.Close()
	}
}

// linkFailed tells the machine that a leg's link failed, once: the connection, the
// message arriving on it, the relay writing to it and the bind each watch the link, and
// whichever sees the failure first reports it; the machine gets one LinkFailed per link,
// as the simulator gives it. A leg we closed ourselves is not reported. It runs on the
// node's goroutine.
func (m *media) linkFailed(leg fsm.LegID, what, verdict string, err error) {
	if m.dead[leg] {
		return
	}
	m.n.note(leg, what, verdict, fmt.Sprint(err))
	m.kill(leg, err)
	m.n.step(fsm.LinkFailed{Leg: leg, Status: statusOf(err)})
}

// kill marks a leg dead: what arrives upstream is no longer kept for it.
func (m *media) kill(leg fsm.LegID, err error) {
	if m.dead[leg] {
		return
	}
	m.dead[leg] = true
	// The legs reusing its connection learn of it on their own (their sessions share
	// the connection); what they were told so far must not wait on a dead leg.
	defer m.release(leg)
	if up := parentLeg(leg); up != "" {
		if lm := m.legs[up]; lm != nil && lm.store != nil {
			lm.store.drop(string(leg))
		}
	}
	if lm := m.legs[leg]; lm != nil {
		if lm.store != nil {
			lm.store.fail(err)
		}
		if lm.out != nil {
			lm.out.stop()
		}
		if lm.file != nil {
			// The store's writer ends with the link: a message that stops arriving is
			// not stored, and nothing waits for the rest of it.
			lm.file.pw.CloseWithError(err)
		}
	}
}

// invited records a down leg the machine sent an INVITE on.
func (m *media) invited(leg fsm.LegID) {
	up := parentLeg(leg)
	m.downs[up] = append(m.downs[up], leg)
}

// accept1 takes a message arriving on a leg: a relay keeps its chunks for the down legs,
// a receiver for its file. Each chunk is told to the machine, which decides where it goes.
func (m *media) accept1(leg fsm.LegID, im *msrp.IncomingMessage) (msrp.Sink, error) {
	type res struct {
		st  *chunkStore
		err error
	}
	ch := make(chan res, 1)
	// The store is set up on the node's goroutine, which owns the maps.
	if !m.n.in.post(func() {
		lm := m.legs[leg]
		if lm == nil || lm.store != nil {
			ch <- res{err: &msrp.StatusError{Code: 403, Comment: "one message per session"}}
			return
		}
		var consumers []string
		for _, d := range m.downs[leg] {
			if !m.dead[d] {
				consumers = append(consumers, string(d))
			}
		}
		if m.n.cfg.Kind == fsm.RoleClientB {
			consumers = []string{deliverer}
			f, err := m.newDelivery(im)
			if err != nil {
				ch <- res{err: &msrp.StatusError{Code: 403, Comment: err.Error()}}
				return
			}
			lm.file = f
		}
		// Bounded memory whatever the message size and the number of members: the
		// consumers share the chunks, and the store holds those between the slowest
		// consumer and the newest chunk, up to a window of storeWindow chunks; past it
		// the MSRP reader waits (TCP back-pressure up the chain).
		limit := int64(storeWindow * m.n.cfg.ChunkSize)
		lm.store = newChunkStore(*im, consumers, limit, m.n.cfg.Guard/2, func(slow string) {
			m.n.post(func() {
				m.n.note(fsm.LegID(slow), "stall", "", "dropped: it held the relay full")
				m.kill(fsm.LegID(slow), errStalled)
				m.n.step(fsm.LinkFailed{Leg: fsm.LegID(slow), Status: 408})
			})
		})
		ch <- res{st: lm.store}
	}) {
		return nil, &msrp.StatusError{Code: 481, Comment: "closing"}
	}
	var r res
	select {
	case r = <-ch:
	case <-m.n.ctx.Done():
		return nil, &msrp.StatusError{Code: 481, Comment: "closing"}
	}
	if r.err != nil {
		return nil, r.err
	}
	return &storeSink{m: m, leg: leg, st: r.st}, nil
}

// storeSink is the MSRP sink of an up leg: it keeps each chunk and tells the machine.
type storeSink struct {
	m   *media
	leg fsm.LegID
	st  *chunkStore
}

func (s *storeSink) WriteChunk(c *msrp.Chunk) error {
	last := c.Flag == msrp.FlagEnd
	k, err := s.st.add(s.m.n.ctx, c.Start, c.Body, last)
	if err != nil {
		return &msrp.StatusError{Code: 413, Comment: err.Error()}
	}
	s.m.n.event(fsm.SendReceived{Leg: s.leg, Chunk: k, Last: last})
	return nil
}

func (s *storeSink) Close(err error) error {
	if err != nil {
		s.st.fail(err)
		s.m.n.post(func() { s.m.linkFailed(s.leg, "message-failed", "", err) })
	}
	return nil
}

// The runtime's sinks report through the machine (SendReport), not by themselves.
func (s *storeSink) SelfReporting() bool { return true }

// relayOut writes the chunks the machine relays onto one down leg, in order, from the up
// leg's store.
type relayOut struct {
	m    *media
	leg  fsm.LegID
	st   *chunkStore
	out  *msrp.Outgoing
	mu   sync.Mutex
	want int
	wake chan struct{}
	quit chan struct{}
	once sync.Once
}

func (r *relayOut) stop() { r.once.Do(func() { close(r.quit) }) }

func (r *relayOut) ask(last int) {
	r.mu.Lock()
	if last > r.want {
		r.want = last
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *relayOut) run() {
	defer r.m.wg.Done()
	ctx, cancel := context.WithCancel(r.m.n.ctx)
	defer cancel()
	go func() {
		select {
		case <-r.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	next := 1
	for {
		r.mu.Lock()
		want := r.want
		r.mu.Unlock()
		for ; next <= want; next++ {
			c, err := r.st.get(ctx, next)
			if err == nil {
				err = r.out.WriteChunk(ctx, c.start, c.body, c.last)
			}
			if err != nil {
				r.fail(err)
				return
			}
			r.st.passed(string(r.leg), next)
			if c.last {
				res := r.out.Wait(ctx)
				if !res.Delivered() {
					r.fail(res.Err)
				}
				return
			}
		}
		select {
		case <-r.wake:
		case <-ctx.Done():
			if r.out != nil {
				abortCtx, c2 := context.WithTimeout(context.Background(), time.Second)
				r.out.Abort(abortCtx)
				c2()
			}
			return
		}
	}
}

func (r *relayOut) fail(err error) {
	r.m.n.post(func() { r.m.linkFailed(r.leg, "relay-failed", "", err) })
}

// relay forwards chunks First..Last of the up leg's message onto a down leg, keeping the
// upstream Message-ID, Byte-Ranges and headers.
func (m *media) relay(x fsm.RelayChunk) error {
	up, down := m.legs[x.From], m.legs[x.Leg]
	if up == nil || up.store == nil || down == nil {
		return fmt.Errorf("relay %s -> %s: no message or no link", x.From, x.Leg)
	}
	if down.out == nil {
		im := up.store.msg
		out, err := down.sess.BeginMessage(msrp.OutgoingHeader{ID: im.MessageID, ContentType: im.ContentType, Total: im.Total,
			FailureReport: msrp.ReportYes, Headers: im.Headers})
		if err != nil {
			return err
		}
		down.out = &relayOut{m: m, leg: x.Leg, st: up.store, out: out, wake: make(chan struct{}, 1), quit: make(chan struct{})}
		m.wg.Add(1)
		go down.out.run()
	}
	down.out.ask(x.Last)
	return nil
}

// Message is what a transmitter sends: a payload streamed from Open, wrapped in CPIM.
type Message struct {
	// Open returns the payload; it is called once.
	Open func() (io.ReadCloser, error)
	Size int64
	// ContentType is the payload's media type; empty means application/octet-stream.
	ContentType string
	// To names the recipient in the CPIM header (the group).
	To string
	// Progress, if set, is called from the sending goroutine with the payload bytes read
	// so far (a progress bar).
	Progress func(sent int64)
}

// countingReader reports how much of the payload was read.
type countingReader struct {
	r    io.Reader
	n    int64
	tell func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if n > 0 {
		c.tell(c.n)
	}
	return n, err
}

// sendMessage streams the transmitter's message over its link.
func (m *media) sendMessage(leg fsm.LegID) error {
	lm := m.legs[leg]
	if lm == nil || m.source == nil {
		return errors.New("no link or nothing to send")
	}
	src := *m.source
	h := cpim.Header{From: "<" + m.n.cfg.URI + ">", To: "<" + src.To + ">", DateTime: time.Now().UTC(),
		ContentType: src.ContentType, ContentLength: src.Size}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		body, err := src.Open()
		if err != nil {
			m.n.post(func() { m.n.step(fsm.LinkFailed{Leg: leg, Status: 500}) })
			return
		}
		defer body.Close()
		// Each chunk's worth read is progress on the link: it keeps the transmitter's
		// guard from taking a long message for a wait that never ends.
		told := int64(0)
		payload := &countingReader{r: body, tell: func(sent int64) {
			if src.Progress != nil {
				src.Progress(sent)
			}
			if sent-told >= int64(m.n.cfg.ChunkSize) {
				told = sent
				m.n.post(func() { m.n.progress(leg) })
			}
		}}
		res, err := lm.sess.Send(m.n.ctx, &msrp.Message{ContentType: cpimType, Body: cpim.Wrap(h, payload),
			Size: cpim.WrappedSize(h, src.Size), FailureReport: msrp.ReportYes})
		m.n.post(func() {
			m.n.note(leg, "sent", "SEND", fmt.Sprintf("%d bytes, status %d", res.Bytes, res.Status))
			if err != nil {
				m.n.step(fsm.LinkFailed{Leg: leg, Status: statusOf(err)})
			}
		})
	}()
	return nil
}

// delivery writes a received message to the receiver's store, unwrapping CPIM on the way,
// and hashes the payload.
type delivery struct {
	pw     *io.PipeWriter
	done   chan struct{}
	result Received
	err    error
}

func (m *media) newDelivery(im *msrp.IncomingMessage) (*delivery, error) {
	var f io.WriteCloser = nopWriteCloser{io.Discard}
	name := ""
	if !m.n.cfg.Discard {
		dir := m.n.cfg.StoreDir
		if dir == "" {
			dir = os.TempDir()
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		file, err := createUnique(dir, safeName(im.MessageID))
		if err != nil {
			return nil, err
		}
		f, name = file, file.Name()
	}
	pr, pw := io.Pipe()
	d := &delivery{pw: pw, done: make(chan struct{}), result: Received{MessageID: im.MessageID, File: name}}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(d.done)
		h, payload, err := cpim.Read(pr)
		if err != nil {
			f.Close()
			d.err = err
			pr.CloseWithError(err)
			return
		}
		sum := sha256.New()
		n, err := io.Copy(io.MultiWriter(f, sum), payload)
		pr.CloseWithError(err)
		if cerr := f.Close(); err == nil {
			err = cerr // a store that cannot be written is not a delivery
		}
		d.err = err
		d.result.From, d.result.Bytes, d.result.SHA256, d.result.At = h.From, n, hex.EncodeToString(sum.Sum(nil)), time.Now()
	}()
	return d, nil
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// createUnique creates a new file named base in dir, or base-2, base-3 … if that name is
// taken: a message never overwrites one stored before it, whatever Message-ID its sender
// chose (two senders may choose the same, and safeName maps several IDs to one name).
func createUnique(dir, base string) (*os.File, error) {
	const most = 10000
	for i := 1; i <= most; i++ {
		name := base
		if i > 1 {
			name = base + "-" + strconv.Itoa(i)
		}
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
	return nil, fmt.Errorf("runtime: %d files named %s in %s already", most, base, dir)
}

func safeName(id string) string {
	var b strings.Builder
	for _, r := range id {
		if r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "message"
	}
	return b.String()
}

// deliver writes the chunk the machine hands to the receiver's store.
func (m *media) deliver(x fsm.Deliver) error {
	lm := m.legs[x.Leg]
	if lm == nil || lm.store == nil || lm.file == nil {
		return errors.New("nothing to deliver")
	}
	c, err := lm.store.get(m.n.ctx, x.Chunk)
	if err != nil {
		return err
	}
	if _, err := lm.file.pw.Write(c.body); err != nil {
		return err
	}
	lm.store.passed(deliverer, x.Chunk)
	if x.Last {
		// The file is complete before the machine goes on to report the delivery: a
		// member counts as delivered only once the message is stored.
		lm.file.pw.Close()
		f := lm.file
		select {
		case <-f.done:
		case <-m.n.ctx.Done():
			return m.n.ctx.Err()
		}
		if f.err != nil {
			return fmt.Errorf("storing the message: %w", f.err)
		}
		m.mu.Lock()
		m.received = append(m.received, f.result)
		close(m.arrived)
		m.arrived = make(chan struct{})
		m.mu.Unlock()
	}
	return nil
}

// report sends one member's outcome upstream as a REPORT (RFC 4975 §7.1.2) with the
// member in an extension header.
func (m *media) report(x fsm.SendReport) error {
	lm := m.legs[x.Leg]
	if lm == nil || lm.store == nil {
		return errors.New("no message to report on")
	}
	im := lm.store.msg
	total := im.Total
	if total < 0 {
		total = 0
	}
	br := msrp.ByteRange{Start: 1, End: total, Total: total}
	code, comment := 200, "OK"
	if x.Outcome.Kind != core.Delivered {
		// The status may be MSRP's (a link that failed) or SIP's (a member that declined).
		code, comment = x.Outcome.Status, msrp.StatusText(x.Outcome.Status)
		if comment == "" {
			comment = sipx.ReasonPhrase(code)
		}
	}
	hdrs := []msrp.Field{{Name: memberHeader, Value: x.Member}, {Name: membersHeader, Value: strconv.Itoa(x.Of)}}
	ctx, cancel := context.WithTimeout(m.n.ctx, 5*time.Second)
	defer cancel()
	return lm.sess.SendReport(ctx, nil, im.MessageID, br, code, comment, hdrs)
}

// onReport turns a REPORT from downstream into the machine's ReportReceived.
func (m *media) onReport(leg fsm.LegID, f *msrp.Frame) {
	member, of := "", 1
	for _, h := range f.Headers {
		switch {
		case strings.EqualFold(h.Name, memberHeader):
			member = h.Value
		case strings.EqualFold(h.Name, membersHeader):
			if n, err := strconv.Atoi(h.Value); err == nil {
				of = n
			}
		}
	}
	if member == "" || f.ReportStatus == nil {
		return // not one of ours: an end-to-end REPORT of a peer outside cpmlink
	}
	o := core.DeliveredOutcome()
	if f.ReportStatus.Code != 200 {
		o = core.FailedOutcome(f.ReportStatus.Code)
	}
	m.n.event(fsm.ReportReceived{Leg: leg, Member: member, Outcome: o, Of: of})
}

// receivedMessages lists what a receiver stored, and a channel closed at the next one.
func (m *media) receivedMessages() ([]Received, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Received(nil), m.received...), m.arrived
}
