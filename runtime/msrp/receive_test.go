package msrp

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestSpans(t *testing.T) {
	var s spans
	for _, r := range [][2]int64{{10, 20}, {0, 5}, {5, 10}, {30, 40}, {20, 30}} {
		if !s.add(r[0], r[1]) {
			t.Fatal("add refused")
		}
	}
	if len(s) != 1 || !s.covers(40) || s.covers(41) {
		t.Fatalf("spans = %v", s)
	}
	var many spans
	for i := range int64(maxSpans) {
		if !many.add(i*10, i*10+1) {
			t.Fatalf("refused span %d", i)
		}
	}
	if many.add(maxSpans*10+5, maxSpans*10+6) {
		t.Fatal("span count not bounded")
	}
	if !many.add(0, 5) { // merging never grows the set
		t.Fatal("merge refused")
	}
}

// chunkOf builds a Chunk for direct sink tests.
func chunkOf(start int64, body string) *Chunk {
	return &Chunk{MessageID: "m0000001", Start: start, Total: Unknown, Flag: FlagMore, Body: []byte(body)}
}

func TestWriterSinkReorder(t *testing.T) {
	// Chunks on a relay path may arrive out of order, overlapping, or
	// duplicated (RFC 4975 §7.1.1); the writer still sees the bytes in order.
	tests := []struct {
		name   string
		chunks [][2]any
		want   string
	}{
		{"in order", [][2]any{{1, "abc"}, {4, "def"}}, "abcdef"},
		{"reversed", [][2]any{{7, "ghi"}, {4, "def"}, {1, "abc"}}, "abcdefghi"},
		{"gapped then filled", [][2]any{{1, "ab"}, {6, "fg"}, {3, "cde"}}, "abcdefg"},
		{"overlap and duplicate", [][2]any{{1, "abcd"}, {3, "cdef"}, {1, "abcd"}, {7, "g"}}, "abcdefg"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			ws := NewWriterSink(&buf, 0)
			for _, c := range tc.chunks {
				if err := ws.WriteChunk(chunkOf(int64(c[0].(int)), c[1].(string))); err != nil {
					t.Fatal(err)
				}
			}
			if err := ws.Close(nil); err != nil || buf.String() != tc.want {
				t.Fatalf("got %q, %v; want %q", buf.String(), err, tc.want)
			}
		})
	}
}

func TestWriterSinkReorderBound(t *testing.T) {
	ws := NewWriterSink(&bytes.Buffer{}, 8)
	if err := ws.WriteChunk(chunkOf(100, "12345678")); err != nil {
		t.Fatal(err)
	}
	err := ws.WriteChunk(chunkOf(200, "9"))
	var se *StatusError
	if !errors.As(err, &se) || se.Code != StatusTooLarge {
		t.Fatalf("over the reorder bound: %v, want 413", err)
	}
	if err := ws.Close(nil); err == nil {
		t.Fatal("closing with a gap must fail")
	}
}

func TestWriterSinkWriterAt(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "msg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ws := NewWriterSink(f, 1) // nothing is buffered with a WriterAt
	for _, c := range []struct {
		s int64
		b string
	}{{5, "EFGH"}, {1, "ABCD"}, {9, "I"}} {
		if err := ws.WriteChunk(chunkOf(c.s, c.b)); err != nil {
			t.Fatal(err)
		}
	}
	_ = ws.Close(nil)
	got, _ := os.ReadFile(f.Name())
	if string(got) != "ABCDEFGHI" {
		t.Fatalf("file = %q", got)
	}
}

func TestReceiveOutOfOrderOverWire(t *testing.T) {
	// Chunks 3, 1, 2 with the '$' chunk first: completion waits until the
	// gap is filled, then the sink closes with every byte in order.
	ctx := testCtx(t)
	b := newTestEndpoint(t, Config{})
	var got bytes.Buffer
	ws := NewWriterSink(&got, 0)
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("bbbb"), Accept: func(*IncomingMessage) (Sink, error) { return ws, nil }})
	peer := dialRaw(t, b.addr)
	to, from := b.uri("bbbb").String(), "msrp://127.0.0.1:9/p;tcp"
	peer.send(rawSEND("ooo00003", to, from, "m0000001", "7-9/9", "ghi", '$'))
	peer.send(rawSEND("ooo00001", to, from, "m0000001", "1-3/9", "abc", '+'))
	peer.send(rawSEND("ooo00002", to, from, "m0000001", "4-6/9", "def", '+'))
	for range 3 {
		if f := peer.next(); f.Status != 200 {
			t.Fatalf("answer %d", f.Status)
		}
	}
	select {
	case <-ws.Done():
	case <-ctx.Done():
		t.Fatal("never completed")
	}
	if ws.Err() != nil || got.String() != "abcdefghi" {
		t.Fatalf("got %q, %v", got.String(), ws.Err())
	}
}

func TestAbortMarker(t *testing.T) {
	ctx := testCtx(t)
	b := newTestEndpoint(t, Config{})
	ws := NewWriterSink(&bytes.Buffer{}, 0)
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("bbbb"), Accept: func(*IncomingMessage) (Sink, error) { return ws, nil }})
	peer := dialRaw(t, b.addr)
	to, from := b.uri("bbbb").String(), "msrp://127.0.0.1:9/p;tcp"
	peer.send(rawSEND("abt00001", to, from, "m0000001", "1-3/9", "abc", '+'))
	peer.send(rawSEND("abt00002", to, from, "m0000001", "4-3/9", "", '#'))
	for range 2 {
		if f := peer.next(); f.Status != 200 {
			t.Fatalf("answer %d", f.Status)
		}
	}
	select {
	case <-ws.Done():
	case <-ctx.Done():
		t.Fatal("abort not delivered")
	}
	if !errors.Is(ws.Err(), ErrAborted) {
		t.Fatalf("sink ended with %v", ws.Err())
	}
}

func TestBodilessEndReachesSink(t *testing.T) {
	// A sender may end a message with a bodiless '$' chunk (RFC 4975
	// §7.1.1). The sink sees it as a last chunk with an empty body: that is
	// where a relay learns the end and forwards it.
	ctx := testCtx(t)
	b := newTestEndpoint(t, Config{})
	rec := newRecordSink(0)
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("bbbb"), Accept: func(*IncomingMessage) (Sink, error) { return rec, nil }})
	peer := dialRaw(t, b.addr)
	to, from := b.uri("bbbb").String(), "msrp://127.0.0.1:9/p;tcp"
	peer.send(rawSEND("end00001", to, from, "m0000001", "1-3/*", "abc", '+'))
	peer.send(rawSEND("end00002", to, from, "m0000001", "4-3/3", "", '$'))
	for range 2 {
		if f := peer.next(); f.Status != 200 {
			t.Fatalf("answer %d", f.Status)
		}
	}
	waitClosed(t, ctx, rec.done)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	want := []ByteRange{{1, 3, Unknown}, {4, 3, 3}}
	if rec.err != nil || rec.body.String() != "abc" || fmt.Sprint(rec.ranges) != fmt.Sprint(want) || string(rec.flags) != "+$" {
		t.Fatalf("sink: %v %q %v %q", rec.err, rec.body.String(), rec.ranges, rec.flags)
	}
}
