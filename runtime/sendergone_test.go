package runtime_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/runtime"
)

// TestRelaysEndWhenTheSenderIsGone: the sender's host goes away in the middle of the
// message (its sockets close; no BYE will ever come). PF-A learns it from the MSRP
// connection, aborts the onward links, and waits, guarded, for the BYE; when its guard
// runs out it ends the session itself, BYE upstream (lost) and downstream, and so does
// each relay after it, down to the members. Before relays guarded an upstream whose link
// had gone, PF-A, the CF and PF-B held their dialogs for ever.
func TestRelaysEndWhenTheSenderIsGone(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, time.Minute)
	const guard = 300 * time.Millisecond
	const members = 2
	r := startGroup(t, ctx, runtime.GroupConfig{Variant: fig1(t), Members: members, PFBs: 1, Guard: guard,
		ChunkSize: 8 << 10})
	msg := payload(64<<10, 51)
	src := &holdSource{r: bytes.NewReader(msg), at: 32 << 10, reached: make(chan struct{}), release: make(chan struct{})}
	defer close(src.release)
	sending, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = r.g.ClientA.Send(sending, runtime.GroupURI, nil, runtime.Message{Size: int64(len(msg)),
			Open: func() (io.ReadCloser, error) { return src, nil }})
	}()
	select {
	case <-src.reached:
	case <-ctx.Done():
		t.Fatal("the transfer never reached the middle of the message")
	}
	if err := runtime.GoneForTest(r.g.ClientA); err != nil {
		t.Fatalf("taking the sender away: %v", err)
	}
	// Each relay's up guard is 5 units; a BYE then travels the chain at once.
	idle, stop := context.WithTimeout(ctx, 40*guard)
	defer stop()
	nodes := append([]*runtime.Node{r.g.PFA, r.g.CF}, r.g.PFBs...)
	nodes = append(nodes, r.g.Members...)
	for _, n := range nodes {
		if err := n.WaitIdle(idle); err != nil {
			t.Errorf("%s still holds its session %v after the sender went away: %v", n.Name(), 40*guard, err)
		}
	}
	for i, m := range r.g.Members {
		if rec := m.Received(); len(rec) != 0 {
			t.Errorf("member %d stored %d messages from a sender that never finished", i+1, len(rec))
		}
	}
}
