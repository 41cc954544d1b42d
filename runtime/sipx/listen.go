package sipx

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
)

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
	return uc, tl, nil
}

func udpAddr(host string, port int) *net.UDPAddr {
	return &net.UDPAddr{IP: net.ParseIP(host), Port: port}
}

func tcpAddr(host string, port int) *net.TCPAddr {
	return &net.TCPAddr{IP: net.ParseIP(host), Port: port}
}
