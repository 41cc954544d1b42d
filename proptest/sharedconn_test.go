package proptest

import (
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
)

// TestHangUpBesideRefusedSharedHop3: in fig7-cf-hop3 the CF reuses one hop3 connection
// for every member behind a PF-B. When another member's fault refuses that connection, a
// member that hung up may be reported with the refusal's 408 rather than 481: the CF can
// learn of the failed connection before PF-B passes the hang-up on. Rapid found this
// order with 8 members (a false alarm of the hang-up property); the exhaustive search
// over every order of 2 members must find no violation.
func TestHangUpBesideRefusedSharedHop3(t *testing.T) {
	v, ok := fsm.VariantByName("fig7-cf-hop3")
	if !ok {
		t.Fatal("no variant fig7-cf-hop3")
	}
	cfg := Config{Variant: v, Members: 2, PFBs: 1, Chunks: 1, Sender: core.SenderWaits,
		Faults: map[int]Fault{0: {Kind: RefuseHop3}, 1: {Kind: HangUp}}}
	res, err := Explore(cfg, ExploreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("%d states: %v", res.States, res.Violation)
	}
	t.Logf("%d states, all ok", res.States)
}
