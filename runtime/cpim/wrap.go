package cpim

import (
	"bytes"
	"fmt"
	"io"
)

// Wrap returns the message/cpim body for h and payload as a stream: the
// header bytes (h.Marshal()) and then the payload, read from payload as the
// result is read, never buffered.
//
// If h is not valid (see Validate), the stream fails on the first Read with
// that error, before a byte is produced. If h.ContentLength is not
// NoContentLength, the stream fails with ErrLength when payload ends before
// that many bytes or has more; the extra bytes are not passed on.
func Wrap(h Header, payload io.Reader) io.Reader {
	if err := h.Validate(); err != nil {
		return &errReader{err}
	}
	if h.ContentLength >= 0 {
		payload = &exactReader{r: payload, left: h.ContentLength}
	}
	return io.MultiReader(bytes.NewReader(h.Marshal()), payload)
}

// WrappedSize is the size of Wrap(h, payload) for a payload of n bytes: the
// value for the MSRP Byte-Range total (RFC 4975 §7.1.1), known before the
// first chunk is sent.
func WrappedSize(h Header, n int64) int64 {
	return int64(len(h.Marshal())) + n
}

type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }

// exactReader passes on exactly left bytes of r and then insists on EOF.
// It serves both directions: Wrap holds a local payload to its
// Content-Length, Read holds a received one.
type exactReader struct {
	r    io.Reader
	left int64
	err  error // sticky
}

func (x *exactReader) Read(p []byte) (int, error) {
	if x.err != nil {
		return 0, x.err
	}
	if x.left == 0 {
		// Probe for extra bytes; one byte is enough to know.
		var one [1]byte
		n, err := io.ReadFull(x.r, one[:])
		switch {
		case n > 0:
			x.err = fmt.Errorf("%w: more than Content-Length bytes", ErrLength)
		case err == io.EOF:
			x.err = io.EOF
		default:
			x.err = err
		}
		return 0, x.err
	}
	if int64(len(p)) > x.left {
		p = p[:x.left]
	}
	n, err := x.r.Read(p)
	x.left -= int64(n)
	if err == io.EOF {
		if x.left > 0 {
			x.err = fmt.Errorf("%w: payload ended %d bytes short: %w", ErrLength, x.left, io.ErrUnexpectedEOF)
			return n, x.err
		}
		err = nil // report EOF only after probing for extra bytes
	}
	if err != nil {
		x.err = err
	}
	return n, err
}
