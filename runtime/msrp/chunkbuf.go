package msrp

import (
	"sync"
	"sync/atomic"
)

// chunkBuf is a reference-counted chunk body. The connection reader fills one
// per SEND; a relay hands the same buffer to every downstream queue and the
// last one to finish returns it to the pool, so fan-out to N members costs no
// copies and no per-chunk allocation in steady state.
type chunkBuf struct {
	b    []byte
	refs atomic.Int32
}

// maxPooledBuf keeps unusually large buffers (grown for a rare big chunk) out
// of the pool so they can be collected.
const maxPooledBuf = 1 << 20

var bufPool = sync.Pool{New: func() any { return &chunkBuf{b: make([]byte, 0, 64<<10)} }}

// getBuf returns an empty buffer with one reference and at least size bytes
// of capacity.
func getBuf(size int) *chunkBuf {
	cb := bufPool.Get().(*chunkBuf)
	if cap(cb.b) < size {
		cb.b = make([]byte, 0, size)
	}
	cb.b = cb.b[:0]
	cb.refs.Store(1)
	return cb
}

func (cb *chunkBuf) retain() { cb.refs.Add(1) }

func (cb *chunkBuf) release() {
	switch n := cb.refs.Add(-1); {
	case n == 0:
		if cap(cb.b) <= maxPooledBuf {
			bufPool.Put(cb)
		}
	case n < 0:
		panic("msrp: chunk buffer released too often") // broken internal invariant
	}
}
