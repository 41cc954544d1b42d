package sipx

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Timer defaults of RFC 3261 §17.1.1.1 and §16.6.
const (
	defaultT1 = 500 * time.Millisecond
	// t2 caps the 2xx retransmission interval (RFC 3261 §13.3.1.4: "doubles
	// ... until it reaches T2"); 4 s is the RFC default and is not scaled
	// with T1.
	t2 = 4 * time.Second
	// defaultHold is how long an INVITE waits for Answer/Reject. Proxies
	// give up on an INVITE after Timer C, which must exceed 3 minutes
	// (RFC 3261 §16.6 step 11), so a UAS that holds for 3 minutes never
	// answers a transaction its proxy has already abandoned.
	defaultHold = 3 * time.Minute
	// udpMax is the largest request sipx sends over UDP: RFC 3261 §18.1.1
	// moves requests "larger than 1300 bytes" (path MTU unknown) to TCP,
	// and sipgo refuses UDP writes above UDPMTUSize-200 = 1300 bytes.
	udpMax = 1300
	// defaultMaxContacts is Config.MaxContacts' default: ten bindings of
	// about 70 bytes each keep a registrar's 200 near 1000 bytes.
	defaultMaxContacts = 10
)

// Config configures an Endpoint. Zero values choose the documented defaults.
type Config struct {
	// Name names the instance in logs and is the user part of the Contact
	// when Identity has none.
	Name string
	// Host is the IP to bind: an interface's address, or a wildcard (0.0.0.0,
	// ::) for all of them. Required.
	Host string
	// Advertise is the IP peers reach the endpoint at: what it puts in Via
	// and Contact (RFC 3261 §18.1.1, §8.1.1.8) and what UDPAddr and TCPAddr
	// return. It defaults to Host, and is required when Host is a wildcard,
	// which names no address a peer could send to.
	Advertise string
	// UDPPort and TCPPort are the ports to bind; 0 chooses a free one. When
	// both are 0 the endpoint binds the same number for UDP and TCP (as SIP
	// does with 5060), so that one host:port reaches it over either
	// transport — a routing table entry then serves both.
	UDPPort, TCPPort int
	// Identity is this instance's SIP URI ("sip:cf@cf.example"): the From of
	// every request it originates. Required.
	Identity string
	// ContactParams is appended to every Contact this endpoint sends, after
	// the closing ">" (feature tags, RFC 3840:
	// +g.oma.sip-im.large-message;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.largemsg").
	ContactParams string
	// Proxy is the SIP/IP core: host:port, or a SIP URI ("sips:core.example",
	// "sip:core.example;transport=tcp"). Every out-of-dialog request (INVITE,
	// REGISTER) is sent there as a preloaded loose route (RFC 3261 §8.1.2),
	// located like any next hop (RFC 3263, see Resolver). Without it, requests
	// go to their Request-URI (or first Route).
	Proxy string
	// Transport is "udp" (default), "tcp" or "tls": the transport of
	// out-of-dialog requests wherever the next hop's URI leaves it open. A
	// request over 1300 bytes goes over TCP regardless (RFC 3261 §18.1.1); a
	// sips: URI or transport=tls goes over TLS whatever this says.
	Transport string
	// TLS, when set, makes the endpoint speak SIP over TLS (RFC 3261 §26,
	// RFC 5630): it listens for TLS on TLSPort with Certificates, and the
	// TLS connections it opens verify the peer's certificate against RootCAs
	// (nil: the system's roots) and the name the next hop was located by
	// (RFC 5922 §4.1; an IP when the URI or a static route gave an IP).
	// Certificates, if the peer asks, also authenticate us as a client. nil:
	// no TLS listener, and sips: or transport=tls targets fail with ErrNoRoute.
	TLS *tls.Config
	// TLSPort is the TLS listener's port; 0 chooses a free one. TLS cannot
	// share the UDP/TCP port number (its TCP port is taken), so it has its
	// own: TLSAddr says which.
	TLSPort int
	// Resolver locates next hops whose host is a name (RFC 3263): the proxy,
	// a Route, a remote target, a Request-URI. Numeric hosts need none. nil:
	// names cannot be reached (ErrNoRoute), which keeps a deployment on IPs
	// from sending DNS queries it never asked for. Use &DNSResolver{} for DNS,
	// a StaticResolver for a table, or one in front of the other.
	Resolver Resolver
	// Registrar makes the endpoint answer REGISTER and keep a location
	// service (RFC 3261 §10.3), read with Lookup.
	Registrar bool
	// LocationStore, for a registrar, is the file (bbolt) that keeps its
	// bindings across restarts: loaded by Start (expired bindings dropped),
	// written on every change before the 200 goes out. "" keeps them in
	// memory only. One endpoint at a time may hold a file (Start fails after
	// a second of waiting for its lock).
	LocationStore string
	// MaxContacts caps the bindings of one address of record at a registrar
	// (Kamailio registrar's max_contacts). Default 10; negative: no cap. Over
	// UDP the cap is also what lets the 200, which lists every binding
	// (RFC 3261 §10.3 step 8), fit in 1300 bytes (§18.1.1): bindings that
	// would not fit count as over the cap.
	MaxContacts int
	// OverwriteContacts chooses what a REGISTER that would go over the cap
	// gets: false (default) refuses it, 403 "Too Many Registered Contacts",
	// leaving the bindings in force alone; true accepts it and drops the
	// bindings refreshed longest ago (right for senders' short-lived
	// bindings at an originating PF).
	OverwriteContacts bool
	// Auth turns on digest authentication of REGISTER (401) and, with
	// Auth.Invites, of dialog-creating INVITEs (407). nil: none.
	Auth *AuthConfig
	// AuthUser and AuthPassword are this endpoint's own credentials: a 401
	// or 407 to its REGISTER or INVITE is answered once with them
	// (RFC 3261 §22.2, §22.3). Empty: challenges are final.
	AuthUser, AuthPassword string
	// TrustedHosts turns on the trust domain of RFC 3325: IPs or CIDR
	// prefixes ("127.0.0.1", "10.0.0.0/8") of the nodes whose
	// P-Asserted-Identity is believed (the SIP/IP core, the other server
	// roles). A PAI from any other source is removed, and an INVITE that is
	// neither authenticated here (Auth.Invites) nor carries a PAI from a
	// trusted source is refused 403. nil (default): no trust domain — a PAI
	// is believed from anyone, else the From is used (cpmlink's loopback
	// demos).
	TrustedHosts []string
	// T1 is the RTT estimate of RFC 3261 §17.1.1.1 for this endpoint's own
	// timers (2xx retransmission and the 64*T1 ACK wait); default 500ms.
	// sipgo's transaction timers are process-wide and are not changed here.
	T1 time.Duration
	// HoldTimeout bounds how long an incoming INVITE waits for Answer or
	// Reject before sipx answers it 408 itself; default 3 minutes.
	HoldTimeout time.Duration
	// InviteWindow is the most INVITEs this endpoint has out over UDP that no
	// response has answered yet (see inviteWindow: the window starts lower and
	// follows how fast the answers come); more wait in order. 0 takes the
	// default (64), a negative value removes the bound.
	InviteWindow int
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
}

