package sipx

import (
	"context"
	"crypto/tls"
	"errors"
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
	// From is the sender's identity: the authenticated user's AOR when
	// Config.Auth.Invites is set; else, with Config.TrustedHosts, the first
	// P-Asserted-Identity URI from a trusted source (RFC 3325 §9.1; without
	// one the INVITE was refused 403); else the first PAI if present, else
	// the From URI.
	From string
	// To is the To URI (without tag).
	To string
	// Parts is the body: its single part, or the parts of a multipart body.
	Parts []Part
	// Headers holds every header field, in order, after a PAI that was not
	// believed and our realm's Proxy-Authorization are removed (Contribution-ID,
	// Conversation-ID, Accept-Contact, Record-Route ...).
	Headers []Header
	// Transport is "UDP", "TCP" or "TLS": how the INVITE reached this endpoint.
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
	// Bye reports a BYE in the dialog of leg, which is answered 200 once Bye has
	// returned (so that what the peer does on that 200 reaches the driver after the
	// BYE). A BYE for an unknown dialog is answered 481 without a callback.
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
	tls *tlsListener // nil without Config.TLS
	// tlsOut dials the TLS connections we send on; nil without Config.TLS.
	tlsOut *tlsOut

	udpPort, tcpPort, tlsPort int

	ctx     context.Context
	cancel  context.CancelFunc
	serving sync.WaitGroup // sipgo's Serve loops
	work    sync.WaitGroup // our handlers and goroutines that use the stack
	events  *dispatcher

	closeOnce sync.Once
	closeErr  error
	down      chan struct{} // closed when Close has finished
	stop      func() bool   // unregisters the AfterFunc on the parent context

	mu      sync.Mutex
	closed  bool
	legs    map[string]*legState
	dialogs map[dialogID]*legState
	invites map[inviteID]*legState
	// inviteWin paces the INVITEs we send over UDP (udpbuf.go).
	inviteWin *inviteWindow
	nextIn    uint64
	regs      map[string]*registration
	bindings  map[string][]binding
	now       func() time.Time // the registrar's clock; tests replace it

	auth    *authenticator // nil without Config.Auth
	trust   trustSet       // nil without Config.TrustedHosts
	store   *locationStore // nil without Config.LocationStore
	storeMu sync.Mutex     // orders store writes; taken while holding mu, never the reverse
}

