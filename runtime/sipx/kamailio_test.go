package sipx

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// kamailio is a Kamailio SIP/IP core started for one test from
// testdata/kamailio-sip-core.cfg.tmpl.
type kamailio struct {
	addr string // 127.0.0.1:PORT, UDP and TCP
	log  string
}

// freeSharedPort returns a loopback port that was free for both UDP and TCP
// a moment ago. Kamailio must bind it itself; startKamailio retries with
// another port when it loses that race.
func freeSharedPort(t *testing.T) int {
	t.Helper()
	uc, tl, err := listenPair("127.0.0.1", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	port := tl.Addr().(*net.TCPAddr).Port
	_ = uc.Close()
	_ = tl.Close()
	return port
}

// startKamailio runs kamailio in the foreground (-DD -E) as a child process
// in a process group of its own, with routes (domain -> IP:port) templated
// into its configuration, waits until it answers SIP, and kills the whole
// group at cleanup.
func startKamailio(t *testing.T, routes map[string]string) *kamailio {
	t.Helper()
	bin, err := exec.LookPath("kamailio")
	if err != nil {
		t.Skip("kamailio not installed: this integration test needs Debian package kamailio (.ci/run installs it)")
	}
	tmpl, err := os.ReadFile(filepath.Join("testdata", "kamailio-sip-core.cfg.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		k, err := runKamailio(t, bin, string(tmpl), routes)
		if err == nil {
			return k
		}
		lastErr = err
		t.Logf("kamailio attempt %d: %v", attempt+1, err)
	}
	t.Fatalf("kamailio did not come up: %v", lastErr)
	return nil
}

func runKamailio(t *testing.T, bin, tmpl string, routes map[string]string) (*kamailio, error) {
	dir := t.TempDir()
	port := freeSharedPort(t)
	var doms []string
	for d := range routes {
		doms = append(doms, d)
	}
	sort.Strings(doms)
	var rb strings.Builder
	for _, d := range doms {
		fmt.Fprintf(&rb, "  if ($rd == \"%s\") {\n    $du = \"sip:%s;transport=\" + $pr;\n  }\n", d, routes[d])
	}
	cfg := strings.NewReplacer("{{SIP_PORT}}", fmt.Sprint(port), "{{ROUTES}}", rb.String()).Replace(tmpl)
	cfgPath := filepath.Join(dir, "kamailio.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	k := &kamailio{addr: fmt.Sprintf("127.0.0.1:%d", port), log: filepath.Join(dir, "kamailio.log")}
	logf, err := os.Create(k.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-f", cfgPath, "-DD", "-E", "-m", "64", "-M", "8",
		"-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"), "-w", dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Kamailio forks its workers even with -DD: a process group of its own
	// lets cleanup kill every one of them, not only the parent.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("starting kamailio: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		_ = logf.Close()
	}
	if err := probeKamailio(k.addr, exited); err != nil {
		stop()
		b, _ := os.ReadFile(k.log)
		return nil, fmt.Errorf("%w\n%s", err, tail(string(b), 3000))
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			if b, err := os.ReadFile(k.log); err == nil {
				t.Logf("kamailio log (tail):\n%s", tail(string(b), 4000))
			}
		}
	})
	return k, nil
}

// probeKamailio sends OPTIONS over UDP until Kamailio answers anything (it
// answers 404 to OPTIONS for itself), then checks that TCP accepts: readiness
// by probing, bounded by a deadline.
func probeKamailio(addr string, exited chan error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer pc.Close()
	ua, _ := net.ResolveUDPAddr("udp", addr)
	buf := make([]byte, 4096)
	for i := 0; ; i++ {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("kamailio exited early: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("kamailio at %s never answered OPTIONS", addr)
		default:
		}
		opt := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-probe%d;rport\r\nMax-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p%d\r\nTo: <sip:%s>\r\nCall-ID: probe%d@127.0.0.1\r\nCSeq: %d OPTIONS\r\nContent-Length: 0\r\n\r\n",
			addr, pc.LocalAddr(), i, i, addr, i, i+1)
		if _, err := pc.WriteTo([]byte(opt), ua); err != nil {
			return err
		}
		// Wait up to 200ms for an answer before probing again.
		_ = pc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, _, err := pc.ReadFrom(buf)
		if err == nil {
			if _, perr := sip.ParseMessage(buf[:n]); perr == nil {
				break
			}
		}
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("kamailio TCP: %w", err)
	}
	return c.Close()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestKamailioCore runs dialogs between two sipx endpoints with Kamailio as
