package runtime_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/proptest"
	"github.com/cpmlink/cpmlink/runtime"
	"github.com/cpmlink/cpmlink/runtime/kamailiotest"
)

// TestKamailioAsSIPCore runs the group flow with Kamailio, not the embedded core, as the
// SIP/IP core between the roles (every role on fixed ports, GroupConfig.BasePort, as the
// demo runs next to Kamailio): FIG. 1 and FIG. 5, SIP over UDP and TCP, a pre-defined and
// an ad-hoc group (whose INVITE is over 1300 bytes, so it must travel over TCP), three
// members over two PF-Bs, a message of several chunks. Kamailio proxies SIP only; MSRP
// goes straight between the roles. Each run must deliver byte-exact to every member, tell
// the sender so per member, leave a trace the spec accepts, and every dialog of the trace
// must have crossed Kamailio.
func TestKamailioAsSIPCore(t *testing.T) {
	kamailiotest.Require(t)
	msg := payload(100<<10+7, 3)
	for _, name := range []string{"fig1", "fig5"} {
		v, ok := fsm.VariantByName(name)
		if !ok {
			t.Fatalf("no variant %s", name)
		}
		for _, transport := range []string{"udp", "tcp"} {
			for _, adhoc := range []bool{false, true} {
				target, kind := runtime.GroupURI, "predefined"
				if adhoc {
					target, kind = runtime.AdHocURI, "adhoc"
				}
				t.Run(fmt.Sprintf("%s/%s/%s", name, transport, kind), func(t *testing.T) {
					t.Parallel()
					ctx := testCtx(t, time.Minute)
					cfg := runtime.GroupConfig{Variant: v, Members: 3, PFBs: 2, Transport: transport, ChunkSize: 16 << 10, StoreDir: t.TempDir()}
					// The roles need Kamailio's address as their proxy, and Kamailio their
					// addresses as routes; the clients REGISTER through it as the group
					// starts. So the roles take fixed ports, whose routing table is known
					// before anything starts, and Kamailio comes up first.
					cfg.BasePort = kamailiotest.FreePorts(t, 2*len(cfg.Layout()))
					k := kamailiotest.Start(t, func(core string) map[string]string {
						cfg.SIPCore = core
						return cfg.FixedRoutes()
					})
					r := startGroup(t, ctx, cfg)
					if got, want := r.g.Routes(), cfg.FixedRoutes(); !maps.Equal(got, want) {
						t.Fatalf("the group runs with routes %v, Kamailio was given %v", got, want)
					}
					var list []string
					if adhoc {
						list = r.members
					}
					r.send(t, ctx, target, list, msg)
					r.checkDelivered(t, msg, nil)
					r.validate(t, proptest.Config{Variant: v, Members: 3, PFBs: 2})
					r.crossed(t, k, adhoc)
				})
			}
		}
	}
}

// crossed checks that Kamailio saw the INVITE of every dialog in the run's trace, and that
// an ad-hoc group's INVITEs (to PF-A, then to the CF) reached it over TCP whatever the
// transport (RFC 3261 §18.1.1: they carry the member list and are over 1300 bytes). Its
// configuration logs each request it takes as
//
//	{1 1 INVITE CALL-ID} <script>: SIP IN  INVITE sip:... from udp:127.0.0.1:PORT
func (r *groupRun) crossed(t *testing.T, k *kamailiotest.Kamailio, adhoc bool) {
	t.Helper()
	log, err := os.ReadFile(k.Log)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	adhocTCP := 0
	for line := range strings.Lines(string(log)) {
		_, prefix, _ := strings.Cut(line, "{")
		prefix, rest, ok := strings.Cut(prefix, "} ")
		if f := strings.Fields(prefix); ok && len(f) == 4 && strings.HasPrefix(rest, "<script>: SIP IN  INVITE ") {
			seen[f[3]] = true
			if strings.HasPrefix(rest, "<script>: SIP IN  INVITE "+runtime.AdHocURI+" ") {
				if !strings.Contains(rest, " from tcp:") {
					t.Errorf("an ad-hoc INVITE reached Kamailio over UDP: %s", strings.TrimSpace(rest))
				}
				adhocTCP++
			}
		}
	}
	if adhoc && adhocTCP != 2 {
		t.Errorf("Kamailio took %d ad-hoc INVITEs over TCP, want 2 (to PF-A, then to the CF)", adhocTCP)
	}
	dialogs := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(r.trace.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec runtime.Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Dialog != "" {
			dialogs[rec.Dialog] = true
		}
	}
	if len(dialogs) == 0 {
		t.Fatal("the trace names no SIP dialog")
	}
	for d := range dialogs {
		if !seen[d] {
			t.Errorf("dialog %s never crossed Kamailio (it saw %d INVITEs)", d, len(seen))
		}
	}
}
