//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/runtime/kamailiotest"
)

// The lab: six network namespaces made by the test, one per host. The SIP/IP core's
// namespace holds a bridge, and each role's namespace is joined to it by a veth pair whose
// other end is in the core's namespace, so that no interface of the test is in the
// machine's own namespace. The addresses are from 198.18.0.0/15 (RFC 2544, benchmark
// testing) and exist only on those interfaces; no namespace has a route anywhere else, and
// every name resolves through the configuration's hosts table, so nothing can leave the
// machine.
var labHosts = []struct {
	name, ip string
}{
	{"core", "198.18.0.1"}, // Kamailio; its address is on the bridge itself
	{"pfa", "198.18.0.2"},
	{"cf", "198.18.0.3"},
	{"pfb", "198.18.0.4"},
	{"clienta", "198.18.0.10"},
	{"clientb", "198.18.0.11"},
}

// netnsYAML is the deployment across the lab's hosts. Every server binds fixed ports, the
// same on every host (5060 for SIP, 2855 for MSRP), as hosts of their own do. pfa and pfb1
// bind the wildcard and advertise a name of the hosts table; cf binds its one address;
// alice binds hers; bob binds the wildcard and advertises an IP, carol binds it. The SIP/IP
// core is Kamailio, named by the table.
const netnsYAML = `variant: fig1
transport: tcp
sip-core: core.lab.test:5060
hosts:
  core.lab.test: [198.18.0.1]
  pfa.lab.test: [198.18.0.2]
  pfb.lab.test: [198.18.0.4]
roles:
  - name: pfa
    role: pfa
    uri: sip:pf@a.example
    sip: 0.0.0.0:5060
    msrp: 0.0.0.0:2855
    advertise: pfa.lab.test
    auth: {credentials: users.txt}
  - name: cf
    role: cf
    uri: sip:cf@cf.example
    sip: 198.18.0.3:5060
    msrp: 198.18.0.3:2855
    groups:
      sip:team@cf.example:
        members: [sip:bob@b1.example, sip:carol@b1.example]
        senders: [sip:alice@a.example]
  - name: pfb1
    role: pfb
    uri: sip:pf@b1.example
    sip: 0.0.0.0:5060
    msrp: 0.0.0.0:2855
    advertise: pfb.lab.test
    auth: {credentials: users.txt}
clients:
  - uri: sip:alice@a.example
    pf: pfa
    sip: 198.18.0.10:0
    msrp: 198.18.0.10:0
  - uri: sip:bob@b1.example
    pf: pfb1
    sip: 0.0.0.0:0
    msrp: 0.0.0.0:0
    advertise: 198.18.0.11
  - uri: sip:carol@b1.example
    pf: pfb1
    sip: 198.18.0.11:0
    msrp: 198.18.0.11:0
`

// netnsTLS turns netnsYAML into the same deployment over SIP over TLS (transport tls)
// and msrps. Its SIP/IP core is cpmlink's own, in the core's namespace beside Kamailio:
// Debian's kamailio package has no tls module (tls.so is in kamailio-tls-modules, which
// is not installed, and the test's Kamailio configuration speaks UDP and TCP only). The
// core listens on 5080 (Kamailio has 5060) and 5061 for TLS; every server takes SIP over
// TLS at 5061. Names are located through the hosts table when a request is sent, and the
// certificate names them (writeLabTLS), since TLS peers located by name verify the name.
func netnsTLS(text string) string {
	for _, e := range []struct{ old, new string }{
		{"transport: tcp\n", "transport: tls\n"},
		{"sip-core: core.lab.test:5060\n", "sip-core: core.lab.test:5061\ncore:\n  listen: 198.18.0.1:5080\n  listen-tls: 198.18.0.1:5061\n" +
			"  advertise: core.lab.test\n  routes:\n    a.example: pfa\n    cf.example: cf\n    b1.example: pfb1\n"},
		{"    sip: 198.18.0.3:5060\n", "    sip: 198.18.0.3:5060\n    sip-tls: 198.18.0.3:5061\n"},
	} {
		text = strings.Replace(text, e.old, e.new, 1)
	}
	return strings.ReplaceAll(text, "    sip: 0.0.0.0:5060\n", "    sip: 0.0.0.0:5060\n    sip-tls: 0.0.0.0:5061\n") +
		"tls:\n  cert: cert.pem\n  key: key.pem\n  ca: cert.pem\n"
}

