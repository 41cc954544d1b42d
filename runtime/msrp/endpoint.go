package msrp

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
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
		if _, ok := e.trackConn(nc, false, URI{}); !ok {
			_ = nc.Close()
			return nil
		}
	}
}

// trackConn wraps a net.Conn in a conn and registers it, unless the endpoint
// is closed.
func (e *Endpoint) trackConn(nc net.Conn, active bool, target URI) (*conn, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, false
	}
	c := newConn(e, nc, active, target)
	e.conns[c] = struct{}{}
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
	delete(e.conns, c)
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
			break
		}
	}
	if len(list) == 0 {
		delete(e.sessions, s.local.SessionID)
	} else {
		e.sessions[s.local.SessionID] = list
	}
}

// waitSession finds the session whose local URI equals to (RFC 4975 §6.1).
// With hold it waits for a registration up to UnknownSessionHold; the wait
// ends early when stop is closed.
func (e *Endpoint) waitSession(to URI, hold bool, stop <-chan struct{}) *Session {
	var timer *time.Timer
	for {
		e.mu.Lock()
		for _, s := range e.sessions[to.SessionID] {
			if s.local.Equal(to) {
				e.mu.Unlock()
				if timer != nil {
					timer.Stop()
				}
				return s
			}
		}
		added := e.added
		e.mu.Unlock()
		if !hold || e.cfg.UnknownSessionHold <= 0 {
			return nil
		}
		if timer == nil {
			timer = time.NewTimer(e.cfg.UnknownSessionHold)
			defer timer.Stop()
		}
		select {
		case <-added:
		case <-timer.C:
			return nil
		case <-stop:
			return nil
		}
	}
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
