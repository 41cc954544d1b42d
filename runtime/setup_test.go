package runtime_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/proptest"
	"github.com/cpmlink/cpmlink/runtime"
)

// TestClientSetupChoices: on the legs that face a client (hop1, hop4) the figures
// negotiate who connects (RFC 6135). A ClientA that offers actpass, active, passive or no
// a=setup (RFC 4975 §5.4: the offerer connects), and members that answer each of them
// in turn, all get the message byte-exact in every figure: the servers follow a client
// that fixes its role, where the figure would have it the other way too (fig1's ClientA
// opens hop1 unless it offers passive; fig3's PF-A opens it unless ClientA offers active
// or nothing). Every leg where negotiation overrode the figure is recorded as
// SetupOverridden by both of its ends, and no other; no MSRP request is answered 506
// (RFC 4975 §7.1.1: a connection bound twice), and the trace is a behaviour of the spec.
// Every role is listening for a leg before the 200 or INVITE whose SDP announces it
// leaves (watchListenOrder).
func TestClientSetupChoices(t *testing.T) {
	for _, name := range []string{"fig1", "fig2", "fig3", "fig4", "fig5", "fig6", "fig7"} {
		v, _ := fsm.VariantByName(name)
		for k, choice := range core.SetupChoices {
			t.Run(fmt.Sprintf("%s/clientA-%s", name, choice), func(t *testing.T) {
				t.Parallel()
				ctx := testCtx(t, time.Minute)
				const members = 2
				// Member m answers with the choice after ClientA's, as in proptest.SetupRotations.
				rot := proptest.SetupRotations(proptest.Config{Variant: v, Members: members, PFBs: 1})[k]
				setups := map[int]core.SetupChoice{}
				for m := 0; m < members; m++ {
					setups[m] = rot.MemberSetup(m)
				}
				msg := payload(40<<10+3, uint64(10+k))
				cfg := runtime.GroupConfig{Variant: v, Members: members, PFBs: 1, ChunkSize: 8 << 10, StoreDir: t.TempDir(),
					SenderSetup: choice, Setups: setups}
				r := startGroup(t, ctx, cfg)
				order := watchListenOrder(r.g)
				r.send(t, ctx, runtime.GroupURI, nil, msg)
				r.checkDelivered(t, msg, nil)
				order.check(t)
				r.validate(t, rot)

				// Which legs should have been overridden: where the client fixed the
				// other role than the one the figure gives it.
				want := map[string]bool{}
				clientOpensHop1 := choice == core.ChooseActive || choice == core.ChooseNone
				if choice != core.ChooseActpass && clientOpensHop1 != (v.Opener[fsm.Hop1] == fsm.OpenerOfferer) {
					want["clientA/hop1"], want["pfa/hop1"] = true, true
				}
				for m := 0; m < members; m++ {
					c := setups[m]
					memberOpens := c == core.ChooseActive
					if c != core.ChooseActpass && memberOpens != (v.Opener[fsm.Hop4] == fsm.OpenerAnswerer) {
						want[fmt.Sprintf("m%d/hop4", m+1)] = true
						want[fmt.Sprintf("pfb1/hop4/m%d", m+1)] = true
					}
				}
				// A link bound twice fails its opener with 506 (RFC 4975 §7.1.1); no link
				// may fail at all here.
				for _, rec := range records(t, r.trace.Bytes()) {
					if rec.Type == "LinkFailed" {
						t.Errorf("%s: link failed on %s (%s): %v", rec.Node, rec.Leg, rec.Hop, rec.Fields)
					}
				}
				got := map[string]bool{}
				overrides := overriddenLegs(t, r.trace.Bytes())
				for _, o := range overrides {
					key := o.node + "/" + o.hop
					if o.node == "pfb1" {
						key += "/" + memberOfLeg(r.trace.Bytes(), o.leg)
					}
					got[key] = true
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("SetupOverridden recorded on %v, want %v", got, want)
				}
			})
		}
	}
}

type override struct{ node, hop, leg string }

// overriddenLegs lists the SetupOverridden records of a trace.
func overriddenLegs(t *testing.T, trace []byte) []override {
	t.Helper()
	var out []override
	for _, rec := range records(t, trace) {
		if rec.Type == "SetupOverridden" {
			out = append(out, override{rec.Node, rec.Hop, rec.Leg})
		}
	}
	return out
}

// memberOfLeg names the member a PF-B's down leg serves, by the INVITE it sent on it.
func memberOfLeg(trace []byte, leg string) string {
	for _, rec := range records(nil, trace) {
		if rec.Node == "pfb1" && rec.Type == "SendInvite" && rec.Leg == leg {
			if target, _ := rec.Fields["Target"].(string); strings.HasPrefix(target, "sip:") {
				return strings.TrimPrefix(strings.SplitN(target, "@", 2)[0], "sip:")
			}
		}
	}
	return "?"
}

// records parses an NDJSON trace.
func records(t *testing.T, trace []byte) []runtime.Record {
	var out []runtime.Record
	dec := json.NewDecoder(bytes.NewReader(trace))
	for dec.More() {
		var rec runtime.Record
		if err := dec.Decode(&rec); err != nil {
			if t != nil {
				t.Fatalf("trace: %v", err)
			}
			return out
		}
		out = append(out, rec)
	}
	return out
}

// listenOrder records, per node, the actions each carries out, in the order it does.
type listenOrder struct {
	mu   sync.Mutex
	acts [][]fsm.Action
}

// watchListenOrder starts recording what every node of g carries out.
func watchListenOrder(g *runtime.Group) *listenOrder {
	nodes := g.Nodes()
	o := &listenOrder{acts: make([][]fsm.Action, len(nodes))}
	for i, n := range nodes {
		runtime.ExecutedForTest(n, func(a fsm.Action) {
			o.mu.Lock()
			o.acts[i] = append(o.acts[i], a)
			o.mu.Unlock()
		})
	}
	return o
}

// check fails t for each leg whose 200 or INVITE was handed to the SIP stack before the
// leg's listener was made ready: a peer that reads the SDP and sends its first SEND at once
// would find no session (RFC 4975 §7.3's 481, once the hold overflows).
func (o *listenOrder) check(t *testing.T) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	listeners := 0
	for i, acts := range o.acts {
		announced := map[fsm.LegID]string{}
		for _, a := range acts {
			switch x := a.(type) {
			case fsm.SendOK, fsm.SendInvite:
				if _, ok := announced[x.ActionLeg()]; !ok {
					announced[x.ActionLeg()] = x.Kind()
				}
			case fsm.AcceptLink:
				listeners++
				if kind, ok := announced[x.Leg]; ok {
					t.Errorf("node %d: %s on %s left before the leg listened (AcceptLink)", i, kind, x.Leg)
				}
			}
		}
	}
	if listeners == 0 {
		t.Error("no node listened for a link: nothing was checked")
	}
}
