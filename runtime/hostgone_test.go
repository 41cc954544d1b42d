package runtime_test

import (
	"bytes"
	"context"
	"fmt"
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
	ctx := testCtx(t, 2*time.Minute)
	// A guard unit also bounds each step of the set-up; 1 s leaves room for a slow set-up
	// under -race on two busy cores (see TestRelaysEndWhenTheSenderIsLost).
	const guard = time.Second
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

// TestRelaysEndWhenTheSenderIsLost: the sender is lost in the middle of the message, and no
// BYE will ever come from it. Every relay must end its session on its own guard (5 units on
// an up side), BYE upstream and downstream, and so must each relay after it, down to the
// members, which store nothing.
//
//   - gone: its host goes away (its sockets close). PF-A learns it from the MSRP
//     connection, aborts the onward links, and waits, guarded, for the BYE. Before relays
//     guarded an upstream whose link had gone, PF-A, the CF and PF-B held their dialogs
//     for ever.
//   - silent: the network between it and PF-A is cut, nobody told (its driver is held: it
//     neither sends more nor ends anything, and its connections stay open). PF-A's link
//     is up in its own eyes and the rest of the message never comes; its guard on the leg
//     restarts on every chunk that arrives. Before relays guarded a link that is up while
//     the message is not whole, PF-A, the CF and PF-B held `link=up uas=confirmed` for as
//     long as the cut lasted (12 s on b1c180a, the test's deadline).
func TestRelaysEndWhenTheSenderIsLost(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		lose func(t *testing.T, g *runtime.Group)
	}{
		{"gone", func(t *testing.T, g *runtime.Group) {
			if err := runtime.GoneForTest(g.ClientA); err != nil {
				t.Fatalf("taking the sender away: %v", err)
			}
		}},
		{"silent", func(t *testing.T, g *runtime.Group) {
			_, release := runtime.HoldForTest(g.ClientA)
			t.Cleanup(release)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 2*time.Minute)
			// One guard unit also bounds each step of the set-up: CI's -race pass on two
			// busy cores once took more than 5 units of 300 ms to bring the links up, and
			// the session failed before the transfer reached the middle. A unit of 1 s
			// leaves room for a slow set-up; the wait below scales with it.
			const guard = time.Second
			const members = 2
			r := startGroup(t, ctx, runtime.GroupConfig{Variant: fig1(t), Members: members, PFBs: 1, Guard: guard,
				ChunkSize: 8 << 10})
			msg := payload(64<<10, 51)
			src := &holdSource{r: bytes.NewReader(msg), at: 32 << 10, reached: make(chan struct{}), release: make(chan struct{})}
			defer close(src.release)
			sending, cancel := context.WithCancel(ctx)
			defer cancel()
			ended := make(chan string, 1)
			go func() {
				out, err := r.g.ClientA.Send(sending, runtime.GroupURI, nil, runtime.Message{Size: int64(len(msg)),
					Open: func() (io.ReadCloser, error) { return src, nil }})
				ended <- fmt.Sprintf("%+v, %v", out, err)
			}()
			select {
			case <-src.reached:
			case out := <-ended:
				t.Fatalf("the send ended before the transfer reached the middle of the message: %s", out)
			case <-ctx.Done():
				t.Fatal("the transfer never reached the middle of the message")
			}
			c.lose(t, r.g)
			// Each relay's up guard is 5 units, restarted at most once by the chunks that
			// came; a BYE then travels the chain at once.
			idle, stop := context.WithTimeout(ctx, 40*guard)
			defer stop()
			nodes := append([]*runtime.Node{r.g.PFA, r.g.CF}, r.g.PFBs...)
			nodes = append(nodes, r.g.Members...)
			for _, n := range nodes {
				if err := n.WaitIdle(idle); err != nil {
					t.Errorf("%s still holds its session %v after the sender was lost: %v", n.Name(), 40*guard, err)
				}
			}
			for i, m := range r.g.Members {
				if rec := m.Received(); len(rec) != 0 {
					t.Errorf("member %d stored %d messages from a sender that never finished", i+1, len(rec))
				}
			}
		})
	}
}
