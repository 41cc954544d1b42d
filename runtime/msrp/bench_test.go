package msrp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Benchmarks, not timed tests: speed and memory goals live here (go test
// -bench), never in pass/fail unit tests. See docs/msrp.md for the numbers.

func benchFrame(size int) []byte {
	f := Frame{TID: "bench0001", Method: MethodSEND,
		ToPath: Path{MustParseURI("msrp://127.0.0.1:41002/kjd8s9;tcp")}, FromPath: Path{MustParseURI("msrp://127.0.0.1:40001/a1b2c3;tcp")},
		MessageID: "87652491", ByteRange: ByteRange{1, int64(size), Unknown}, ContentType: "message/cpim",
		Body: bytes.Repeat([]byte("x"), size), Flag: FlagMore}
	return f.Marshal()
}

// BenchmarkParse measures the streaming parser on back-to-back chunks.
func BenchmarkParse(b *testing.B) {
	for _, size := range []int{2 << 10, 10 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("%dK", size>>10), func(b *testing.B) {
			one := benchFrame(size)
			stream := bytes.Repeat(one, 64)
			b.SetBytes(int64(len(one)))
			b.ReportAllocs()
			var f Frame
			r := bytes.NewReader(stream)
			rd := NewReader(r, Limits{})
			for i := 0; b.Loop(); i++ {
				if i%64 == 0 {
					r.Reset(stream)
					rd.Reset(r)
				}
				if err := rd.ReadFrame(&f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSerialize measures header serialization plus the writev of
// header, body and trailer.
func BenchmarkSerialize(b *testing.B) {
	for _, size := range []int{2 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("%dK", size>>10), func(b *testing.B) {
			var f Frame
			if err := NewReader(bytes.NewReader(benchFrame(size)), Limits{}).ReadFrame(&f); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(benchFrame(size))))
			b.ReportAllocs()
			var hdr, trl []byte
			for b.Loop() {
				hdr = f.AppendHeader(hdr[:0])
				trl = f.AppendTrailer(trl[:0])
				bufs := net.Buffers{hdr, f.Body, trl}
				_, _ = bufs.WriteTo(io.Discard)
			}
		})
	}
}

const relayBenchSize = 256 << 20

// BenchmarkRelay sends 256 MB through one relay hop (A → R → B, loopback
// TCP) per operation, for several chunk sizes, next to two baselines
// measured in the same run: a raw TCP io.Copy relay (the physical limit) and,
// when installed, Kamailio's msrp relay.
func BenchmarkRelay(b *testing.B) {
	b.Run("raw-io.Copy", benchRawCopy)
	for _, chunk := range []int{2 << 10, 10 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("msrp-%dK", chunk>>10), func(b *testing.B) { benchMSRPRelay(b, chunk) })
	}
	for _, chunk := range []int{8 << 10, 10 << 10} {
		b.Run(fmt.Sprintf("kamailio-%dK", chunk>>10), func(b *testing.B) { benchKamailio(b, chunk) })
	}
}

func benchRawCopy(b *testing.B) {
	sink, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	proxy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer proxy.Close()
	received := make(chan int64)
	go func() {
		for {
			c, err := sink.Accept()
			if err != nil {
				return
			}
			n, _ := io.Copy(io.Discard, c)
			_ = c.Close()
			received <- n
		}
	}()
	go func() {
		for {
			up, err := proxy.Accept()
			if err != nil {
				return
			}
			down, err := net.Dial("tcp", sink.Addr().String())
			if err != nil {
				_ = up.Close()
				return
			}
			_, _ = io.Copy(down, up)
			_ = down.Close()
			_ = up.Close()
		}
	}()
	b.SetBytes(relayBenchSize)
	for b.Loop() {
		c, err := net.Dial("tcp", proxy.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(c, &patternReader{n: relayBenchSize}); err != nil {
			b.Fatal(err)
		}
		_ = c.Close()
		if n := <-received; n != relayBenchSize {
			b.Fatalf("received %d", n)
		}
	}
}

// countSink counts bytes and signals completion.
type countSink struct {
	n    atomic.Int64
	done chan error
}

func (c *countSink) WriteChunk(ch *Chunk) error { c.n.Add(int64(len(ch.Body))); return nil }
func (c *countSink) Close(err error) error      { c.done <- err; return nil }

func benchMSRPRelay(b *testing.B, chunk int) {
	ctx := context.Background()
	a, r, bb := benchEndpoint(b, Config{}), benchEndpoint(b, Config{}), benchEndpoint(b, Config{})
	cs := &countSink{done: make(chan error, 1)}
	if _, err := bb.ep.NewSession(SessionConfig{Local: bb.uri("bob"), Accept: func(*IncomingMessage) (Sink, error) { return cs, nil }}); err != nil {
		b.Fatal(err)
	}
	relay := NewRelay(RelayConfig{})
	down, _ := r.ep.NewSession(SessionConfig{Local: r.uri("down"), Remote: Path{bb.uri("bob")}})
	if _, err := down.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	relay.Add(down)
	_, _ = r.ep.NewSession(SessionConfig{Local: r.uri("up"), Accept: relay.Accept})
	sa, _ := a.ep.NewSession(SessionConfig{Local: a.uri("alice"), Remote: Path{r.uri("up")}, ChunkSize: chunk})
	if _, err := sa.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(relayBenchSize)
	for b.Loop() {
		cs.n.Store(0)
		if _, err := sa.Send(ctx, &Message{ContentType: "message/cpim", Body: &patternReader{n: relayBenchSize}, Size: relayBenchSize}); err != nil {
			b.Fatal(err)
		}
		if err := <-cs.done; err != nil || cs.n.Load() != relayBenchSize {
			b.Fatalf("received %d: %v", cs.n.Load(), err)
		}
	}
}

func benchKamailio(b *testing.B, chunk int) {
	k := startKamailio(b)
	ctx := context.Background()
	a, bb := benchEndpoint(b, Config{}), benchEndpoint(b, Config{})
	auth, err := a.ep.Auth(ctx, k.relay, a.uri("alice"))
	if err != nil {
		b.Fatal(err)
	}
	cs := &countSink{done: make(chan error, 1)}
	if _, err := bb.ep.NewSession(SessionConfig{Local: bb.uri("bob"), Accept: func(*IncomingMessage) (Sink, error) { return cs, nil }}); err != nil {
		b.Fatal(err)
	}
	sa, _ := a.ep.NewSession(SessionConfig{Local: a.uri("alice"), Remote: append(append(Path(nil), auth.UsePath...), bb.uri("bob")), ChunkSize: chunk})
	if _, err := sa.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(relayBenchSize)
	for b.Loop() {
		cs.n.Store(0)
		if _, err := sa.Send(ctx, &Message{ContentType: "message/cpim", Body: &patternReader{n: relayBenchSize}, Size: relayBenchSize}); err != nil {
			b.Fatalf("through kamailio with %d-byte chunks: %v", chunk, err)
		}
		if err := <-cs.done; err != nil || cs.n.Load() != relayBenchSize {
			b.Fatalf("received %d: %v", cs.n.Load(), err)
		}
	}
}

type benchEP struct {
	ep   *Endpoint
	port int
}

func (e *benchEP) uri(id string) URI {
	return MustParseURI(fmt.Sprintf("msrp://127.0.0.1:%d/%s;tcp", e.port, id))
}

func benchEndpoint(b *testing.B, cfg Config) *benchEP {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ep := NewEndpoint(cfg)
	done := make(chan struct{})
	go func() { _ = ep.Serve(l); close(done) }()
	b.Cleanup(func() { _ = ep.Close(); <-done })
	return &benchEP{ep: ep, port: l.Addr().(*net.TCPAddr).Port}
}

// BenchmarkFanOut relays one message to 100 members over 100 loopback TCP
// connections and reports the peak heap in use while it runs: it must not
// grow with the message size (compare the 64MB and 512MB cases).
func BenchmarkFanOut(b *testing.B) {
	for _, size := range []int64{64 << 20, 512 << 20} {
		b.Run(fmt.Sprintf("100x%dMB", size>>20), func(b *testing.B) { benchFanOut(b, 100, size) })
	}
}

func benchFanOut(b *testing.B, members int, size int64) {
	ctx := context.Background()
	// Reuse off on the relay: one TCP connection per member, as when every
	// member sits behind its own PF-B.
	a, r, bb := benchEndpoint(b, Config{}), benchEndpoint(b, Config{Reuse: ReuseOff}), benchEndpoint(b, Config{})
	relay := NewRelay(RelayConfig{QueueDepth: 4, StallTimeout: time.Minute})
	sinks := make([]*countSink, members)
	for i := range members {
		sinks[i] = &countSink{done: make(chan error, 1)}
		cs := sinks[i]
		id := fmt.Sprintf("m%04d", i)
		if _, err := bb.ep.NewSession(SessionConfig{Local: bb.uri(id), Accept: func(*IncomingMessage) (Sink, error) { return cs, nil }}); err != nil {
			b.Fatal(err)
		}
		d, _ := r.ep.NewSession(SessionConfig{Local: r.uri("d" + id), Remote: Path{bb.uri(id)}})
		if _, err := d.Connect(ctx); err != nil {
			b.Fatal(err)
		}
		relay.Add(d)
	}
	_, _ = r.ep.NewSession(SessionConfig{Local: r.uri("up"), Accept: relay.Accept})
	sa, _ := a.ep.NewSession(SessionConfig{Local: a.uri("cf-upstream"), Remote: Path{r.uri("up")}, ChunkSize: 64 << 10})
	if _, err := sa.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	peak := newHeapSampler()
	b.SetBytes(size * int64(members))
	for b.Loop() {
		if _, err := sa.Send(ctx, &Message{ContentType: "message/cpim", Body: &patternReader{n: size}, Size: size}); err != nil {
			b.Fatal(err)
		}
		for i, cs := range sinks {
			if err := <-cs.done; err != nil || cs.n.Load() != size {
				b.Fatalf("member %d received %d: %v", i, cs.n.Load(), err)
			}
			cs.n.Store(0)
		}
	}
	b.ReportMetric(float64(peak.stop())/(1<<20), "peak-heap-MB")
}

// heapSampler records the high-water mark of heap memory in use (objects
// plus unused heap spans, i.e. HeapInuse) from a bounded sampler goroutine.
type heapSampler struct {
	stopc chan struct{}
	wg    sync.WaitGroup
	max   atomic.Uint64
}

func newHeapSampler() *heapSampler {
	h := &heapSampler{stopc: make(chan struct{})}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64() + s[1].Value.Uint64(); v > h.max.Load() {
				h.max.Store(v)
			}
			select {
			case <-t.C:
			case <-h.stopc:
				return
			}
		}
	}()
	return h
}

func (h *heapSampler) stop() uint64 {
	close(h.stopc)
	h.wg.Wait()
	return h.max.Load()
}
