package cpim

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestWrap(t *testing.T) {
	b, err := io.ReadAll(Wrap(designHeader(), strings.NewReader("hello")))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != designWire+"hello" {
		t.Fatalf("Wrap = %q", b)
	}
	if n := WrappedSize(designHeader(), 5); n != int64(len(b)) {
		t.Fatalf("WrappedSize = %d, want %d", n, len(b))
	}
}

func TestWrapIsAWellBehavedReader(t *testing.T) {
	h := designHeader()
	h.ContentLength = 3000
	payload := strings.Repeat("0123456789", 300)
	want := string(h.Marshal()) + payload
	if err := iotest.TestReader(Wrap(h, strings.NewReader(payload)), []byte(want)); err != nil {
		t.Fatal(err)
	}
	// One byte at a time, the length check still holds.
	b, err := io.ReadAll(iotest.OneByteReader(Wrap(h, iotest.OneByteReader(strings.NewReader(payload)))))
	if err != nil || string(b) != want {
		t.Fatalf("one byte at a time: %d bytes, %v", len(b), err)
	}
}

func TestWrapRefusesInvalidHeader(t *testing.T) {
	h := designHeader()
	h.From = "<sip:a@a>\r\nTo: <sip:evil@x>" // header injection
	n, err := Wrap(h, strings.NewReader("hello")).Read(make([]byte, 64))
	if n != 0 || !errors.Is(err, ErrInvalid) {
		t.Fatalf("Read = %d, %v; want 0, ErrInvalid", n, err)
	}
}

func TestWrapHoldsPayloadToContentLength(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		err     error
	}{
		{"exact", "hello", nil},
		{"short", "hell", ErrLength},
		{"long", "hello world", ErrLength},
		// The zero Header's ContentLength is 0, not "absent": a forgotten
		// length fails here instead of truncating at the receiver.
		{"zero value length", "x", ErrLength},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := designHeader()
			if tc.name == "zero value length" {
				h.ContentLength = 0
			}
			b, err := io.ReadAll(Wrap(h, strings.NewReader(tc.payload)))
			if !errors.Is(err, tc.err) {
				t.Fatalf("ReadAll = %q, %v; want %v", b, err, tc.err)
			}
			if tc.err != nil && int64(len(b)) > WrappedSize(h, max(h.ContentLength, 0)) {
				t.Fatalf("passed on %d bytes, beyond Content-Length", len(b))
			}
		})
	}
}

func TestWrapPassesPayloadErrors(t *testing.T) {
	boom := errors.New("disk on fire")
	for _, length := range []int64{NoContentLength, 10} {
		h := designHeader()
		h.ContentLength = length
		_, err := io.ReadAll(Wrap(h, iotest.ErrReader(boom)))
		if !errors.Is(err, boom) {
			t.Fatalf("ContentLength %d: err = %v, want the payload's error", length, err)
		}
	}
}
