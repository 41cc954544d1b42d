package cpim

import (
	"crypto/sha256"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

// Shared fixtures and helpers for this package's tests.

// designHeader is what ClientA wraps a large message in.
func designHeader() Header {
	return Header{
		From:          "<sip:alice@a.example>",
		To:            "<sip:friends@cf.example>",
		DateTime:      time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
		NS:            []string{"imdn <urn:ietf:params:imdn>"},
		Extra:         []Field{{"imdn.Message-ID", "34jk324j"}},
		ContentType:   "application/octet-stream",
		ContentLength: 5,
	}
}

const designWire = "From: <sip:alice@a.example>\r\n" +
	"To: <sip:friends@cf.example>\r\n" +
	"DateTime: 2024-05-01T12:00:00Z\r\n" +
	"NS: imdn <urn:ietf:params:imdn>\r\n" +
	"imdn.Message-ID: 34jk324j\r\n" +
	"\r\n" +
	"Content-Type: application/octet-stream\r\n" +
	"Content-Length: 5\r\n" +
	"\r\n"

// equalHeader compares headers field by field, DateTime by instant and
// offset (time.Time values are not comparable with ==).
func equalHeader(t *testing.T, got, want Header) {
	t.Helper()
	gt, wt := got.DateTime, want.DateTime
	got.DateTime, want.DateTime = time.Time{}, time.Time{}
	if !gt.Equal(wt) {
		t.Errorf("DateTime %v, want %v", gt, wt)
	}
	_, go1 := gt.Zone()
	_, wo := wt.Zone()
	if go1 != wo {
		t.Errorf("DateTime offset %d, want %d", go1, wo)
	}
	if got.From != want.From || got.To != want.To || got.ContentType != want.ContentType || got.ContentLength != want.ContentLength {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if !equalStrings(got.NS, want.NS) {
		t.Errorf("NS %q, want %q", got.NS, want.NS)
	}
	if !equalFields(got.Extra, want.Extra) {
		t.Errorf("Extra %q, want %q", got.Extra, want.Extra)
	}
	if !equalFields(got.ContentHeaders, want.ContentHeaders) {
		t.Errorf("ContentHeaders %q, want %q", got.ContentHeaders, want.ContentHeaders)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalFields(a, b []Field) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// randStream is a deterministic pseudo-random byte stream.
type randStream struct{ r *rand.ChaCha8 }

func newRandStream(seed byte) *randStream {
	var s [32]byte
	s[0] = seed
	return &randStream{rand.NewChaCha8(s)}
}

func (s *randStream) Read(p []byte) (int, error) {
	n := len(p)
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, s.r.Uint64())
		p = p[8:]
	}
	if len(p) > 0 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], s.r.Uint64())
		copy(p, b[:])
	}
	return n, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func sha256Of(t *testing.T, r io.Reader) [32]byte {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}
