package sipx

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Header is one SIP header field as it appears on the wire.
type Header struct{ Name, Value string }

// IncomingInvite is a new dialog-creating INVITE, held until the driver
// calls Answer or Reject for its leg.
type IncomingInvite struct {
	// RequestURI is the Request-URI as received.
	RequestURI string
	// From is the asserted identity: the first P-Asserted-Identity URI if
	// present (RFC 3325 §9.1), else the From URI.
	From string
	// To is the To URI (without tag).
	To string
	// Parts is the body: its single part, or the parts of a multipart body.
	Parts []Part
	// Headers holds every header field, in order (Contribution-ID,
	// Conversation-ID, Accept-Contact, Record-Route ...).
	Headers []Header
	// Transport is "UDP" or "TCP": how the INVITE reached this endpoint.
	Transport string
}

// Response is a final response to an INVITE this endpoint sent.
type Response struct {
	Status  int
	Reason  string
	Parts   []Part
	Headers []Header
	// Local is true when sipx synthesized the response because none
	// arrived: 408 when the transaction timed out, 503 when the transport
	// failed (RFC 3261 §8.1.3.1).
	Local bool
}

// Header returns the value of the first header named name (case-insensitive).
func (r Response) Header(name string) string { return headerValue(r.Headers, name) }

// Header returns the value of the first header named name (case-insensitive).
func (in IncomingInvite) Header(name string) string { return headerValue(in.Headers, name) }

// Handler receives what arrives. Every callback is optional. Callbacks run
// one at a time on one goroutine per Endpoint, in the order the endpoint
// accepted the messages, and must return quickly (post to a mailbox). For a
// leg, Invite always comes first. A callback may call Answer, Reject, Ack,
// Cancel or Bye, but not Close (Close waits for the running callback).
type Handler struct {
	// Invite reports a new dialog. The INVITE server transaction is held
	// open until Answer or Reject (or Config.HoldTimeout).
	Invite func(leg string, in IncomingInvite)
	// Ack reports the ACK for our 2xx on leg; duplicates are absorbed.
	Ack func(leg string)
	// Cancel reports a CANCEL of the held INVITE on leg. The endpoint has
	// already answered the CANCEL 200 and sipgo's transaction has already
	// answered the INVITE 487 (RFC 3261 §9.2); the driver's Reject(leg, 487)
	// then only releases the leg.
	Cancel func(leg string)
	// Bye reports a BYE in the dialog of leg, already answered 200. A BYE for
	// an unknown dialog is answered 481 without a callback.
	Bye func(leg string)
	// Response reports final responses to the INVITE we sent on leg: every
	// 2xx, retransmissions included (so the driver can ACK each one,
	// RFC 3261 §13.2.2.4), and the non-2xx one (ACKed by sipgo's transaction
	// layer, §17.1.1.3).
	Response func(leg string, r Response)
	// Failed reports that sipx gave up on leg on its own: the held INVITE
	// expired (answered 408, ErrHoldExpired), its transaction failed
	// (ErrTransport), or our 2xx was never ACKed (ErrNoAck: sipx sent BYE,
	// §13.3.1.4). The leg is gone afterwards.
	Failed func(leg string, err error)
}

// Endpoint is one SIP user agent (UAC and UAS) on a UDP and a TCP listener.
type Endpoint struct {
	cfg      Config
	h        Handler
	log      *slog.Logger
	identity sip.Uri
	ip       net.IP

	ua  *sipgo.UserAgent
	srv *sipgo.Server
	udp *net.UDPConn
	tcp *net.TCPListener

	udpPort, tcpPort int

	ctx     context.Context
	cancel  context.CancelFunc
	serving sync.WaitGroup // sipgo's Serve loops
	work    sync.WaitGroup // our handlers and goroutines that use the stack
	events  *dispatcher

	closeOnce sync.Once
	closeErr  error
	down      chan struct{} // closed when Close has finished
	stop      func() bool   // unregisters the AfterFunc on the parent context

	mu       sync.Mutex
	closed   bool
	legs     map[string]*legState
	dialogs  map[dialogID]*legState
	invites  map[inviteID]*legState
	nextIn   uint64
	regs     map[string]*registration
	bindings map[string][]binding
	now      func() time.Time // the registrar's clock; tests replace it
}

