package kamailiotest

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// config is testdata/kamailio-sip-core.cfg, embedded so that a test of any package can
// run it whatever its working directory.
//
//go:embed testdata/kamailio-sip-core.cfg
var config []byte

// Kamailio is a running instance, killed at the cleanup of the test that started it.
type Kamailio struct {
	// Addr is where it takes SIP over UDP and TCP: 127.0.0.1:PORT.
	Addr string
	// TLSAddr is where it takes SIP over TLS (StartTLS), "" without.
	TLSAddr string
	// Log is the file its standard output and error go to; a failed test logs its tail.
	Log   string
	child *Child
}

// Require skips t unless kamailio is installed, and returns its path.
func Require(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("kamailio")
	if err != nil {
		t.Skip("kamailio not installed: this integration test needs Debian package kamailio (.ci/run installs it)")
	}
	return bin
}

// attempts is how many fresh ports Start tries before it fails the test.
const attempts = 3

// Start starts Kamailio as the SIP/IP core on a free loopback port, with the routing table
// (domain -> host:port) that setup returns. Before each attempt it calls setup with the
// address Kamailio is about to take, so that setup can start what must know the core's
// address first (endpoints whose proxy it is) and then report where they listen. Kamailio
// must bind the port itself, so another process may take it in between; Start then tries
// again on a fresh port and calls setup again, and what the earlier setup started is left
// to t's cleanup. Start skips t when kamailio is not installed, before calling setup.
func Start(t testing.TB, setup func(addr string) (routes map[string]string)) *Kamailio {
	t.Helper()
	return StartDefines(t, nil, setup)
}

// StartDefines is Start with more of the configuration's -A defines (TrustedDefine).
func StartDefines(t testing.TB, defines []string, setup func(addr string) (routes map[string]string)) *Kamailio {
	t.Helper()
	return start(t, Require(t), defines, nil, func(addr, _ string) map[string]string { return setup(addr) })
}

// TLS names the PEM files Kamailio serves SIP over TLS with (StartTLS).
type TLS struct {
	Cert, Key string // its certificate and private key, shown to clients and to servers
	CA        string // the CAs it trusts: every peer, client or server, needs a certificate of one
}

// StartTLS is Start with SIP over TLS too (the configuration's WITH_TLS), on the port
// after the UDP/TCP one: setup gets both addresses, and routes a request that came over
// TLS to a TLS port. It skips t when kamailio or its tls module is not installed.
func StartTLS(t testing.TB, files TLS, setup func(addr, tlsAddr string) (routes map[string]string)) *Kamailio {
	t.Helper()
	return start(t, RequireTLS(t), nil, &files, setup)
}

