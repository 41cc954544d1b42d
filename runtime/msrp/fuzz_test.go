package msrp

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadFrame feeds arbitrary bytes to the streaming parser. Invariants:
// nothing panics; every accepted frame respects the limits, validates, and
// serializes to bytes that parse back to the same frame (so anything we
// accept we can forward); a non-fatal error always names the transaction so
// the request can be answered; the reader always makes progress.
func FuzzReadFrame(f *testing.F) {
	for _, s := range canonicalFrames {
		f.Add([]byte(s))
	}
	f.Add([]byte(goodSEND + goodSEND))
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxHeaderBytes: 2048, MaxHeaders: 16, MaxChunkBody: 4096, MaxOtherBody: 1024}
		rd := NewReader(bytes.NewReader(data), lim)
		for i := 0; i <= len(data); i++ { // each frame consumes at least one byte
			var fr Frame
			err := rd.ReadFrame(&fr)
			if err == io.EOF {
				return
			}
			var fe *FrameError
			if errors.As(err, &fe) {
				if fe.Fatal {
					return
				}
				if fe.TID == "" {
					t.Fatalf("non-fatal error without transaction id: %v", err)
				}
				if fe.Request && fe.Status == 0 {
					t.Fatalf("request error without status: %v", err)
				}
				continue
			}
			if err != nil {
				return // io.ErrUnexpectedEOF and the like
			}
			limit := lim.MaxOtherBody
			if fr.Method == MethodSEND {
				limit = lim.MaxChunkBody
			}
			if len(fr.Body) > limit {
				t.Fatalf("body of %d bytes accepted over limit %d", len(fr.Body), limit)
			}
			if err := fr.Validate(); err != nil {
				t.Fatalf("accepted frame does not validate: %v\n%q", err, data)
			}
			wire := fr.Marshal()
			var again Frame
			if err := NewReader(bytes.NewReader(wire), lim).ReadFrame(&again); err != nil {
				t.Fatalf("re-parse of %q: %v", wire, err)
			}
			if w2 := again.Marshal(); !bytes.Equal(w2, wire) {
				t.Fatalf("serialization not stable:\n%q\n%q", wire, w2)
			}
		}
		t.Fatal("reader made no progress")
	})
}
