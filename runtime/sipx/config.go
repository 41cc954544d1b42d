package sipx

import (
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
)

// Config configures an Endpoint. Zero values choose the documented defaults.
type Config struct {
	// Name names the instance in logs and is the user part of the Contact
	// when Identity has none.
	Name string
	// Host is the IP to bind and to put in Via and Contact (127.0.0.1 or
	// ::1). Required.
	Host string
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
	// Proxy is host:port of the SIP/IP core. Every out-of-dialog request
	// (INVITE, REGISTER) is sent there as a preloaded loose route (RFC 3261
	// §8.1.2). Without it, a Request-URI must be host:port-addressable.
	Proxy string
	// Transport is "udp" (default) or "tcp" for out-of-dialog requests. A
	// request over 1300 bytes goes over TCP regardless (RFC 3261 §18.1.1).
	Transport string
	// Registrar makes the endpoint answer REGISTER and keep an in-memory
	// location service (RFC 3261 §10.3), read with Lookup.
	Registrar bool
	// T1 is the RTT estimate of RFC 3261 §17.1.1.1 for this endpoint's own
	// timers (2xx retransmission and the 64*T1 ACK wait); default 500ms.
	// sipgo's transaction timers are process-wide and are not changed here.
	T1 time.Duration
	// HoldTimeout bounds how long an incoming INVITE waits for Answer or
	// Reject before sipx answers it 408 itself; default 3 minutes.
	HoldTimeout time.Duration
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
}

func (c *Config) normalize() error {
	if net.ParseIP(c.Host) == nil {
		return fmt.Errorf("%w: Host %q is not an IP address", ErrConfig, c.Host)
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
	default:
		return fmt.Errorf("%w: Transport %q (want udp or tcp)", ErrConfig, c.Transport)
	}
	if c.Proxy != "" {
		if _, _, err := net.SplitHostPort(c.Proxy); err != nil {
			return fmt.Errorf("%w: Proxy %q is not host:port", ErrConfig, c.Proxy)
		}
	}
	if c.T1 <= 0 {
		c.T1 = defaultT1
	}
	if c.HoldTimeout <= 0 {
		c.HoldTimeout = defaultHold
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Name == "" {
		c.Name = u.User
	}
	return nil
}
