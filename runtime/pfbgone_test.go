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
