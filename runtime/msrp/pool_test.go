package msrp

import (
	"strconv"
	"testing"
)

// TestConnectionReuse checks the patent's "choose an existing link with
// matching host, port and/or URI" (RFC 4975 §5.4) for each Reuse policy.
func TestConnectionReuse(t *testing.T) {
	for _, tc := range []struct {
		name        string
		mode        Reuse
		sameURI     bool // second session targets the same remote URI
		wantReused  bool
		wantConnsOf int // connections the dialling endpoint holds at the end
	}{
		{"authority match reuses", ReuseAuthority, false, true, 1},
		{"URI policy, other URI, new link", ReuseURI, false, false, 2},
		{"URI policy, same URI, reuses", ReuseURI, true, true, 1},
		{"off never reuses", ReuseOff, true, false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			a := newTestEndpoint(t, Config{Reuse: tc.mode})
			b := newTestEndpoint(t, Config{})
			mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("b1")})
			second := "b2"
			if tc.sameURI {
				second = "b1"
			}
			if !tc.sameURI {
				mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("b2")})
			}
			ups := make(chan Link, 2)
			s1 := mustSession(t, a.Endpoint, SessionConfig{Local: a.uri("a1"), Remote: Path{b.uri("b1")}, OnLinkUp: func(l Link) { ups <- l }})
			s2 := mustSession(t, a.Endpoint, SessionConfig{Local: a.uri("a2"), Remote: Path{b.uri(second)}, OnLinkUp: func(l Link) { ups <- l }})
			l1, err := s1.Connect(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if l1.Reused {
				t.Fatal("first link reported reused")
			}
			l2, err := s2.Connect(ctx)
			if tc.sameURI && !tc.wantReused {
				// Reuse off with the same remote URI: the second connection
				// carries a SEND for a session already bound elsewhere: 506.
				if StatusOf(err) != StatusWrongConnection {
					t.Fatalf("second Connect = %v, want 506", err)
				}
				return
			}
			if tc.sameURI {
				// A second local session to the same remote session: the
				// pool hands it the connection that already carries one to
				// that URI, and B refuses its binding SEND with 403, because
				// b1 is bound to its peer a1 and a2's From-Path is not a1
				// (RFC 4975 §7.3). The reused connection stays for a1.
				if StatusOf(err) != StatusForbidden {
					t.Fatalf("second Connect = %v, want 403", err)
				}
				if n := a.Conns(); n != tc.wantConnsOf {
					t.Fatalf("A holds %d connections, want %d", n, tc.wantConnsOf)
				}
				return
			} else if err != nil {
				t.Fatal(err)
			}
			if l2.Reused != tc.wantReused {
				t.Fatalf("second link Reused = %v, want %v", l2.Reused, tc.wantReused)
			}
			// OnLinkUp runs inside Connect on the active side, so both
			// values are already buffered.
			if len(ups) != 2 {
				t.Fatalf("%d link-up notifications, want 2", len(ups))
			}
			if got := (<-ups).Reused; got {
				t.Fatal("OnLinkUp: first link reused")
			}
			if got := (<-ups).Reused; got != tc.wantReused {
				t.Fatalf("OnLinkUp: second link Reused = %v", got)
			}
			if n := a.Conns(); n != tc.wantConnsOf {
				t.Fatalf("A holds %d connections, want %d", n, tc.wantConnsOf)
			}
		})
	}
}

func TestReuseOffClosesUnusedConnection(t *testing.T) {
	ctx := testCtx(t)
	a := newTestEndpoint(t, Config{Reuse: ReuseOff})
	b := newTestEndpoint(t, Config{})
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("b1")})
	s := mustSession(t, a.Endpoint, SessionConfig{Local: a.uri("a1"), Remote: Path{b.uri("b1")}})
	if _, err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	if n := a.Conns(); n != 0 {
		t.Fatalf("%d connections left open after the only session closed", n)
	}
}

func TestConcurrentConnectsShareOneDial(t *testing.T) {
	// With reuse on, sessions racing to the same peer end up on one
	// connection (DESIGN.md §4 "Reuse").
	ctx := testCtx(t)
	a := newTestEndpoint(t, Config{})
	b := newTestEndpoint(t, Config{})
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		id := "sess" + strconv.Itoa(i)
		mustSession(t, b.Endpoint, SessionConfig{Local: b.uri(id)})
		s := mustSession(t, a.Endpoint, SessionConfig{Local: a.uri(id), Remote: Path{b.uri(id)}})
		go func() { _, err := s.Connect(ctx); errs <- err }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if c := a.Conns(); c != 1 {
		t.Fatalf("%d connections, want 1", c)
	}
}
