package runtime_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/runtime"
)

// TestMemberEndsWhenItsPFBIsGone: a member whose PF-B's host goes away after the member
// has the message (its sockets close, and what restarts in its place knows nothing of the
// session) ends its own session: no BYE will ever come, so its guard (5 units on an up
// side) aborts what is left and sends BYE itself (RFC 3261 §13.3.1.4, §15), which the new
// PF-B answers 481. Before the spec's member waited, guarded, for as long as its dialog
// lasts, the member held that session for ever. The CF is held meanwhile, so that no
// BYE from upstream can end the session for the member.
func TestMemberEndsWhenItsPFBIsGone(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, time.Minute)
	const guard = 500 * time.Millisecond
	r := startGroup(t, ctx, runtime.GroupConfig{Variant: fig1(t), Members: 1, PFBs: 1, Guard: guard})
	msg := payload(20<<10, 31)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		_, _ = r.g.ClientA.Send(ctx, runtime.GroupURI, nil, runtime.Message{Size: int64(len(msg)),
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(msg)), nil }})
	}()
	m := r.g.Members[0]
	rec, err := m.WaitReceived(ctx, 0)
	if err != nil {
		t.Fatalf("the member never got the message: %v", err)
	}
	if rec[0].SHA256 != sum(msg) {
		t.Fatalf("the member holds %s, want %s", rec[0].SHA256, sum(msg))
	}
	_, release := runtime.HoldForTest(r.g.CF)
	defer release()
	if err := r.g.RestartPFB(0); err != nil {
		t.Fatalf("restarting pfb1: %v", err)
	}
	// Well past the member's guard (5 units, twice at most after its link went quiet).
	idle, cancel := context.WithTimeout(ctx, 30*guard)
	defer cancel()
	if err := m.WaitIdle(idle); err != nil {
		t.Fatalf("the member still holds its session %v after its PF-B went away: %v", 30*guard, err)
	}
	release()
	<-sent
}

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

// TestRelaysEndWhenTheSenderGoesSilent: the network between the sender and PF-A is cut in
// the middle of the message, silently (the sender's driver is held: it neither sends more
// nor ends anything, and its connections stay open). PF-A's link is up in its own eyes and
// the rest of the message never comes: its guard on the leg (5 units, restarted by every
// chunk that arrives) ends the session, BYE upstream and downstream, and each relay after
// it ends its own, down to the members. Before relays guarded a link that is up while the
// message is not whole, PF-A, the CF and PF-B held their sessions for as long as the cut
// lasted.
func TestRelaysEndWhenTheSenderGoesSilent(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, time.Minute)
	const guard = 300 * time.Millisecond
	const members = 2
	r := startGroup(t, ctx, runtime.GroupConfig{Variant: fig1(t), Members: members, PFBs: 1, Guard: guard,
		ChunkSize: 8 << 10})
	msg := payload(64<<10, 52)
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
	_, release := runtime.HoldForTest(r.g.ClientA)
	defer release()
	idle, stop := context.WithTimeout(ctx, 40*guard)
	defer stop()
	nodes := append([]*runtime.Node{r.g.PFA, r.g.CF}, r.g.PFBs...)
	nodes = append(nodes, r.g.Members...)
	for _, n := range nodes {
		if err := n.WaitIdle(idle); err != nil {
			t.Errorf("%s still holds its session %v after the sender went silent: %v", n.Name(), 40*guard, err)
		}
	}
	for i, m := range r.g.Members {
		if rec := m.Received(); len(rec) != 0 {
			t.Errorf("member %d stored %d messages from a sender that never finished", i+1, len(rec))
		}
	}
}
