package cpim

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// FuzzRead feeds arbitrary bytes to Read. Invariants: nothing panics; errors
// wrap ErrInvalid or ErrTooLarge (ErrLength only from the payload); and
// anything Read accepts, Wrap writes again as bytes that Read parses to the
// same header and the same payload.
func FuzzRead(f *testing.F) {
	f.Add([]byte(designWire + "hello"))
	f.Add([]byte(rfc3862Example))
	f.Add([]byte(rfc5438Example))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, payload, err := Read(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v wraps neither ErrInvalid nor ErrTooLarge", err)
			}
			if !strings.HasPrefix(err.Error(), "cpim: ") || len(err.Error()) > 400 {
				t.Fatalf("error %q: no package prefix or too long", err)
			}
			return
		}
		if err := h.Validate(); err != nil {
			t.Fatalf("Read returned a header Validate refuses: %v", err)
		}
		body, err := io.ReadAll(payload)
		if err != nil && !errors.Is(err, ErrLength) {
			t.Fatalf("payload error %v, want nil or ErrLength", err)
		}
		if err != nil {
			return // the payload disagrees with its Content-Length
		}
		if int64(len(body)) > int64(len(data)) {
			t.Fatalf("payload of %d bytes out of %d input bytes", len(body), len(data))
		}
		wire, err := io.ReadAll(Wrap(h, bytes.NewReader(body)))
		if err != nil {
			t.Fatalf("Wrap refuses what Read accepted: %v", err)
		}
		if int64(len(wire)) != WrappedSize(h, int64(len(body))) {
			t.Fatalf("WrappedSize %d, wrote %d", WrappedSize(h, int64(len(body))), len(wire))
		}
		h2, p2, err := Read(bytes.NewReader(wire))
		if err != nil {
			t.Fatalf("re-read: %v\n%q", err, wire)
		}
		if !bytes.Equal(h2.Marshal(), h.Marshal()) {
			t.Fatalf("header changed:\n%q\n%q", h.Marshal(), h2.Marshal())
		}
		body2, err := io.ReadAll(p2)
		if err != nil || !bytes.Equal(body2, body) {
			t.Fatalf("payload changed: %v", err)
		}
	})
}
