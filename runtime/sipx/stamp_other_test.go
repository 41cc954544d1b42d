//go:build !linux

package sipx

import (
	"net"
	"testing"
	"time"
)

// stampedReader elsewhere than Linux has no kernel receive time: read
// reports none, and the caller falls back on the time it read the datagram.
type stampedReader struct{ pc net.PacketConn }

func newStampedReader(_ *testing.T, pc net.PacketConn) *stampedReader {
	return &stampedReader{pc: pc}
}

func (r *stampedReader) read(buf []byte) (int, time.Time, error) {
	n, _, err := r.pc.ReadFrom(buf)
	return n, time.Time{}, err
}
