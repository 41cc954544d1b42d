package sipx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/runtime/kamailiotest"
)

// sipp runs SIPp (Debian package sip-tester) as an independent SIP peer: a
// child process in its own process group, killed with the group at cleanup,
// its exit status the verdict (0: every call succeeded).
type sipp struct{ *kamailiotest.Child }

func startSipp(t *testing.T, args ...string) *sipp {
	t.Helper()
	bin, err := exec.LookPath("sipp")
	if err != nil {
		t.Skip("sipp not installed: this interop test needs Debian package sip-tester")
	}
	dir := t.TempDir()
	// sipp binds RTP sockets from port 6000 upward unless told otherwise, and sipps
	// started at once (here, or by another package's tests) race for the same port.
	args = append(args, "-mp", strconv.Itoa(kamailiotest.FreePorts(t, 4)),
		"-nostdin", "-timeout", "20s", "-timeout_error",
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
		"-trace_msg", "-message_file", filepath.Join(dir, "messages.log"))
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	c, err := kamailiotest.StartChild(t, cmd, filepath.Join(dir, "sipp.out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{"messages.log", "errors.log"} {
				if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
					t.Logf("sipp %s (tail):\n%s", f, tail(string(b), 4000))
				}
			}
		}
	})
	return &sipp{c}
}

// wait waits for sipp to exit and fails the test unless it succeeded.
func (s *sipp) wait(t *testing.T, ctx context.Context) {
	t.Helper()
	select {
	case <-s.Done():
		if err := s.Err(); err != nil {
			t.Fatalf("sipp failed: %v\n%s", err, s.LogTail(2000))
		}
	case <-ctx.Done():
		t.Fatal("sipp did not finish")
	}
}

// waitBound waits until sipp has bound port, by probing it: readiness of an
// external process, bounded by ctx.
func waitBound(t *testing.T, ctx context.Context, s *sipp, network string, port int) {
	t.Helper()
	backoff := 5 * time.Millisecond
	for {
		var busy bool
		switch network {
		case "udp":
			pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
			busy = errors.Is(err, syscall.EADDRINUSE)
			if err == nil {
				_ = pc.Close()
			}
		case "tcp":
			c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			busy = err == nil
			if err == nil {
				_ = c.Close()
			}
		}
		if busy {
			return
		}
		select {
		case <-s.Done():
			t.Fatalf("sipp exited early: %v\n%s", s.Err(), s.LogTail(2000))
		case <-ctx.Done():
			t.Fatalf("sipp never bound %s port %d", network, port)
		case <-time.After(backoff):
			backoff = min(2*backoff, 100*time.Millisecond)
		}
	}
}

func sippTransport(network string) string {
	if network == "tcp" {
		return "t1"
	}
	return "u1"
}

// TestSippCallsSipx: SIPp's built-in UAC scenario calls a sipx endpoint
// (INVITE, 200, ACK, BYE); the endpoint answers, sees the ACK and the BYE,
// and SIPp reports the call successful.
func TestSippCallsSipx(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			ctx := testCtx(t)
			b := startEP(t, Config{Name: "bob", Identity: "sip:bob@b.example"})
			s := startSipp(t, "-sn", "uac", "-m", "1", "-s", "bob", "-i", "127.0.0.1", "-p", fmt.Sprint(freeTCPPort(t)),
				"-t", sippTransport(network), b.UDPAddr())
			inv := b.rec.next(t, ctx, "invite")
			if inv.in.Transport != map[string]string{"udp": "UDP", "tcp": "TCP"}[network] {
				t.Errorf("INVITE over %s", inv.in.Transport)
			}
			if err := b.Answer(inv.leg, []Part{{ContentType: "application/sdp", Body: []byte(sdpAnswer)}}, nil); err != nil {
				t.Fatal(err)
			}
			// SIPp sends its BYE right after its ACK, waiting for nothing, and the two are
			// handled on goroutines of their own: the BYE may be handled first. It ends
			// the dialog, and the ACK after it is absorbed. Either order is correct; an
			// ACK reported after the BYE is not.
			if b.rec.nextOf(t, ctx, "ack", "bye").kind == "ack" {
				b.rec.next(t, ctx, "bye")
			}
			s.wait(t, ctx)
			b.rec.none(t)
		})
	}
}

// TestSipxCallsSipp: a sipx endpoint calls SIPp's built-in UAS scenario
// (which answers 180 then 200, expects the ACK and a BYE), ACKs the 2xx and
// hangs up; SIPp reports the call successful.
func TestSipxCallsSipp(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			// SIPp's UAS scenario lingers 4 s after the BYE (to resend a
			// lost 200); the two run side by side.
			t.Parallel()
			ctx := testCtx(t)
			a := startEP(t, Config{Name: "alice", Identity: "sip:alice@a.example", Transport: network})
			port := freeTCPPort(t)
			s := startSipp(t, "-sn", "uas", "-m", "1", "-i", "127.0.0.1", "-p", fmt.Sprint(port), "-t", sippTransport(network))
			waitBound(t, ctx, s, network, port)
			if err := a.Invite("s1", fmt.Sprintf("sip:service@127.0.0.1:%d", port), "", []Part{{ContentType: "application/sdp", Body: []byte(sdpOffer)}}, nil); err != nil {
				t.Fatal(err)
			}
			r := a.rec.next(t, ctx, "response")
			if r.res.Status != 200 {
				t.Fatalf("SIPp answered %v", r)
			}
			if err := a.Ack("s1"); err != nil {
				t.Fatal(err)
			}
			if err := a.Bye("s1"); err != nil {
				t.Fatal(err)
			}
			s.wait(t, ctx)
		})
	}
}

// TestSippRegistersWithDigest: SIPp, an independent digest implementation, registers
// with a sipx registrar that challenges (401, MD5 with qop=auth: what SIPp speaks) and
// answers the challenge; the registrar binds it, and SIPp's exit status says it got 200.
func TestSippRegistersWithDigest(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			ctx := testCtx(t)
			pf := startEP(t, Config{Name: "pfa", Identity: "sip:pfa@a.example", Registrar: true,
				Auth: &AuthConfig{Realm: testRealm, Credentials: testCredentials(t), Algorithms: []string{AlgMD5}}})
			scenario, err := filepath.Abs(filepath.Join("testdata", "sipp", "register-digest.xml"))
			if err != nil {
				t.Fatal(err)
			}
			s := startSipp(t, "-sf", scenario, "-m", "1", "-i", "127.0.0.1", "-p", fmt.Sprint(freeTCPPort(t)),
				"-t", sippTransport(network), pf.UDPAddr())
			s.wait(t, ctx)
			if c, ok := pf.Lookup("sip:alice@a.example"); !ok {
				t.Fatalf("SIPp's REGISTER did not bind: %q", c)
			}
		})
	}
}
