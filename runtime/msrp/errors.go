package msrp

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package wraps one of these (or
// is a *StatusError), so callers can test with errors.Is.
var (
	// ErrMalformed means bytes on the wire do not follow the RFC 4975 §9 grammar.
	ErrMalformed = errors.New("msrp: malformed frame")
	// ErrFramingLost means the parser can no longer find frame boundaries; the
	// connection must be closed (RFC 4975 §7.3 gives no way to resynchronise
	// without a transaction id).
	ErrFramingLost = errors.New("msrp: framing lost")
	// ErrTooLarge means a limit from Limits was exceeded.
	ErrTooLarge = errors.New("msrp: too large")
	// ErrInvalidURI means an MSRP URI does not follow RFC 4975 §6.
	ErrInvalidURI = errors.New("msrp: invalid URI")
	// ErrInvalidByteRange means a Byte-Range value is not start-end/total with
	// sane numbers (RFC 4975 §7.1.1, §9).
	ErrInvalidByteRange = errors.New("msrp: invalid Byte-Range")
	// ErrClosed means the session, connection or endpoint was closed.
	ErrClosed = errors.New("msrp: closed")
	// ErrNotConnected means the session has no usable connection yet.
	ErrNotConnected = errors.New("msrp: session not connected")
	// ErrSessionExists means a session with the same local URI is registered.
	ErrSessionExists = errors.New("msrp: session already exists")
	// ErrNoTLSConfig means an msrps URI was dialled without Config.TLSConfig.
	ErrNoTLSConfig = errors.New("msrp: msrps needs a TLS config")
	// ErrAborted means a message was aborted by its sender (end-line flag '#').
	ErrAborted = errors.New("msrp: message aborted")
	// ErrLimit means an operator's limit from Config was reached (sessions,
	// connections); see Config.MaxSessions and Config.MaxConns.
	ErrLimit = errors.New("msrp: limit reached")
)

// StatusError is a failure that carries an MSRP status code (RFC 4975 §10):
// the code the peer answered with, or the code a local failure maps to (408
// for a transaction timeout, 413 for a refused message, and so on).
type StatusError struct {
	Code    int    // three-digit MSRP status code
	Comment string // reason phrase; may be empty
	Err     error  // optional cause
}

func (e *StatusError) Error() string {
	c := e.Comment
	if c == "" {
		c = StatusText(e.Code)
	}
	if e.Err != nil {
		return fmt.Sprintf("msrp: %03d %s: %v", e.Code, c, e.Err)
	}
	return fmt.Sprintf("msrp: %03d %s", e.Code, c)
}

func (e *StatusError) Unwrap() error { return e.Err }

// statusErr builds a *StatusError with the standard reason phrase.
func statusErr(code int, err error) *StatusError {
	return &StatusError{Code: code, Comment: StatusText(code), Err: err}
}

// StatusOf returns the MSRP status an error maps to: the code of a wrapped
// *StatusError, 413 for ErrTooLarge, 400 for ErrMalformed, ErrInvalidURI and
// ErrInvalidByteRange, 408 otherwise (RFC 4975 §7.1.1: a hop that cannot
// deliver reports 408 when nothing more specific applies). A nil error is 200.
func StatusOf(err error) int {
	if err == nil {
		return StatusOK
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	switch {
	case errors.Is(err, ErrTooLarge):
		return StatusTooLarge
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrInvalidURI), errors.Is(err, ErrInvalidByteRange):
		return StatusBadRequest
	}
	return StatusTimeout
}
