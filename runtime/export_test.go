package runtime

// HoldForTest makes n's goroutine stop, once it has run what is queued now, until release
// is called (or n closes); until then, each post to n's inbox sends on posted, which never
// blocks the poster. A test uses it to put the driver's events in an order that sockets
// give only by chance.
func HoldForTest(n *Node) (posted <-chan struct{}, release func()) {
	ch := make(chan struct{}, 64)
	gate := make(chan struct{})
	n.post(func() {
		select {
		case <-gate:
		case <-n.ctx.Done():
		}
	})
	n.in.mu.Lock()
	n.in.onPost = func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	n.in.mu.Unlock()
	released := false
	return ch, func() {
		n.in.mu.Lock()
		n.in.onPost = nil
		n.in.mu.Unlock()
		if !released {
			released = true
			close(gate)
		}
	}
}
