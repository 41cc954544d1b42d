package runtime

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/cpmlink/cpmlink/runtime/msrp"
)

// errStalled is the cause recorded when a consumer held the store full for too long.
var errStalled = errors.New("runtime: a downstream stalled the relay")

// storedChunk is one chunk of an incoming message, held until every consumer that may
// still need it has it. Its body is the MSRP reader's own buffer, kept by reference
// (msrp.Chunk.Retain), never copied: a 256 MB message through a relay was 256 MB of
// copies and garbage before (docs/performance.md).
type storedChunk struct {
	rc *msrp.RetainedChunk
	// users counts the consumers between get and put: the buffer goes back to the MSRP
	// reader's pool only once it left the window (gone) and none of them still writes it
	// (a consumer dropped for stalling may be in the middle of a write).
	users int
	gone  bool
}

func (c *storedChunk) body() []byte { return c.rc.Body }
func (c *storedChunk) start() int64 { return c.rc.Range.Start }
func (c *storedChunk) last() bool   { return c.rc.Flag == msrp.FlagEnd }

// chunkStore holds the chunks of one message arriving on an up leg, between the MSRP
// reader that receives them and the consumers the machine sends them to: the relay
// writers of the down legs, or the receiver's file. It never holds the whole message:
// when it holds more than its limit, the MSRP reader waits (TCP back-pressure up the
// chain), and a consumer that keeps it full past the stall timeout is dropped alone.
type chunkStore struct {
	mu   sync.Mutex
	cond *sync.Cond

	msg   msrp.IncomingMessage
	limit int64
	stall time.Duration

	chunks []*storedChunk // chunks base+1 .. base+len(chunks)
	base   int
	count  int
	bytes  int64
	done   bool  // the last chunk arrived
	err    error // the message failed upstream (aborted, link lost)

	// need is, per consumer, the first chunk it does not have yet. A consumer is removed
	// when it is dead (its link failed or closed, its member failed).
	need map[string]int
	// onStall is called, without the lock, with the consumer that held the store full.
	onStall func(consumer string)
}

func newChunkStore(msg msrp.IncomingMessage, consumers []string, limit int64, stall time.Duration, onStall func(string)) *chunkStore {
	s := &chunkStore{msg: msg, limit: limit, stall: stall, need: map[string]int{}, onStall: onStall}
	s.cond = sync.NewCond(&s.mu)
	for _, c := range consumers {
		s.need[c] = 1
	}
	return s
}

// add stores the next chunk and returns its index (from 1). It waits while the store is
// full; when a consumer holds it full past the stall timeout, that consumer is dropped and
// reported. ctx ends the wait.
func (s *chunkStore) add(ctx context.Context, c *msrp.Chunk) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	deadline := time.Now().Add(s.stall)
	for s.bytes >= s.limit && len(s.need) > 0 && s.err == nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if time.Now().After(deadline) {
			slow := s.slowest()
			delete(s.need, slow)
			s.release()
			if s.onStall != nil {
				s.mu.Unlock()
				s.onStall(slow)
				s.mu.Lock()
			}
			deadline = time.Now().Add(s.stall)
			continue
		}
		s.waitUntil(deadline)
	}
	if s.err != nil {
		return 0, s.err
	}
	s.chunks = append(s.chunks, &storedChunk{rc: c.Retain()})
	s.count++
	s.bytes += int64(len(c.Body))
	if c.Flag == msrp.FlagEnd {
		s.done = true
	}
	s.cond.Broadcast()
	return s.count, nil
}

// waitUntil waits on the condition until woken or the deadline passes. sync.Cond has no
// timed wait; a timer broadcasts at the deadline.
func (s *chunkStore) waitUntil(deadline time.Time) {
	t := time.AfterFunc(time.Until(deadline), func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	s.cond.Wait()
	t.Stop()
}

func (s *chunkStore) slowest() string {
	var who string
	min := int(^uint(0) >> 1)
	for c, k := range s.need {
		if k < min || k == min && c < who {
			who, min = c, k
		}
	}
	return who
}

// get returns chunk k, waiting until it arrived (bounded by ctx). It fails when the chunk
// was released (a consumer asked for what it said it had) or the message failed. The
// caller puts the chunk back when it is done with its body.
func (s *chunkStore) get(ctx context.Context, k int) (*storedChunk, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k > s.count && s.err == nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s.waitUntil(time.Now().Add(time.Second))
	}
	if k <= s.count && k > s.base {
		c := s.chunks[k-s.base-1]
		c.users++
		return c, nil
	}
	if s.err != nil {
		return nil, s.err
	}
	return nil, errors.New("runtime: chunk already released")
}

