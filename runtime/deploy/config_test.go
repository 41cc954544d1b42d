package deploy_test

import (
	"context"
	"crypto"
	crand "crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/runtime"
	"github.com/cpmlink/cpmlink/runtime/deploy"
	"github.com/cpmlink/cpmlink/runtime/kamailiotest"
)

// deployYAML is a valid deployment with two PF-Bs; %d are its fixed ports in order: core,
// pfa sip, pfa msrp, cf sip, cf msrp, pfb1 sip, pfb1 msrp, pfb2 sip, pfb2 msrp. pfa and
// pfb1 authenticate their clients against users.txt (testUsers); pfb2 does not.
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
    auth: {credentials: users.txt}
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
    auth:
      credentials: users.txt
      nonce-ttl: 5m
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

// testUsers is the credentials file of deployYAML: example passwords, for tests only.
const testUsers = `# username realm secret [aor=]
alice a.example password=alice-example-password
bob b1.example password=bob-example-password
mallory a.example password=mallory-example-password
`

// testPasswords are the clients' passwords, as --password-file would give them.
var testPasswords = map[string]string{
	"sip:alice@a.example":  "alice-example-password",
	"sip:bob@b1.example":   "bob-example-password",
	"sip:carol@b2.example": "",
}

// writeUsers writes testUsers as users.txt into dir.
func writeUsers(t *testing.T, dir string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "users.txt"), []byte(testUsers), 0o600); err != nil {
		t.Fatal(err)
	}
}

func fixedYAML() string {
	return fmt.Sprintf(deployYAML, 15060, 15061, 12855, 15062, 12856, 15063, 12857, 15064, 12858)
}

