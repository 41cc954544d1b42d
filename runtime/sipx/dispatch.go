package sipx

import "sync"

// dispatcher runs Handler callbacks one at a time on its own goroutine, in
// the order they were posted. sipgo handles every incoming message on a
// goroutine of its own, so without this the driver could see a leg's ACK
// before its INVITE. The queue is unbounded so that a slow driver never
// stalls sipgo's transaction goroutines (and with them retransmissions).
type dispatcher struct {
	mu      sync.Mutex
	q       []func()
	stopped bool
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

func newDispatcher() *dispatcher {
	d := &dispatcher{wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go d.run()
	return d
}

// post queues f. Callers hold Endpoint.mu, which makes the queue order the
// order in which the endpoint changed its leg table.
func (d *dispatcher) post(f func()) {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return
	}
	d.q = append(d.q, f)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dispatcher) run() {
	defer close(d.done)
	for {
		d.mu.Lock()
		q := d.q
		d.q = nil
		d.mu.Unlock()
		for _, f := range q {
			select {
			case <-d.stop:
				return
			default:
			}
			f()
		}
		if len(q) > 0 {
			continue
		}
		select {
		case <-d.wake:
		case <-d.stop:
			return
		}
	}
}

// close drops what is still queued, waits for a running callback to return
// and ends the goroutine. No callback runs after close returns.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.stopped = true
	d.q = nil
	d.mu.Unlock()
	close(d.stop)
	<-d.done
}
