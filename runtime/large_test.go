package runtime_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/runtime"
	"github.com/cpmlink/cpmlink/runtime/deploy"
)

// randomStream is n reproducible random bytes: the same seed gives the same stream, so
// the expected hash is computed without holding the message.
func randomStream(seed uint64, n int64) io.Reader {
	var key [32]byte
	key[0], key[1] = byte(seed), byte(seed>>8)
	return io.LimitReader(rand.NewChaCha8(key), n)
}

func streamSum(seed uint64, n int64) string {
	h := sha256.New()
	io.Copy(h, randomStream(seed, n))
	return hex.EncodeToString(h.Sum(nil))
}

// TestLargeMessageToManyMembers sends 100 MiB to 20 members over 2 PF-Bs with the CF in a
// process of its own, and checks that every member got it byte-exact and that the CF
// never held a large part of it: its peak heap stays under a quarter of the message
// (the relay holds a few chunks per member, RFC 4975 chunking with TCP back-pressure).
func TestLargeMessageToManyMembers(t *testing.T) {
	t.Parallel()
	const size, members = 100 << 20, 20
	ctx := testCtx(t, 5*time.Minute)
	want := streamSum(7, size)
	r := startGroup(t, ctx, runtime.GroupConfig{Variant: fig1(t), Members: members, PFBs: 2, Discard: true, StartCF: deploy.CFProcess(cfProcess)})
	elapsed := r.sendFrom(t, ctx, runtime.GroupURI, nil, size, func() (io.ReadCloser, error) { return io.NopCloser(randomStream(7, size)), nil })
	r.checkStored(t, want, size, nil)
	stats, err := deploy.StopCF(r.g)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("100 MiB to %d members in %v; CF peak heap %.1f MiB, peak RSS %.1f MiB",
		members, elapsed.Round(time.Millisecond), float64(stats.PeakHeapBytes)/(1<<20), float64(stats.PeakRSSBytes)/(1<<20))
	if stats.PeakHeapBytes == 0 || stats.PeakHeapBytes > size/4 {
		t.Errorf("CF peak heap %d bytes: the relay must not hold the message", stats.PeakHeapBytes)
	}
}
