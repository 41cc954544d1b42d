package runtime

import (
	"sync"
)

// inbox is a node's mailbox: an unbounded FIFO that callbacks from sockets, timers and
// sipgo handlers post to without ever blocking, and that the node's single goroutine
// drains. sipgo runs every incoming message in its own goroutine, so arrival order is not
// delivery order: the inbox serializes them, and the machines tolerate the reorderings
// the explorer covers.
type inbox struct {
	mu     sync.Mutex
	items  []func()
	wake   chan struct{}
	closed bool
	// onPost, when set (by tests only, export_test.go), is called after each post.
	onPost func()
}

func newInbox() *inbox { return &inbox{wake: make(chan struct{}, 1)} }

// post queues f; it reports false once the inbox is closed.
func (b *inbox) post(f func()) bool {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false
	}
	b.items = append(b.items, f)
	hook := b.onPost
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	if hook != nil {
		hook()
	}
	return true
}

// take returns everything queued, in order.
func (b *inbox) take() []func() {
	b.mu.Lock()
	items := b.items
	b.items = nil
	b.mu.Unlock()
	return items
}

// close stops accepting posts; what is queued can still be taken.
func (b *inbox) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
}