// RequireTLS skips t unless kamailio and its tls module are installed, and returns
// kamailio's path.
func RequireTLS(t testing.TB) string {
	t.Helper()
	bin := Require(t)
	out, _ := exec.Command(bin, "-I").CombinedOutput()
	m := regexp.MustCompile(`(?m)paths to modules: (\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("kamailio -I names no module directory:\n%s", tail(out, 2000))
	}
	if _, err := os.Stat(filepath.Join(string(m[1]), "tls.so")); err != nil {
		t.Skip("kamailio's tls module not installed: this integration test needs Debian package kamailio-tls-modules (.ci/run installs it)")
	}
	return bin
}

func start(t testing.TB, bin string, defines []string, files *TLS, setup func(addr, tlsAddr string) (routes map[string]string)) *Kamailio {
	t.Helper()
	var errs []error
	for attempt := 1; attempt <= attempts; attempt++ {
		n := 1
		if files != nil {
			n = 2 // TLS takes the port after UDP's and TCP's
		}
		port := FreePorts(t, n)
		tlsAddr := ""
		if files != nil {
			tlsAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port+1))
		}
		routes := setup(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), tlsAddr)
		k, err := run(t, bin, port, routes, defines, files)
		if err == nil {
			return k
		}
		errs = append(errs, fmt.Errorf("attempt %d: %w", attempt, err))
	}
	t.Fatalf("kamailio did not come up: %v", errors.Join(errs...))
	return nil
}

// Ports are picked below Linux's default ephemeral range (32768-60999), where the ports
// other tests bind with port 0 never land: only a process that asks for a port by number
// can take one of ours between FreePorts and the bind.
const portLo, portHi = 20000, 32000

// given are the ports FreePorts has handed out in this process and not yet taken back:
// never twice while the test that asked runs, so that parallel tests, and Kamailio and the
// group of one test, cannot be given the same port. They are taken back when that test
// ends (go test -count=40 once ran out of ports without that).
var given struct {
	sync.Mutex
	ports map[int]bool
}

// FreePorts returns the first of n consecutive loopback ports that were all free, for UDP
// and for TCP, a moment ago: for a process or group the test starts that must bind them
// itself (Kamailio, a group with runtime.GroupConfig.BasePort, the demo's --base-port).
func FreePorts(t testing.TB, n int) int {
	t.Helper()
	if n < 1 || n > (portHi-portLo)/4 {
		t.Fatalf("kamailiotest: FreePorts(%d): want 1 to %d ports", n, (portHi-portLo)/4)
	}
	given.Lock()
	defer given.Unlock()
	if given.ports == nil {
		given.ports = map[int]bool{}
	}
	for range 100 {
		base := portLo + rand.IntN(portHi-portLo-n)
		if !givenAny(base, n) && portsFree(base, n) {
			for p := base; p < base+n; p++ {
				given.ports[p] = true
			}
			// Registered before whatever the test starts on these ports, so it runs after
			// that is stopped (cleanups run last first).
			t.Cleanup(func() {
				given.Lock()
				defer given.Unlock()
				for p := base; p < base+n; p++ {
					delete(given.ports, p)
				}
			})
			return base
		}
	}
	t.Fatalf("kamailiotest: no %d consecutive free loopback ports in [%d, %d)", n, portLo, portHi)
	return 0
}

func givenAny(base, n int) bool {
	for p := base; p < base+n; p++ {
		if given.ports[p] {
			return true
		}
	}
	return false
}

func portsFree(base, n int) bool {
	var held []io.Closer
	defer func() {
		for _, c := range held {
			_ = c.Close()
		}
	}()
	for p := base; p < base+n; p++ {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		held = append(held, l)
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		held = append(held, u)
	}
	return true
}

// domainRE is what routesDefine accepts as a domain: the table is a string of
// domain=host:port pairs, so neither may hold the separators.
var domainRE = regexp.MustCompile(`^[A-Za-z0-9.-]+$`)

// RoutesDefine is the -A argument that gives the configuration its routing table:
// ROUTES="d1=host:port;d2=host:port", domains sorted.
func RoutesDefine(routes map[string]string) (string, error) {
	var pairs []string
	for _, d := range slices.Sorted(maps.Keys(routes)) {
		hp := routes[d]
		host, port, err := net.SplitHostPort(hp)
		if !domainRE.MatchString(d) || err != nil || net.ParseIP(host) == nil || port == "" {
			return "", fmt.Errorf("kamailiotest: bad route %q -> %q: want a domain and IP:port", d, hp)
		}
		pairs = append(pairs, d+"="+hp)
	}
	return `ROUTES="` + strings.Join(pairs, ";") + `"`, nil
}

// TrustedDefine is the -A argument that sets the configuration's trust domain (RFC 3325):
// TRUSTED_NET="net/bits,...", each entry an IP (taken as a single address) or a CIDR
// prefix. Identity headers from any other source are removed.
func TrustedDefine(nets []string) (string, error) {
	var out []string
	for _, n := range nets {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			a, aerr := netip.ParseAddr(n)
			if aerr != nil {
				return "", fmt.Errorf("kamailiotest: trusted network %q is neither an IP nor a CIDR prefix", n)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked().String())
	}
	if len(out) == 0 {
		return "", fmt.Errorf("kamailiotest: an empty trust domain")
	}
	return `TRUSTED_NET="` + strings.Join(out, ",") + `"`, nil
}

// run starts one instance on port and waits until it answers; on failure it has already
// killed it.
func run(t testing.TB, bin string, port int, routes map[string]string, defines []string, files *TLS) (*Kamailio, error) {
	dir := t.TempDir()
	args, err := Args(dir, "127.0.0.1", port, routes)
	if err != nil {
		t.Fatal(err)
	}
	k := &Kamailio{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	if files != nil {
		for _, f := range []string{files.Cert, files.Key, files.CA} {
			if strings.ContainsAny(f, `"`+"\n") || !filepath.IsAbs(f) {
				t.Fatalf("kamailiotest: TLS file %q: want an absolute path without quotes", f)
			}
		}
		k.TLSAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port+1))
		defines = append(slices.Clip(defines), "WITH_TLS", "TLS_PORT="+strconv.Itoa(port+1),
			`TLS_CERT="`+files.Cert+`"`, `TLS_KEY="`+files.Key+`"`, `TLS_CA="`+files.CA+`"`)
	}
	for _, d := range defines {
		args = append(args, "-A", d)
	}
	// Kamailio forks its workers even in the foreground (-DD): StartChild's process group
	// lets cleanup kill every one of them, not only the parent.
	c, err := StartChild(t, exec.Command(bin, args...), filepath.Join(dir, "kamailio.log"))
	if err != nil {
		return nil, err
	}
	k.Log, k.child = c.Log, c
	if err := probe(k.Addr, k.TLSAddr, c); err != nil {
		c.Stop()
		return nil, fmt.Errorf("%w\n%s", err, c.LogTail(3000))
	}
	return k, nil
}

