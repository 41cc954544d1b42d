package runtime_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/runtime"
	"github.com/cpmlink/cpmlink/runtime/kamailiotest"
)

// deployYAML is a valid deployment with two PF-Bs; %d are its fixed ports in order: core,
// pfa sip, pfa msrp, cf sip, cf msrp, pfb1 sip, pfb1 msrp, pfb2 sip, pfb2 msrp.
const deployYAML = `variant: fig1
core:
  listen: 127.0.0.1:%d
  routes:
    cf.example: cf
    b1.example: pfb1
    b2.example: pfb2
roles:
  - name: pfa
    role: pfa
    uri: sip:pf@a.example
    sip: 127.0.0.1:%d
    msrp: 127.0.0.1:%d
  - name: cf
    role: cf
    uri: sip:cf@cf.example
    sip: 127.0.0.1:%d
    msrp: 127.0.0.1:%d
    groups:
      sip:team@cf.example:
        members: [sip:bob@b1.example, sip:carol@b2.example]
        senders: [sip:alice@a.example]
  - name: pfb1
    role: pfb
    uri: sip:pf@b1.example
    sip: 127.0.0.1:%d
    msrp: 127.0.0.1:%d
  - name: pfb2
    role: pfb
    uri: sip:pf@b2.example
    sip: 127.0.0.1:%d
    msrp: 127.0.0.1:%d
clients:
  - uri: sip:alice@a.example
    pf: pfa
  - uri: sip:bob@b1.example
    pf: pfb1
  - uri: sip:carol@b2.example
    pf: pfb2
    sip: 127.0.0.1:0
    msrp: 127.0.0.1:0
`

func fixedYAML() string {
	return fmt.Sprintf(deployYAML, 15060, 15061, 12855, 15062, 12856, 15063, 12857, 15064, 12858)
}

// TestServeConfigValid: the base configuration and the shipped example load, with their
// defaults filled in.
func TestServeConfigValid(t *testing.T) {
	c, err := runtime.ParseServeConfig("deploy.yaml", []byte(fixedYAML()))
	if err != nil {
		t.Fatal(err)
	}
	if c.SIPCore != "127.0.0.1:15060" {
		t.Errorf("sip-core defaults to core.listen, got %q", c.SIPCore)
	}
	if cl := c.Clients[1]; cl.Name != "bob" || cl.SIP != "127.0.0.1:0" || cl.MSRP != "127.0.0.1:0" {
		t.Errorf("client defaults: %+v", cl)
	}
	if ms, ok := c.GroupMembers("sip:team@cf.example"); !ok || len(ms) != 2 {
		t.Errorf("GroupMembers: %v %v", ms, ok)
	}
	if target, err := c.AdHocTarget(); err != nil || target != "sip:cf@cf.example" {
		t.Errorf("AdHocTarget: %q %v", target, err)
	}

	ex, err := runtime.LoadServeConfig(filepath.Join("..", "docs", "deploy.yaml"))
	if err != nil {
		t.Fatalf("docs/deploy.yaml: %v", err)
	}
	if len(ex.Roles) != 3 || len(ex.Clients) != 3 || ex.Core == nil {
		t.Errorf("docs/deploy.yaml: %d roles, %d clients, core %v", len(ex.Roles), len(ex.Clients), ex.Core)
	}
}