// the SIP/IP core: INVITE / 200 / ACK / BYE over UDP and over TCP, with a
// callee's BYE that must follow Kamailio's Record-Route, a CANCEL through a
// stateful proxy (Kamailio answers 100 and CANCEL itself, RFC 3261 §16.10),
// and a >1300-byte ad-hoc INVITE that must switch to TCP (§18.1.1).
func TestKamailioCore(t *testing.T) {
	if _, err := exec.LookPath("kamailio"); err != nil {
		t.Skip("kamailio not installed: this integration test needs Debian package kamailio (.ci/run installs it)")
	}
	for _, tc := range []struct {
		name, transport string
		cancel, large   bool
		calleeByes      bool
	}{
		{name: "udp", transport: "udp"},
		{name: "udp/callee-byes", transport: "udp", calleeByes: true},
		{name: "tcp", transport: "tcp"},
		{name: "tcp/callee-byes", transport: "tcp", calleeByes: true},
		{name: "udp/cancel", transport: "udp", cancel: true},
		{name: "tcp/cancel", transport: "tcp", cancel: true},
		{name: "udp/large-goes-tcp", transport: "udp", large: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			// Endpoints first (Kamailio's routes need their ports); they
			// learn Kamailio's address afterwards through a second pair
			// that uses it as proxy.
			probeA := startEP(t, Config{Name: "alice", Identity: "sip:alice@a.example", Transport: tc.transport, ContactParams: largeMsgTags})
			probeB := startEP(t, Config{Name: "bob", Identity: "sip:bob@b.example", Transport: tc.transport, ContactParams: largeMsgTags})
			k := startKamailio(t, map[string]string{"a.example": probeA.UDPAddr(), "b.example": probeB.UDPAddr()})
			a, b := withProxy(t, probeA, k.addr), withProxy(t, probeB, k.addr)

			parts := []Part{{ContentType: "application/sdp", Body: []byte(sdpOffer)}}
			if tc.large {
				parts = append(parts, Part{ContentType: "application/resource-lists+xml", Disposition: "recipient-list", Body: resourceList(40)})
			}
			if err := a.Invite("k1", "sip:bob@b.example", "sip:alice@a.example", parts, largeMessageHeaders()); err != nil {
				t.Fatal(err)
			}
			inv := b.rec.next(t, ctx, "invite")
			wantTp := strings.ToUpper(tc.transport)
			if tc.large {
				wantTp = "TCP"
			}
			if inv.in.Transport != wantTp {
				t.Errorf("INVITE reached the callee over %s, want %s", inv.in.Transport, wantTp)
			}
			if !strings.Contains(inv.in.Header("Record-Route"), k.addr) {
				t.Errorf("Kamailio did not record-route: Record-Route %q", inv.in.Header("Record-Route"))
			}
			if len(inv.in.Parts) != len(parts) || inv.in.From != "sip:alice@a.example" || inv.in.Header("Contribution-ID") != "abcdef-0001" {
				t.Errorf("INVITE through Kamailio: %d parts, From %q, Contribution-ID %q", len(inv.in.Parts), inv.in.From, inv.in.Header("Contribution-ID"))
			}
			if tc.cancel {
				if err := a.Cancel("k1"); err != nil {
					t.Fatal(err)
				}
				b.rec.next(t, ctx, "cancel")
				if err := b.Reject(inv.leg, 487, "", nil); err != nil {
					t.Fatal(err)
				}
				if r := a.rec.next(t, ctx, "response"); r.res.Status != 487 {
					t.Fatalf("cancelled INVITE ended with %v", r)
				}
				return
			}
			if err := b.Answer(inv.leg, []Part{{ContentType: "application/sdp", Body: []byte(sdpAnswer)}}, nil); err != nil {
				t.Fatal(err)
			}
			r := a.rec.next(t, ctx, "response")
			if r.res.Status != 200 || len(r.res.Parts) != 1 || string(r.res.Parts[0].Body) != sdpAnswer {
				t.Fatalf("caller got %v", r)
			}
			if !strings.Contains(r.res.Header("Record-Route"), k.addr) {
				t.Errorf("200 OK without Kamailio's Record-Route: %q", r.res.Header("Record-Route"))
			}
			if err := a.Ack("k1"); err != nil {
				t.Fatal(err)
			}
			b.rec.next(t, ctx, "ack")
			if tc.calleeByes {
				if err := b.Bye(inv.leg); err != nil {
					t.Fatal(err)
				}
				a.rec.next(t, ctx, "bye")
			} else {
				if err := a.Bye("k1"); err != nil {
					t.Fatal(err)
				}
				b.rec.next(t, ctx, "bye")
			}
			a.rec.none(t)
			b.rec.none(t)
		})
	}
}

// withProxy restarts a test endpoint's configuration on the same ports with
// Proxy set: the endpoints had to exist before Kamailio (its routes name
// their ports), and Kamailio before their Proxy setting.
func withProxy(t *testing.T, e *testEP, proxy string) *testEP {
	t.Helper()
	cfg := e.cfg
	_, port, _ := net.SplitHostPort(e.UDPAddr())
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	fmt.Sscan(port, &cfg.UDPPort)
	cfg.TCPPort = cfg.UDPPort
	cfg.Proxy = proxy
	cfg.Logger = nil
	return startEP(t, cfg)
}
