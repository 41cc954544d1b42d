package proptest

import (
	"flag"
	"strings"
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"pgregory.net/rapid"
)

// deafToOffer is a member that reads no a=setup from the offer: it answers from its own
// preference as if every offer were actpass (drop-and-operand@c2233f58: a ClientB set to
// active answers active even to an offer of active or of no a=setup).
type deafToOffer struct{ fsm.Role }

func (r deafToOffer) Step(ev fsm.Event) ([]fsm.Action, error) {
	if x, ok := ev.(fsm.InviteReceived); ok {
		x.Offer.Setup = core.SetupActpass
		ev = x
	}
	return r.Role.Step(ev)
}

// plantDeafMember makes every member deafToOffer (Config.plant).
func plantDeafMember(k fsm.RoleKind, r fsm.Role) fsm.Role {
	if k == fsm.RoleClientB {
		return deafToOffer{r}
	}
	return r
}

// TestForeignOfferFindsDeafMember: PF-B always offers actpass, so a member deaf to a fixed
// offer passes every search whose offerers are cpmlink's; the foreign-offer probe, an
// offerer of another make fixing its role (RFC 4145 §4.1), finds it.
func TestForeignOfferFindsDeafMember(t *testing.T) {
	v, _ := fsm.VariantByName("fig1")
	cfg := Config{Variant: v, Members: 1, PFBs: 1, Chunks: 1, MemberSetups: []core.SetupChoice{core.ChooseActive},
		plant: plantDeafMember}
	if res, err := Explore(cfg, ExploreOptions{Workers: 1}); err != nil || res.Violation != nil {
		t.Fatalf("without the probe: %v (err %v), want no violation: only a foreign offerer tells", res.Violation, err)
	}
	cfg.Hostile = true
	res := exploreFinds(t, cfg, ExploreOptions{Workers: 1}, PropForeignOffer)
	if !strings.Contains(res.Violation.Detail, "a=setup:active") {
		t.Errorf("detail %q, want the offer and the answer named", res.Violation.Detail)
	}
	checkCounterexample(t, cfg, res)
}

// TestForeignOfferRapidFindsDeafMember: rapid's runs probe the foreign offers too
// (DrawConfig sets Config.ForeignOffers), and find the deaf member in the first run.
func TestForeignOfferRapidFindsDeafMember(t *testing.T) {
	v, _ := fsm.VariantByName("fig1")
	// The failure is the test's aim: rapid must not keep it as a fail file to replay.
	if f := flag.Lookup("rapid.nofailfile"); f != nil {
		old := f.Value.String()
		if err := f.Value.Set("true"); err != nil {
			t.Fatal(err)
		}
		defer f.Value.Set(old)
	}
	tb := &mutantTB{}
	var found *Violation
	rapid.Check(tb, func(rt *rapid.T) {
		cfg := DrawConfig(rt, v, Sizes{MaxMembers: 1, MaxPFBs: 1, MaxChunks: 1, MinChunks: 1})
		cfg.MemberSetups = []core.SetupChoice{core.ChooseActive}
		cfg.plant = plantDeafMember
		if _, viol := RunDrawn(rt, cfg); viol != nil {
			found = viol
			rt.Fatalf("%s: %s", viol.Property, viol.Detail)
		}
	})
	if found == nil || found.Property != PropForeignOffer {
		t.Fatalf("rapid found %v (%s), want a %s violation", found, tb.msg, PropForeignOffer)
	}
}
