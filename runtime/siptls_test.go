package runtime_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/proptest"
	"github.com/cpmlink/cpmlink/runtime"
)

// TestSIPOverTLS: a whole group message with SIP over TLS on every hop (RFC 3261 §26,
// RFC 5630) and msrps on every link, through the embedded core, whose routes to the roles
// are TLS targets only: every member holds the message byte-exact and the sender is told
// so, the run is a behaviour of the spec, and the members registered TLS contacts.
func TestSIPOverTLS(t *testing.T) {
	conf, err := runtime.LoopbackTLS()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"fig1", "fig3"} {
		v, _ := fsm.VariantByName(name)
		for _, adhoc := range []bool{false, true} {
			kind := "predefined"
			if adhoc {
				kind = "adhoc"
			}
			t.Run(name+"/"+kind, func(t *testing.T) {
				t.Parallel()
				ctx := testCtx(t, time.Minute)
				msg := payload(60<<10+3, 11)
				r := sendToGroup(t, ctx, runtime.GroupConfig{Variant: v, Members: 3, PFBs: 2, Transport: "tls",
					ChunkSize: 16 << 10, StoreDir: t.TempDir(), TLS: conf}, adhoc, msg)
				r.checkDelivered(t, msg, nil)
				r.validate(t, proptest.Config{Variant: v, Members: 3, PFBs: 2})
				if !strings.Contains(r.trace.String(), "msrps://") {
					t.Error("no msrps URI in the trace: the links were not TLS")
				}
				for i, m := range r.members {
					pfb := r.g.PFBs[i%2]
					contact, ok := pfb.Lookup(m)
					if !ok {
						t.Errorf("%s is not registered at %s", m, pfb.Name())
						continue
					}
					if !strings.Contains(contact, "transport=tls") || !strings.Contains(contact, ":"+portOf(r.g.Members[i].SIPAddrTLS())) {
						t.Errorf("%s registered %s, not its TLS listener %s", m, contact, r.g.Members[i].SIPAddrTLS())
					}
				}
			})
		}
	}
}

func portOf(hostport string) string {
	i := strings.LastIndexByte(hostport, ':')
	return hostport[i+1:]
}
