package runtime_test

import (
	"io"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/runtime"
)

// stuckSource gives the first part of a message, then blocks until released, then fails.
type stuckSource struct {
	first   []byte
	release chan struct{}
}

func (s *stuckSource) Read(p []byte) (int, error) {
	if len(s.first) > 0 {
		n := copy(p, s.first)
		s.first = s.first[n:]
		return n, nil
	}
	<-s.release
	return 0, io.ErrUnexpectedEOF
}

func (s *stuckSource) Close() error { return nil }

// TestCloseWhileReceiving: members closed in the middle of a message return from Close
// (their stores stop waiting for the rest) and report nothing as received; the rest of
// the group still closes cleanly, and goleak (TestMain) finds nothing left behind.
func TestCloseWhileReceiving(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 30*time.Second)
	const members = 3
	// all closes once each member has been handed a chunk of the message: from then on
	// each holds a half-written store.
	all, seen := make(chan struct{}), map[string]bool{}
	watch := recordWatch(func(r runtime.Record) {
		if r.Role == "ClientB" && r.Dir == "out" && r.Type == "Deliver" && !seen[r.Node] {
			if seen[r.Node] = true; len(seen) == members {
				close(all)
			}
		}
	})
	g, err := runtime.StartGroup(ctx, runtime.GroupConfig{Variant: fig1(t), Members: members, PFBs: 2,
		ChunkSize: 8 << 10, StoreDir: t.TempDir(), Trace: runtime.NewTracer(watch, nil)})
	if err != nil {
		t.Fatal(err)
	}
	src := &stuckSource{first: payload(64<<10, 7), release: make(chan struct{})}
	released := false
	t.Cleanup(func() {
		if !released {
			close(src.release)
		}
		if err := g.Close(); err != nil {
			t.Errorf("closing the group: %v", err)
		}
	})
	sent := make(chan error, 1)
	go func() {
		_, err := g.ClientA.Send(ctx, runtime.GroupURI, nil, runtime.Message{
			Open: func() (io.ReadCloser, error) { return src, nil }, Size: 1 << 20, ContentType: "application/octet-stream"})
		sent <- err
	}()
	select {
	case <-all:
	case <-ctx.Done():
		t.Fatal("the members never started receiving")
	}
	closed := make(chan error, members)
	for _, m := range g.Members {
		go func() { closed <- m.Close() }()
	}
	for range members {
		select {
		case err := <-closed:
			if err != nil {
				t.Errorf("closing a member: %v", err)
			}
		case <-ctx.Done():
			t.Fatal("a member receiving a message never returned from Close")
		}
	}
	for _, m := range g.Members {
		if got := m.Received(); len(got) != 0 {
			t.Errorf("%s reports %d message(s) it never got whole", m.Name(), len(got))
		}
	}
	close(src.release)
	released = true
	select {
	case <-sent:
	case <-ctx.Done():
		t.Fatal("Send never returned after its source failed")
	}
}