// advertised checks a bind host and the address advertised for it, defaulting the
// latter to the former.
func advertised(advertise *string, host string) error {
	ip := net.ParseIP(host)
	if ip == nil {
		return fmt.Errorf("%w: Host %q is not an IP address", ErrConfig, host)
	}
	if *advertise == "" {
		if ip.IsUnspecified() {
			return fmt.Errorf("%w: Host %s is a wildcard: Advertise must say which address peers use", ErrConfig, host)
		}
		*advertise = host
	}
	if a := net.ParseIP(*advertise); a == nil || a.IsUnspecified() {
		return fmt.Errorf("%w: Advertise %q is not an address peers can reach", ErrConfig, *advertise)
	}
	return nil
}

func (c *Config) normalize() error {
	if err := advertised(&c.Advertise, c.Host); err != nil {
		return err
	}
	if c.Identity == "" {
		return fmt.Errorf("%w: Identity is required", ErrConfig)
	}
	var u sip.Uri
	if err := sip.ParseUri(c.Identity, &u); err != nil || u.Host == "" {
		return fmt.Errorf("%w: Identity %q: %w", ErrConfig, c.Identity, ErrBadURI)
	}
	switch strings.ToLower(c.Transport) {
	case "", "udp":
		c.Transport = "UDP"
	case "tcp":
		c.Transport = "TCP"
	case "tls":
		c.Transport = "TLS"
		if c.TLS == nil {
			return fmt.Errorf("%w: Transport tls needs a TLS configuration", ErrConfig)
		}
	default:
		return fmt.Errorf("%w: Transport %q (want udp, tcp or tls)", ErrConfig, c.Transport)
	}
	if c.Proxy != "" {
		if _, err := proxyURI(c.Proxy); err != nil {
			return fmt.Errorf("%w: Proxy: %w", ErrConfig, err)
		}
	}
	if c.MaxContacts == 0 {
		c.MaxContacts = defaultMaxContacts
	}
	if c.Auth != nil {
		a := *c.Auth
		a.Algorithms = append([]string(nil), a.Algorithms...)
		if err := a.normalize(); err != nil {
			return err
		}
		c.Auth = &a
	}
	if (c.AuthUser == "") != (c.AuthPassword == "") {
		return fmt.Errorf("%w: AuthUser and AuthPassword go together", ErrConfig)
	}
	for _, h := range c.TrustedHosts {
		if _, err := parseTrusted(h); err != nil {
			return err
		}
	}
	if c.T1 <= 0 {
		c.T1 = defaultT1
	}
	if c.HoldTimeout <= 0 {
		c.HoldTimeout = defaultHold
	}
	if c.InviteWindow == 0 {
		c.InviteWindow = defaultInviteWindow
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Name == "" {
		c.Name = u.User
	}
	return nil
}

// proxyURI is the outbound proxy as a loose route (RFC 3261 §8.1.2, §16.12):
// a SIP URI as given, or sip:host:port for host:port; ";lr" added.
func proxyURI(s string) (sip.Uri, error) {
	var u sip.Uri
	if strings.HasPrefix(strings.ToLower(s), "sip:") || strings.HasPrefix(strings.ToLower(s), "sips:") {
		var err error
		if u, err = parseURI(s); err != nil {
			return u, err
		}
	} else {
		host, port, err := net.SplitHostPort(s)
		if err != nil || host == "" {
			return u, fmt.Errorf("%w: %q is neither host:port nor a SIP URI", ErrBadURI, s)
		}
		u = sip.Uri{Scheme: "sip", Host: uriHost(host)}
		if _, err := fmt.Sscan(port, &u.Port); err != nil {
			return u, fmt.Errorf("%w: %q: bad port", ErrBadURI, s)
		}
	}
	if u.UriParams == nil {
		u.UriParams = sip.NewParams()
	}
	u.UriParams.Add("lr", "")
	u.User = ""
	return u, nil
}
