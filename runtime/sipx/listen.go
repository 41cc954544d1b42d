package sipx

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// listenAll binds a SIP listener's sockets on host: UDP and TCP, and TLS when serverTLS
// is set (sl is nil otherwise). On an error nothing stays bound.
func listenAll(host string, udpPort, tcpPort, tlsPort int, serverTLS *tls.Config) (uc *net.UDPConn, tl *net.TCPListener, sl *tlsListener, err error) {
	if uc, tl, err = listenPair(host, udpPort, tcpPort); err != nil {
		return nil, nil, nil, err
	}
	if serverTLS != nil {
		if sl, err = listenTLS(host, tlsPort, serverTLS); err != nil {
			_ = uc.Close()
			_ = tl.Close()
			return nil, nil, nil, err
		}
	}
	return uc, tl, sl, nil
}

// closeAll closes what listenAll bound.
func closeAll(uc *net.UDPConn, tl *net.TCPListener, sl *tlsListener) {
	_ = uc.Close()
	_ = tl.Close()
	if sl != nil {
		_ = sl.Close()
	}
}

// listenPair binds UDP and TCP on host. When both ports are 0 it looks for
// one port number free for both, so that a single host:port names the
// listener over either transport (RFC 3263 resolves a sip: URI without a
// transport parameter to the same port for UDP and TCP).
func listenPair(host string, udpPort, tcpPort int) (*net.UDPConn, *net.TCPListener, error) {
	if udpPort != 0 || tcpPort != 0 {
		return listenAt(host, udpPort, tcpPort)
	}
	var lastErr error
	for range 50 {
		tl, err := net.ListenTCP("tcp", tcpAddr(host, 0))
		if err != nil {
			return nil, nil, fmt.Errorf("%w: listen tcp %s: %w", ErrTransport, host, err)
		}
		port := tl.Addr().(*net.TCPAddr).Port
		uc, err := net.ListenUDP("udp", udpAddr(host, port))
		if err == nil {
			setUDPBuffers(uc)
			return uc, tl, nil
		}
		_ = tl.Close()
		lastErr = err
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	return nil, nil, fmt.Errorf("%w: no port free for both UDP and TCP on %s: %w", ErrTransport, host, lastErr)
}

func listenAt(host string, udpPort, tcpPort int) (*net.UDPConn, *net.TCPListener, error) {
	uc, err := net.ListenUDP("udp", udpAddr(host, udpPort))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: listen udp %s: %w", ErrTransport, net.JoinHostPort(host, strconv.Itoa(udpPort)), err)
	}
	tl, err := net.ListenTCP("tcp", tcpAddr(host, tcpPort))
	if err != nil {
		_ = uc.Close()
		return nil, nil, fmt.Errorf("%w: listen tcp %s: %w", ErrTransport, net.JoinHostPort(host, strconv.Itoa(tcpPort)), err)
	}
	setUDPBuffers(uc)
	return uc, tl, nil
}

func udpAddr(host string, port int) *net.UDPAddr {
	return &net.UDPAddr{IP: net.ParseIP(host), Port: port}
}

func tcpAddr(host string, port int) *net.TCPAddr {
	return &net.TCPAddr{IP: net.ParseIP(host), Port: port}
}

// handshakeTimeout bounds the TLS handshake of an accepted connection, so that
// a peer that connects and says nothing (or speaks plain SIP to the TLS port)
// holds the connection for seconds, not forever.
const handshakeTimeout = 10 * time.Second

// tlsListener serves TLS on an accepted TCP connection. The handshake runs on
// the connection's first Read — on sipgo's reader goroutine for that
// connection, never in the accept loop — under handshakeTimeout; a peer that
// fails it (a plain TCP client, an untrusted certificate) loses its own
// connection and nothing else.
type tlsListener struct {
	net.Listener
	conf *tls.Config
}

func listenTLS(host string, port int, conf *tls.Config) (*tlsListener, error) {
	tl, err := net.ListenTCP("tcp", tcpAddr(host, port))
	if err != nil {
		return nil, fmt.Errorf("%w: listen tls %s: %w", ErrTransport, net.JoinHostPort(host, strconv.Itoa(port)), err)
	}
	return &tlsListener{Listener: tl, conf: conf}, nil
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	return &serverTLSConn{Conn: tls.Server(c, l.conf)}, nil
}

func (l *tlsListener) port() int { return l.Addr().(*net.TCPAddr).Port }

// serverTLSConn completes the handshake before the first read and then lifts
// the handshake deadline.
type serverTLSConn struct {
	*tls.Conn
	once sync.Once
	err  error
}

func (c *serverTLSConn) Read(b []byte) (int, error) {
	c.once.Do(func() {
		if c.err = c.Conn.Handshake(); c.err == nil {
			c.err = c.Conn.SetDeadline(time.Time{})
		}
	})
	if c.err != nil {
		_ = c.Conn.Close()
		return 0, c.err
	}
	return c.Conn.Read(b)
}

// Close closes the connection; see closeTLS.
func (c *serverTLSConn) Close() error { return closeTLS(c.Conn) }

// clientTLSConn is a TLS connection sipx dialed, as handed to sipgo.
type clientTLSConn struct{ *tls.Conn }

// Close closes the connection; see closeTLS.
func (c clientTLSConn) Close() error { return closeTLS(c.Conn) }

// closeTLS closes c, sending close_notify first (RFC 8446 §6.1). A peer that
// has already gone cannot take the alert; the connection is closed all the
// same, so that write failure is not reported as a failure to close.
func closeTLS(c *tls.Conn) error {
	err := c.Close()
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "write" {
		return nil
	}
	return err
}
