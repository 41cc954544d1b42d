package sipx

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"

	"github.com/emiago/sipgo/sip"
)

// tlsServerConfig checks a TLS configuration given to sipx and returns the one
// its listener serves: a certificate is required (RFC 3261 §26.3.1: a server
// holds a site certificate), TLS 1.2 at least (RFC 8996 deprecates 1.0 and
// 1.1).
func tlsServerConfig(c *tls.Config) (*tls.Config, error) {
	if c == nil {
		return nil, nil
	}
	if len(c.Certificates) == 0 && c.GetCertificate == nil {
		return nil, fmt.Errorf("%w: TLS has no certificate to serve", ErrConfig)
	}
	s := c.Clone()
	if s.MinVersion < tls.VersionTLS12 {
		s.MinVersion = tls.VersionTLS12
	}
	return s, nil
}

// tlsOut opens the TLS connections a sipgo transport layer sends on.
//
// sipgo can dial TLS itself, but it checks the certificate against the host of
// the request's destination, which after RFC 3263 resolution is an IP address,
// while RFC 5922 §4.1 wants the name the URI carried. So sipx dials and
// verifies the connection itself and hands it to sipgo through a listener
// that sipgo serves like any other (ServeTLS): sipgo pools the connection under
// the peer's address, which is where the request that follows looks for one,
// and reads it like an accepted connection.
type tlsOut struct {
	layer *sip.TransportLayer
	conf  *tls.Config // RootCAs verify the peer; Certificates offer ours

	mu     sync.Mutex    // one hand-over at a time
	conns  chan net.Conn // to Accept
	taken  chan struct{} // Accept was called again: the last one is pooled
	handed bool          // Accept's own state: it returned a connection before
	done   chan struct{}
	once   sync.Once
	local  net.Addr
}

func newTLSOut(layer *sip.TransportLayer, conf *tls.Config, local net.Addr) *tlsOut {
	c := conf.Clone()
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	return &tlsOut{layer: layer, conf: c, conns: make(chan net.Conn), taken: make(chan struct{}), done: make(chan struct{}), local: local}
}

// Accept hands sipgo the next connection sipx dialed. sipgo calls it again
// only after it has pooled the previous one, which is what connect waits for.
func (o *tlsOut) Accept() (net.Conn, error) {
	if o.handed {
		select {
		case o.taken <- struct{}{}:
		case <-o.done:
			return nil, net.ErrClosed
		}
	}
	select {
	case c := <-o.conns:
		o.handed = true
		return c, nil
	case <-o.done:
		return nil, net.ErrClosed
	}
}

// Close ends Accept; the connections handed over belong to sipgo's pool.
func (o *tlsOut) Close() error {
	o.once.Do(func() { close(o.done) })
	return nil
}

// Addr is the address of the TLS listener of the same side, for sipgo's logs.
func (o *tlsOut) Addr() net.Addr { return o.local }

// connect makes sure a TLS connection to t is in the layer's pool, with a
// certificate that chains to the configured CAs and covers t.Name (or the IP
// of t.Addr when Name is empty). An existing connection is reused only if its
// certificate covers that name too (RFC 5923 §4's caution about reusing a
// connection for another domain).
func (o *tlsOut) connect(ctx context.Context, t Target) error {
	name := t.Name
	if name == "" {
		name, _, _ = net.SplitHostPort(t.Addr)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if c, err := o.layer.GetConnection("TLS", t.Addr); err == nil {
		defer c.TryClose()
		if tc, ok := c.(*sip.TCPConnection); ok {
			if conn, ok := tc.Conn.(interface{ ConnectionState() tls.ConnectionState }); ok {
				st := conn.ConnectionState()
				if len(st.PeerCertificates) > 0 && st.PeerCertificates[0].VerifyHostname(name) == nil {
					return nil
				}
				return fmt.Errorf("%w: the TLS connection to %s is not authenticated for %s", ErrTransport, t.Addr, name)
			}
		}
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return fmt.Errorf("%w: dial %s: %w", ErrTransport, t.Addr, err)
	}
	conf := o.conf.Clone()
	conf.ServerName = name // an IP here makes crypto/tls check the IP SANs
	conn := tls.Client(raw, conf)
	if err := conn.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return fmt.Errorf("%w: TLS with %s (%s): %w", ErrTransport, t.Addr, name, err)
	}
	select {
	case o.conns <- newPrecheckConn(clientTLSConn{conn}): // requests may come back on it too
	case <-o.done:
		_ = conn.Close()
		return ErrClosed
	case <-ctx.Done():
		_ = conn.Close()
		return ctx.Err()
	}
	select {
	case <-o.taken:
		return nil
	case <-o.done:
		return ErrClosed
	}
}