// lab is the namespaces of one test run.
type lab struct {
	ip     string // the ip command
	prefix string // of every namespace name, unique to the run
	made   []string
}

func (l *lab) ns(host string) string { return l.prefix + host }

// run runs the ip command and returns its combined output.
func (l *lab) run(args ...string) (string, error) {
	out, err := exec.Command(l.ip, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// must runs the ip command and fails the test if it fails.
func (l *lab) must(t *testing.T, args ...string) {
	t.Helper()
	if _, err := l.run(args...); err != nil {
		t.Fatal(err)
	}
}

// newLab makes the namespaces, the bridge and the veth pairs, and removes them all at the
// end of t, whatever happened; it skips t where namespaces cannot be made.
func newLab(t *testing.T) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test makes network namespaces (ip netns add); run it as root to deploy across six hosts")
	}
	ipBin, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("no ip command (iproute2): the test makes network namespaces with it")
	}
	var suffix [3]byte
	rand.Read(suffix[:])
	l := &lab{ip: ipBin, prefix: "cpm" + hex.EncodeToString(suffix[:]) + "-"}
	// Registered first, so that it runs last: after every process of the test is gone.
	t.Cleanup(l.remove)
	core := l.ns("core")
	if out, err := l.run("netns", "add", core); err != nil {
		t.Skipf("cannot make a network namespace here (%v): %s", err, out)
	}
	l.made = append(l.made, core)
	l.must(t, "-n", core, "link", "set", "lo", "up")
	if out, err := l.run("-n", core, "link", "add", "br0", "type", "bridge"); err != nil {
		t.Skipf("cannot make a bridge in a network namespace here (%v): %s", err, out)
	}
	l.must(t, "-n", core, "addr", "add", labHosts[0].ip+"/24", "dev", "br0")
	l.must(t, "-n", core, "link", "set", "br0", "up")
	for _, h := range labHosts[1:] {
		ns := l.ns(h.name)
		l.must(t, "netns", "add", ns)
		l.made = append(l.made, ns)
		l.must(t, "-n", ns, "link", "set", "lo", "up")
		// Both ends are made from the core's namespace: one stays there, on the bridge;
		// the other moves straight into the host's namespace as its eth0.
		l.must(t, "-n", core, "link", "add", "v"+h.name, "type", "veth", "peer", "name", "eth0", "netns", ns)
		l.must(t, "-n", core, "link", "set", "v"+h.name, "master", "br0")
		l.must(t, "-n", core, "link", "set", "v"+h.name, "up")
		l.must(t, "-n", ns, "addr", "add", h.ip+"/24", "dev", "eth0")
		l.must(t, "-n", ns, "link", "set", "eth0", "up")
	}
	return l
}

