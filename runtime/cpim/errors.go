package cpim

import "errors"

// Sentinel errors; every error this package returns wraps one of them.
var (
	// ErrInvalid means the header blocks do not follow RFC 3862 §3 (or the
	// Header given to Wrap would not): a missing From or To, a malformed
	// line, a folded line, a bad DateTime or Content-Length.
	ErrInvalid = errors.New("cpim: invalid message")
	// ErrTooLarge means the header blocks exceed MaxHeaderBytes.
	ErrTooLarge = errors.New("cpim: header blocks too large")
	// ErrLength means the payload is shorter or longer than its
	// Content-Length says.
	ErrLength = errors.New("cpim: payload length does not match Content-Length")
)