// Args writes the configuration into dir and returns the arguments that run it in the
// foreground on ip:port (UDP and TCP) with the routing table (domain -> IP:port): what
// Start runs on loopback, for a test that runs Kamailio elsewhere, behind `ip netns exec`.
func Args(dir, ip string, port int, routes map[string]string) ([]string, error) {
	if net.ParseIP(ip) == nil {
		return nil, fmt.Errorf("kamailiotest: %q is not an IP address", ip)
	}
	define, err := RoutesDefine(routes)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "kamailio.cfg")
	if err := os.WriteFile(cfgPath, config, 0o644); err != nil {
		return nil, err
	}
	return []string{"-f", cfgPath, "-DD", "-E", "-m", "64", "-M", "8",
		"-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"), "-w", dir,
		"-A", "SIP_IP=" + ip, "-A", "SIP_PORT=" + strconv.Itoa(port), "-A", define}, nil
}

// probe sends OPTIONS over UDP until Kamailio answers anything (it answers 404 to a
// request for itself), then checks that TCP (and tlsAddr, unless "") accepts: readiness
// by probing, bounded by a deadline, never by sleeping.
func probe(addr, tlsAddr string, c *Child) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer pc.Close()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return err
	}
	buf := make([]byte, 4096)
	// Each probe waits for its answer a little longer than the one before (a probe sent
	// before Kamailio has bound the port is lost), up to 200 ms.
	wait := 10 * time.Millisecond
	for i := 0; ; i++ {
		select {
		case <-c.Done():
			return fmt.Errorf("kamailio exited early: %v", c.Err())
		case <-ctx.Done():
			return fmt.Errorf("kamailio at %s never answered OPTIONS", addr)
		default:
		}
		opt := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-probe%d;rport\r\nMax-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p%d\r\nTo: <sip:%s>\r\nCall-ID: probe%d@127.0.0.1\r\nCSeq: %d OPTIONS\r\nContent-Length: 0\r\n\r\n",
			addr, pc.LocalAddr(), i, i, addr, i, i+1)
		if _, err := pc.WriteTo([]byte(opt), ua); err != nil {
			return err
		}
		_ = pc.SetReadDeadline(time.Now().Add(wait))
		if n, _, err := pc.ReadFrom(buf); err == nil && bytes.HasPrefix(buf[:n], []byte("SIP/2.0 ")) {
			break
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
	var d net.Dialer
	for _, a := range []string{addr, tlsAddr} {
		if a == "" {
			continue
		}
		conn, err := d.DialContext(ctx, "tcp", a)
		if err != nil {
			return fmt.Errorf("kamailio TCP at %s: %w", a, err)
		}
		_ = conn.Close()
	}
	return nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// defineRE finds a pre-processor default of the configuration: #!define NAME VALUE.
var defineRE = regexp.MustCompile(`(?m)^#!define (SIP_PORT|ROUTES) (.+)$`)

// Defaults are the configuration's port and routing table as committed, that is when
// Kamailio runs it without -A: what docs/kamailio.md starts next to the demo.
func Defaults() (port int, routes map[string]string) {
	routes = map[string]string{}
	for _, m := range defineRE.FindAllSubmatch(config, -1) {
		v := strings.Trim(string(m[2]), `"`)
		switch string(m[1]) {
		case "SIP_PORT":
			port, _ = strconv.Atoi(v)
		case "ROUTES":
			for pair := range strings.SplitSeq(v, ";") {
				d, hp, _ := strings.Cut(pair, "=")
				routes[d] = hp
			}
		}
	}
	return port, routes
}