// Start binds UDP and TCP (and TLS, with Config.TLS) on cfg.Host and serves
// them. It returns once they listen, or the bind error. Bind errors come from our own net.Listen calls,
// so there is no wait on sipgo's ready signal (which a failed bind never
// sends).
func Start(ctx context.Context, cfg Config, h Handler) (*Endpoint, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	serverTLS, err := tlsServerConfig(cfg.TLS)
	if err != nil {
		return nil, err
	}
	uc, tl, sl, err := listenAll(cfg.Host, cfg.UDPPort, cfg.TCPPort, cfg.TLSPort, serverTLS)
	if err != nil {
		return nil, err
	}
	closeListeners := func() { closeAll(uc, tl, sl) }
	e := &Endpoint{
		cfg: cfg,
		h:   h,
		log: cfg.Logger.With("sipx", cfg.Name),
		// The listener's own address, not cfg.Host: a wildcard "0.0.0.0" is bound as a
		// dual-stack "[::]", and UDP requests leave from the listener by this key.
		ip:        uc.LocalAddr().(*net.UDPAddr).IP,
		udp:       uc,
		tcp:       tl,
		tls:       sl,
		udpPort:   uc.LocalAddr().(*net.UDPAddr).Port,
		tcpPort:   tl.Addr().(*net.TCPAddr).Port,
		legs:      map[string]*legState{},
		dialogs:   map[dialogID]*legState{},
		invites:   map[inviteID]*legState{},
		inviteWin: newInviteWindow(cfg.InviteWindow, sip.T1),
		regs:      map[string]*registration{},
		bindings:  map[string][]binding{},
		now:       time.Now,
		down:      make(chan struct{}),
	}
	_ = sip.ParseUri(cfg.Identity, &e.identity) // validated by normalize
	e.trust = newTrustSet(cfg.TrustedHosts)
	if cfg.Auth != nil {
		// The authenticator runs outside mu; the clock is read under it, since tests
		// replace it under mu.
		e.auth = newAuthenticator(*cfg.Auth, func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now() })
	}
	if cfg.Registrar && cfg.LocationStore != "" {
		e.store, e.bindings, err = openLocationStore(cfg.LocationStore, e.now())
		if err != nil {
			closeListeners()
			return nil, err
		}
	}
	e.ctx, e.cancel = context.WithCancel(ctx)

	uaOpts := []sipgo.UserAgentOption{}
	if cfg.TLS != nil {
		// Used only if sipgo dials TLS itself (a response whose connection is
		// gone, RFC 3261 §18.2.2): the same CAs, checked against the IP.
		c := cfg.TLS.Clone()
		c.MinVersion = max(c.MinVersion, tls.VersionTLS12)
		uaOpts = append(uaOpts, sipgo.WithUserAgenTLSConfig(c))
	}
	e.ua, err = sipgo.NewUA(append(uaOpts,
		sipgo.WithUserAgent(cfg.Name),
		sipgo.WithUserAgentHostname(cfg.Advertise),
		sipgo.WithUserAgentTransactionLayerOptions(
			sip.WithTransactionLayerLogger(e.log),
			sip.WithTransactionLayerUnhandledResponseHandler(e.onStrayResponse),
		),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(e.log)),
	)...)
	if err != nil {
		closeListeners()
		e.closeStore()
		e.cancel()
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	e.srv, err = sipgo.NewServer(e.ua, sipgo.WithServerLogger(e.log))
	if err != nil {
		_ = e.ua.Close()
		closeListeners()
		e.closeStore()
		e.cancel()
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	e.srv.OnInvite(e.guard(e.onInvite))
	e.srv.OnAck(e.onAck)
	e.srv.OnBye(e.guard(e.onBye))
	e.srv.OnCancel(e.onStrayCancel)
	e.srv.OnOptions(e.guard(e.onOptions))
	if cfg.Registrar {
		e.srv.OnRegister(e.guard(e.onRegister))
	}
	e.srv.OnNoRoute(e.guard(e.onOther))
	e.events = newDispatcher()

	// Every listener reads through the pre-check (precheck.go): malformed
	// requests are answered 400/416/505 there instead of vanishing in sipgo.
	// Register the UDP listener in sipgo's connection pool before serving,
	// so that the first request we send (with Laddr = the listener) finds
	// it; ServeUDP adds it too, but on its own goroutine.
	// The INVITEs sent on it are watched for retransmissions (udpbuf.go).
	udpLocal := uc.LocalAddr().String()
	udpConn := watchedPacketConn{precheckPacketConn{uc}, newInviteWatch(cfg.T1)}
	e.ua.TransportLayer().Pool("udp").Add(udpLocal, &sip.UDPConnection{PacketConn: udpConn, PacketAddr: udpLocal, Listener: true})
	if sl != nil {
		// Set before anything is served: the handlers read both.
		e.tlsPort = sl.port()
		// The TLS connections we open reach sipgo through a listener of
		// their own (see tlsOut); both are served by sipgo's TLS transport.
		e.tlsOut = newTLSOut(e.ua.TransportLayer(), cfg.TLS, sl.Addr())
	}
	e.serving.Add(2)
	go func() { defer e.serving.Done(); _ = e.srv.ServeUDP(udpConn) }()
	go func() { defer e.serving.Done(); _ = e.srv.ServeTCP(precheckListener{tl}) }()
	if sl != nil {
		e.serving.Add(2)
		go func() { defer e.serving.Done(); _ = e.srv.ServeTLS(precheckListener{sl}) }()
		go func() { defer e.serving.Done(); _ = e.srv.ServeTLS(e.tlsOut) }()
	}
	// A cancelled parent context closes the endpoint like Close does.
	e.stop = context.AfterFunc(ctx, func() { _ = e.Close() })
	return e, nil
}

// UDPAddr is the host:port peers reach the endpoint at over UDP (the
// advertised address and the bound port).
func (e *Endpoint) UDPAddr() string {
	return net.JoinHostPort(e.cfg.Advertise, strconv.Itoa(e.udpPort))
}

// TCPAddr is the host:port peers reach the endpoint at over TCP.
func (e *Endpoint) TCPAddr() string {
	return net.JoinHostPort(e.cfg.Advertise, strconv.Itoa(e.tcpPort))
}

// TLSAddr is the host:port the endpoint listens on for TLS, "" without
// Config.TLS.
func (e *Endpoint) TLSAddr() string {
	if e.tls == nil {
		return ""
	}
	return net.JoinHostPort(e.cfg.Advertise, strconv.Itoa(e.tlsPort))
}

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
		closeAll(e.udp, e.tcp, e.tls)
		if e.tlsOut != nil {
			_ = e.tlsOut.Close()
		}
		e.serving.Wait()
		e.closeErr = withoutClosed(e.ua.Close())
		e.closeStore()
		e.events.close()
		close(e.down)
	})
	return e.closeErr
}

// withoutClosed drops net.ErrClosed from the errors sipgo's transport layer
// joins on Close. Its pool can still list a connection whose read loop has
// just closed it (a peer that failed the TLS handshake, one that hung up), and
// closing that again is no failure of the shutdown.
func withoutClosed(err error) error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var keep []error
		for _, e := range j.Unwrap() {
			if e = withoutClosed(e); e != nil {
				keep = append(keep, e)
			}
		}
		return errors.Join(keep...)
	}
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
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
	switch transport {
	case transportTCP:
		return e.tcpPort
	case transportTLS:
		return e.tlsPort
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
