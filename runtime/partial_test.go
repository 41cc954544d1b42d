package runtime_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/runtime"
)

// storeEntries lists a member's store directory (GroupConfig.StoreDir/mN).
func storeEntries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestNoPartialFiles: a member stores a message under a temporary name while it arrives
// and gives it its final name only when it is whole. A transfer cut in the middle (the
// transmitter gives up, and every link of the chain is torn down) leaves no file at all
// in the members' stores; a transfer that completes leaves exactly one, holding the
// message. The directories are checked, not the logs.
func TestNoPartialFiles(t *testing.T) {
	t.Parallel()
	const members = 2
	t.Run("cut", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, time.Minute)
		store := t.TempDir()
		// delivering closes once each member has written a chunk into its store.
		delivering, seen := make(chan struct{}), map[string]bool{}
		watch := recordWatch(func(r runtime.Record) {
			if r.Role == "ClientB" && r.Dir == "out" && r.Type == "Deliver" && !seen[r.Node] {
				if seen[r.Node] = true; len(seen) == members {
					close(delivering)
				}
			}
		})
		g, err := runtime.StartGroup(ctx, runtime.GroupConfig{Variant: fig1(t), Members: members, PFBs: 1,
			Guard: time.Hour, ChunkSize: 8 << 10, StoreDir: store, Trace: runtime.NewTracer(watch, nil)})
		if err != nil {
			t.Fatal(err)
		}
		msg := payload(64<<10, 31)
		src := &holdSource{r: bytes.NewReader(msg), at: 32 << 10, reached: make(chan struct{}), release: make(chan struct{})}
		released := false
		defer func() {
			if !released {
				close(src.release)
			}
		}()
		sending, cancel := context.WithCancel(ctx)
		defer cancel()
		sent := make(chan error, 1)
		go func() {
			_, err := g.ClientA.Send(sending, runtime.GroupURI, nil, runtime.Message{Size: int64(len(msg)),
				Open: func() (io.ReadCloser, error) { return src, nil }})
			sent <- err
		}()
		select {
		case <-delivering:
		case <-ctx.Done():
			g.Close()
			t.Fatal("the members never started storing the message")
		}
		for i := range members {
			dir := filepath.Join(store, "m"+string(rune('1'+i)))
			names := storeEntries(t, dir)
			if len(names) != 1 || !strings.HasPrefix(names[0], ".partial-") {
				t.Errorf("m%d: mid-message the store holds %v, want one .partial- file", i+1, names)
			}
		}
		// The transmitter gives up: every link of the chain comes down mid-message.
		cancel()
		select {
		case <-sent:
		case <-ctx.Done():
			t.Fatal("Send never returned after it was cancelled")
		}
		close(src.release)
		released = true
		if err := g.WaitIdle(ctx); err != nil {
			t.Errorf("after giving up: %v", err)
		}
		// Close waits for the members' store writers, so the directories are final.
		if err := g.Close(); err != nil {
			t.Errorf("closing the group: %v", err)
		}
		for i := range members {
			if names := storeEntries(t, filepath.Join(store, "m"+string(rune('1'+i)))); len(names) != 0 {
				t.Errorf("m%d: a cut transfer left %v in the store", i+1, names)
			}
		}
	})
	t.Run("complete", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, time.Minute)
		store := t.TempDir()
		g, err := runtime.StartGroup(ctx, runtime.GroupConfig{Variant: fig1(t), Members: members, PFBs: 1,
			ChunkSize: 8 << 10, StoreDir: store})
		if err != nil {
			t.Fatal(err)
		}
		msg := payload(64<<10, 32)
		_, err = g.ClientA.Send(ctx, runtime.GroupURI, nil, runtime.Message{Size: int64(len(msg)),
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(msg)), nil }})
		if err != nil {
			t.Errorf("send: %v", err)
		}
		if err := g.WaitIdle(ctx); err != nil {
			t.Errorf("after the send: %v", err)
		}
		if err := g.Close(); err != nil {
			t.Errorf("closing the group: %v", err)
		}
		for i, m := range g.Members {
			dir := filepath.Join(store, "m"+string(rune('1'+i)))
			names := storeEntries(t, dir)
			if len(names) != 1 || strings.HasPrefix(names[0], ".") {
				t.Errorf("m%d: the store holds %v, want exactly one file", i+1, names)
				continue
			}
			got, err := os.ReadFile(filepath.Join(dir, names[0]))
			if err != nil || !bytes.Equal(got, msg) {
				t.Errorf("m%d: %s holds %d bytes (%v), not the message", i+1, names[0], len(got), err)
			}
			if rs := m.Received(); len(rs) != 1 || rs[0].File != filepath.Join(dir, names[0]) {
				t.Errorf("m%d: Received says %+v, the store holds %s", i+1, rs, names[0])
			}
		}
	})
}
