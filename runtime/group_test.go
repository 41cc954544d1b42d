package runtime_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/proptest"
	"github.com/cpmlink/cpmlink/runtime"
	"github.com/cpmlink/cpmlink/runtime/deploy"
	"github.com/cpmlink/cpmlink/runtime/sipx"
	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind.
func TestMain(m *testing.M) {
	sipx.SetLibraryLogger(slog.New(slog.DiscardHandler))
	if os.Getenv(roleProcessEnv) != "" {
		// Re-executed as a role process (see cfProcess).
		if err := deploy.RunRoleProcess(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// roleProcessEnv makes the test binary a role process.
const roleProcessEnv = "CPMLINK_TEST_ROLE_PROCESS"

// cfProcess re-executes the test binary as the CF's process.
func cfProcess() *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), roleProcessEnv+"=1")
	cmd.Stderr = os.Stderr
	return cmd
}

// testCtx bounds every wait of a test: nothing here sleeps.
func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func payload(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// recordWatch is a trace writer that hands each record to f (on the recording node's
// goroutine, with the tracer locked: f must not block).
type recordWatch func(runtime.Record)

func (f recordWatch) Write(p []byte) (int, error) {
	var rec runtime.Record
	if err := json.Unmarshal(p, &rec); err != nil {
		return 0, err
	}
	f(rec)
	return len(p), nil
}

// groupRun is one message sent to a group started on loopback, and what came of it.
type groupRun struct {
	g       *runtime.Group
	outcome runtime.Outcome
	sendErr error
	trace   bytes.Buffer
	members []string
}

// startGroup starts a group on loopback that traces into the run, and hands each record to
// the watchers given; it stops at cleanup.
func startGroup(t *testing.T, ctx context.Context, cfg runtime.GroupConfig, watch ...recordWatch) *groupRun {
	t.Helper()
	r := &groupRun{}
	w := []io.Writer{&r.trace}
	for _, f := range watch {
		w = append(w, f)
	}
	cfg.Trace = runtime.NewTracer(io.MultiWriter(w...), nil)
	g, err := runtime.StartGroup(ctx, cfg)
	if err != nil {
		t.Fatalf("starting the group: %v", err)
	}
	r.g = g
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("closing the group: %v", err)
		}
		keepTrace(t, r.trace.Bytes())
	})
	for i := 0; i < cfg.Members; i++ {
		r.members = append(r.members, runtime.MemberURI(i, cfg.PFBs))
	}
	return r
}

// send sends msg to target (with an ad-hoc list, if any) and waits for every session of
// the group to end.
func (r *groupRun) send(t *testing.T, ctx context.Context, target string, list []string, msg []byte) {
	t.Helper()
	r.sendFrom(t, ctx, target, list, int64(len(msg)), func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(msg)), nil })
}

// sendFrom sends size bytes that open gives, waits until every role is idle, and returns
// how long Send took (until every outcome was in).
func (r *groupRun) sendFrom(t *testing.T, ctx context.Context, target string, list []string, size int64, open func() (io.ReadCloser, error)) time.Duration {
	t.Helper()
	start := time.Now()
	r.outcome, r.sendErr = r.g.ClientA.Send(ctx, target, list, runtime.Message{Open: open, Size: size, ContentType: "application/octet-stream"})
	took := time.Since(start)
	if r.sendErr != nil {
		t.Fatalf("send: %v (outcome so far %+v)", r.sendErr, r.outcome)
	}
	if err := r.g.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	return took
}

// sendToGroup starts a group and sends msg to it: to the pre-defined group, or ad-hoc to
// the same members.
func sendToGroup(t *testing.T, ctx context.Context, cfg runtime.GroupConfig, adhoc bool, msg []byte) *groupRun {
	t.Helper()
	r := startGroup(t, ctx, cfg)
	target, list := runtime.GroupURI, []string(nil)
	if adhoc {
		target, list = runtime.AdHocURI, r.members
	}
	r.send(t, ctx, target, list, msg)
	return r
}