// TestServeConfigErrors: each mistake is reported with the line it is on and a message
// that says what to do.
func TestServeConfigErrors(t *testing.T) {
	base := fixedYAML()
	for _, tc := range []struct {
		name     string
		old, new string // the edit to the base configuration
		at       string // text on the line the error must name ("" for no line)
		want     string
	}{
		{"bad variant", "variant: fig1", "variant: fig9", "variant: fig9", `variant "fig9" is not a named variant of the spec: one of fig1, fig2`},
		{"no variant", "variant: fig1\n", "", "", "variant is required"},
		{"bad transport", "variant: fig1", "variant: fig1\ntransport: sctp", "transport: sctp", `transport "sctp": udp or tcp`},
		{"non-loopback role address", "sip: 127.0.0.1:15062", "sip: 192.0.2.1:15062", "192.0.2.1", "cpmlink binds loopback addresses only"},
		{"non-loopback core", "listen: 127.0.0.1:15060", "listen: 0.0.0.0:15060", "0.0.0.0", "core.listen: \"0.0.0.0:15060\": cpmlink binds loopback addresses only"},
		{"non-loopback client", "    sip: 127.0.0.1:0\n", "    sip: 10.1.1.1:0\n", "10.1.1.1", "clients[2] (sip:carol@b2.example): sip: \"10.1.1.1:0\": cpmlink binds loopback"},
		{"no port", "msrp: 127.0.0.1:12855", "msrp: 127.0.0.1", "msrp: 127.0.0.1\n", `"127.0.0.1" is not host:port`},
		{"server on port 0", "sip: 127.0.0.1:15063", "sip: 127.0.0.1:0", "sip: 127.0.0.1:0\n    msrp: 127.0.0.1:12857", "a fixed port is required"},
		{"unknown role", "role: pfb\n    uri: sip:pf@b1.example", "role: relay\n    uri: sip:pf@b1.example", "role: relay", `role "relay": pfa, cf or pfb`},
		{"client as a role", "role: pfb\n    uri: sip:pf@b1.example", "role: clientb\n    uri: sip:pf@b1.example", "role: clientb", "clients go under clients"},
		{"unknown key", "role: pfa\n", "role: pfa\n    colour: blue\n", "colour: blue", `unknown key "colour" in a role`},
		{"unknown top-level key", "variant: fig1", "variant: fig1\nverbose: true", "verbose: true", `unknown key "verbose" in the top level`},
		{"client with unknown PF", "pf: pfb2", "pf: pfb9", "pf: pfb9", `pf "pfb9" is not a role of this deployment`},
		{"client without PF", "    pf: pfb2\n", "", "uri: sip:carol", "pf is required"},
		{"client of a CF", "pf: pfb2", "pf: cf", "pf: cf", `pf "cf" is a cf, not a pfa or pfb`},
		{"duplicate role name", "name: pfb2", "name: pfb1", "name: pfb1\n    role: pfb\n    uri: sip:pf@b2", `name "pfb1" is already taken by role pfb1`},
		{"reserved name", "name: pfa", "name: core", "name: core", `name "core" is already taken by the SIP/IP core`},
		{"bad name", "name: pfa", "name: p f a", "name: p f a", "letters, digits"},
		{"duplicate client", "uri: sip:carol@b2.example", "uri: sip:bob@b1.example", "uri: sip:bob@b1.example\n    pf: pfb2", "uri sip:bob@b1.example is already used by client sip:bob@b1.example"},
		{"duplicate address", "msrp: 127.0.0.1:12858", "msrp: 127.0.0.1:12857", "msrp: 127.0.0.1:12857\nclients", "127.0.0.1:12857 is already used by roles[2] (pfb1): msrp"},
		{"sip and msrp hosts differ", "msrp: 127.0.0.1:12855", "msrp: 127.0.0.2:12855", "name: pfa", "sip and msrp must be on the same loopback host"},
		{"bad uri", "uri: sip:pf@a.example", "uri: pf.a.example", "uri: pf.a.example", `"pf.a.example" is not a sip:user@domain URI`},
		{"groups on a pfb", "uri: sip:pf@b2.example\n", "uri: sip:pf@b2.example\n    groups: {\"sip:x@b2.example\": {members: [sip:bob@b1.example]}}\n", "groups: {", "only a cf has groups"},
		{"empty group", "members: [sip:bob@b1.example, sip:carol@b2.example]", "members: []", "sip:team@cf.example:", "members: at least one is required"},
		{"member not a client", "members: [sip:bob@b1.example,", "members: [sip:dave@b1.example,", "members:", "member sip:dave@b1.example is not a client registered with a pfb"},
		{"sender not a pfa client", "senders: [sip:alice@a.example]", "senders: [sip:bob@b1.example]", "senders:", "sender sip:bob@b1.example is not a client registered with a pfa"},
		{"route to nowhere", "b2.example: pfb2", "b2.example: 127.0.0.1:9", "b2.example: 127.0.0.1:9", `b2.example -> "127.0.0.1:9" is neither the name nor the sip address of a role`},
		{"route by address", "b2.example: pfb2", "b2.example: 127.0.0.1:15064", "", ""},
		{"missing route", "    b2.example: pfb2\n", "", "pf: pfb2", "core.routes has no route for b2.example (it should go to pfb2)"},
		{"member behind the wrong PF-B", "b2.example: pfb2", "b2.example: pfb1", "pf: pfb2", "core.routes sends b2.example to pfb1, not to pfb2"},
		{"group not routed to its CF", "cf.example: cf", "cf.example: pfa", "sip:team@cf.example:", "core.routes sends cf.example to pfa, not to cf"},
		{"sip-core differs", "variant: fig1", "variant: fig1\nsip-core: 127.0.0.1:5060", "sip-core:", "differs from core.listen"},
		{"no core, no sip-core", "core:\n  listen: 127.0.0.1:15060\n  routes:\n    cf.example: cf\n    b1.example: pfb1\n    b2.example: pfb2\n", "", "", "sip-core is required when there is no core section"},
		{"bad chunk size", "variant: fig1", "variant: fig1\nchunk-size: 2GB", "chunk-size", "between 1 byte and 1 MiB"},
		{"bad guard", "variant: fig1", "variant: fig1\nguard: soon", "guard: soon", `guard "soon": a positive duration`},
		{"syntax error", "roles:\n", "roles:\n  - name: [\n", "", "did not find expected"},
		{"roles as a map", "roles:\n  - name: pfa", "roles:\n  name: pfa\n  x:\n  - name: pfa", "  name: pfa", "into a list of roles"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(base, tc.old, tc.new, 1)
			if text == base {
				t.Fatalf("the edit %q did not apply", tc.old)
			}
			_, err := runtime.ParseServeConfig("cfg.yaml", []byte(text))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want no error, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; want %q", tc.want)
			}
			if !errors.Is(err, runtime.ErrConfig) {
				t.Errorf("%v does not wrap ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got\n%v\nwant it to contain %q", err, tc.want)
			}
			if tc.at != "" {
				i := strings.Index(text, tc.at)
				if i < 0 {
					t.Fatalf("%q is not in the configuration", tc.at)
				}
				loc := "cfg.yaml:" + strconv.Itoa(strings.Count(text[:i], "\n")+1) + ": "
				found := false
				for _, line := range strings.Split(err.Error(), "\n") {
					found = found || strings.HasPrefix(line, loc) && strings.Contains(line, tc.want)
				}
				if !found {
					t.Errorf("got\n%v\nwant %q at %s", err, tc.want, loc)
				}
			}
		})
	}
	if _, err := runtime.ParseServeConfig("empty.yaml", nil); err == nil || !strings.Contains(err.Error(), "empty.yaml: the configuration is empty") {
		t.Errorf("empty file: %v", err)
	}
	if _, err := runtime.LoadServeConfig(filepath.Join(t.TempDir(), "none.yaml")); err == nil || errors.Is(err, runtime.ErrConfig) {
		t.Errorf("missing file: %v", err)
	}
}