// Start binds UDP and TCP on cfg.Host and serves them. It returns once both
// listen, or the bind error. Bind errors come from our own net.Listen calls,
// so there is no wait on sipgo's ready signal (which a failed bind never
// sends).
func Start(ctx context.Context, cfg Config, h Handler) (*Endpoint, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	uc, tl, err := listenPair(cfg.Host, cfg.UDPPort, cfg.TCPPort)
	if err != nil {
		return nil, err
	}
	e := &Endpoint{
		cfg:      cfg,
		h:        h,
		log:      cfg.Logger.With("sipx", cfg.Name),
		ip:       net.ParseIP(cfg.Host),
		udp:      uc,
		tcp:      tl,
		udpPort:  uc.LocalAddr().(*net.UDPAddr).Port,
		tcpPort:  tl.Addr().(*net.TCPAddr).Port,
		legs:     map[string]*legState{},
		dialogs:  map[dialogID]*legState{},
		invites:  map[inviteID]*legState{},
		regs:     map[string]*registration{},
		bindings: map[string][]binding{},
		now:      time.Now,
		down:     make(chan struct{}),
	}
	_ = sip.ParseUri(cfg.Identity, &e.identity) // validated by normalize
	e.ctx, e.cancel = context.WithCancel(ctx)

	e.ua, err = sipgo.NewUA(
		sipgo.WithUserAgent(cfg.Name),
		sipgo.WithUserAgentHostname(cfg.Host),
		sipgo.WithUserAgentTransactionLayerOptions(
			sip.WithTransactionLayerLogger(e.log),
			sip.WithTransactionLayerUnhandledResponseHandler(e.onStrayResponse),
		),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(e.log)),
	)
	if err != nil {
		_ = uc.Close()
		_ = tl.Close()
		e.cancel()
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	e.srv, err = sipgo.NewServer(e.ua, sipgo.WithServerLogger(e.log))
	if err != nil {
		_ = e.ua.Close()
		_ = uc.Close()
		_ = tl.Close()
		e.cancel()
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	e.srv.OnInvite(e.onInvite)
	e.srv.OnAck(e.onAck)
	e.srv.OnBye(e.onBye)
	e.srv.OnCancel(e.onStrayCancel)
	e.srv.OnOptions(e.onOptions)
	if cfg.Registrar {
		e.srv.OnRegister(e.onRegister)
	}
	e.srv.OnNoRoute(e.onOther)
	e.events = newDispatcher()

	// Register the UDP listener in sipgo's connection pool before serving,
	// so that the first request we send (with Laddr = the listener) finds
	// it; ServeUDP adds it too, but on its own goroutine.
	udpLocal := uc.LocalAddr().String()
	e.ua.TransportLayer().Pool("udp").Add(udpLocal, &sip.UDPConnection{PacketConn: uc, PacketAddr: udpLocal, Listener: true})
	e.serving.Add(2)
	go func() { defer e.serving.Done(); _ = e.srv.ServeUDP(uc) }()
	go func() { defer e.serving.Done(); _ = e.srv.ServeTCP(tl) }()
	// A cancelled parent context closes the endpoint like Close does.
	e.stop = context.AfterFunc(ctx, func() { _ = e.Close() })
	return e, nil
}

// UDPAddr is the host:port the endpoint listens on for UDP.
func (e *Endpoint) UDPAddr() string { return net.JoinHostPort(e.cfg.Host, strconv.Itoa(e.udpPort)) }

// TCPAddr is the host:port the endpoint listens on for TCP.
func (e *Endpoint) TCPAddr() string { return net.JoinHostPort(e.cfg.Host, strconv.Itoa(e.tcpPort)) }

// Close shuts the endpoint down: held INVITEs are answered 503, 2xx
// retransmission stops, sipgo's stack is closed, and no callback runs after
// Close returns. Dialogs are not BYEd (the driver does that before closing).
// Close is idempotent.
func (e *Endpoint) Close() error {
	// sync.Once also makes a concurrent second caller wait until the first
	// has finished the shutdown.
	e.closeOnce.Do(func() {
		e.stop()
		e.mu.Lock()
		e.closed = true
		e.mu.Unlock()
		e.cancel()
		e.work.Wait()
		_ = e.udp.Close()
		_ = e.tcp.Close()
		e.serving.Wait()
		e.closeErr = e.ua.Close()
		e.events.close()
		close(e.down)
	})
	return e.closeErr
}

// CallID returns the Call-ID of leg's dialog, "" when the leg is unknown or
// has ended: an identifier for traces that both ends of a hop share
// (RFC 3261 §8.1.1.4).
func (e *Endpoint) CallID(leg string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if l := e.legs[leg]; l != nil {
		return l.callID
	}
	return ""
}

// Done is closed once the endpoint has shut down (Close, or the end of the
// context given to Start).
func (e *Endpoint) Done() <-chan struct{} { return e.down }

// enter counts a handler or goroutine in e.work unless the endpoint is
// closing; every true result must be paired with e.work.Done().
func (e *Endpoint) enter() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.work.Add(1)
	return true
}

// goWork runs f on a goroutine counted in e.work; false if closing.
func (e *Endpoint) goWork(f func()) bool {
	if !e.enter() {
		return false
	}
	go func() {
		defer e.work.Done()
		f()
	}()
	return true
}

func (e *Endpoint) port(transport string) int {
	if transport == "TCP" {
		return e.tcpPort
	}
	return e.udpPort
}

// post queues a callback; the caller holds e.mu.
func (e *Endpoint) post(f func()) {
	if e.closed {
		return
	}
	e.events.post(f)
}

func (e *Endpoint) postFailed(l *legState, err error) {
	if e.h.Failed != nil {
		id := l.id
		e.post(func() { e.h.Failed(id, err) })
	}
}

// SetLibraryLogger sets the logger of sipgo's own process-wide messages (those it logs
// outside any endpoint, such as connection bookkeeping on shutdown). It affects every
// endpoint of the process: call it once, from main or TestMain.
func SetLibraryLogger(l *slog.Logger) { sip.SetDefaultLogger(l) }