// TestServeConfigValid: the base configuration and the shipped example load, with their
// defaults filled in.
func TestServeConfigValid(t *testing.T) {
	c, err := deploy.ParseServeConfig("deploy.yaml", []byte(fixedYAML()))
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

	ex, err := deploy.LoadServeConfig(filepath.Join("..", "..", "docs", "deploy.yaml"))
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
		{"bad transport", "variant: fig1", "variant: fig1\ntransport: sctp", "transport: sctp", `transport "sctp": udp, tcp or tls`},
		{"transport tls without tls", "variant: fig1", "variant: fig1\ntransport: tls", "transport: tls", "transport tls: the tls section is required (cert, key, ca)"},
		{"sip-tls without tls", "sip: 127.0.0.1:15062", "sip: 127.0.0.1:15062\n    sip-tls: 127.0.0.1:15072", "sip-tls: 127.0.0.1:15072", "roles[1] (cf): sip-tls needs the tls section"},
		{"listen-tls without tls", "listen: 127.0.0.1:15060", "listen: 127.0.0.1:15060\n  listen-tls: 127.0.0.1:15070", "listen-tls", "core.listen-tls needs the tls section"},
		{"core name not a name", "listen: 127.0.0.1:15060", "listen: 127.0.0.1:15060\n  names: [127.0.0.9]", "names:", `core.names: "127.0.0.9" is not a host name`},
		{"advertised name with dns off", "sip: 127.0.0.1:15062", "advertise: cf.example.net\n    sip: 127.0.0.1:15062", "advertise: cf.example.net", "roles[1] (cf): advertise: cf.example.net is not in hosts, and dns is off: add it to hosts, or set dns: true"},
		{"advertised name with dns on", "variant: fig1", "variant: fig1\ndns: true", "", ""},
		{"dns not a boolean", "variant: fig1", "variant: fig1\ndns: sometimes", "dns: sometimes", "cannot unmarshal"},
		{"public role address", "sip: 127.0.0.1:15062\n    msrp: 127.0.0.1:12856", "sip: 192.0.2.1:15062\n    msrp: 192.0.2.1:12856", "", ""},
		{"IPv6 role address", "sip: 127.0.0.1:15062\n    msrp: 127.0.0.1:12856", "sip: \"[2001:db8::5]:15062\"\n    msrp: \"[2001:db8::5]:12856\"", "", ""},
		{"name as a bind address", "sip: 127.0.0.1:15062", "sip: cf.example.net:15062", "cf.example.net", "an instance binds an IP address (0.0.0.0 or :: for every interface); a name goes in advertise"},
		{"wildcard role without advertise", "sip: 127.0.0.1:15062\n    msrp: 127.0.0.1:12856", "sip: 0.0.0.0:15062\n    msrp: 0.0.0.0:12856", "sip: 0.0.0.0:15062", "roles[1] (cf): sip 0.0.0.0:15062 binds every interface, which names no address a peer could use: set roles[1].advertise"},
		{"wildcard role with advertise", "sip: 127.0.0.1:15062\n    msrp: 127.0.0.1:12856", "sip: 0.0.0.0:15062\n    msrp: 0.0.0.0:12856\n    advertise: 127.0.0.1", "", ""},
		{"IPv6 wildcard role without advertise", "sip: 127.0.0.1:15062\n    msrp: 127.0.0.1:12856", "sip: \"[::]:15062\"\n    msrp: \"[::]:12856\"", "[::]:15062", "sip [::]:15062 binds every interface"},
		{"wildcard core without advertise", "listen: 127.0.0.1:15060", "listen: 0.0.0.0:15060", "0.0.0.0", "core: listen 0.0.0.0:15060 binds every interface, which names no address a peer could use: set core.advertise"},
		{"wildcard client without advertise", "    sip: 127.0.0.1:0\n    msrp: 127.0.0.1:0\n", "    sip: 0.0.0.0:0\n    msrp: 0.0.0.0:0\n", "sip: 0.0.0.0:0", "clients[2] (sip:carol@b2.example): sip 0.0.0.0:0 binds every interface"},
		{"advertise a wildcard", "sip: 127.0.0.1:15062", "advertise: 0.0.0.0\n    sip: 127.0.0.1:15062", "advertise: 0.0.0.0", "roles[1] (cf): advertise: 0.0.0.0 is a wildcard: name the address peers should use"},
		{"advertise not a host", "sip: 127.0.0.1:15062", "advertise: cf_host!\n    sip: 127.0.0.1:15062", "advertise: cf_host!", `advertise: "cf_host!" is neither an IP address nor a host name`},
		{"same advertised address", "sip: 127.0.0.1:15062\n    msrp: 127.0.0.1:12856", "sip: 0.0.0.0:15061\n    msrp: 0.0.0.0:12856\n    advertise: 127.0.0.1", "sip: 0.0.0.0:15061", "roles[1] (cf): sip 127.0.0.1:15061 is already used by roles[0] (pfa): sip"},
		{"sip and msrp bind different IPs", "msrp: 127.0.0.1:12855", "msrp: 127.0.0.2:12855", "name: pfa", "sip and msrp must bind the same IP (127.0.0.1, 127.0.0.2)"},
		{"hosts entry not an address", "variant: fig1", "variant: fig1\nhosts:\n  cf.example.net: [cf]", "cf.example.net: [cf]", `hosts.cf.example.net: "cf" is not an IP address peers can reach`},
		{"hosts entry empty", "variant: fig1", "variant: fig1\nhosts:\n  cf.example.net: []", "cf.example.net: []", "hosts.cf.example.net: at least one address is required"},
		{"hosts key an address", "variant: fig1", "variant: fig1\nhosts:\n  192.0.2.7: [192.0.2.7]", "192.0.2.7: [", "hosts: 192.0.2.7 is an IP address; the table maps names to addresses"},
		{"hosts key not a name", "variant: fig1", "variant: fig1\nhosts:\n  cf host: [192.0.2.7]", "cf host:", `hosts: "cf host" is not a host name`},
		{"hosts as a list", "variant: fig1", "variant: fig1\nhosts: [192.0.2.7]", "hosts:", "into a map of names to address lists"},
		{"sip-core a wildcard", "core:\n  listen: 127.0.0.1:15060\n  routes:\n    cf.example: cf\n    b1.example: pfb1\n    b2.example: pfb2\n", "sip-core: 0.0.0.0:5060\n", "sip-core:", "sip-core: 0.0.0.0 is a wildcard"},
		{"sip-core by name", "core:\n  listen: 127.0.0.1:15060\n  routes:\n    cf.example: cf\n    b1.example: pfb1\n    b2.example: pfb2\n", "sip-core: kamailio.example.net:5060\ndns: true\n", "", ""},
		{"sip-core by name without dns", "core:\n  listen: 127.0.0.1:15060\n  routes:\n    cf.example: cf\n    b1.example: pfb1\n    b2.example: pfb2\n", "sip-core: kamailio.example.net:5060\n", "sip-core:", "sip-core: kamailio.example.net is not in hosts, and dns is off"},
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
		{"chunk size of no unit", "variant: fig1", "variant: fig1\nchunk-size: 64K", "chunk-size", `chunk-size "64K": ` + deploy.SizeForms},
		{"bad guard", "variant: fig1", "variant: fig1\nguard: soon", "guard: soon", `guard "soon": a positive duration`},
		{"syntax error", "roles:\n", "roles:\n  - name: [\n", "", "did not find expected"},
		{"roles as a map", "roles:\n  - name: pfa", "roles:\n  name: pfa\n  x:\n  - name: pfa", "  name: pfa", "into a list of roles"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(base, tc.old, tc.new, 1)
			if text == base {
				t.Fatalf("the edit %q did not apply", tc.old)
			}
			_, err := deploy.ParseServeConfig("cfg.yaml", []byte(text))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want no error, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; want %q", tc.want)
			}
			if !errors.Is(err, deploy.ErrConfig) {
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
	if _, err := deploy.ParseServeConfig("empty.yaml", nil); err == nil || !strings.Contains(err.Error(), "empty.yaml: the configuration is empty") {
		t.Errorf("empty file: %v", err)
	}
	if _, err := deploy.LoadServeConfig(filepath.Join(t.TempDir(), "none.yaml")); err == nil || errors.Is(err, deploy.ErrConfig) {
		t.Errorf("missing file: %v", err)
	}
}

// writeTLS writes a throw-away loopback certificate (runtime.LoopbackTLS) as PEM files
// into dir: cert.pem, key.pem; the certificate is its own CA. With names, it is one of
// the test's own that names them too (IPs as IP SANs, names as DNS SANs).
func writeTLS(t *testing.T, dir, prefix string, names ...string) {
	t.Helper()
	conf, err := runtime.LoopbackTLS()
	if err != nil {
		t.Fatal(err)
	}
	c := conf.Certificates[0]
	der := c.Certificate[0]
	if len(names) > 0 {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "cpmlink test"},
			NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			BasicConstraintsValid: true, IsCA: true,
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, DNSNames: names,
		}
		pub := c.PrivateKey.(crypto.Signer).Public()
		tmpl.IPAddresses, tmpl.DNSNames = tmpl.IPAddresses[:2], nil
		for _, n := range names {
			if ip := net.ParseIP(n); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, n)
			}
		}
		if der, err = x509.CreateCertificate(crand.Reader, tmpl, tmpl, pub, c.PrivateKey); err != nil {
			t.Fatal(err)
		}
	}
	key, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string]*pem.Block{
		prefix + "cert.pem": {Type: "CERTIFICATE", Bytes: der},
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
			c, err := deploy.ParseServeConfig(filepath.Join(dir, "cfg.yaml"), []byte(text))
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

// TestServeConfigSIPTLS: transport tls and its keys, each mistake at its line.
func TestServeConfigSIPTLS(t *testing.T) {
	dir := t.TempDir()
	writeTLS(t, dir, "")
	n := 0
	base := sipOverTLS(fixedYAML(), func() int { n++; return 15069 + n }) + "tls:\n  cert: cert.pem\n  key: key.pem\n  ca: cert.pem\n"
	for _, tc := range []struct {
		name, old, new, at, want string
	}{
		{"valid", "", "", "", ""},
		{"no sip-tls on a role", "    sip-tls: 127.0.0.1:15072\n", "", "name: cf", "roles[1] (cf): sip-tls is required with transport tls"},
		{"no listen-tls", "  listen-tls: 127.0.0.1:15070\n", "", "core:", "core: listen-tls is required with transport tls"},
		{"sip-tls on another IP", "sip-tls: 127.0.0.1:15072", "sip-tls: 127.0.0.2:15072", "sip-tls: 127.0.0.2:15072", "roles[1] (cf): sip and sip-tls must bind the same IP"},
		{"sip-tls on the sip port", "sip-tls: 127.0.0.1:15072", "sip-tls: 127.0.0.1:15062", "sip-tls: 127.0.0.1:15062", "roles[1] (cf): sip-tls 127.0.0.1:15062 is already used by roles[1] (cf): sip"},
		{"sip-tls on port 0", "sip-tls: 127.0.0.1:15072", "sip-tls: 127.0.0.1:0", "sip-tls: 127.0.0.1:0", "a fixed port is required"},
		{"listen-tls on another IP", "listen-tls: 127.0.0.1:15070", "listen-tls: 127.0.0.2:15070", "listen-tls", "core.listen-tls must bind the IP of core.listen"},
		{"sip-core at the UDP port", "variant: fig1", "variant: fig1\nsip-core: 127.0.0.1:15060", "sip-core:", "sip-core 127.0.0.1:15060 differs from core.listen-tls 127.0.0.1:15070"},
		{"sip-core at a name of the core", "variant: fig1", "variant: fig1\nsip-core: core.test:15070", "", ""},
		{"core address the certificate does not name", "listen: 127.0.0.1:15060\n  listen-tls: 127.0.0.1:15070", "listen: 127.0.0.7:15060\n  listen-tls: 127.0.0.7:15070", "listen-tls: 127.0.0.7", "core: tls.cert does not name its SIP over TLS address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(base, tc.old, tc.new, 1)
			if tc.name == "sip-core at a name of the core" {
				text = strings.Replace(text, "  routes:", "  names: [core.test]\n  routes:", 1)
				text += "hosts: {core.test: [127.0.0.1]}\n"
			}
			if text == base && tc.old != "" {
				t.Fatalf("the edit %q did not apply", tc.old)
			}
			c, err := deploy.ParseServeConfig(filepath.Join(dir, "cfg.yaml"), []byte(text))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Clients[0].SIPTLS != "127.0.0.1:0" {
					t.Errorf("a client's sip-tls defaults to its sip IP, port 0: %q", c.Clients[0].SIPTLS)
				}
				if tc.name == "valid" && c.SIPCore != "127.0.0.1:15070" {
					t.Errorf("sip-core defaults to the core's TLS address: %q", c.SIPCore)
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
	t.Run("msrp", func(t *testing.T) { testServeDeployment(t, deployYAML, false, nil) })
	t.Run("msrps", func(t *testing.T) { testServeDeployment(t, deployYAML, true, nil) })
}

// TestServeDeploymentSIPTLS: the same deployment with transport tls — every role, the
// core and the clients take SIP over TLS at ports of their own, and the core forwards to
// the roles over TLS only — delivers byte-exact over msrps, in fig1 and in fig3.
func TestServeDeploymentSIPTLS(t *testing.T) {
	for _, v := range []string{"fig1", "fig3"} {
		t.Run(v, func(t *testing.T) {
			testServe(t, deployYAML, true, func(text string, port func() int) string {
				return sipOverTLS(strings.Replace(text, "variant: fig1", "variant: "+v, 1), port)
			}, nil)
		})
	}
}

var (
	serverSIP = regexp.MustCompile(`(?m)^(\s+)sip: (127\.0\.0\.1|0\.0\.0\.0):([1-9]\d*)\n`)
	coreSIP   = regexp.MustCompile(`(?m)^  listen: (127\.0\.0\.1|0\.0\.0\.0):(\d+)\n`)
)

// sipOverTLS turns a deployment's text to transport tls: a sip-tls beside every server's
// sip, a listen-tls beside the core's listen, each at a port of port's.
func sipOverTLS(text string, port func() int) string {
	text = strings.Replace(text, "variant: ", "transport: tls\nvariant: ", 1)
	text = strings.Replace(text, "transport: tcp\n", "", 1)
	text = coreSIP.ReplaceAllStringFunc(text, func(m string) string {
		g := coreSIP.FindStringSubmatch(m)
		return m + fmt.Sprintf("  listen-tls: %s:%d\n", g[1], port())
	})
	return serverSIP.ReplaceAllStringFunc(text, func(m string) string {
		g := serverSIP.FindStringSubmatch(m)
		return m + fmt.Sprintf("%ssip-tls: %s:%d\n", g[1], g[2], port())
	})
}

func testServeDeployment(t *testing.T, yamlText string, withTLS bool, prepare func(*deploy.ServeConfig)) {
	testServe(t, yamlText, withTLS, nil, prepare)
}

// testServe is testServeDeployment with edit, when set, applied to the text once its
// ports are in: port gives it more fixed ports. tlsNames are the DNS names the
// certificate holds beside the loopback IPs.
func testServe(t *testing.T, yamlText string, withTLS bool, edit func(text string, port func() int) string, prepare func(*deploy.ServeConfig), tlsNames ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Fixed ports, as a deployment file has them, outside the ephemeral range that the
	// other tests' port-0 listeners draw from.
	var ports []any
	for p, base := 0, kamailiotest.FreePorts(t, 9); p < 9; p++ {
		ports = append(ports, base+p)
	}
	text := fmt.Sprintf(yamlText, ports...)
	cfgDir := t.TempDir()
	writeUsers(t, cfgDir)
	if withTLS {
		writeTLS(t, cfgDir, "", tlsNames...)
		text += "tls: {cert: cert.pem, key: key.pem, ca: cert.pem}\n"
	}
	if edit != nil {
		more, n := kamailiotest.FreePorts(t, 8), 0
		text = edit(text, func() int { n++; return more + n - 1 })
	}
	c, err := deploy.ParseServeConfig(filepath.Join(cfgDir, "test.yaml"), []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(c)
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
		if _, err := deploy.Serve(ctx, c, tc.only, deploy.ServeOptions{}); !errors.Is(err, deploy.ErrUnknownInstance) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Serve %v: %v", tc.only, err)
		}
	}
	// Two processes' worth: the core and the CF, then the rest.
	first, err := deploy.Serve(ctx, c, []string{"core", "cf"}, deploy.ServeOptions{Trace: tracer})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	rest, err := deploy.Serve(ctx, c, []string{"pfa", "pfb1", "pfb2"}, deploy.ServeOptions{Trace: tracer})
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
	for d, to := range first.Instances()[0].Routes {
		// With transport tls the core forwards over TLS only: no fallback in the clear.
		if strings.HasPrefix(to, "tls:") != (c.Transport == "tls") {
			t.Errorf("transport %q, route %s -> %s", c.Transport, d, to)
		}
	}
	for _, in := range append(first.Instances(), rest.Instances()...) {
		if (in.SIPTLS != "") != (c.Transport == "tls") {
			t.Errorf("%s: transport %q, SIP over TLS at %q", in.Name, c.Transport, in.SIPTLS)
		}
		for _, addr := range []string{in.SIP, in.MSRP, in.SIPTLS} {
			if h, _, _ := net.SplitHostPort(addr); addr != "" && h != "127.0.0.1" {
				t.Errorf("%s is reached at %s, not at its advertised 127.0.0.1", in.Name, addr)
			}
		}
	}

	if _, err := c.StartClient(ctx, "sip:dave@b1.example", deploy.ClientOptions{}); !errors.Is(err, deploy.ErrNotClient) {
		t.Errorf("StartClient of a stranger: %v", err)
	}
	dir := t.TempDir()
	start := func(uri string) *runtime.Node {
		n, err := c.StartClient(ctx, uri, deploy.ClientOptions{StoreDir: filepath.Join(dir, uri), Password: testPasswords[uri], Trace: tracer})
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
		// Every instance of these configurations advertises 127.0.0.1, whatever it binds.
		if b, _ := json.Marshal(r.Fields); !strings.Contains(string(b), c.MSRPScheme()+"://127.0.0.1:") {
			t.Errorf("an offer without %s://127.0.0.1: %s", c.MSRPScheme(), b)
		}
	}
	if n == 0 {
		t.Error("no INVITE in the trace")
	}
}

// multiHostYAML is deployYAML as hosts of their own would run it: wildcard binds, and the
// addresses peers use given by advertise, by name through the hosts table (pfa, pfb1, the
// core), by a name only DNS knows (pfb2's, answered by the test's resolver), or by IP
// (carol). cf binds one IP and advertises it. %d are the ports, in deployYAML's order.
const multiHostYAML = `variant: fig1
transport: tcp
dns: true
hosts:
  core.test: [127.0.0.1]
  pfa.test: [127.0.0.1, "::1"]
  PFB1.test.: [127.0.0.1]
core:
  listen: 0.0.0.0:%d
  advertise: core.test
  routes:
    cf.example: cf
    b1.example: pfb1
    b2.example: pfb2.dns.test:%[8]d
roles:
  - name: pfa
    role: pfa
    uri: sip:pf@a.example
    sip: 0.0.0.0:%[2]d
    msrp: 0.0.0.0:%[3]d
    advertise: pfa.test
    auth: {credentials: users.txt}
  - name: cf
    role: cf
    uri: sip:cf@cf.example
    sip: 127.0.0.1:%[4]d
    msrp: 127.0.0.1:%[5]d
    groups:
      sip:team@cf.example:
        members: [sip:bob@b1.example, sip:carol@b2.example]
        senders: [sip:alice@a.example]
  - name: pfb1
    role: pfb
    uri: sip:pf@b1.example
    sip: 0.0.0.0:%[6]d
    msrp: 0.0.0.0:%[7]d
    advertise: pfb1.test
    auth: {realm: b1.example, credentials: users.txt}
  - name: pfb2
    role: pfb
    uri: sip:pf@b2.example
    sip: 0.0.0.0:%[8]d
    msrp: 0.0.0.0:%[9]d
    advertise: pfb2.dns.test
clients:
  - uri: sip:alice@a.example
    pf: pfa
  - uri: sip:bob@b1.example
    pf: pfb1
  - uri: sip:carol@b2.example
    pf: pfb2
    sip: 0.0.0.0:0
    msrp: 0.0.0.0:0
    advertise: 127.0.0.1
`

// fakeDNS answers the names the test gives it, and fails the others, so that no query
// leaves the machine.
func fakeDNS(names map[string]string) func(context.Context, string) ([]net.IPAddr, error) {
	return func(_ context.Context, host string) ([]net.IPAddr, error) {
		if ip, ok := names[host]; ok {
			return []net.IPAddr{{IP: net.ParseIP(ip)}}, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
}

// TestServeMultiHost: a configuration written for hosts of their own — wildcard binds,
// advertised names resolved through the hosts table and DNS — is checked, filled in, and
// runs: every instance advertises the address its name resolves to, and both groups get
// the message byte-exact, over msrp and msrps.
func TestServeMultiHost(t *testing.T) {
	var ports []any
	for i := range 9 {
		ports = append(ports, 20000+i)
	}
	c, err := deploy.ParseServeConfig("multi.yaml", []byte(fmt.Sprintf(multiHostYAML, ports...)))
	if err != nil {
		t.Fatal(err)
	}
	if c.SIPCore != "core.test:20000" {
		t.Errorf("sip-core defaults to the core's advertised address, got %q", c.SIPCore)
	}
	if a := c.Clients[0]; a.Advertise != "pfa.test" || a.SIP != "0.0.0.0:0" {
		t.Errorf("a client on its PF's host takes the PF's bind IP and advertise: %+v", a)
	}

	// pfa advertises pfa.test, which the table maps to 127.0.0.1, where cf binds: with
	// the same port they would be one address.
	same := slices.Clone(ports)
	same[3] = same[1]
	if _, err := deploy.ParseServeConfig("multi.yaml", []byte(fmt.Sprintf(multiHostYAML, same...))); err == nil ||
		!strings.Contains(err.Error(), "multi.yaml:26: roles[1] (cf): sip 127.0.0.1:20001 is already used by roles[0] (pfa): sip") {
		t.Errorf("a name of the table and its address at the same port: %v", err)
	}

	dns := fakeDNS(map[string]string{"pfb2.dns.test": "127.0.0.1"})
	t.Run("msrp", func(t *testing.T) {
		testServeDeployment(t, multiHostYAML, false, func(c *deploy.ServeConfig) { deploy.SetLookup(c, dns) })
	})
	t.Run("msrps", func(t *testing.T) {
		testServeDeployment(t, multiHostYAML, true, func(c *deploy.ServeConfig) { deploy.SetLookup(c, dns) })
	})
	// Over SIP TLS the names are what peers verify: the instances locate the core, the
	// core its roles, the clients their PFs by name when they send, and each checks that
	// the certificate names it (RFC 5922 §4.1).
	names := []string{"core.test", "pfa.test", "pfb1.test", "pfb2.dns.test"}
	t.Run("sip tls by name", func(t *testing.T) {
		testServe(t, multiHostYAML, true, sipOverTLS, func(c *deploy.ServeConfig) { deploy.SetLookup(c, dns) }, names...)
	})
	t.Run("sip tls, certificate without the names", func(t *testing.T) {
		dir := t.TempDir()
		writeTLS(t, dir, "")
		n := 0
		text := sipOverTLS(fmt.Sprintf(multiHostYAML, ports...), func() int { n++; return 21000 + n }) + "tls: {cert: cert.pem, key: key.pem, ca: cert.pem}\n"
		_, err := deploy.ParseServeConfig(filepath.Join(dir, "multi.yaml"), []byte(text))
		for _, want := range []string{"core: tls.cert does not name core.test", "roles[0] (pfa): tls.cert does not name pfa.test", "roles[3] (pfb2): tls.cert does not name pfb2.dns.test"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("got %v, want %q", err, want)
			}
		}
	})
	t.Run("a name nobody resolves", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := deploy.ParseServeConfig("multi.yaml", []byte(fmt.Sprintf(multiHostYAML, ports...)))
		if err != nil {
			t.Fatal(err)
		}
		deploy.SetLookup(c, fakeDNS(nil))
		s, err := deploy.Serve(ctx, c, []string{"pfb2"}, deploy.ServeOptions{})
		if err == nil {
			s.Close()
		}
		if !errors.Is(err, deploy.ErrResolve) || !strings.Contains(err.Error(), "pfb2.dns.test") {
			t.Errorf("Serve of an instance whose advertise no one resolves: %v", err)
		}
	})
}

// TestDocsMultiHost: the multi-host example of docs/deploy.md is a valid configuration.
// The page ships no certificate: the test makes one that names every IP and name the
// page's instances advertise (any other would be refused), and the credentials files
// are read only when the roles start.
func TestDocsMultiHost(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "## Across hosts\n")
	_, block, ok2 := strings.Cut(sec, "```yaml\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("docs/deploy.md has no yaml block under \"## Across hosts\"")
	}
	block, _, _ = strings.Cut(block, "\ntls:")
	dir := t.TempDir()
	writeTLS(t, dir, "", "198.51.100.11", "192.0.2.10", "192.0.2.12", "203.0.113.40", "203.0.113.41",
		"core.example.net", "sip.example.net", "pfb1.example.net")
	c, err := deploy.ParseServeConfig(filepath.Join(dir, "deploy.yaml"), []byte(block+"\ntls: {cert: cert.pem, key: key.pem, ca: cert.pem}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Transport != "tls" || !c.DNS || c.Roles[2].SIPTLS != "[::]:5061" || c.Clients[0].SIPTLS != "0.0.0.0:0" {
		t.Errorf("transport %q, dns %v, pfb1 sip-tls %q, alice sip-tls %q", c.Transport, c.DNS, c.Roles[2].SIPTLS, c.Clients[0].SIPTLS)
	}
	if c.SIPCore != "core.example.net:5061" || c.Clients[1].Advertise != "203.0.113.40" || c.Roles[0].Auth.Realm != "a.example" || c.Roles[2].Auth.Realm != "b1.example" {
		t.Errorf("defaults: sip-core %q, bob advertises %q, realms %q %q", c.SIPCore, c.Clients[1].Advertise, c.Roles[0].Auth.Realm, c.Roles[2].Auth.Realm)
	}
	if len(c.TrustedHosts) != 3 || c.StateDir != "/var/lib/cpmlink" || c.MSRPLimits == nil || c.Roles[1].MSRPLimits == nil {
		t.Errorf("trusted-hosts %v, state-dir %q, msrp-limits %v, the cf's %v", c.TrustedHosts, c.StateDir, c.MSRPLimits, c.Roles[1].MSRPLimits)
	}
}

// TestNamesLocatedWhenSent: a next hop named by a name only DNS knows is located when a
// request is sent (RFC 3263), not only once at start: carol's REGISTER, routed by the core
// to her PF by the name it advertises, asks the resolver again, and is answered.
func TestNamesLocatedWhenSent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ports []any
	for p, base := 0, kamailiotest.FreePorts(t, 9); p < 9; p++ {
		ports = append(ports, base+p)
	}
	dir := t.TempDir()
	writeUsers(t, dir)
	c, err := deploy.ParseServeConfig(filepath.Join(dir, "multi.yaml"), []byte(fmt.Sprintf(multiHostYAML, ports...)))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	asked := 0
	dns := fakeDNS(map[string]string{"pfb2.dns.test": "127.0.0.1"})
	deploy.SetLookup(c, func(ctx context.Context, host string) ([]net.IPAddr, error) {
		if host == "pfb2.dns.test" {
			mu.Lock()
			asked++
			mu.Unlock()
		}
		return dns(ctx, host)
	})
	s, err := deploy.Serve(ctx, c, nil, deploy.ServeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	carol, err := c.StartClient(ctx, "sip:carol@b2.example", deploy.ClientOptions{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer carol.Close()
	mu.Lock()
	before := asked
	mu.Unlock()
	if err := carol.Register(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if asked <= before {
		t.Errorf("pfb2.dns.test was looked up %d times at start and never again when carol registered through it", before)
	}
}
