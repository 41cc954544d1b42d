package msrp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
)

// Endpoint is one MSRP party: it owns the sessions of a role, the connections
// they use, and the pool of reusable connections. An Endpoint serves any
// number of injected listeners and dials as the active party.
type Endpoint struct {
	cfg Config

	mu        sync.Mutex
	sessions  map[string][]*Session // by local session-id
	added     chan struct{}         // closed and replaced when a session is added
	conns     map[*conn]struct{}
	pool      map[string][]*conn       // active connections by scheme/host/port
	dialing   map[string]chan struct{} // one dial per pool key at a time
	listeners map[net.Listener]struct{}
	closed    bool
	nsessions int            // registered sessions, for Config.MaxSessions
	perHost   map[string]int // accepted connections by source IP, for Config.MaxConnsPerHost

	refused atomic.Uint64 // accepted connections closed at once by a limit
	expired atomic.Uint64 // accepted connections closed by FirstFrameTimeout
	// answered counts the failure responses (300-699) the endpoint sent, by status
	// minus 300: what it refused, for metrics.
	answered [400]atomic.Uint64

	wg sync.WaitGroup // every goroutine the endpoint started
}

// NewEndpoint returns an Endpoint with cfg (zero fields take defaults).
func NewEndpoint(cfg Config) *Endpoint {
	return &Endpoint{
		cfg:       cfg.withDefaults(),
		sessions:  make(map[string][]*Session),
		added:     make(chan struct{}),
		conns:     make(map[*conn]struct{}),
		pool:      make(map[string][]*conn),
		dialing:   make(map[string]chan struct{}),
		listeners: make(map[net.Listener]struct{}),
		perHost:   make(map[string]int),
	}
}

// Config returns the endpoint's configuration with defaults filled in.
func (e *Endpoint) Config() Config { return e.cfg }

// Serve accepts connections on l until l fails or the endpoint is closed; it
// is the passive side of RFC 4975 §5.4. It returns nil after Close. The
// listener is injected (habit from sipgo's ServeTCP): for msrps pass a
// tls.NewListener.
func (e *Endpoint) Serve(l net.Listener) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	e.listeners[l] = struct{}{}
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.listeners, l)
		e.mu.Unlock()
	}()
	var open atomic.Int64 // connections accepted here and not yet closed
	for {
		nc, err := l.Accept()
		if err != nil {
			e.mu.Lock()
			closed := e.closed
			e.mu.Unlock()
			if closed {
				return nil
			}
			return fmt.Errorf("msrp: accept: %w", err)
		}
		c, err := e.admit(nc, &open)
		if err != nil {
			shut := errors.Is(err, ErrClosed)
			if !shut {
				// Counted before the close, which the peer may see at once: Stats
				// read after the peer saw it must include it.
				e.refused.Add(1)
			}
			_ = nc.Close()
			if shut {
				return nil
			}
			e.cfg.Logger.Warn("msrp: connection refused", "remote", nc.RemoteAddr(), "local", nc.LocalAddr(), "reason", err)
			continue
		}
		c.start()
	}
}

// admit registers an accepted connection unless a limit refuses it
// (Config.MaxConns for the listener whose count is open, Config.MaxConnsPerHost
// for its source address) or the endpoint is closed.
func (e *Endpoint) admit(nc net.Conn, open *atomic.Int64) (*conn, error) {
	host := sourceHost(nc.RemoteAddr())
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.closed:
		return nil, ErrClosed
	case e.cfg.MaxConns > 0 && open.Load() >= int64(e.cfg.MaxConns):
		return nil, fmt.Errorf("%w: %d connections on this listener (MaxConns)", ErrLimit, e.cfg.MaxConns)
	case e.cfg.MaxConnsPerHost > 0 && e.perHost[host] >= e.cfg.MaxConnsPerHost:
		return nil, fmt.Errorf("%w: %d connections from %s (MaxConnsPerHost)", ErrLimit, e.cfg.MaxConnsPerHost, host)
	}
	open.Add(1)
	e.perHost[host]++
	c := newConn(e, nc, false, URI{})
	c.host, c.open = host, open
	e.conns[c] = struct{}{}
	return c, nil
}

// sourceHost is the IP address a connection comes from, the key of
// Config.MaxConnsPerHost.
func sourceHost(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	if a == nil {
		return ""
	}
	if h, _, err := net.SplitHostPort(a.String()); err == nil {
		return h
	}
	return a.String()
}

// trackConn wraps a dialled net.Conn in a conn and registers it, unless the
// endpoint is closed.
func (e *Endpoint) trackConn(nc net.Conn, active bool, target URI) (*conn, bool) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, false
	}
	c := newConn(e, nc, active, target)
	e.conns[c] = struct{}{}
	e.mu.Unlock()
	c.start()
	return c, true
}

// Close closes every listener being served, every session and connection,
// and waits for the endpoint's goroutines to end.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		e.wg.Wait()
		return nil
	}
	e.closed = true
	var sessions []*Session
	for _, ss := range e.sessions {
		sessions = append(sessions, ss...)
	}
	conns := make([]*conn, 0, len(e.conns))
	for c := range e.conns {
		conns = append(conns, c)
	}
	for l := range e.listeners {
		_ = l.Close()
	}
	e.mu.Unlock()
	for _, s := range sessions {
		_ = s.Close()
	}
	for _, c := range conns {
		c.close(ErrClosed)
	}
	e.wg.Wait()
	return nil
}

// forget drops a closed connection from the registry and the pool.
func (e *Endpoint) forget(c *conn) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.conns[c]; ok && c.open != nil {
		c.open.Add(-1)
		if e.perHost[c.host]--; e.perHost[c.host] <= 0 {
			delete(e.perHost, c.host)
		}
	}
	delete(e.conns, c)
	e.unpoolLocked(c)
}

