package msrp

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

var errNoUsePath = errors.New("msrp: AUTH response without Use-Path")

// AuthResult is a relay's answer to AUTH (RFC 4976 §5.2).
type AuthResult struct {
	// UsePath is the path to put in front of this client's own URI in the
	// a=path it advertises (and in front of the peer's path when sending
	// through the relay).
	UsePath Path
	// Expires is the lifetime the relay granted, in seconds; 0 if not given.
	Expires int
}

// Auth sends an AUTH request to an MSRP relay from local and returns the
// Use-Path the relay grants (RFC 4976 §5.2). The connection is taken from,
// and left in, the pool, so that sessions whose first hop is the relay reuse
// it, which is how a relay recognises its authenticated client. Digest
// challenges (401) are returned as a *StatusError: cpmlink's relays
// authenticate by connection only.
func (e *Endpoint) Auth(ctx context.Context, relay, local URI) (AuthResult, error) {
	c, _, err := e.connFor(ctx, relay, ReuseAuthority)
	if err != nil {
		return AuthResult{}, err
	}
	type answer struct {
		res AuthResult
		err error
	}
	ch := make(chan answer, 1)
	f := Frame{TID: NewTransactionID(), Method: MethodAUTH, ToPath: Path{relay}, FromPath: Path{local}}
	err = c.addTxn(f.TID, func(status int, comment string, resp *Frame, err error) {
		var a answer
		switch {
		case err != nil:
			a.err = err
		case status != StatusOK:
			a.err = &StatusError{Code: status, Comment: comment}
		default:
			// resp is only valid during this callback: parse now.
			up, ok := resp.Header("Use-Path")
			if !ok {
				a.err = errNoUsePath
				break
			}
			a.res.UsePath, a.err = ParsePath(up)
			if v, ok := resp.Header("Expires"); ok {
				a.res.Expires, _ = strconv.Atoi(v)
			}
		}
		ch <- a
	})
	if err != nil {
		return AuthResult{}, err
	}
	if err := c.write(f.AppendTrailer(f.AppendHeader(nil))); err != nil {
		c.dropTxn(f.TID)
		return AuthResult{}, fmt.Errorf("msrp: AUTH: %w", err)
	}
	select {
	case a := <-ch:
		return a.res, a.err
	case <-ctx.Done():
		c.dropTxn(f.TID)
		return AuthResult{}, ctx.Err()
	}
}
