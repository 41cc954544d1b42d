package runtime_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/proptest"
	"github.com/cpmlink/cpmlink/runtime"
)

// holdSource gives its message up to a point, reports that it got there, and gives the
// rest only once released: a transfer caught in the middle.
type holdSource struct {
	r       *bytes.Reader
	at      int64
	reached chan struct{}
	release chan struct{}
	once    sync.Once
}

func (s *holdSource) Read(p []byte) (int, error) {
	read := s.r.Size() - int64(s.r.Len())
	if read >= s.at {
		s.once.Do(func() { close(s.reached) })
		<-s.release
	} else {
		p = p[:min(int64(len(p)), s.at-read)]
	}
	return s.r.Read(p)
}

func (s *holdSource) Close() error { return nil }

// TestSendGivesUp: when the caller's context ends, the transmitter gives up on the
// message at once, whatever the phase: the sender learns a failure for every member,
// no member stores a partial message, and every session of the chain ends, long before
// any guard timer (one hour here) would have ended it. The traces are not validated
// against the spec: the simulator does not yet model what a give-up sets off on the wire
// (docs/runtime.md, "Giving up").
func TestSendGivesUp(t *testing.T) {
	const members = 2
	for _, transport := range []string{"udp", "tcp"} {
		t.Run("while-inviting/"+transport, func(t *testing.T) {
			// FIG. 2: the CF answers when a member does; no member answers, so the
			// transmitter's INVITE is still pending when it gives up, and must be
			// cancelled all the way down to the members.
			t.Parallel()
			v, _ := fsm.VariantByName("fig2")
			ctx := testCtx(t, time.Minute)
			r := startGivingUp(t, ctx, runtime.GroupConfig{Variant: v, Members: members, PFBs: 1, Guard: time.Hour,
				Transport: transport, StoreDir: t.TempDir(),
				Answers: map[int]core.Answer{0: {Mode: core.AnswerSilent}, 1: {Mode: core.AnswerSilent}}})
			gone, cancel := context.WithCancel(ctx)
			cancel()
			msg := payload(10<<10, 21)
			r.outcome, r.sendErr = r.g.ClientA.Send(gone, runtime.GroupURI, nil, runtime.Message{Size: int64(len(msg)),
				Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(msg)), nil }})
			checkGaveUp(t, ctx, r)
		})
	}
	t.Run("mid-message", func(t *testing.T) {
		// FIG. 1 with every member accepting: the message is half sent when the
		// transmitter gives up, and every link must come down.
		t.Parallel()
		ctx := testCtx(t, time.Minute)
		r := startGivingUp(t, ctx, runtime.GroupConfig{Variant: fig1(t), Members: members, PFBs: 1, Guard: time.Hour,
			ChunkSize: 8 << 10, StoreDir: t.TempDir()})
		msg := payload(64<<10, 22)
		src := &holdSource{r: bytes.NewReader(msg), at: 32 << 10, reached: make(chan struct{}), release: make(chan struct{})}
		defer close(src.release)
		sending, cancel := context.WithCancel(ctx)
		defer cancel()
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			r.outcome, r.sendErr = r.g.ClientA.Send(sending, runtime.GroupURI, nil, runtime.Message{Size: int64(len(msg)),
				Open: func() (io.ReadCloser, error) { return src, nil }})
		}()
		select {
		case <-src.reached:
		case <-sent:
			t.Fatalf("Send returned before the middle of the message: %v, %+v", r.sendErr, r.outcome)
		case <-ctx.Done():
			t.Fatal("the transfer never reached the middle of the message")
		}
		cancel()
		<-sent
		checkGaveUp(t, ctx, r)
	})
}

// checkGaveUp: Send reported the cancellation with a complete outcome, every member
// failed with 408 and stored nothing, and every role's sessions end.
func checkGaveUp(t *testing.T, ctx context.Context, r *groupRun) {
	t.Helper()
	if !errors.Is(r.sendErr, context.Canceled) {
		t.Errorf("Send returned %v, want context.Canceled", r.sendErr)
	}
	for i, m := range r.g.Members {
		if got := r.outcome.Of(r.members[i]); got.Kind != core.Failed || got.Status != 408 {
			t.Errorf("%s: the sender learned %v, want failed 408", r.members[i], got)
		}
		if n := len(m.Received()); n != 0 {
			t.Errorf("%s stored %d messages from a transfer given up", r.members[i], n)
		}
	}
	if err := r.g.WaitIdle(ctx); err != nil {
		t.Fatalf("after giving up: %v", err)
	}
}

