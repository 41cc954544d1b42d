package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/cpmlink/cpmlink/runtime/deploy"
)

// reachTimeout bounds the wait for a PF's first answer before send or recv registers. A
// REGISTER to nothing would wait registerTimeout (10 s) and report only a deadline; a PF
// that is up answers an OPTIONS on loopback or a LAN in milliseconds.
const reachTimeout = 2 * time.Second

// errUnreachable is wrapped by probe's errors.
var errUnreachable = errors.New("cpmlink: nothing listens there")

// unreachableError says where nothing listens, and is errUnreachable.
type unreachableError struct{ msg string }

func (e *unreachableError) Error() string { return e.msg }
func (e *unreachableError) Unwrap() error { return errUnreachable }

// probe reports whether nothing listens at addr over transport, within reachTimeout.
//
// Over TCP the connect says it: refused at once when nothing listens. Over UDP nothing is
// connected, so it sends an OPTIONS (RFC 3261 §11, the request for asking a server what it
// can do without setting anything up) from a connected UDP socket: when nothing listens,
// the peer's ICMP port unreachable comes back to that socket as ECONNREFUSED (RFC 1122
// §4.1.3.3), at once on loopback and on most LANs. The OPTIONS is retransmitted as Timer A
// would (RFC 3261 §17.1.1.2: 500 ms, doubling), since one datagram may be lost.
//
// Only a definite answer is an error: a refusal, or no route to the host. Silence proves
// nothing (a firewall may drop the ICMP, a server may ignore OPTIONS), so it returns nil
// and the REGISTER's own deadline decides.
func probe(ctx context.Context, addr, transport string) error {
	ctx, cancel := context.WithTimeout(ctx, reachTimeout)
	defer cancel()
	var d net.Dialer
	if transport != "udp" { // tcp, or a stream transport over it
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return probeError(addr, transport, err)
		}
		return c.Close()
	}
	c, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return probeError(addr, transport, err)
	}
	defer c.Close()
	req := optionsRequest(addr, c.LocalAddr().String())
	deadline, _ := ctx.Deadline()
	buf := make([]byte, 4096)
	for wait := 500 * time.Millisecond; ; wait *= 2 {
		if _, err := c.Write(req); err != nil {
			return probeError(addr, transport, err)
		}
		c.SetReadDeadline(minTime(time.Now().Add(wait), deadline))
		_, err := c.Read(buf)
		switch {
		case err == nil:
			return nil // something answered: a SIP server, as far as this probe can tell
		case errors.Is(err, os.ErrDeadlineExceeded) && time.Now().Before(deadline):
			continue // retransmit
		}
		return probeError(addr, transport, err)
	}
}

func probeError(addr, transport string, err error) error {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return &unreachableError{fmt.Sprintf("nothing listens at %s (%s): the connection was refused", addr, transport)}
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return &unreachableError{fmt.Sprintf("%s (%s) cannot be reached: %v", addr, transport, err)}
	}
	return nil // silence, or something this probe cannot judge: the REGISTER decides
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// optionsRequest is an OPTIONS to the server at addr, sent from local over UDP, with the
// headers RFC 3261 §8.1.1 requires; rport (RFC 3581) lets the answer find us behind a NAT.
func optionsRequest(addr, local string) []byte {
	var id [12]byte
	rand.Read(id[:])
	tag := hex.EncodeToString(id[:])
	var b bytes.Buffer
	fmt.Fprintf(&b, "OPTIONS sip:%s SIP/2.0\r\n", addr)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n", local, tag)
	fmt.Fprintf(&b, "Max-Forwards: 70\r\n")
	fmt.Fprintf(&b, "From: <sip:probe@%s>;tag=%s\r\n", local, tag[:8])
	fmt.Fprintf(&b, "To: <sip:%s>\r\n", addr)
	fmt.Fprintf(&b, "Call-ID: %s@cpmlink\r\n", tag)
	fmt.Fprintf(&b, "CSeq: 1 OPTIONS\r\n")
	fmt.Fprintf(&b, "Accept: application/sdp\r\n")
	fmt.Fprintf(&b, "Content-Length: 0\r\n\r\n")
	return b.Bytes()
}

// probeRegisterPath probes where a client's REGISTER goes: the SIP/IP core, then the PF
// the core forwards it to (when the client can reach it too; silence is not an error).
func probeRegisterPath(ctx context.Context, cfg *deploy.ServeConfig, uri, pf, config string) error {
	core, pfAddr, transport, err := cfg.RegisterPath(ctx, uri)
	if err != nil {
		return err
	}
	if core != "" && core != pfAddr {
		if err := probe(ctx, core, transport); err != nil {
			return fmt.Errorf("%s registers through the SIP/IP core: %w; is `cpmlink serve --config %s --role core` running, or the sip-core of the file?", uri, err, config)
		}
	}
	if err := probe(ctx, pfAddr, transport); err != nil {
		return fmt.Errorf("%s registers with %s: %w; is `cpmlink serve --config %s` running with %s?", uri, pf, err, config, pf)
	}
	return nil
}
