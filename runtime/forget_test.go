package runtime_test

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/runtime"
)

// TestForgetEndedSessions: one guard unit after a session is over, every node forgets it
// (its machine, and what the driver kept for its legs), so that a server does not grow
// with every message (issue 8's soak); and a message after that still reaches every
// member, over the connections the forgotten sessions opened (reuse on in fig1).
func TestForgetEndedSessions(t *testing.T) {
	for _, name := range []string{"fig1", "fig3"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			v, ok := fsm.VariantByName(name)
			if !ok {
				t.Fatalf("no variant %s", name)
			}
			ctx := testCtx(t, time.Minute)
			r := startGroup(t, ctx, runtime.GroupConfig{Variant: v, Members: 3, PFBs: 2, Discard: true, Guard: 2 * time.Second})
			nodes := r.g.Nodes()
			forgot := make([]chan struct{}, len(nodes))
			for i, n := range nodes {
				forgot[i] = make(chan struct{}, 16)
				runtime.ForgetForTest(n, forgot[i])
			}
			msg := payload(50_000, 1)
			r.send(t, ctx, runtime.GroupURI, nil, msg)
			r.checkDelivered(t, msg, nil)
			for i, n := range nodes {
				// Each forgotten session is a signal; a session may be forgotten before
				// the first look (a slow run), so the count is looked at after each.
				for {
					s, legs := runtime.HeldForTest(n)
					if s == 0 {
						if legs != 0 {
							t.Errorf("%s holds %d leg entries after forgetting every session", n.Name(), legs)
						}
						break
					}
					select {
					case <-forgot[i]:
					case <-ctx.Done():
						t.Fatalf("%s still holds %d sessions and %d leg entries: %v", n.Name(), s, legs, ctx.Err())
					}
				}
			}
			msg2 := payload(70_000, 2)
			r.send(t, ctx, runtime.GroupURI, nil, msg2)
			for i, m := range r.g.Members {
				rec := m.Received()
				if len(rec) != 2 || rec[1].SHA256 != sum(msg2) {
					t.Errorf("%s holds %d messages after the second send, want both", r.members[i], len(rec))
				}
				if o := r.outcome.Of(r.members[i]); o.Kind != core.Delivered {
					t.Errorf("%s: the second message %v", r.members[i], o)
				}
			}
		})
	}
}

// TestSendWaitsForItsOwnMessage: a transmitter that sends message after message waits, for
// each, until that message's outcome is known, past the tenth too (its sessions' keys
// sort as strings, clientA-10 before clientA-2: Send once took the last in that order for
// its own, and returned at once).
func TestSendWaitsForItsOwnMessage(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, time.Minute)
	v, _ := fsm.VariantByName("fig1")
	r := startGroup(t, ctx, runtime.GroupConfig{Variant: v, Members: 2, PFBs: 1, Discard: true})
	for i := 1; i <= 11; i++ {
		msg := payload(20_000, uint64(i))
		out, err := r.g.ClientA.Send(ctx, runtime.GroupURI, nil, runtime.Message{Size: int64(len(msg)),
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(msg)), nil }})
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		for j, m := range r.g.Members {
			rec := m.Received()
			if o := out.Of(r.members[j]); o.Kind != core.Delivered || len(rec) != i || rec[i-1].SHA256 != sum(msg) {
				t.Fatalf("message %d: Send returned %v for %s, which holds %d messages", i, o, r.members[j], len(rec))
			}
		}
	}
}
