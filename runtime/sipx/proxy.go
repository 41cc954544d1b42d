package sipx

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
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
	// Host is the IP to bind and to put in Via and Record-Route. Required.
	Host string
	// UDPPort and TCPPort are the ports to bind; 0 chooses a free one (the
	// same number for both when both are 0, as with Config).
	UDPPort, TCPPort int
	// Routes maps a Request-URI host (a domain, compared without case) to
	// the host:port of the role serving it. The host must be an IP: the
	// proxy never resolves names. A Request-URI whose host is already an IP
	// is sent there directly.
	// Routes can be added later with SetRoute.
	Routes map[string]string
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger

	// observe, when set (tests), sees every message the proxy forwards.
	observe func(proxyHop)
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
	routes map[string]string
	salt   string

	tp  *sip.TransportLayer // listens: UDP, and the TCP connections peers open
	out *sip.TransportLayer // the TCP connections the proxy opens
	udp *net.UDPConn
	tcp *net.TCPListener

	udpPort, tcpPort int

	serving sync.WaitGroup
	work    sync.WaitGroup
	mu      sync.Mutex
	closed  bool
	once    sync.Once
	stop    func() bool
	down    chan struct{}
}

// StartProxy binds the proxy's UDP and TCP listeners and serves them until
// Close or until ctx ends.
func StartProxy(ctx context.Context, cfg ProxyConfig) (*Proxy, error) {
	ip := net.ParseIP(cfg.Host)
	if ip == nil {
		return nil, fmt.Errorf("%w: proxy Host %q is not an IP address", ErrConfig, cfg.Host)
	}
	routes := map[string]string{}
	for dom, hp := range cfg.Routes {
		if err := checkRoute(dom, hp); err != nil {
			return nil, err
		}
		routes[strings.ToLower(dom)] = hp
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	uc, tl, err := listenPair(cfg.Host, cfg.UDPPort, cfg.TCPPort)
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
		udpPort: uc.LocalAddr().(*net.UDPAddr).Port,
		tcpPort: tl.Addr().(*net.TCPAddr).Port,
		down:    make(chan struct{}),
	}
	// Only sipgo's transport layer: no transaction layer, which would
	// answer CANCELs, send 100 Trying and absorb retransmissions — all
	// wrong for a stateless proxy.
	p.tp = sip.NewTransportLayer(net.DefaultResolver, sip.NewParser(), nil, sip.WithTransportLayerLogger(p.log))
	p.tp.OnMessage(p.onMessage)
	// Connections the proxy dials live in a transport layer of their own. sipgo pools a
	// dialed connection under its local address as well as its remote one, and an
	// accepted connection under its remote address; on loopback every peer shares the IP,
	// and a dialed connection's ephemeral port may equal an accepted one's remote port
	// (connect reuses a local port towards another destination). In one pool the second
	// entry would hide the first, and a response meant for the peer of the accepted
	// connection would go down the dialed one.
	p.out = sip.NewTransportLayer(net.DefaultResolver, sip.NewParser(), nil, sip.WithTransportLayerLogger(p.log))
	p.out.OnMessage(p.onMessage)
	p.serving.Add(2)
	go func() { defer p.serving.Done(); _ = p.tp.ServeUDP(uc) }()
	go func() { defer p.serving.Done(); _ = p.tp.ServeTCP(tl) }()
	p.stop = context.AfterFunc(ctx, func() { _ = p.Close() })
	return p, nil
}

// SetRoute adds or replaces the route for a Request-URI domain, so that a
// proxy can be started before the roles whose addresses it routes to.
func (p *Proxy) SetRoute(domain, hostport string) error {
	if err := checkRoute(domain, hostport); err != nil {
		return err
	}
	p.mu.Lock()
	p.routes[strings.ToLower(domain)] = hostport
	p.mu.Unlock()
	return nil
}

// SetRoutes adds or replaces several routes at once; nothing changes if one
// of them is invalid.
func (p *Proxy) SetRoutes(routes map[string]string) error {
	for d, hp := range routes {
		if err := checkRoute(d, hp); err != nil {
			return err
		}
	}
	p.mu.Lock()
	for d, hp := range routes {
		p.routes[strings.ToLower(d)] = hp
	}
	p.mu.Unlock()
	return nil
}

func checkRoute(domain, hostport string) error {
	h, _, err := net.SplitHostPort(hostport)
	if err != nil || net.ParseIP(h) == nil || domain == "" {
		return fmt.Errorf("%w: route %q -> %q is not domain -> IP:port", ErrConfig, domain, hostport)
	}
	return nil
}

// UDPAddr is the host:port the proxy listens on for UDP.
func (p *Proxy) UDPAddr() string { return net.JoinHostPort(p.cfg.Host, strconv.Itoa(p.udpPort)) }

