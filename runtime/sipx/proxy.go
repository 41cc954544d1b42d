package sipx

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"
)

// proxyBranchPrefix marks the branches the proxy computes, after the RFC 3261
// magic cookie.
const proxyBranchPrefix = sip.RFC3261BranchMagicCookie + "-px-"

// ProxyConfig configures the embedded SIP/IP core.
type ProxyConfig struct {
	// Host is the IP to bind (a wildcard binds every interface). Required.
	Host string
	// Advertise is the IP put in Via and Record-Route and returned by
	// UDPAddr and TCPAddr; default Host, required when Host is a wildcard.
	Advertise string
	// UDPPort and TCPPort are the ports to bind; 0 chooses a free one (the
	// same number for both when both are 0, as with Config).
	UDPPort, TCPPort int
	// Routes maps a Request-URI host (a domain, compared without case) to
	// the IP:port of the role serving it over UDP and TCP (one port number
	// for both). A TLS address is added with SetTargets. A Request-URI whose
	// host is already an IP is sent there directly. Routes can be added
	// later with SetRoute.
	Routes map[string]string
	// Resolver locates next hops whose host is a name not in Routes
	// (RFC 3263); nil: such requests get 404, and the proxy sends no DNS
	// query.
	Resolver Resolver
	// TLS, when set, makes the proxy listen for SIP over TLS on TLSPort and
	// forward over TLS where the next hop asks for it (a sips: URI,
	// transport=tls, a TLS target) or where the request came in over TLS and
	// the next hop has a TLS target. The connections it opens verify the
	// peer against RootCAs and the name the next hop was located by
	// (RFC 5922 §4.1; the IP for a route or an IP host). nil: no TLS, and a
	// request that must go over TLS gets 404.
	TLS *tls.Config
	// TLSPort is the TLS listener's port; 0 chooses a free one.
	TLSPort int
	// Names are host names the proxy is known by (compared without case):
	// a Route or Request-URI with one of them, at any port, names the proxy
	// itself (RFC 3261 §16.4), as do its IP and ports.
	Names []string
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// TrustedHosts makes the proxy the edge of an RFC 3325 trust domain: IPs
	// or CIDR prefixes of the nodes inside it (the server roles). A request
	// from any other source loses its P-Asserted-Identity before it is
	// forwarded (RFC 3325 §5), and a request forwarded to a node outside the
	// domain loses it when it asks for privacy (Privacy: id). nil (default):
	// headers pass untouched.
	TrustedHosts []string

	// observe, when set (tests), sees every message the proxy forwards.
	observe func(proxyHop)
	// turnTaken, when set (tests), sees each message that came in on its own goroutine,
	// once its turn is taken, with whether it waits for another message's turn first.
	turnTaken func(msg sip.Message, waits bool)
}

// proxyHop describes one forwarded message, for tests.
type proxyHop struct {
	Method   string // request method, or the CSeq method of a response
	Status   int    // 0 for a request
	CallID   string
	In, Out  string // transports
	Dest     string // next-hop host:port
	Response bool
}

// Proxy is the SIP/IP core between roles (DESIGN.md §1): a stateless proxy
// (RFC 3261 §16.11). It routes requests by Route, else by Request-URI host
// through the static table, record-routes INVITEs so that ACK and BYE cross
// it too (§16.6 step 4), and sends responses back along Via.
//
// Stateless, because every endpoint behind it runs full transactions: UDP
// retransmissions (INVITE, non-INVITE, 2xx) pass through end to end, CANCEL
// and the ACK of a non-2xx reach the same downstream transaction because the
// outgoing branch is a hash of the incoming one (§16.11), and the proxy keeps
// no timers or per-call memory that could leak or outlive Close. The cost:
// it never sends 100 Trying (§16.11 forbids a stateless proxy its own
// provisional responses; the UAS's sipgo sends one after 200 ms), and a
// response over TCP can only go back on the connection its request came in
// on (recorded in Via as received/rport).
type Proxy struct {
	cfg    ProxyConfig
	log    *slog.Logger
	ip     net.IP
	routes *StaticResolver // Routes and SetTargets; then cfg.Resolver
	salt   string
	trust  trustSet

	tp     *sip.TransportLayer // listens: UDP, and the TCP/TLS connections peers open
	out    *sip.TransportLayer // the TCP/TLS connections the proxy opens
	tlsOut *tlsOut             // opens out's TLS connections; nil without TLS
	udp    *net.UDPConn
	tcp    *net.TCPListener
	tls    *tlsListener

	udpPort, tcpPort, tlsPort int

	ctx    context.Context // ends with Close: bounds connection set-up
	cancel context.CancelFunc

	serving sync.WaitGroup
	work    sync.WaitGroup
	mu      sync.Mutex
	closed  bool
	// order keeps the responses of one transaction in the order they came.
	order inOrder
	once  sync.Once
	stop  func() bool
	down  chan struct{}
}

