package msrp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/runtime/kamailiotest"
)

// kamailio is a Kamailio MSRP relay (RFC 4976) started for one test from
// testdata/kamailio-msrp-relay.cfg.tmpl on free loopback ports.
type kamailio struct {
	msrpPort int
	relay    URI // msrp://127.0.0.1:PORT;tcp, the AUTH target
}

// startKamailio runs kamailio in the foreground (-DD -E) as a child process
// with its runtime and working directories under t.TempDir(), waits until its
// MSRP port accepts connections, and kills it at cleanup. Its SIP and MSRP
// ports come from kamailiotest.FreePorts, outside the range port-0 listeners
// land in; Kamailio must still bind them itself, so another process may take
// one in between, and readiness probing turns that into a clear failure.
func startKamailio(t testing.TB) *kamailio {
	t.Helper()
	bin := kamailiotest.Require(t)
	tmpl, err := os.ReadFile(filepath.Join("testdata", "kamailio-msrp-relay.cfg.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sipPort := kamailiotest.FreePorts(t, 2)
	k := &kamailio{msrpPort: sipPort + 1}
	cfg := strings.NewReplacer("{{SIP_PORT}}", fmt.Sprint(sipPort), "{{MSRP_PORT}}", fmt.Sprint(k.msrpPort)).Replace(string(tmpl))
	cfgPath := filepath.Join(dir, "kamailio.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := kamailiotest.StartChild(t, exec.Command(bin, "-f", cfgPath, "-DD", "-E", "-m", "64", "-M", "8",
		"-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"), "-w", dir), filepath.Join(dir, "kamailio.log"))
	if err != nil {
		t.Fatal(err)
	}
	// Readiness: dial until the MSRP port answers, with a short backoff,
	// bounded by a deadline (probing an external process, not sleeping for
	// synchronisation).
	deadline, dcancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer dcancel()
	addr := fmt.Sprintf("127.0.0.1:%d", k.msrpPort)
	backoff := 10 * time.Millisecond
	for {
		var d net.Dialer
		conn, err := d.DialContext(deadline, "tcp", addr)
		if err == nil {
			_ = conn.Close()
			break
		}
		select {
		case <-c.Done():
			t.Fatalf("kamailio exited early (%v):\n%s", c.Err(), c.LogTail(3000))
		case <-deadline.Done():
			t.Fatalf("kamailio MSRP port %d never accepted: %v", k.msrpPort, err)
		case <-time.After(backoff):
			backoff = min(2*backoff, 200*time.Millisecond)
		}
	}
	k.relay = MustParseURI(fmt.Sprintf("msrp://127.0.0.1:%d;tcp", k.msrpPort))
	return k
}

// TestKamailioRelayInterop delivers a chunked message through Kamailio's
// msrp module to our own endpoint: AUTH first for a Use-Path (RFC 4976
// §5.2), then a session whose To-Path is the relay's URI followed by the
// receiver's. Chunks stay under Kamailio's ~10 KB body limit. The message
// must arrive byte-exact, every chunk's 200 must come back through the
// relay, and so must the receiver's success REPORT.
func TestKamailioRelayInterop(t *testing.T) {
	k := startKamailio(t)
	ctx := testCtx(t)
	a := newTestEndpoint(t, Config{})
	b := newTestEndpoint(t, Config{})
	auth, err := a.Auth(ctx, k.relay, a.uri("alice"))
	if err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	if len(auth.UsePath) != 1 || auth.UsePath[0].Port != k.msrpPort || auth.UsePath[0].SessionID == "" {
		t.Fatalf("Use-Path %v", auth.UsePath)
	}
	var got bytes.Buffer
	ws := NewWriterSink(&got, 0)
	bob := mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("bob"), Remote: Path{a.uri("alice")},
		Accept: func(*IncomingMessage) (Sink, error) { return ws, nil }})
	alice := mustSession(t, a.Endpoint, SessionConfig{Local: a.uri("alice"),
		Remote: append(append(Path(nil), auth.UsePath...), b.uri("bob")), ChunkSize: 8 << 10})
	link, err := alice.Connect(ctx)
	if err != nil {
		t.Fatalf("Connect through kamailio: %v", err)
	}
	if !link.Reused {
		t.Fatal("the session did not reuse the AUTH connection to the relay")
	}
	select {
	case <-bob.Up():
	case <-ctx.Done():
		t.Fatal("receiver never bound")
	}
	body := randBytes(100_000, 42)
	res, err := alice.Send(ctx, &Message{ContentType: "message/cpim", Body: bytes.NewReader(body), Size: int64(len(body)), SuccessReport: true})
	if err != nil || !res.Delivered() {
		t.Fatalf("Send through kamailio = %+v, %v", res, err)
	}
	waitClosed(t, ctx, ws.Done())
	if ws.Err() != nil || !bytes.Equal(got.Bytes(), body) {
		t.Fatalf("received %d bytes (%v), want %d byte-exact", got.Len(), ws.Err(), len(body))
	}
	// Kamailio inserted itself: the receiver learned a two-hop path back.
	if r := bob.Remote(); len(r) == 0 || !r[len(r)-1].Equal(a.uri("alice")) {
		t.Fatalf("receiver's remote path %v", r)
	}
}

// TestKamailioRejectsBigFrames documents the relay limit that makes chunk
// size a per-hop setting (DESIGN.md §6): a 64 KB chunk does not get through.
func TestKamailioRejectsBigFrames(t *testing.T) {
	k := startKamailio(t)
	ctx := testCtx(t)
	a := newTestEndpoint(t, Config{TransactionTimeout: 3 * time.Second})
	b := newTestEndpoint(t, Config{})
	auth, err := a.Auth(ctx, k.relay, a.uri("alice"))
	if err != nil {
		t.Fatal(err)
	}
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("bob"), Accept: func(*IncomingMessage) (Sink, error) { return NewWriterSink(&bytes.Buffer{}, 0), nil }})
	alice := mustSession(t, a.Endpoint, SessionConfig{Local: a.uri("alice"),
		Remote: append(append(Path(nil), auth.UsePath...), b.uri("bob")), ChunkSize: 64 << 10})
	if _, err := alice.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = alice.Send(ctx, &Message{ContentType: "message/cpim", Body: bytes.NewReader(make([]byte, 64<<10)), Size: 64 << 10})
	var se *StatusError
	if !errors.As(err, &se) {
		t.Fatalf("64 KB chunk through kamailio: %v, want a failure status", err)
	}
	t.Logf("kamailio answered a 64 KB chunk with %d (%v)", se.Code, err)
}
