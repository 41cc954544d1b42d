package runtime_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/runtime"
)

// BenchmarkGroupMessage measures one message to a group, from the transmitter's Start
// to the last member's outcome and the end of every session, on one group of role
// instances in this process (`cpmlink bench` runs the CF apart and reports set-up time
// and its peak heap). Bytes/s counts what reached the members.
func BenchmarkGroupMessage(b *testing.B) {
	for _, name := range []string{"fig1", "fig3"} {
		for _, tc := range []struct {
			members int
			size    int64
		}{{5, 2 << 20}, {20, 2 << 20}} {
			b.Run(fmt.Sprintf("%s/%dx%dMiB", name, tc.members, tc.size>>20), func(b *testing.B) {
				v, _ := fsm.VariantByName(name)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				defer cancel()
				g, err := runtime.StartGroup(ctx, runtime.GroupConfig{Variant: v, Members: tc.members, PFBs: 2, Discard: true})
				if err != nil {
					b.Fatal(err)
				}
				defer g.Close()
				b.SetBytes(tc.size * int64(tc.members))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					out, err := g.ClientA.Send(ctx, runtime.GroupURI, nil, runtime.Message{
						Open:        func() (io.ReadCloser, error) { return io.NopCloser(randomStream(uint64(i), tc.size)), nil },
						Size:        tc.size,
						ContentType: "application/octet-stream",
					})
					if err != nil {
						b.Fatal(err)
					}
					if err := g.WaitIdle(ctx); err != nil {
						b.Fatal(err)
					}
					for j := 0; j < tc.members; j++ {
						if o := out.Of(runtime.MemberURI(j, 2)); o.Kind != core.Delivered {
							b.Fatalf("member %d: %v", j, o)
						}
					}
				}
			})
		}
	}
}

// BenchmarkOneMemberLarge measures one large message to one member over the four hops of
// fig1 (ClientA → PF-A → CF → PF-B → member), all in this process: the data path alone,
// where `cpmlink bench --members 1 --size 256MB` compares it with a raw TCP chain. Profile
// it with -cpuprofile / -memprofile / -trace (docs/performance.md).
func BenchmarkOneMemberLarge(b *testing.B) {
	for _, chunk := range []int{64 << 10, 256 << 10} {
		b.Run(fmt.Sprintf("%dK", chunk>>10), func(b *testing.B) { benchOneMemberLarge(b, chunk) })
	}
}

func benchOneMemberLarge(b *testing.B, chunk int) {
	const size = 256 << 20
	v, _ := fsm.VariantByName("fig1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	g, err := runtime.StartGroup(ctx, runtime.GroupConfig{Variant: v, Members: 1, PFBs: 1, Transport: "tcp", Discard: true, ChunkSize: chunk})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	b.SetBytes(size)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		out, err := g.ClientA.Send(ctx, runtime.GroupURI, nil, runtime.Message{
			Open:        func() (io.ReadCloser, error) { return io.NopCloser(randomStream(uint64(i), size)), nil },
			Size:        size,
			ContentType: "application/octet-stream",
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := g.WaitIdle(ctx); err != nil {
			b.Fatal(err)
		}
		if o := out.Of(runtime.MemberURI(0, 1)); o.Kind != core.Delivered {
			b.Fatalf("member: %v", o)
		}
	}
}
