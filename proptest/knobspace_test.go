package proptest

import (
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
)

// TestKnobSpaceInitiative: the map enumerates the initiative knob as the figures use it,
// negotiated on hop1 and hop4 and uniform between servers, so that it keeps the size of
// the opener and trigger space (2^4 openers, 4^4 triggers, 2 x 2 x 2 other knobs, 2 ways
// between servers).
func TestKnobSpaceInitiative(t *testing.T) {
	possible, impossible := KnobSpace()
	if got := len(possible) + impossible; got != 16*256*8*2 {
		t.Errorf("%d combinations, want %d", got, 16*256*8*2)
	}
	for _, v := range possible {
		if v.Initiative[fsm.Hop1] != fsm.InitiativeNegotiated || v.Initiative[fsm.Hop4] != fsm.InitiativeNegotiated || v.Initiative[fsm.Hop2] != v.Initiative[fsm.Hop3] {
			t.Fatalf("%+v is outside the mapped initiative", v.Initiative)
		}
	}
	for _, name := range []string{"fig1", "fig3-negotiated"} {
		v, _ := fsm.VariantByName(name)
		if !mappedInitiative(v) {
			t.Errorf("%s is not in the map's space", name)
		}
	}
}