// put ends a get: the caller no longer reads the chunk's body.
func (s *chunkStore) put(c *storedChunk) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.users--; c.gone && c.users == 0 {
		c.rc.Release()
	}
}

// passed records that a consumer has chunk k.
func (s *chunkStore) passed(consumer string, k int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.need[consumer]; ok && k+1 > n {
		s.need[consumer] = k + 1
		s.release()
	}
}

// drop removes a consumer that will need nothing more.
func (s *chunkStore) drop(consumer string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.need[consumer]; ok {
		delete(s.need, consumer)
		s.release()
	}
}

// fail ends the message: waiting readers and writers return err.
func (s *chunkStore) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil && !s.done {
		s.err = err
	}
	s.cond.Broadcast()
}

// release frees the chunks every remaining consumer has. Called with the lock held.
func (s *chunkStore) release() {
	lowest := s.count + 1
	for _, k := range s.need {
		if k < lowest {
			lowest = k
		}
	}
	for s.base+1 < lowest && len(s.chunks) > 0 {
		c := s.chunks[0]
		s.bytes -= int64(len(c.body()))
		if c.gone = true; c.users == 0 {
			c.rc.Release()
		}
		s.chunks[0] = nil
		s.chunks = s.chunks[1:]
		s.base++
	}
	s.cond.Broadcast()
}

// held returns the number of bytes held, for tests and the demo's memory report.
func (s *chunkStore) held() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// storeReader is a receiver's message as an io.Reader: the chunks the machine delivered
// (Deliver), in order, read from the up leg's store on the delivery's own goroutine. The
// node's goroutine only says how far the machine has delivered: it never waits for the
// file or the hash of a chunk, which before took it a synchronous pipe hand-off per
// 32 KiB (docs/performance.md).
type storeReader struct {
	ctx  context.Context
	wake chan struct{} // capacity 1: something below changed

	mu   sync.Mutex
	st   *chunkStore
	want int   // the machine delivered chunks 1..want
	last int   // the last chunk's index once delivered, else 0
	err  error // set by stop: the read ends with it

	// The reading goroutine's own.
	next int          // the next chunk to read
	from *chunkStore  // where cur comes from
	cur  *storedChunk // the chunk being read, held (get) until read whole
	off  int
}

func newStoreReader(ctx context.Context) *storeReader {
	return &storeReader{ctx: ctx, wake: make(chan struct{}, 1), next: 1}
}

func (r *storeReader) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// deliver says the machine delivered chunks up to k of st, k being the last when last.
func (r *storeReader) deliver(st *chunkStore, k int, last bool) {
	r.mu.Lock()
	r.st = st
	r.want = max(r.want, k)
	if last {
		r.last = k
	}
	r.mu.Unlock()
	r.poke()
}

// stop ends the read with err (the link failed, the node closes) unless it ended already.
func (r *storeReader) stop(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.mu.Unlock()
	r.poke()
}

func (r *storeReader) Read(p []byte) (int, error) {
	for {
		if c := r.cur; c != nil {
			if body := c.body(); r.off < len(body) {
				n := copy(p, body[r.off:])
				r.off += n
				return n, nil
			}
			r.cur = nil
			r.from.put(c)
			r.from.passed(deliverer, r.next)
			r.next++
		}
		r.mu.Lock()
		st, want, last, err := r.st, r.want, r.last, r.err
		r.mu.Unlock()
		switch {
		case err != nil:
			return 0, err
		case last != 0 && r.next > last:
			return 0, io.EOF
		case r.next > want:
			select {
			case <-r.wake:
			case <-r.ctx.Done():
				return 0, r.ctx.Err()
			}
			continue
		}
		c, err := st.get(r.ctx, r.next)
		if err != nil {
			return 0, err
		}
		r.from, r.cur, r.off = st, c, 0
	}
}

// close gives back the chunk being read, if any, once the reading goroutine is done.
func (r *storeReader) close() {
	if r.cur != nil {
		r.from.put(r.cur)
		r.cur = nil
	}
}
