package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The baselines `cpmlink bench` measures beside its own runs, in the same process and
// interleaved with them, so that each of its figures is read against what this machine's
// loopback TCP does with the same bytes in the same minute (the machine is shared and
// noisy: a figure from another run is no baseline). They are the physical limit, not a
// competitor: no SIP, no MSRP framing, no hashing, no generation of the bytes.
//
//   - the raw chain: the same number of hops as cpmlink's path (fsm.NumHops: ClientA →
//     PF-A → CF → PF-B → member), a sender, a relay per hop end that does io.Copy from
//     its upstream connection to its downstream one (splice(2) on Linux), and a sink;
//   - the raw fan-out: one writer that writes each block of the message to N sockets in
//     turn (N = members, as the CF's one up leg feeds N down legs), each read by a sink.
//
// runtime/msrp's BenchmarkRelay holds a one-hop raw io.Copy beside the MSRP relay in the
// same spirit; these are the cmd-level, multi-hop and fan-out counterparts.

var (
	errBaselineShort = errors.New("cpmlink bench: a baseline's sink did not get every byte sent")
	errBaselineArgs  = errors.New("cpmlink bench: a baseline needs at least one hop or socket and one byte")
)

// baselineBlock is the baselines' write size: the runtime's default MSRP chunk, 64 KiB.
const baselineBlock = 64 << 10

// baselineRun is what one baseline moved and how long it took, from the first write to
// the last sink's end of stream (the connections are made before the clock starts).
type baselineRun struct {
	Bytes int64 // counted by the sinks, all of them together
	Took  time.Duration
}

// tcpPair makes one loopback TCP connection and returns its dialled and accepted ends.
func tcpPair(ctx context.Context) (dialled, accepted *net.TCPConn, err error) {
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, nil, err
	}
	defer l.Close()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", l.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	// The dial completed, so the connection waits in the accept queue: this returns at once.
	a, err := l.AcceptTCP()
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c.(*net.TCPConn), a, nil
}

// conns holds a baseline's connections so that they are all closed, at the end or when
// its context ends (which unblocks every read and write: each load loop is bounded).
type conns []*net.TCPConn

func (cs *conns) pairs(ctx context.Context, n int) ([]*net.TCPConn, []*net.TCPConn, error) {
	ds, as := make([]*net.TCPConn, n), make([]*net.TCPConn, n)
	for i := range n {
		d, a, err := tcpPair(ctx)
		if err != nil {
			return nil, nil, err
		}
		*cs = append(*cs, d, a)
		ds[i], as[i] = d, a
	}
	return ds, as, nil
}

func (cs conns) close() {
	for _, c := range cs {
		c.Close()
	}
}

// baselineBytes is the block the baselines' writers repeat: random, so that nothing on
// the way could gain from its being regular.
func baselineBytes() []byte {
	b := make([]byte, baselineBlock)
	rand.NewChaCha8([32]byte{'b', 'a', 's', 'e'}).Read(b)
	return b
}

// writeN writes size bytes of block to w.
func writeN(w io.Writer, block []byte, size int64) error {
	for left := size; left > 0; {
		n := int64(len(block))
		if left < n {
			n = left
		}
		if _, err := w.Write(block[:n]); err != nil {
			return err
		}
		left -= n
	}
	return nil
}

// sink reads r to its end and returns how many bytes it read, adding them to moved as
// they come (for the progress line).
func sink(r io.Reader, moved *atomic.Int64) (int64, error) {
	buf := make([]byte, baselineBlock)
	var total int64
	for {
		n, err := r.Read(buf)
		total += int64(n)
		moved.Add(int64(n))
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// rawChain moves size bytes over hops loopback TCP connections in a row. moved counts
// the bytes the sink has so far.
func rawChain(ctx context.Context, hops int, size int64, moved *atomic.Int64) (baselineRun, error) {
	if hops < 1 || size < 1 {
		return baselineRun{}, errBaselineArgs
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var cs conns
	defer cs.close()
	stop := context.AfterFunc(ctx, cs.close)
	defer stop()
	ws, rs, err := cs.pairs(ctx, hops)
	if err != nil {
		return baselineRun{}, fmt.Errorf("cpmlink bench: raw chain: %w", err)
	}
	block := baselineBytes()
	errs := make(chan error, hops+1)
	var got int64
	var wg sync.WaitGroup
	start := time.Now()
	// The relays: hop i's accepted end is copied to hop i+1's dialled end, whose write
	// side is shut when the upstream ends, so the end of stream travels down the chain.
	for i := 0; i < hops-1; i++ {
		wg.Go(func() {
			_, err := io.Copy(ws[i+1], rs[i])
			if err == nil {
				err = ws[i+1].CloseWrite()
			}
			if err != nil {
				errs <- err
				cancel()
			}
		})
	}
	wg.Go(func() {
		var err error
		if got, err = sink(rs[hops-1], moved); err != nil {
			errs <- err
			cancel()
		}
	})
	err = writeN(ws[0], block, size)
	if err == nil {
		err = ws[0].CloseWrite()
	}
	if err != nil {
		cancel()
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	if err := errors.Join(append([]error{err}, drain(errs)...)...); err != nil {
		return baselineRun{}, fmt.Errorf("cpmlink bench: raw chain of %d hops: %w", hops, errors.Join(err, context.Cause(ctx)))
	}
	if got != size {
		return baselineRun{}, fmt.Errorf("%w: raw chain: %d of %d bytes", errBaselineShort, got, size)
	}
	return baselineRun{Bytes: got, Took: took}, nil
}

// rawFanOut writes size bytes to n loopback TCP sockets from one writer, block by block
// in turn, each socket read to its end by a sink. moved counts the bytes the sinks have
// so far, all of them together.
func rawFanOut(ctx context.Context, n int, size int64, moved *atomic.Int64) (baselineRun, error) {
	if n < 1 || size < 1 {
		return baselineRun{}, errBaselineArgs
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var cs conns
	defer cs.close()
	stop := context.AfterFunc(ctx, cs.close)
	defer stop()
	ws, rs, err := cs.pairs(ctx, n)
	if err != nil {
		return baselineRun{}, fmt.Errorf("cpmlink bench: raw fan-out: %w", err)
	}
	block := baselineBytes()
	got := make([]int64, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			var err error
			if got[i], err = sink(rs[i], moved); err != nil {
				errs <- err
				cancel()
			}
		})
	}
	err = func() error {
		for off := int64(0); off < size; off += baselineBlock {
			b := block[:min(baselineBlock, size-off)]
			for _, w := range ws {
				if _, err := w.Write(b); err != nil {
					return err
				}
			}
		}
		for _, w := range ws {
			if err := w.CloseWrite(); err != nil {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		cancel()
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	if err := errors.Join(append([]error{err}, drain(errs)...)...); err != nil {
		return baselineRun{}, fmt.Errorf("cpmlink bench: raw fan-out to %d sockets: %w", n, errors.Join(err, context.Cause(ctx)))
	}
	var total int64
	for i, g := range got {
		if g != size {
			return baselineRun{}, fmt.Errorf("%w: raw fan-out: socket %d got %d of %d bytes", errBaselineShort, i+1, g, size)
		}
		total += g
	}
	return baselineRun{Bytes: total, Took: took}, nil
}

func drain(errs <-chan error) []error {
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return all
}