// checkDelivered: every member but those in failed holds msg byte-exact and the sender
// was told so; each failed member's outcome carries the status given.
func (r *groupRun) checkDelivered(t *testing.T, msg []byte, failed map[int]int) {
	t.Helper()
	r.checkStored(t, sum(msg), int64(len(msg)), failed)
}

// checkStored is checkDelivered for a message known by its SHA-256 and size.
func (r *groupRun) checkStored(t *testing.T, want string, size int64, failed map[int]int) {
	t.Helper()
	for i, m := range r.g.Members {
		got := r.outcome.Of(r.members[i])
		if st, ok := failed[i]; ok {
			if got.Kind != core.Failed || got.Status != st {
				t.Errorf("%s: sender learned %v, want failed %d", r.members[i], got, st)
			}
			if n := len(m.Received()); n != 0 {
				t.Errorf("%s failed but stored %d messages", r.members[i], n)
			}
			continue
		}
		if got.Kind != core.Delivered {
			t.Errorf("%s: sender learned %v, want delivered", r.members[i], got)
		}
		rec := m.Received()
		if len(rec) != 1 {
			t.Errorf("%s stored %d messages, want 1", r.members[i], len(rec))
			continue
		}
		if rec[0].SHA256 != want || rec[0].Bytes != size {
			t.Errorf("%s stored %d bytes with SHA-256 %s, want %d bytes %s", r.members[i], rec[0].Bytes, rec[0].SHA256, size, want)
		}
	}
}

// validate replays the run's trace through the spec's checkers.
func (r *groupRun) validate(t *testing.T, cfg proptest.Config) {
	t.Helper()
	tr, err := proptest.ReadTrace(bytes.NewReader(r.trace.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Chunks = max(1, tr.Chunks)
	if _, v, err := proptest.ValidateTrace(cfg, tr.Records, true); err != nil || v != nil {
		t.Errorf("the run's trace is not a behaviour of the spec: %v %v", err, v)
	}
}

// TestEveryVariant is the matrix: every named variant of the spec, SIP over UDP and TCP,
// a pre-defined and an ad-hoc group, three members over two PF-Bs (m1 and m3 share
// pfb1, so a variant with reuse shares a hop3 connection), a message of several chunks.
// Each run must deliver byte-exact to every member, tell the sender so per member, end
// every session, and leave a trace that the simulator accepts as one of its behaviours.
func TestEveryVariant(t *testing.T) {
	msg := payload(100<<10+7, 1)
	for _, v := range fsm.Variants {
		for _, transport := range []string{"udp", "tcp"} {
			for _, adhoc := range []bool{false, true} {
				kind := "predefined"
				if adhoc {
					kind = "adhoc"
				}
				t.Run(fmt.Sprintf("%s/%s/%s", v.Name, transport, kind), func(t *testing.T) {
					t.Parallel()
					ctx := testCtx(t, time.Minute)
					cfg := runtime.GroupConfig{Variant: v, Members: 3, PFBs: 2, Transport: transport, ChunkSize: 16 << 10, StoreDir: t.TempDir()}
					r := sendToGroup(t, ctx, cfg, adhoc, msg)
					r.checkDelivered(t, msg, nil)
					r.validate(t, proptest.Config{Variant: v, Members: 3, PFBs: 2})
				})
			}
		}
	}
}

// TestMemberFailures: a member that declines, and one that never answers, fail alone;
// the others get the message and the sender learns each outcome with its status.
func TestMemberFailures(t *testing.T) {
	for _, name := range []string{"fig1", "fig3", "fig5"} {
		v, _ := fsm.VariantByName(name)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, time.Minute)
			msg := payload(40<<10, 2)
			cfg := runtime.GroupConfig{Variant: v, Members: 4, PFBs: 2, ChunkSize: 8 << 10, StoreDir: t.TempDir(),
				Guard: 2 * time.Second,
				Answers: map[int]core.Answer{
					1: {Mode: core.AnswerDecline, Status: 486},
					2: {Mode: core.AnswerSilent},
				}}
			r := sendToGroup(t, ctx, cfg, false, msg)
			r.checkDelivered(t, msg, map[int]int{1: 486, 2: 408})
			r.validate(t, proptest.Config{Variant: v, Members: 4, PFBs: 2, Faults: map[int]proptest.Fault{
				1: {Kind: proptest.Decline, Status: 486},
				2: {Kind: proptest.Silent},
			}})
		})
	}
}