// TCPAddr is the host:port the proxy listens on for TCP.
func (p *Proxy) TCPAddr() string { return net.JoinHostPort(p.cfg.Host, strconv.Itoa(p.tcpPort)) }

// Close stops the proxy and waits for the messages in hand. Idempotent.
func (p *Proxy) Close() error {
	var err error
	p.once.Do(func() {
		p.stop()
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		_ = p.udp.Close()
		_ = p.tcp.Close()
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
	go func() {
		defer p.work.Done()
		switch m := msg.(type) {
		case *sip.Request:
			p.onRequest(m)
		case *sip.Response:
			p.onResponse(m)
		}
	}()
}

func (p *Proxy) route(domain string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	hp, ok := p.routes[strings.ToLower(domain)]
	return hp, ok
}

func (p *Proxy) isSelf(host string, port int) bool {
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.Equal(p.ip) && (port == p.udpPort || port == p.tcpPort)
}

func (p *Proxy) port(transport string) int {
	if transport == "TCP" {
		return p.tcpPort
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
	dest := ""
	if hostIsIP(next) {
		dest = net.JoinHostPort(strings.Trim(next.Host, "[]"), strconv.Itoa(uriPort(next)))
	} else if hp, ok := p.route(next.Host); ok {
		dest = hp
	} else {
		p.reply(req, 404, "No Route To "+next.Host)
		return
	}
	dh, dp, _ := net.SplitHostPort(dest)
	if n, _ := strconv.Atoi(dp); p.isSelf(dh, n) {
		// Forwarding to ourselves would loop until Max-Forwards runs out.
		p.reply(req, 482, "")
		return
	}
	outTp := inTp
	if tp := uriTransport(next); tp == "UDP" || tp == "TCP" {
		outTp = tp
	}

	// §16.6 step 3: Max-Forwards.
	if mf := req.MaxForwards(); mf != nil {
		mf.Dec()
	} else {
		m := sip.MaxForwardsHeader(70)
		req.AppendHeader(&m)
	}
	// §18.2.1 and RFC 3581: record where the request really came from, so
	// that the response finds its way back — over TCP, onto the very
	// connection (§18.2.2), which a stateless proxy can only remember in
	// the message itself.
	if src := req.Source(); src != "" {
		sh, sp, err := net.SplitHostPort(src)
		if err == nil {
			_, rport := via.Params.Get("rport")
			if rport || inTp == "TCP" {
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
	branch := p.branch(req)
	added := func(outTp string) []sip.Header {
		myVia := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: outTp,
			Host: uriHost(p.cfg.Host), Port: p.port(outTp), Params: sip.NewParams()}
		myVia.Params.Add("branch", branch)
		var hs []sip.Header
		if initial {
			hs = append(hs, &sip.RecordRouteHeader{Address: p.rrURI(outTp)})
			if outTp != inTp {
				hs = append(hs, &sip.RecordRouteHeader{Address: p.rrURI(inTp)})
			}
		}
		// Our Via last, so that it sits right above the Via it precedes.
		return append(hs, myVia)
	}
	if outTp == "UDP" {
		size := len(req.String())
		for _, h := range added("UDP") {
			size += len(h.String()) + 2
		}
		if size > udpMax {
			outTp = "TCP"
		}
	}
	req.PrependHeader(added(outTp)...)
	p.forward(req, inTp, outTp, dest)
}

// rrURI is our Record-Route entry for one transport (lr: we loose-route).
func (p *Proxy) rrURI(transport string) sip.Uri {
	u := sip.Uri{Scheme: "sip", Host: uriHost(p.cfg.Host), Port: p.port(transport), UriParams: sip.NewParams()}
	if transport == "TCP" {
		u.UriParams.Add("transport", "tcp")
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

func (p *Proxy) forward(req *sip.Request, inTp, outTp, dest string) {
	if p.cfg.observe != nil {
		p.cfg.observe(proxyHop{Method: string(req.Method), CallID: req.CallID().Value(), In: inTp, Out: outTp, Dest: dest})
	}
	var err error
	if outTp == "UDP" {
		err = p.writeUDP([]byte(req.String()), dest)
	} else {
		req.SetTransport("TCP")
		req.SetDestination(dest)
		req.Laddr = sip.Addr{}
		err = p.out.WriteMsg(req)
	}
	if err != nil {
		p.log.Debug("forward failed", "method", req.Method, "dest", dest, "error", err)
		if req.Method != sip.ACK {
			// The request was modified in place; answer from what the
			// upstream hop sent (our Via on top must go first).
			req.RemoveHeader("Via")
			p.reply(req, 503, "Next Hop Unreachable")
		}
	}
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
	if req.Method == sip.ACK || req.Via() == nil {
		return
	}
	if reason == "" {
		reason = reasonPhrase(status)
	}
	res := sip.NewResponseFromRequest(req, status, reason, nil)
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
