package runtime

import (
	"context"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/runtime/msrp"
)

// TestStoreKeepsAChunkWhileItIsWritten checks the chunk store's hold on the MSRP reader's
// buffers: a chunk that leaves the window (every consumer passed it, or the one still
// on it was dropped) is released only once no consumer still writes its body, since the
// reader reuses a released buffer for the next frame.
func TestStoreKeepsAChunkWhileItIsWritten(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st := newChunkStore(msrp.IncomingMessage{MessageID: "m"}, []string{"fast", "slow"}, 1<<20, time.Minute, nil)
	for i, body := range []string{"one", "two"} {
		c := &msrp.Chunk{MessageID: "m", Start: int64(1 + 3*i), Total: 6, Flag: msrp.FlagMore, Body: []byte(body)}
		if i == 1 {
			c.Flag = msrp.FlagEnd
		}
		if _, err := st.add(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	slow, err := st.get(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	st.passed("fast", 1)
	st.drop("slow") // dropped while it writes chunk 1: chunk 1 leaves the window
	if got := string(slow.body()); got != "one" {
		t.Fatalf("chunk 1 released while a consumer wrote it: body %q", got)
	}
	if held := st.held(); held != 3 {
		t.Fatalf("store holds %d bytes, want 3 (chunk 2 only)", held)
	}
	st.put(slow)
	if slow.body() != nil {
		t.Fatalf("chunk 1 still held after its last writer put it back")
	}
	if _, err := st.get(ctx, 1); err == nil {
		t.Fatal("a released chunk was handed out again")
	}
	two, err := st.get(ctx, 2)
	if err != nil || string(two.body()) != "two" || !two.last() || two.start() != 4 {
		t.Fatalf("chunk 2: %v", err)
	}
	st.put(two)
	if string(two.body()) != "two" {
		t.Fatal("chunk 2 released while still in the window")
	}
}
