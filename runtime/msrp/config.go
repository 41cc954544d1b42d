package msrp

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"time"
)

// Reuse says when an active party may put a new session on a connection it
// already has, RFC 4975 §5.4 and the patent's "choose an existing link with
// matching host, port and/or URI".
type Reuse uint8

const (
	// ReuseAuthority reuses a connection whose scheme, host and port match
	// the first URI of the session's remote path. This is the default.
	ReuseAuthority Reuse = iota
	// ReuseURI additionally requires that the connection already carried a
	// session to that very URI (§6.1 comparison).
	ReuseURI
	// ReuseOff always opens a new connection.
	ReuseOff
)

// Config configures an Endpoint. The zero value is usable: every zero field
// takes the default documented on it.
type Config struct {
	// Limits bound what is accepted from peers. See DefaultLimits.
	Limits Limits

	// ChunkSize is the body size of outgoing SEND chunks. Default 2048:
	// RFC 4975 §7.1 requires chunks above 2048 bytes to be interruptible,
	// and 2048 also passes relays that cap frames (Kamailio rejects bodies
	// over about 10 KB). A hop that needs throughput raises it per session
	// (SessionConfig.ChunkSize); see docs/msrp.md for measured trade-offs.
	ChunkSize int

	// TransactionTimeout is how long a request waits for its response before
	// it fails with a local 408 (RFC 4975 §7.1.1 suggests 30 s, the default).
	TransactionTimeout time.Duration

	// ReportTimeout bounds the wait for a success REPORT after the last chunk
	// was answered, when Success-Report was requested. Default 30 s; on
	// expiry the message fails with a local 408.
	ReportTimeout time.Duration

	// WriteTimeout bounds one write to a connection. A peer that stops
	// reading for that long fails the connection. Default 30 s.
	WriteTimeout time.Duration

	// DialTimeout bounds connecting (and the TLS handshake). Default 10 s.
	DialTimeout time.Duration

	// IdleTimeout closes a connection that carries no session for that long.
	// Default 60 s.
	IdleTimeout time.Duration

	// UnknownSessionHold is how long a SEND for a session we do not know yet
	// is held before it is answered 481: SDP and the first SEND race, and
	// implementations that wait briefly interoperate better (DESIGN.md §6).
	// Held frames are copied aside and never block the connection: frames
	// for other sessions and later frames flow meanwhile, and a frame for a
	// session that appears in time is handled in arrival order. A connection
	// holds at most 8 frames and 64 KiB of their bodies; a frame beyond that
	// is answered 481 at once (RFC 4975 §7.3). Default 2 s; a negative value
	// disables holding.
	UnknownSessionHold time.Duration

	// MaxConns bounds the connections accepted through one listener (one
	// Serve call) at a time; a connection beyond it is closed as soon as it
	// is accepted, before anything is read from it, and the refusal is
	// logged once with its reason. Connections this endpoint dials are not
	// counted. Default 4096; a negative value removes the bound.
	MaxConns int

	// MaxConnsPerHost bounds the connections accepted from one source IP
	// address, over all listeners of the endpoint; one more is closed at
	// once and logged as MaxConns. A peer that relays to many members with
	// reuse off opens one connection per member session, and on a loopback
	// deployment every role shares one address: size it to the largest
	// group. Default 1024; a negative value removes the bound.
	MaxConnsPerHost int

	// FirstFrameTimeout closes an accepted connection that has not delivered
	// a complete first frame (the TLS handshake included) within it, so that
	// idle or trickling connections cannot pin descriptors; the close is
	// logged once. After the first frame, IdleTimeout applies. An active
	// party sends its binding SEND as soon as it connects (RFC 4975 §7.1.1),
	// so seconds are plenty. Default 10 s; a negative value means
	// IdleTimeout.
	FirstFrameTimeout time.Duration

	// MaxSessions bounds the sessions registered on the endpoint at a time
	// (a role instance's concurrent MSRP sessions): NewSession beyond it
	// fails with an error wrapping ErrLimit, logged once. Default 8192; a
	// negative value removes the bound.
	MaxSessions int

	// Reuse is the connection reuse policy of the active side.
	Reuse Reuse

	// MaxInFlight bounds the unanswered chunks of one outgoing message; the
	// sender waits for responses beyond it. Default 32.
	MaxInFlight int

	// MaxIncomingMessages bounds concurrent incoming messages per session;
	// one more is refused with 413. Default 16.
	MaxIncomingMessages int

	// MaxReorderBytes bounds what a WriterSink buffers for chunks that arrive
	// ahead of a gap. Default 1 MiB.
	MaxReorderBytes int

	// TLSConfig is used to dial msrps URIs. Nil makes msrps dials fail.
	TLSConfig *tls.Config

	// Dial replaces the TCP dialer, e.g. for a test network. Default net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// Logger receives debug and warning records. Default: discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	c.Limits = c.Limits.withDefaults()
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.TransactionTimeout, 30*time.Second)
	def(&c.ReportTimeout, 30*time.Second)
	def(&c.WriteTimeout, 30*time.Second)
	def(&c.DialTimeout, 10*time.Second)
	def(&c.IdleTimeout, 60*time.Second)
	def(&c.UnknownSessionHold, 2*time.Second)
	def(&c.FirstFrameTimeout, 10*time.Second)
	if c.FirstFrameTimeout < 0 {
		c.FirstFrameTimeout = c.IdleTimeout
	}
	lim := func(n *int, v int) {
		if *n == 0 {
			*n = v
		}
	}
	lim(&c.MaxConns, 4096)
	lim(&c.MaxConnsPerHost, 1024)
	lim(&c.MaxSessions, 8192)
	if c.UnknownSessionHold < 0 {
		c.UnknownSessionHold = 0
	}
	if c.ChunkSize <= 0 {
		c.ChunkSize = 2048
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 32
	}
	if c.MaxIncomingMessages <= 0 {
		c.MaxIncomingMessages = 16
	}
	if c.MaxReorderBytes <= 0 {
		c.MaxReorderBytes = 1 << 20
	}
	if c.Dial == nil {
		var d net.Dialer
		c.Dial = d.DialContext
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}
