package main

import (
	"encoding/json"
	"maps"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/cpmlink/cpmlink/runtime"
	"github.com/cpmlink/cpmlink/runtime/kamailiotest"
)

// TestKamailioConfigMatchesDemo: the project's Kamailio configuration, as committed, has
// the port and routing table docs/kamailio.md pairs with
// `cpmlink demo --sip-core 127.0.0.1:5060 --base-port 5070` (and the default --pfbs 2).
func TestKamailioConfigMatchesDemo(t *testing.T) {
	port, routes := kamailiotest.Defaults()
	want := runtime.GroupConfig{BasePort: 5070, PFBs: 2, Members: 5}.FixedRoutes()
	if port != 5060 || !maps.Equal(routes, want) {
		t.Errorf("the configuration listens on %d with routes %v; the demo needs 5060 and %v", port, routes, want)
	}
}

// TestDemoWithKamailio runs the demo as docs/kamailio.md tells a user to: the routing table
// from --print-routes, Kamailio started with it, then the demo with --sip-core and the same
// --base-port. Skipped when kamailio is not installed.
func TestDemoWithKamailio(t *testing.T) {
	kamailiotest.Require(t)
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			group := []string{"--members", "3", "--pfbs", "2"}
			n := len(runtime.GroupConfig{Members: 3, PFBs: 2}.Layout())
			base := strconv.Itoa(kamailiotest.FreePorts(t, 2*n))

			code, out, stderr := cli(t, append([]string{"demo", "--base-port", base, "--print-routes", "--json"}, group...)...)
			if code != 0 {
				t.Fatalf("--print-routes: exit %d\n%s%s", code, out, stderr)
			}
			var layout layoutJSON
			if err := json.Unmarshal([]byte(out), &layout); err != nil {
				t.Fatalf("--print-routes --json: %v\n%s", err, out)
			}
			if len(layout.Instances) != n || len(layout.Routes) != 4 {
				t.Fatalf("--print-routes: %d instances, routes %v", len(layout.Instances), layout.Routes)
			}
			if want, err := kamailiotest.RoutesDefine(layout.Routes); err != nil || layout.KamailioDefine != want {
				t.Errorf("the demo prints %s for Kamailio, the tests give it %s (%v)", layout.KamailioDefine, want, err)
			}
			k := kamailiotest.Start(t, func(string) map[string]string { return layout.Routes })

			code, out, stderr = cli(t, append([]string{"demo", "--sip-core", k.Addr, "--base-port", base, "--transport", transport,
				"--variant", "fig5", "--size", "300KiB", "--chunk", "32KiB", "--out", t.TempDir(), "--timeout", "1m", "--json"}, group...)...)
			if code != 0 {
				t.Fatalf("demo through Kamailio: exit %d\n%s%s", code, out, stderr)
			}
			var res demoJSON
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatal(err)
			}
			if res.Delivered != 3 || res.Failed != 0 || !strings.HasPrefix(res.Validation, "ok") {
				t.Errorf("delivered %d, failed %d, trace validation %q", res.Delivered, res.Failed, res.Validation)
			}
			if !res.External || res.SIPCore != k.Addr || !maps.Equal(res.Routes, layout.Routes) {
				t.Errorf("the demo reports core %s (external %v) with routes %v; Kamailio ran at %s with %v", res.SIPCore, res.External, res.Routes, k.Addr, layout.Routes)
			}
			// One INVITE from ClientA to PF-A, one on to the CF, then one per member to
			// its PF-B and one on to the member: 8, more if UDP retransmitted some.
			log, err := os.ReadFile(k.Log)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Count(string(log), "<script>: SIP IN  INVITE "); got < 8 {
				t.Errorf("Kamailio took %d INVITEs, want at least 8", got)
			}
		})
	}
}

// TestPrintRoutesNeedsBasePort: without fixed ports there is no table to print.
func TestPrintRoutesNeedsBasePort(t *testing.T) {
	if code, _, stderr := cli(t, "demo", "--print-routes"); code != 2 || !strings.Contains(stderr, "--base-port") {
		t.Errorf("exit %d\n%s", code, stderr)
	}
}