// writeTLS writes a throw-away loopback certificate (runtime.LoopbackTLS) as PEM files
// into dir: cert.pem, key.pem; the certificate is its own CA.
func writeTLS(t *testing.T, dir, prefix string) {
	t.Helper()
	conf, err := runtime.LoopbackTLS()
	if err != nil {
		t.Fatal(err)
	}
	c := conf.Certificates[0]
	key, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string]*pem.Block{
		prefix + "cert.pem": {Type: "CERTIFICATE", Bytes: c.Certificate[0]},
		prefix + "key.pem":  {Type: "PRIVATE KEY", Bytes: key},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestServeConfigTLS: the TLS files are loaded relative to the configuration, and what
// would make every handshake fail is an error before anything starts.
func TestServeConfigTLS(t *testing.T) {
	dir := t.TempDir()
	writeTLS(t, dir, "")
	writeTLS(t, dir, "other-")
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tlsYAML := "tls:\n  cert: cert.pem\n  key: key.pem\n  ca: cert.pem\n"
	for _, tc := range []struct {
		name, old, new, at, want string
	}{
		{"valid", "", "", "", ""},
		{"missing ca", "  ca: cert.pem\n", "", "tls:", "tls.ca is required"},
		{"no such file", "cert: cert.pem", "cert: none.pem", "cert: none.pem", "no such file"},
		{"key of another certificate", "key: key.pem", "key: other-key.pem", "cert: cert.pem", "private key does not match public key"},
		{"ca that does not accept the certificate", "ca: cert.pem", "ca: other-cert.pem", "ca: other-cert.pem", "tls.ca does not accept tls.cert"},
		{"ca not PEM", "ca: cert.pem", "ca: notes.txt", "ca: notes.txt", "holds no PEM certificate"},
		{"host the certificate does not name", "    sip: 127.0.0.1:0\n    msrp: 127.0.0.1:0\n", "    sip: 127.0.0.5:0\n    msrp: 127.0.0.5:0\n", "msrp: 127.0.0.5:0", "tls.cert does not name its msrp host"},
		{"unknown key", "  ca: cert.pem\n", "  ca: cert.pem\n  verify: false\n", "verify: false", `unknown key "verify" in tls`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(fixedYAML()+tlsYAML, tc.old, tc.new, 1)
			c, err := runtime.ParseServeConfig(filepath.Join(dir, "cfg.yaml"), []byte(text))
			if tc.want == "" {
				if err != nil || c.MSRPScheme() != "msrps" {
					t.Fatalf("%v, scheme %s", err, c.MSRPScheme())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			line := strings.Count(text[:strings.Index(text, tc.at)], "\n") + 1
			if loc := fmt.Sprintf("cfg.yaml:%d: ", line); !strings.Contains(err.Error(), loc) {
				t.Errorf("got %v, want it at %s", err, loc)
			}
		})
	}
}

// TestServeDeployment: the configuration's core and roles started by Serve, its clients by
// StartClient, deliver a message to the pre-defined group and to an ad-hoc one, over plain
// MSRP and over msrps.
func TestServeDeployment(t *testing.T) {
	t.Run("msrp", func(t *testing.T) { testServeDeployment(t, false) })
	t.Run("msrps", func(t *testing.T) { testServeDeployment(t, true) })
}

func testServeDeployment(t *testing.T, withTLS bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Fixed ports, as a deployment file has them, outside the ephemeral range that the
	// other tests' port-0 listeners draw from.
	var ports []any
	for p, base := 0, kamailiotest.FreePorts(t, 9); p < 9; p++ {
		ports = append(ports, base+p)
	}
	text := fmt.Sprintf(deployYAML, ports...)
	cfgDir := t.TempDir()
	if withTLS {
		writeTLS(t, cfgDir, "")
		text += "tls: {cert: cert.pem, key: key.pem, ca: cert.pem}\n"
	}
	c, err := runtime.ParseServeConfig(filepath.Join(cfgDir, "test.yaml"), []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	var recs []runtime.Record
	tracer := runtime.NewTracer(nil, &recs)
	for _, tc := range []struct {
		only []string
		want string
	}{
		{[]string{"pfb7"}, `"pfb7" (the configuration has core, pfa, cf, pfb1, pfb2)`},
		{[]string{"bob"}, "bob is a client: run it with cpmlink send --from or cpmlink recv --as sip:bob@b1.example"},
	} {
		if _, err := runtime.Serve(ctx, c, tc.only, runtime.ServeOptions{}); !errors.Is(err, runtime.ErrUnknownInstance) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Serve %v: %v", tc.only, err)
		}
	}
	// Two processes' worth: the core and the CF, then the rest.
	first, err := runtime.Serve(ctx, c, []string{"core", "cf"}, runtime.ServeOptions{Trace: tracer})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	rest, err := runtime.Serve(ctx, c, []string{"pfa", "pfb1", "pfb2"}, runtime.ServeOptions{Trace: tracer})
	if err != nil {
		t.Fatal(err)
	}
	defer rest.Close()
	var names []string
	for _, in := range append(first.Instances(), rest.Instances()...) {
		names = append(names, in.Name+"/"+in.Role)
	}
	if got := strings.Join(names, " "); got != "core/core cf/CF pfa/PFA pfb1/PFB pfb2/PFB" {
		t.Errorf("instances: %s", got)
	}

	if _, err := c.StartClient(ctx, "sip:dave@b1.example", runtime.ClientOptions{}); !errors.Is(err, runtime.ErrNotClient) {
		t.Errorf("StartClient of a stranger: %v", err)
	}
	dir := t.TempDir()
	start := func(uri string) *runtime.Node {
		n, err := c.StartClient(ctx, uri, runtime.ClientOptions{StoreDir: filepath.Join(dir, uri), Trace: tracer})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		if err := n.Register(ctx, time.Minute); err != nil {
			t.Fatalf("%s registering: %v", uri, err)
		}
		return n
	}
	alice, bob, carol := start("sip:alice@a.example"), start("sip:bob@b1.example"), start("sip:carol@b2.example")
	if alice.Kind() != fsm.RoleClientA || bob.Kind() != fsm.RoleClientB {
		t.Fatalf("kinds: %v %v", alice.Kind(), bob.Kind())
	}

	msg := make([]byte, 300_000)
	rand.NewChaCha8([32]byte{7}).Read(msg)
	sum := sha256.Sum256(msg)
	file := filepath.Join(dir, "msg.bin")
	if err := os.WriteFile(file, msg, 0o644); err != nil {
		t.Fatal(err)
	}
	adhoc, _ := c.AdHocTarget()
	for i, send := range []struct {
		target  string
		members []string
	}{{"sip:team@cf.example", nil}, {adhoc, []string{"sip:bob@b1.example", "sip:carol@b2.example"}}} {
		out, err := alice.Send(ctx, send.target, send.members, runtime.Message{
			Open: func() (io.ReadCloser, error) { return os.Open(file) }, Size: int64(len(msg)), ContentType: "application/octet-stream"})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []struct {
			uri  string
			node *runtime.Node
		}{{"sip:bob@b1.example", bob}, {"sip:carol@b2.example", carol}} {
			if o := out.Of(m.uri); o != core.DeliveredOutcome() {
				t.Errorf("send %d: %s: %v", i, m.uri, o)
			}
			rs, err := m.node.WaitReceived(ctx, i)
			if err != nil {
				t.Fatal(err)
			}
			if r := rs[i]; r.SHA256 != hex.EncodeToString(sum[:]) || r.Bytes != int64(len(msg)) {
				t.Errorf("send %d: %s stored %d bytes, sha256 %s", i, m.uri, r.Bytes, r.SHA256)
			}
		}
		for _, n := range []*runtime.Node{alice, bob, carol} {
			if err := n.WaitIdle(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := first.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
		if err := rest.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Every path the machines offered has the deployment's scheme.
	n := 0
	for _, r := range recs {
		if r.Dir != "out" || r.Type != "SendInvite" {
			continue
		}
		n++
		if b, _ := json.Marshal(r.Fields); !strings.Contains(string(b), c.MSRPScheme()+"://") {
			t.Errorf("an offer without %s: %s", c.MSRPScheme(), b)
		}
	}
	if n == 0 {
		t.Error("no INVITE in the trace")
	}
}