// unpool takes a connection that can no longer carry frames out of the pool
// at once, before it is closed, so that no new session is bound to it.
func (e *Endpoint) unpool(c *conn) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.unpoolLocked(c)
}

func (e *Endpoint) unpoolLocked(c *conn) {
	if c.active {
		k := poolKey(c.target)
		list := e.pool[k]
		for i, x := range list {
			if x == c {
				list = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(e.pool, k)
		} else {
			e.pool[k] = list
		}
	}
}

// register adds a session to the lookup table.
func (e *Endpoint) register(s *Session) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	for _, x := range e.sessions[s.local.SessionID] {
		if x.local.Equal(s.local) {
			return fmt.Errorf("%w: %s", ErrSessionExists, s.local)
		}
	}
	if e.cfg.MaxSessions > 0 && e.nsessions >= e.cfg.MaxSessions {
		err := fmt.Errorf("%w: %d sessions (MaxSessions)", ErrLimit, e.cfg.MaxSessions)
		e.cfg.Logger.Warn("msrp: session refused", "local", s.local, "reason", err)
		return err
	}
	e.nsessions++
	e.sessions[s.local.SessionID] = append(e.sessions[s.local.SessionID], s)
	close(e.added)
	e.added = make(chan struct{})
	return nil
}

func (e *Endpoint) unregister(s *Session) {
	e.mu.Lock()
	defer e.mu.Unlock()
	list := e.sessions[s.local.SessionID]
	for i, x := range list {
		if x == s {
			list = append(list[:i:i], list[i+1:]...)
			e.nsessions--
			break
		}
	}
	if len(list) == 0 {
		delete(e.sessions, s.local.SessionID)
	} else {
		e.sessions[s.local.SessionID] = list
	}
}

// findSession returns the session whose local URI equals to (RFC 4975 §6.1),
// or nil, and a channel that is closed when a session is next registered.
func (e *Endpoint) findSession(to URI) (*Session, <-chan struct{}) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.sessions[to.SessionID] {
		if s.local.Equal(to) {
			return s, nil
		}
	}
	return nil, e.added
}

// addedCh returns a channel that is closed when a session is next registered.
func (e *Endpoint) addedCh() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.added
}

func poolKey(u URI) string {
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) + ":" + fmt.Sprint(u.EffectivePort())
}

// connFor returns a connection to the first hop u: a pooled one when reuse
// allows (reused = true), otherwise a new one. Concurrent callers for the
// same key share one dial, so that with reuse on there is one connection per
// peer host:port (DESIGN.md §4 "Reuse").
func (e *Endpoint) connFor(ctx context.Context, u URI, mode Reuse) (*conn, bool, error) {
	k := poolKey(u)
	for {
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			return nil, false, ErrClosed
		}
		if mode != ReuseOff {
			for _, c := range e.pool[k] {
				if c.matches(u, mode) {
					e.mu.Unlock()
					return c, true, nil
				}
			}
			if wait, ok := e.dialing[k]; ok {
				e.mu.Unlock()
				select {
				case <-wait:
					continue // look again: the dial may have produced a match
				case <-ctx.Done():
					return nil, false, ctx.Err()
				}
			}
		}
		done := make(chan struct{})
		if mode != ReuseOff {
			e.dialing[k] = done
		}
		e.mu.Unlock()
		c, err := e.dial(ctx, u)
		e.mu.Lock()
		if mode != ReuseOff {
			delete(e.dialing, k)
		}
		if err == nil {
			if e.closed {
				err = ErrClosed
			} else {
				e.pool[k] = append(e.pool[k], c)
			}
		}
		e.mu.Unlock()
		close(done)
		if err != nil {
			if c != nil {
				c.close(err)
			}
			return nil, false, err
		}
		return c, false, nil
	}
}

func (e *Endpoint) dial(ctx context.Context, u URI) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.DialTimeout)
	defer cancel()
	nc, err := e.cfg.Dial(ctx, "tcp", u.Addr())
	if err != nil {
		return nil, fmt.Errorf("msrp: dial %s: %w", u.Addr(), err)
	}
	if u.Secure() {
		if e.cfg.TLSConfig == nil {
			_ = nc.Close()
			return nil, ErrNoTLSConfig
		}
		cfg := e.cfg.TLSConfig.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = u.Host
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			return nil, fmt.Errorf("msrp: TLS handshake with %s: %w", u.Addr(), err)
		}
		nc = tc
	}
	c, ok := e.trackConn(nc, true, u)
	if !ok {
		_ = nc.Close()
		return nil, ErrClosed
	}
	return c, nil
}

// Conns returns the number of open connections (for tests and metrics).
func (e *Endpoint) Conns() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.conns)
}

// Stats counts what the endpoint's limits refused, for metrics and tests.
type Stats struct {
	// RefusedConns counts accepted connections closed at once by MaxConns
	// or MaxConnsPerHost.
	RefusedConns uint64
	// SilentConns counts accepted connections closed because no complete
	// frame arrived within FirstFrameTimeout.
	SilentConns uint64
	// Responses counts the failure responses the endpoint sent to requests
	// (403, 413, 415, 481, 506 ...), by status; statuses never sent are absent.
	Responses map[int]uint64
}

// Stats returns the counts since the endpoint was created.
func (e *Endpoint) Stats() Stats {
	st := Stats{RefusedConns: e.refused.Load(), SilentConns: e.expired.Load()}
	for i := range e.answered {
		if n := e.answered[i].Load(); n > 0 {
			if st.Responses == nil {
				st.Responses = map[int]uint64{}
			}
			st.Responses[300+i] = n
		}
	}
	return st
}
