package runtime_test

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/runtime"
)

// pacedSource gives its message a piece at a time, a pause before each: a transfer that
// keeps moving yet lasts longer than any guard timer of the group.
type pacedSource struct {
	r     *bytes.Reader
	piece int
	pause time.Duration
}

func (s *pacedSource) Read(p []byte) (int, error) {
	if s.r.Len() == 0 {
		return 0, io.EOF
	}
	time.Sleep(s.pause) // pacing the sender, not waiting for another goroutine
	return s.r.Read(p[:min(len(p), s.piece)])
}

func (s *pacedSource) Close() error { return nil }

// TestSlowMessageOutlastsGuards: the guard timers bound a silence, not a transfer. A
// message that takes longer than the longest guard of every role (5 units) is delivered,
// because each chunk that moves restarts the guard of the side waiting on it.
func TestSlowMessageOutlastsGuards(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, time.Minute)
	// One guard unit also bounds each step of the set-up. With a unit of 600 ms, CI's
	// -race pass on two busy cores once failed both members with 408 1.4 s in, before
	// much of the message moved; 1.5 s leaves room for a slow set-up, and the pacing
	// makes the transfer outlast five units all the same.
	const guard, piece, pieces = 1500 * time.Millisecond, 16 << 10, 100
	pause := 100 * time.Millisecond
	if pieces*pause <= 5*guard {
		t.Fatalf("the transfer (%v) must outlast the longest guard (%v)", pieces*pause, 5*guard)
	}
	msg := payload(piece*pieces, 11)
	r := startGroup(t, ctx, runtime.GroupConfig{Variant: fig1(t), Members: 2, PFBs: 1, ChunkSize: piece,
		Guard: guard, StoreDir: t.TempDir()})
	took := r.sendFrom(t, ctx, runtime.GroupURI, nil, int64(len(msg)), func() (io.ReadCloser, error) {
		return &pacedSource{r: bytes.NewReader(msg), piece: piece, pause: pause}, nil
	})
	r.checkDelivered(t, msg, nil)
	if !t.Failed() && took <= 5*guard {
		t.Fatalf("the transfer took %v, not longer than the longest guard (%v): the test proves nothing", took, 5*guard)
	}
}