// TestMSRPOverTLS: every link msrps (TCP/TLS/MSRP in SDP), SIP over both transports.
func TestMSRPOverTLS(t *testing.T) {
	conf, err := runtime.LoopbackTLS()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"fig1", "fig5"} {
		v, _ := fsm.VariantByName(name)
		for _, transport := range []string{"udp", "tcp"} {
			t.Run(name+"/"+transport, func(t *testing.T) {
				t.Parallel()
				ctx := testCtx(t, time.Minute)
				msg := payload(50<<10, 5)
				r := sendToGroup(t, ctx, runtime.GroupConfig{Variant: v, Members: 3, PFBs: 2, Transport: transport,
					ChunkSize: 16 << 10, StoreDir: t.TempDir(), TLS: conf}, false, msg)
				r.checkDelivered(t, msg, nil)
				r.validate(t, proptest.Config{Variant: v, Members: 3, PFBs: 2})
				if !strings.Contains(r.trace.String(), "msrps://") {
					t.Error("no msrps URI in the trace: the links were not TLS")
				}
			})
		}
	}
}

// keepTrace keeps the trace of a failed run in CPMLINK_TRACE_DIR, if set, for a look.
func keepTrace(t *testing.T, trace []byte) {
	t.Helper()
	if dir := os.Getenv("CPMLINK_TRACE_DIR"); dir != "" && t.Failed() {
		name := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".ndjson")
		if err := os.WriteFile(name, trace, 0o644); err == nil {
			t.Logf("trace in %s", name)
		}
	}
}

// lockedBuffer is a trace sink that a test may read while the group still writes to it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Bytes returns a copy of what was written so far.
func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// TestTracerOnly: a tracer that keeps only LinkUps (bench's, which times the set-up by
// the last one) gets every LinkUp the full trace of the same group has, and nothing else.
func TestTracerOnly(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, time.Minute)
	v, _ := fsm.VariantByName("fig1")
	var all, only []runtime.Record
	full := runtime.NewTracer(nil, &all)
	linkUps := runtime.NewTracer(nil, &only)
	linkUps.Only = []string{"LinkUp"}
	for _, tr := range []*runtime.Tracer{full, linkUps} {
		g, err := runtime.StartGroup(ctx, runtime.GroupConfig{Variant: v, Members: 3, PFBs: 2, Transport: "tcp", Trace: tr, StoreDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("only the link-ups")
		if _, err := g.ClientA.Send(ctx, runtime.GroupURI, nil, runtime.Message{Open: func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(msg)), nil
		}, Size: int64(len(msg)), ContentType: "text/plain"}); err != nil {
			t.Fatal(err)
		}
		if err := g.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
	}
	count := func(recs []runtime.Record) map[string]int {
		n := map[string]int{}
		for _, r := range recs {
			if r.Type == "LinkUp" {
				n[r.Node]++
			}
		}
		return n
	}
	if len(only) == 0 || len(all) <= len(only) {
		t.Fatalf("%d records kept of %d", len(only), len(all))
	}
	for _, r := range only {
		if r.Type != "LinkUp" {
			t.Errorf("kept a %s record", r.Type)
		}
	}
	if a, o := count(all), count(only); !maps.Equal(a, o) {
		t.Errorf("LinkUps per node: %v with every record, %v with only them", a, o)
	}
}