// StartProxy binds the proxy's UDP and TCP listeners and serves them until
// Close or until ctx ends.
func StartProxy(ctx context.Context, cfg ProxyConfig) (*Proxy, error) {
	if err := advertised(&cfg.Advertise, cfg.Host); err != nil {
		return nil, err
	}
	ip := net.ParseIP(cfg.Advertise)
	routes, err := NewStaticResolver(nil, cfg.Resolver)
	if err != nil {
		return nil, err
	}
	for dom, hp := range cfg.Routes {
		if err := checkRoute(dom, hp); err != nil {
			return nil, err
		}
		_ = routes.Set(dom, routeTargets(hp))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	for _, h := range cfg.TrustedHosts {
		if _, err := parseTrusted(h); err != nil {
			return nil, err
		}
	}
	serverTLS, err := tlsServerConfig(cfg.TLS)
	if err != nil {
		return nil, err
	}
	uc, tl, sl, err := listenAll(cfg.Host, cfg.UDPPort, cfg.TCPPort, cfg.TLSPort, serverTLS)
	if err != nil {
		return nil, err
	}
	var salt [8]byte
	_, _ = rand.Read(salt[:])
	p := &Proxy{
		cfg:     cfg,
		log:     cfg.Logger.With("sipx", "proxy"),
		ip:      ip,
		routes:  routes,
		salt:    hex.EncodeToString(salt[:]),
		udp:     uc,
		tcp:     tl,
		tls:     sl,
		udpPort: uc.LocalAddr().(*net.UDPAddr).Port,
		tcpPort: tl.Addr().(*net.TCPAddr).Port,
		down:    make(chan struct{}),
		trust:   newTrustSet(cfg.TrustedHosts),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	// Only sipgo's transport layer: no transaction layer, which would
	// answer CANCELs, send 100 Trying and absorb retransmissions — all
	// wrong for a stateless proxy.
	var clientTLS *tls.Config
	if cfg.TLS != nil {
		clientTLS = cfg.TLS.Clone()
		clientTLS.MinVersion = max(clientTLS.MinVersion, tls.VersionTLS12)
	}
	p.tp = sip.NewTransportLayer(net.DefaultResolver, sip.NewParser(), clientTLS, sip.WithTransportLayerLogger(p.log))
	p.tp.OnMessage(p.onMessage)
	// Connections the proxy dials live in a transport layer of their own. sipgo pools a
	// dialed connection under its local address as well as its remote one, and an
	// accepted connection under its remote address; on loopback every peer shares the IP,
	// and a dialed connection's ephemeral port may equal an accepted one's remote port
	// (connect reuses a local port towards another destination). In one pool the second
	// entry would hide the first, and a response meant for the peer of the accepted
	// connection would go down the dialed one.
	p.out = sip.NewTransportLayer(net.DefaultResolver, sip.NewParser(), clientTLS, sip.WithTransportLayerLogger(p.log))
	p.out.OnMessage(p.onMessage)
	if sl != nil {
		// Before anything is served: onRequest reads both (isSelf, send).
		p.tlsPort = sl.port()
		p.tlsOut = newTLSOut(p.out, cfg.TLS, sl.Addr())
	}
	p.serving.Add(2)
	go func() { defer p.serving.Done(); _ = p.tp.ServeUDP(precheckPacketConn{uc}) }() // see precheck.go
	go func() { defer p.serving.Done(); _ = p.tp.ServeTCP(precheckListener{tl}) }()
	if sl != nil {
		p.serving.Add(2)
		go func() { defer p.serving.Done(); _ = p.tp.ServeTLS(precheckListener{sl}) }()
		go func() { defer p.serving.Done(); _ = p.out.ServeTLS(p.tlsOut) }()
	}
	p.stop = context.AfterFunc(ctx, func() { _ = p.Close() })
	return p, nil
}

// SetRoute adds or replaces the route for a Request-URI domain, so that a
// proxy can be started before the roles whose addresses it routes to.
func (p *Proxy) SetRoute(domain, hostport string) error {
	if err := checkRoute(domain, hostport); err != nil {
		return err
	}
	return p.routes.Set(domain, p.withTLSTargets(domain, routeTargets(hostport)))
}

// SetTargets sets the targets of a Request-URI domain, in the order to try
// them (RFC 3263 §4.3), replacing its route: how a TLS address (whose port
// differs from the UDP/TCP one) is given. An empty list removes the domain.
func (p *Proxy) SetTargets(domain string, targets []Target) error {
	return p.routes.Set(domain, targets)
}

// routeTargets is a route's address over UDP and TCP.
func routeTargets(hostport string) []Target {
	return []Target{{Transport: transportUDP, Addr: hostport}, {Transport: transportTCP, Addr: hostport}}
}

// withTLSTargets keeps the TLS targets domain already has after ts.
func (p *Proxy) withTLSTargets(domain string, ts []Target) []Target {
	old, _ := p.routes.Lookup(domain)
	for _, t := range old {
		if t.Transport == transportTLS {
			ts = append(ts, t)
		}
	}
	return ts
}

// SetRoutes adds or replaces several routes at once; nothing changes if one
// of them is invalid.
func (p *Proxy) SetRoutes(routes map[string]string) error {
	for d, hp := range routes {
		if err := checkRoute(d, hp); err != nil {
			return err
		}
	}
	for d, hp := range routes {
		_ = p.routes.Set(d, p.withTLSTargets(d, routeTargets(hp)))
	}
	return nil
}

func checkRoute(domain, hostport string) error {
	h, _, err := net.SplitHostPort(hostport)
	if err != nil || net.ParseIP(h) == nil || domain == "" {
		return fmt.Errorf("%w: route %q -> %q is not domain -> IP:port", ErrConfig, domain, hostport)
	}
	return nil
}

// UDPAddr is the host:port peers reach the proxy at over UDP.
func (p *Proxy) UDPAddr() string { return net.JoinHostPort(p.cfg.Advertise, strconv.Itoa(p.udpPort)) }

// TCPAddr is the host:port peers reach the proxy at over TCP.
func (p *Proxy) TCPAddr() string { return net.JoinHostPort(p.cfg.Advertise, strconv.Itoa(p.tcpPort)) }

// TLSAddr is the host:port the proxy listens on for TLS, "" without
// ProxyConfig.TLS.
func (p *Proxy) TLSAddr() string {
	if p.tls == nil {
		return ""
	}
	return net.JoinHostPort(p.cfg.Advertise, strconv.Itoa(p.tlsPort))
}

// Close stops the proxy and waits for the messages in hand. Idempotent.
func (p *Proxy) Close() error {
	var err error
	p.once.Do(func() {
		p.stop()
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.cancel()
		closeAll(p.udp, p.tcp, p.tls)
		if p.tlsOut != nil {
			_ = p.tlsOut.Close()
		}
		p.serving.Wait()
		p.work.Wait()
		err = errors.Join(p.tp.Close(), p.out.Close())
		close(p.down)
	})
	return err
}

// Done is closed once the proxy has shut down (Close, or the end of the
// context given to StartProxy).
func (p *Proxy) Done() <-chan struct{} { return p.down }

// onMessage is called on sipgo's read loop; forwarding may dial TCP, so it
// continues on a goroutine of its own.
func (p *Proxy) onMessage(msg sip.Message) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.work.Add(1)
	p.mu.Unlock()
	// Each message is forwarded on a goroutine of its own, but some leave in the order
	// they came. The requests of one call (its Call-ID): a CANCEL could overtake its
	// INVITE, and the BYE a PF sends right after its ACK overtook the ACK, so that the
	// member (SIPp, as ClientB of TestForeignClients) saw its dialog end before it was
	// confirmed. The responses of one transaction (their top Via's branch, the one this
	// proxy added): a 100 Trying handled late went out after the 200 (SIPp, as ClientA,
	// aborted on it; RFC 3261 §17.1.1.2 has no provisional after a final response).
	wait, done := (<-chan struct{})(nil), func() {}
	switch m := msg.(type) {
	case *sip.Request:
		if id := m.CallID(); id != nil {
			wait, done = p.order.turn("req " + id.Value())
		}
	case *sip.Response:
		if via := m.Via(); via != nil {
			if branch, ok := via.Params.Get("branch"); ok {
				wait, done = p.order.turn("res " + branch)
			}
		}
	}
	go func() {
		defer p.work.Done()
		defer done()
		if p.cfg.turnTaken != nil {
			p.cfg.turnTaken(msg, wait != nil)
		}
		if wait != nil {
			<-wait
		}
		switch m := msg.(type) {
		case *sip.Request:
			p.onRequest(m)
		case *sip.Response:
			p.onResponse(m)
		}
	}()
}

// inOrder hands out turns per key: a turn's wait ends when the turn taken before it for
// the same key is done. Turns must be taken in the order the work must happen.
type inOrder struct {
	mu   sync.Mutex
	last map[string]chan struct{}
}

// turn takes the next turn for key: wait (nil for the first) ends when the previous turn
// is done, and done must be called once, when this one's work is over.
func (o *inOrder) turn(key string) (wait <-chan struct{}, done func()) {
	mine := make(chan struct{})
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.last == nil {
		o.last = map[string]chan struct{}{}
	}
	if prev, ok := o.last[key]; ok {
		wait = prev
	}
	o.last[key] = mine
	return wait, func() {
		o.mu.Lock()
		if o.last[key] == mine {
			delete(o.last, key)
		}
		o.mu.Unlock()
		close(mine)
	}
}

func (p *Proxy) isSelf(host string, port int) bool {
	for _, n := range p.cfg.Names {
		if strings.EqualFold(n, host) {
			return true
		}
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.Equal(p.ip) && (port == p.udpPort || port == p.tcpPort || (p.tls != nil && port == p.tlsPort))
}

func (p *Proxy) port(transport string) int {
	switch transport {
	case transportTCP:
		return p.tcpPort
	case transportTLS:
		return p.tlsPort
	}
	return p.udpPort
}

func (p *Proxy) onRequest(req *sip.Request) {
	inTp := strings.ToUpper(req.Transport())
	via := req.Via()
	if via == nil || req.CSeq() == nil || req.CallID() == nil || req.From() == nil || req.To() == nil {
		p.reply(req, 400, "Missing Mandatory Header")
		return
	}
	// RFC 3261 §16.3 step 3.
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 {
		p.reply(req, 483, "")
		return
	}
	// §16.3 step 5: the proxy supports no extension a Proxy-Require could
	// name (RFC 4475 §3.3.5). ACK and CANCEL are not refused.
	if tags := unsupported(req, "Proxy-Require"); len(tags) > 0 && req.Method != sip.ACK && req.Method != sip.CANCEL {
		p.replyWith(req, 420, "", sip.NewHeader("Unsupported", strings.Join(tags, ", ")))
		return
	}
	// §16.4: remove the Route entries that name us (two of them after a
	// double Record-Route, RFC 5658).
	for {
		r := req.Route()
		if r == nil || !p.isSelf(r.Address.Host, uriPort(r.Address)) {
			break
		}
		req.RemoveHeader("Route")
	}
	// §16.5: the next hop is the top Route (loose routing), else the
	// Request-URI.
	next := req.Recipient
	if r := req.Route(); r != nil {
		next = r.Address
	}
	if req.Route() == nil && p.isSelf(next.Host, uriPort(next)) {
		// Addressed to the proxy itself.
		if req.Method == sip.OPTIONS {
			p.reply(req, 200, "")
		} else {
			p.reply(req, 404, "No Users On The SIP/IP Core")
		}
		return
	}
	// §16.5 and RFC 3263 §4: the targets of the next hop — an IP as is, a
	// domain through the routing table, then the resolver. The transport is
	// the URI's (sips: keeps the request on TLS, RFC 3261 §26.2.2), else the
	// one the request came in on where the next hop has it.
	secure := next.Scheme == "sips"
	ctx, cancel := context.WithTimeout(p.ctx, connectTimeout)
	defer cancel()
	targets, err := resolveWith(ctx, p.routes, next, inTp, p.tlsOut != nil)
	if err == nil && secure {
		targets = slices.DeleteFunc(targets, func(t Target) bool { return t.Transport != transportTLS })
		if len(targets) == 0 {
			err = fmt.Errorf("%w: no TLS target", ErrNoRoute)
		}
	}
	if err != nil {
		p.log.Debug("no route", "next", next.Host, "error", err)
		p.reply(req, 404, "No Route To "+strings.Trim(next.Host, "[]"))
		return
	}
	for _, t := range targets {
		dh, dp, _ := net.SplitHostPort(t.Addr)
		if n, _ := strconv.Atoi(dp); p.isSelf(dh, n) {
			// Forwarding to ourselves would loop until Max-Forwards runs out.
			p.reply(req, 482, "")
			return
		}
	}

	// RFC 3325 §5: an identity asserted from outside the trust domain is
	// not believed, and one is not given away to a node outside it when
	// the user asked for privacy. Checked on every request.
	if p.trust != nil {
		if !p.trust.trusts(req.Source()) {
			if stripPAI(req) {
				p.log.Info("P-Asserted-Identity from an untrusted source removed", "source", req.Source(), "call-id", req.CallID().Value())
			}
		} else if privacyID(req) && slices.ContainsFunc(targets, func(t Target) bool { return !p.trust.trusts(t.Addr) }) {
			stripPAI(req)
		}
	}
	// §16.6 step 3: Max-Forwards.
	if mf := req.MaxForwards(); mf != nil {
		mf.Dec()
	} else {
		m := sip.MaxForwardsHeader(70)
		req.AppendHeader(&m)
	}
	// §18.2.1 and RFC 3581: record where the request really came from, so
	// that the response finds its way back — over TCP and TLS, onto the very
	// connection (§18.2.2), which a stateless proxy can only remember in
	// the message itself.
	if src := req.Source(); src != "" {
		sh, sp, err := net.SplitHostPort(src)
		if err == nil {
			_, rport := via.Params.Get("rport")
			if rport || inTp != transportUDP {
				via.Params.Add("rport", sp)
				via.Params.Add("received", sh)
			} else if via.Host != sh {
				via.Params.Add("received", sh)
			}
		}
	}
	// §16.6 step 4: record-route dialog-creating INVITEs, twice when the
	// transport changes (RFC 5658), the entry facing downstream on top.
	// §16.6 step 8 and §16.11: our Via, with a branch derived from the
	// incoming one so that CANCEL and the non-2xx ACK match the INVITE
	// downstream. §18.1.1: a request over 1300 bytes goes over TCP, so
	// the headers are sized for UDP first.
	initial := req.Method == sip.INVITE && tagOf(req.To().Params) == ""
	recordSecure := secure || secureRequest(req)
	branch := p.branch(req)
	added := func(outTp string) []sip.Header {
		myVia := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: outTp,
			Host: uriHost(p.cfg.Advertise), Port: p.port(outTp), Params: sip.NewParams()}
		myVia.Params.Add("branch", branch)
		var hs []sip.Header
		if initial {
			hs = append(hs, &sip.RecordRouteHeader{Address: p.rrURI(outTp, recordSecure)})
			if outTp != inTp {
				hs = append(hs, &sip.RecordRouteHeader{Address: p.rrURI(inTp, recordSecure)})
			}
		}
		// Our Via last, so that it sits right above the Via it precedes.
		return append(hs, myVia)
	}
	size := len(req.String())
	for _, h := range added(transportUDP) {
		size += len(h.String()) + 2
	}
	targets = sized(targets, size)
	p.forward(req, inTp, targets, added)
}

// rrURI is our Record-Route entry for one transport (lr: we loose-route). A
// secure request is record-routed with a sips: URI (RFC 3261 §16.6 step 4,
// §26.2.2); a sip: one over TLS names the transport (RFC 5630
// deprecates transport=tls, but a sip: URI has no other way to say it).
func (p *Proxy) rrURI(transport string, secure bool) sip.Uri {
	u := sip.Uri{Scheme: "sip", Host: uriHost(p.cfg.Advertise), Port: p.port(transport), UriParams: sip.NewParams()}
	switch {
	case secure && transport == transportTLS:
		u.Scheme = "sips"
	case transport != transportUDP:
		u.UriParams.Add("transport", strings.ToLower(transport))
	}
	u.UriParams.Add("lr", "")
	return u
}

// branch derives our branch from the request (RFC 3261 §16.11): from the
// incoming RFC 3261 branch when there is one — CANCEL and a non-2xx ACK carry
// the INVITE's branch and so get the same one here — else from the fields
// that identify the transaction.
func (p *Proxy) branch(req *sip.Request) string {
	h := sha256.New()
	h.Write([]byte(p.salt))
	via := req.Via()
	if b, _ := via.Params.Get("branch"); strings.HasPrefix(b, sip.RFC3261BranchMagicCookie) {
		h.Write([]byte(b))
	} else {
		fmt.Fprintf(h, "%s|%s|%s|%s|%d|%s", via.Value(), tagOf(req.To().Params), tagOf(req.From().Params),
			req.CallID().Value(), req.CSeq().SeqNo, req.Recipient.String())
	}
	return proxyBranchPrefix + hex.EncodeToString(h.Sum(nil)[:10])
}

// forward sends req to the first target that takes it, with our headers for
// that target's transport on top (RFC 3263 §4.3: a target that cannot be
// reached — a refused connection, a failed TLS handshake — is left for the
// next; the branch stays, as a stateless proxy's must, §16.11). When none
// takes it, the sender gets 503.
func (p *Proxy) forward(req *sip.Request, inTp string, targets []Target, added func(string) []sip.Header) {
	var err error
	for _, t := range targets {
		out := req.Clone()
		out.PrependHeader(added(t.Transport)...)
		if p.cfg.observe != nil {
			p.cfg.observe(proxyHop{Method: string(req.Method), CallID: req.CallID().Value(), In: inTp, Out: t.Transport, Dest: t.Addr})
		}
		if err = p.send(out, t); err == nil {
			return
		}
		p.log.Debug("forward failed", "method", req.Method, "target", t.String(), "error", err)
	}
	if req.Method != sip.ACK {
		p.reply(req, 503, "Next Hop Unreachable")
	}
}

// send writes a request to one target: over UDP from the listening socket,
// over TCP and TLS on a connection of the proxy's own (see out).
func (p *Proxy) send(req *sip.Request, t Target) error {
	if t.Transport == transportUDP {
		return p.writeUDP([]byte(req.String()), t.Addr)
	}
	if t.Transport == transportTLS {
		if p.tlsOut == nil {
			return fmt.Errorf("%w: %s needs TLS", ErrNoRoute, t)
		}
		ctx, cancel := context.WithTimeout(p.ctx, connectTimeout)
		defer cancel()
		if err := p.tlsOut.connect(ctx, t); err != nil {
			return err
		}
	}
	req.SetTransport(t.Transport)
	req.SetDestination(t.Addr)
	req.Laddr = sip.Addr{}
	return p.out.WriteMsg(req)
}

func (p *Proxy) writeUDP(b []byte, dest string) error {
	ua, err := net.ResolveUDPAddr("udp", dest)
	if err != nil {
		return err
	}
	_, err = p.udp.WriteTo(b, ua)
	return err
}

// onResponse forwards a response along Via (RFC 3261 §16.11, §18.2.2): pop
// our Via, send to the next one's received/rport or sent-by.
func (p *Proxy) onResponse(res *sip.Response) {
	top := res.Via()
	if top == nil || !p.isSelf(top.Host, top.Port) {
		return // not via us: drop (§16.11)
	}
	if b, _ := top.Params.Get("branch"); !strings.HasPrefix(b, proxyBranchPrefix) {
		return
	}
	inTp := strings.ToUpper(res.Transport())
	res.RemoveHeader("Via")
	next := res.Via()
	if next == nil {
		return // a response to the proxy itself; it sends no requests
	}
	dest, tp := viaDest(next)
	if p.cfg.observe != nil {
		method := ""
		if c := res.CSeq(); c != nil {
			method = string(c.MethodName)
		}
		callID := ""
		if c := res.CallID(); c != nil {
			callID = c.Value()
		}
		p.cfg.observe(proxyHop{Method: method, Status: res.StatusCode, CallID: callID, In: inTp, Out: tp, Dest: dest, Response: true})
	}
	if err := p.writeResponse(res, dest, tp); err != nil {
		p.log.Debug("response not forwarded", "status", res.StatusCode, "dest", dest, "error", err)
	}
}

// viaDest is where a response to the sender of via goes (RFC 3261 §18.2.2,
// RFC 3581 §4) and over which transport.
func viaDest(via *sip.ViaHeader) (string, string) {
	host := strings.Trim(via.Host, "[]")
	port := via.Port
	if r, ok := via.Params.Get("received"); ok && r != "" {
		host = r
	}
	if r, ok := via.Params.Get("rport"); ok && r != "" {
		if n, err := strconv.Atoi(r); err == nil {
			port = n
		}
	}
	if port == 0 {
		port = sip.DefaultPort(via.Transport)
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), strings.ToUpper(via.Transport)
}

func (p *Proxy) writeResponse(res *sip.Response, dest, transport string) error {
	if transport == "UDP" {
		return p.writeUDP([]byte(res.String()), dest)
	}
	// Back on the connection the request came in on (RFC 3261 §18.2.2): one the proxy
	// accepted, or, for a request a peer sent down a connection the proxy dialed, that one.
	conn, err := p.tp.GetConnection(transport, dest)
	if err != nil {
		conn, err = p.out.GetConnection(transport, dest)
	}
	if err != nil {
		return err
	}
	defer conn.TryClose()
	return conn.WriteMsg(res)
}

// reply answers a request statelessly (never an ACK, §17.1.1.3).
func (p *Proxy) reply(req *sip.Request, status int, reason string) {
	p.replyWith(req, status, reason)
}

func (p *Proxy) replyWith(req *sip.Request, status int, reason string, hdrs ...sip.Header) {
	if req.Method == sip.ACK || req.Via() == nil {
		return
	}
	if reason == "" {
		reason = reasonPhrase(status)
	}
	res := sip.NewResponseFromRequest(req, status, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	dest := req.Source()
	tp := strings.ToUpper(req.Transport())
	if err := p.writeResponse(res, dest, tp); err != nil {
		p.log.Debug("reply not sent", "status", status, "error", err)
	}
}

// uriPort is the URI's port, or the SIP default 5060 (RFC 3261 §19.1.2).
func uriPort(u sip.Uri) int {
	if u.Port > 0 {
		return u.Port
	}
	return sip.DefaultPort(uriTransport(u))
}
