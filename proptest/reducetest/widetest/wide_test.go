package widetest

import (
	"testing"

	"github.com/cpmlink/cpmlink/proptest/reducetest"
)

// TestReductionKeepsVerdictsWide is reducetest.KeepsVerdicts at 2 members over 1 PF-B and
// over 2 PF-Bs.
func TestReductionKeepsVerdictsWide(t *testing.T) {
	if testing.Short() {
		t.Skip("two members: the seven figures' plain searches run to hundreds of thousands of states")
	}
	reducetest.KeepsVerdicts(t, "../../testdata/broken.yaml",
		reducetest.Size{Members: 2, PFBs: 1, Chunks: 1}, reducetest.Size{Members: 2, PFBs: 2, Chunks: 1})
}
