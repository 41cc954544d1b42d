package runtime

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/cpmlink/cpmlink/runtime/msrp"
)

// errStalled is the cause recorded when a consumer held the store full for too long.
var errStalled = errors.New("runtime: a downstream stalled the relay")

// storedChunk is one chunk of an incoming message, held until every consumer that may
// still need it has it.
type storedChunk struct {
	start int64
	body  []byte
	last  bool
}

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

	chunks []storedChunk // chunks base+1 .. base+len(chunks)
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
func (s *chunkStore) add(ctx context.Context, start int64, body []byte, last bool) (int, error) {
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
	s.chunks = append(s.chunks, storedChunk{start: start, body: append([]byte(nil), body...), last: last})
	s.count++
	s.bytes += int64(len(body))
	if last {
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
// was released (a consumer asked for what it said it had) or the message failed.
func (s *chunkStore) get(ctx context.Context, k int) (storedChunk, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k > s.count && s.err == nil {
		if ctx.Err() != nil {
			return storedChunk{}, ctx.Err()
		}
		s.waitUntil(time.Now().Add(time.Second))
	}
	if k <= s.count && k > s.base {
		return s.chunks[k-s.base-1], nil
	}
	if s.err != nil {
		return storedChunk{}, s.err
	}
	return storedChunk{}, errors.New("runtime: chunk already released")
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
		s.bytes -= int64(len(s.chunks[0].body))
		s.chunks[0] = storedChunk{}
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