// startGivingUp is startGroup for TestSendGivesUp, which reads the group's trace once the
// group is closed: a link that fails is told to its machine once, however many of the
// driver's watchers (the connection, the message on it, the relay) see it go.
func startGivingUp(t *testing.T, ctx context.Context, cfg runtime.GroupConfig) *groupRun {
	t.Helper()
	var r *groupRun
	// Registered first, so it runs after startGroup's cleanup has closed the group and
	// nothing writes to the trace any more.
	t.Cleanup(func() {
		if r != nil {
			checkToldOnce(t, r)
		}
	})
	r = startGroup(t, ctx, cfg)
	return r
}

func checkToldOnce(t *testing.T, r *groupRun) {
	tr, err := proptest.ReadTrace(bytes.NewReader(r.trace.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	told := map[string]int{}
	for _, rec := range tr.Records {
		if rec.Dir == "in" && rec.Type == "LinkFailed" {
			if told[rec.Node+" "+rec.Leg]++; told[rec.Node+" "+rec.Leg] == 2 {
				t.Errorf("%s was told twice that the link of leg %s failed", rec.Node, rec.Leg)
			}
		}
	}
}

// TestCancelCrossesOK forces the race a give-up sets off: a PF-B's machine decides to
// answer 200 after its member did, but the CANCEL from the CF reaches PF-B's SIP stack
// first, and the stack answers 487. The PF-B must still end its session, not wait for an
// ACK that never comes (the guards are an hour long here).
func TestCancelCrossesOK(t *testing.T) {
	t.Parallel()
	v, _ := fsm.VariantByName("fig2") // the CF answers upstream only once a member has
	ctx := testCtx(t, 30*time.Second)
	var (
		pfb      *runtime.Node
		once     sync.Once
		crossed  bool
		heldCh   = make(chan (<-chan struct{}), 1)
		release  func()
		rejected = make(chan struct{})
		rejOnce  sync.Once
	)
	watch := recordWatch(func(rec runtime.Record) {
		switch {
		case rec.Node == "pfb1" && rec.Dir == "out" && rec.Type == "SendInvite":
			// PF-B has sent its INVITE to the member: hold it, so that the member's 200
			// waits in its inbox.
			once.Do(func() {
				posted, rel := runtime.HoldForTest(pfb)
				release = rel
				heldCh <- posted
			})
		case rec.Node == "cf" && rec.Dir == "in" && rec.Type == "RejectReceived":
			// PF-B's stack has answered the CANCEL with 487.
			rejOnce.Do(func() { close(rejected) })
		case rec.Node == "pfb1" && rec.Type == "cancel-crossed-200":
			crossed = true
		}
	})
	g, err := runtime.StartGroup(ctx, runtime.GroupConfig{Variant: v, Members: 1, PFBs: 1, Guard: time.Hour,
		StoreDir: t.TempDir(), Trace: runtime.NewTracer(watch, nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	pfb = g.PFBs[0]
	sending, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		out runtime.Outcome
		err error
	}
	sent := make(chan result, 1)
	go func() {
		out, err := g.ClientA.Send(sending, runtime.GroupURI, nil, runtime.Message{Size: 5,
			Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("hello")), nil }})
		sent <- result{out, err}
	}()
	wait := func(ch <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		}
	}
	var posted <-chan struct{}
	select {
	case posted = <-heldCh:
	case <-ctx.Done():
		t.Fatal("PF-B never invited the member")
	}
	defer release()
	// The first post to the held PF-B is the member's 200 (nothing else can reach it yet).
	wait(posted, "the member's 200 at PF-B")
	cancel()
	wait(rejected, "PF-B's stack to answer the CF's CANCEL")
	release()
	res := <-sent
	if !errors.Is(res.err, context.Canceled) {
		t.Errorf("Send returned %v, want context.Canceled", res.err)
	}
	if err := g.WaitIdle(ctx); err != nil {
		t.Fatalf("after the CANCEL crossed PF-B's 200: %v", err)
	}
	m := runtime.MemberURI(0, 1)
	if got := res.out.Of(m); got.Kind != core.Failed {
		t.Errorf("%s: the sender learned %v, want a failure", m, got)
	}
	if n := len(g.Members[0].Received()); n != 0 {
		t.Errorf("the member stored %d messages", n)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if !crossed {
		t.Fatal("PF-B's 200 did not cross the CANCEL: the test proves nothing")
	}
}