// remove kills whatever still runs in the namespaces and deletes them (which deletes
// their interfaces).
func (l *lab) remove() {
	for i := len(l.made) - 1; i >= 0; i-- {
		ns := l.made[i]
		if out, err := l.run("netns", "pids", ns); err == nil {
			for _, f := range strings.Fields(out) {
				var pid int
				if _, err := fmt.Sscan(f, &pid); err == nil && pid > 0 {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		l.run("netns", "del", ns)
	}
}

// sysSetns is setns(2)'s number on this architecture (package syscall does not name it),
// 0 where the test does not know it.
var sysSetns = map[string]uintptr{"amd64": 308, "arm64": 268, "riscv64": 268, "386": 346, "arm": 375, "ppc64le": 350, "s390x": 339}[goruntime.GOARCH]

// in runs f on an OS thread that has joined the namespace (setns(2)): the sockets f opens
// belong to it. The thread goes back to its own namespace before it is unlocked. It must
// not end instead: the thread that started Kamailio may be this one, and Kamailio gets
// SIGTERM when it ends (kamailiotest's Pdeathsig). Should going back fail, the thread
// stays locked to a goroutine that waits for the test binary to exit.
func (l *lab) in(host string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			goruntime.UnlockOSThread()
			errc <- err
			return
		}
		defer self.Close()
		target, err := os.Open("/run/netns/" + l.ns(host))
		if err != nil {
			goruntime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if _, _, e := syscall.RawSyscall(sysSetns, target.Fd(), syscall.CLONE_NEWNET, 0); e != 0 {
			goruntime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", l.ns(host), e)
			return
		}
		err = f()
		if _, _, e := syscall.RawSyscall(sysSetns, self.Fd(), syscall.CLONE_NEWNET, 0); e != 0 {
			errc <- errors.Join(err, fmt.Errorf("setns back: %w", e))
			select {} // this thread must neither run other code nor end
		}
		goruntime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// probeSIP sends OPTIONS over UDP from the host's namespace until the server at addr
// answers anything, then checks that its TCP accepts: readiness by probing, bounded by ctx.
func (l *lab) probeSIP(ctx context.Context, host, addr string) error {
	return l.in(host, func() error {
		pc, err := net.ListenPacket("udp", ":0")
		if err != nil {
			return err
		}
		defer pc.Close()
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return err
		}
		buf := make([]byte, 4096)
		wait := 10 * time.Millisecond
		for i := 0; ; i++ {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("%s never answered OPTIONS: %w", addr, err)
			}
			opt := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-lab%d;rport\r\nMax-Forwards: 70\r\n"+
				"From: <sip:probe@lab.test>;tag=p%d\r\nTo: <sip:%s>\r\nCall-ID: lab-probe%d\r\nCSeq: %d OPTIONS\r\nContent-Length: 0\r\n\r\n",
				addr, pc.LocalAddr(), i, i, addr, i, i+1)
			if _, err := pc.WriteTo([]byte(opt), ua); err != nil {
				return err
			}
			pc.SetReadDeadline(time.Now().Add(wait))
			if n, _, err := pc.ReadFrom(buf); err == nil && bytes.HasPrefix(buf[:n], []byte("SIP/2.0 ")) {
				break
			}
			wait = min(2*wait, 200*time.Millisecond)
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// writeLabTLS writes a throw-away certificate naming every address the lab's instances
// advertise (it is its own CA) as cert.pem and key.pem: what msrps peers verify, and SIP
// over TLS peers (by IP, and by the names of the hosts table).
func writeLabTLS(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "cpmlink lab"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, h := range labHosts {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(h.ip))
	}
	tmpl.DNSNames = []string{"core.lab.test", "pfa.lab.test", "pfb.lab.test"}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string]*pem.Block{"cert.pem": {Type: "CERTIFICATE", Bytes: der}, "key.pem": {Type: "PRIVATE KEY", Bytes: pk}} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDeploySixHosts runs the five roles on five hosts of their own — network namespaces
// with addresses of their own — with Kamailio as the SIP/IP core on a sixth: serve
// processes for PF-A, CF and PF-B, recv processes for two members on the ClientB host,
// send on the ClientA host, all the built binary under ip netns exec. A file to the
// pre-defined group and standard input to an ad-hoc group reach both members byte-exact,
// over MSRP on TCP and over msrps (TLS) with SIP over TCP through Kamailio, and over SIP
// over TLS and msrps through cpmlink's own core in the sixth namespace (netnsTLS says why).
func TestDeploySixHosts(t *testing.T) {
	if sysSetns == 0 {
		t.Skipf("the test does not know setns(2)'s number on %s", goruntime.GOARCH)
	}
	l := newLab(t)
	kam := kamailiotest.Require(t)
	bin := buildCpmlink(t)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kdir := t.TempDir()
	args, err := kamailiotest.Args(kdir, labHosts[0].ip, 5060, map[string]string{
		"a.example": "198.18.0.2:5060", "cf.example": "198.18.0.3:5060", "b1.example": "198.18.0.4:5060"})
	if err != nil {
		t.Fatal(err)
	}
	// The trust domain is the core and the three servers, as the file's default
	// trusted-hosts is: the clients' hosts are outside it.
	trusted, err := kamailiotest.TrustedDefine([]string{"198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.0.4"})
	if err != nil {
		t.Fatal(err)
	}
	args = append(args, "-A", trusted)
	k, err := kamailiotest.StartChild(t, exec.Command(l.ip, append([]string{"netns", "exec", l.ns("core"), kam}, args...)...),
		filepath.Join(kdir, "kamailio.log"))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.probeSIP(ctx, "pfa", "198.18.0.1:5060"); err != nil {
		t.Fatalf("kamailio in %s: %v\n%s", l.ns("core"), err, k.LogTail(3000))
	}

	t.Run("tcp", func(t *testing.T) { testSixHosts(t, l, bin, "tcp") })
	t.Run("msrps", func(t *testing.T) { testSixHosts(t, l, bin, "msrps") })
	t.Run("sip-tls", func(t *testing.T) { testSixHosts(t, l, bin, "sip-tls") })
}

// testSixHosts runs the deployment: mode is tcp (SIP over TCP, MSRP), msrps (SIP over
// TCP, msrps) or sip-tls (SIP over TLS, msrps, through the embedded core).
func testSixHosts(t *testing.T, l *lab, bin string, mode string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cpmlink.yaml")
	text, scheme, sipTLS := netnsYAML, "msrp", ""
	switch mode {
	case "msrps":
		writeLabTLS(t, dir)
		text += "tls:\n  cert: cert.pem\n  key: key.pem\n  ca: cert.pem\n"
		scheme = "msrps"
	case "sip-tls":
		writeLabTLS(t, dir)
		text, scheme, sipTLS = netnsTLS(text), "msrps", " sip-tls "
	}
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// PF-A and PF-B authenticate their clients; each client has its password in a file.
	pw := func(user string) string { return filepath.Join(dir, user+".password") }
	for name, text := range map[string]string{
		filepath.Join(dir, "users.txt"): "alice a.example password=alice-lab\nbob b1.example password=bob-lab\ncarol b1.example password=carol-lab\n",
		pw("alice"):                     "alice-lab\n", pw("bob"): "bob-lab\n", pw("carol"): "carol-lab\n"} {
		if err := os.WriteFile(name, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// on runs cpmlink on one of the lab's hosts.
	on := func(host, name string, stdin *bytes.Reader, args ...string) *proc {
		full := append([]string{"netns", "exec", l.ns(host), bin}, args...)
		if stdin == nil {
			return startProc(t, l.ip, name, nil, full...)
		}
		return startProc(t, l.ip, name, stdin, full...)
	}
	servers := []*proc{
		on("pfa", "serve pfa", nil, "serve", "--config", cfg, "--role", "pfa"),
		on("cf", "serve cf", nil, "serve", "--config", cfg, "--role", "cf"),
		on("pfb", "serve pfb1", nil, "serve", "--config", cfg, "--role", "pfb1"),
	}
	if sipTLS != "" {
		servers = append(servers, on("core", "serve core", nil, "serve", "--config", cfg, "--role", "core"))
	}
	for _, s := range servers {
		s.expect(ctx, t, "ready: ")
	}
	// Each says where peers reach it: the advertised address, not the wildcard it binds.
	for i, ip := range []string{"198.18.0.2", "198.18.0.3", "198.18.0.4"} {
		want := "sip " + ip + ":5060 " + scheme + " " + ip + ":2855"
		if sipTLS != "" {
			want += sipTLS + ip + ":5061"
		}
		if !strings.Contains(servers[i].out[0], want) {
			t.Errorf("%s printed %q, want %q in it", servers[i].name, servers[i].out[0], want)
		}
	}
	if sipTLS != "" {
		// The core forwards over TLS only, to the names it locates when it sends.
		want := "sip 198.18.0.1:5080 sip-tls 198.18.0.1:5061 routes a.example=tls:pfa.lab.test:5061 b1.example=tls:pfb.lab.test:5061 cf.example=tls:198.18.0.3:5061"
		if !strings.Contains(servers[3].out[0], want) {
			t.Errorf("the core printed %q, want %q in it", servers[3].out[0], want)
		}
	}

	bob := on("clientb", "recv bob", nil, "recv", "--config", cfg, "--as", "sip:bob@b1.example", "--password-file", pw("bob"), "--dir", filepath.Join(dir, "bob"), "--count", "2")
	carol := on("clientb", "recv carol", nil, "recv", "--config", cfg, "--as", "sip:carol@b1.example", "--password-file", pw("carol"), "--dir", filepath.Join(dir, "carol"), "--count", "2")
	bob.expect(ctx, t, "registered sip:bob@b1.example with pfb1")
	carol.expect(ctx, t, "registered sip:carol@b1.example with pfb1")

	// 1. A file to the pre-defined group.
	file := filepath.Join(dir, "payload.bin")
	sum1 := randomFile(t, file, 1<<20+4321)
	send := on("clienta", "send --to", nil, "send", "--config", cfg, "--from", "sip:alice@a.example", "--password-file", pw("alice"), "--to", "sip:team@cf.example", "--file", file)
	code, out := send.wait(ctx, t)
	if code != 0 || !strings.Contains(out, "sha256 "+sum1) || !strings.Contains(out, "2 of 2 members delivered") {
		t.Fatalf("send --to: exit %d\n%s\nstderr:\n%s", code, out, send.stderr.String())
	}
	storedLine(t, "bob", bob.expect(ctx, t, "message 1: "), sum1, 1<<20+4321)
	storedLine(t, "carol", carol.expect(ctx, t, "message 1: "), sum1, 1<<20+4321)

	// 2. Standard input to an ad-hoc group.
	stdin := make([]byte, 300_000)
	rand.Read(stdin)
	s2 := sha256.Sum256(stdin)
	sum2 := hex.EncodeToString(s2[:])
	send = on("clienta", "send --members -", bytes.NewReader(stdin), "send", "--config", cfg, "--from", "sip:alice@a.example", "--password-file", pw("alice"),
		"--members", "sip:bob@b1.example,sip:carol@b1.example", "--file", "-")
	if code, out := send.wait(ctx, t); code != 0 || !strings.Contains(out, "sha256 "+sum2) || !strings.Contains(out, "2 of 2 members delivered") {
		t.Fatalf("send --members: exit %d\n%s\nstderr:\n%s", code, out, send.stderr.String())
	}
	storedLine(t, "bob", bob.expect(ctx, t, "message 2: "), sum2, 300_000)
	storedLine(t, "carol", carol.expect(ctx, t, "message 2: "), sum2, 300_000)

	for _, m := range []*proc{bob, carol} {
		if code, out := m.wait(ctx, t); code != 0 || !strings.HasSuffix(out, "stopped after 2 messages") {
			t.Errorf("%s: exit %d\n%s\nstderr:\n%s", m.name, code, out, m.stderr.String())
		}
	}
	for _, s := range servers {
		if out := s.stop(ctx, t); !strings.HasSuffix(out, "stopped") {
			t.Errorf("%s:\n%s", s.name, out)
		}
	}
	for _, p := range append(servers, bob, carol) {
		if e := p.stderr.String(); e != "" {
			t.Errorf("%s wrote to stderr:\n%s", p.name, e)
		}
	}
}
