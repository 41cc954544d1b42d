package msrp

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTsharkOracle checks our frames against an independent decoder: frames
// are exchanged in lock-step (one frame per TCP segment, since tshark decodes
// only the first MSRP frame of a segment), captured on loopback with a
// capture filter on our own port, and tshark's MSRP fields must match what
// was sent and received. tshark flags nothing as malformed, so this is a field
// oracle, not a validity oracle.
func TestTsharkOracle(t *testing.T) {
	bin, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed: the decoder oracle needs Debian package tshark (.ci/run installs it)")
	}
	if os.Geteuid() != 0 {
		t.Skip("tshark oracle: capturing on loopback needs root")
	}
	ctx := testCtx(t)
	b := newTestEndpoint(t, Config{})
	var got bytes.Buffer
	ws := NewWriterSink(&got, 0)
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("bobsess"), Accept: func(*IncomingMessage) (Sink, error) { return ws, nil }})
	port := b.addr.Port

	// tshark's stderr goes to a file: with a pipe there, it ignored SIGTERM
	// once capturing (seen with tshark 4.0 on Debian 12).
	errPath := filepath.Join(t.TempDir(), "tshark.err")
	errFile, err := os.Create(errPath)
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	capLog := func() string { b, _ := os.ReadFile(errPath); return string(b) }
	// Live decoding, one line per MSRP frame, flushed per packet (-l): the
	// test reads until it has seen every frame it exchanged.
	capture := exec.Command(bin, "-l", "-i", "lo", "-f", fmt.Sprintf("tcp port %d", port),
		"-d", fmt.Sprintf("tcp.port==%d,msrp", port), "-Y", "msrp",
		"-T", "fields", "-E", "separator=|", "-e", "msrp.transaction.id", "-e", "msrp.method", "-e", "msrp.status.code",
		"-e", "msrp.to.path", "-e", "msrp.from.path", "-e", "msrp.messageid", "-e", "msrp.byte.range", "-e", "msrp.cnt.flg")
	capture.Stderr = errFile
	// tshark captures through a dumpcap child: its own process group lets the
	// fallback kill both.
	capture.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := capture.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	if err := capture.Start(); err != nil {
		t.Skipf("tshark cannot start: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = capture.Wait(); close(exited) }()
	stop := func() {
		// SIGTERM, not SIGINT: tshark flushes on either, but a shell that
		// runs the tests in the background may ignore SIGINT for children.
		_ = capture.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-capture.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}
	defer func() {
		select {
		case <-exited:
		default:
			stop()
		}
	}()
	// Readiness of an external process: poll its log with a short backoff,
	// bounded by the test deadline.
	for backoff := 10 * time.Millisecond; !strings.Contains(capLog(), "Capture started"); backoff = min(2*backoff, 100*time.Millisecond) {
		select {
		case <-exited:
			t.Fatalf("tshark exited before capturing:\n%s", capLog())
		case <-ctx.Done():
			t.Fatalf("tshark never reported capturing:\n%s", capLog())
		case <-time.After(backoff):
		}
	}

	// The exchange: bind, three chunks (+, +, $) of one message, then a
	// REPORT we send (never answered). Each request waits for its answer.
	peer := dialRaw(t, b.addr)
	to, from := b.uri("bobsess").String(), "msrp://127.0.0.1:9/alicesess;tcp"
	body := "0123456789abcdefghijklmnopqrstuvwxyz"
	type want struct{ tid, method, status, to, from, msgid, brange, flag string }
	var wants []want
	toP, fromP := Path{MustParseURI(to)}, Path{MustParseURI(from)}
	exchange := func(tid, msgid, rng, part string, flag byte) {
		// Requests come from our serializer too, so both directions are
		// checked against the oracle.
		br, err := ParseByteRange(rng)
		if err != nil {
			t.Fatal(err)
		}
		f := Frame{TID: tid, Method: MethodSEND, ToPath: toP, FromPath: fromP, MessageID: msgid, ByteRange: br, Flag: flag}
		if part != "" {
			f.ContentType, f.Body = "text/plain", []byte(part)
		}
		peer.send(string(f.Marshal()))
		wants = append(wants, want{tid, "SEND", "", to, from, msgid, rng, string(flag)})
		r := peer.next()
		if r.Status != 200 {
			t.Fatalf("%s answered %d", tid, r.Status)
		}
		wants = append(wants, want{tid, "", "200", r.ToPath.String(), r.FromPath.String(), "", "", "$"})
	}
	exchange("tsbind001", "tsmsg0000", "1-0/0", "", '$')
	exchange("tschunk01", "tsmsg0001", "1-12/36", body[:12], '+')
	exchange("tschunk02", "tsmsg0001", "13-24/36", body[12:24], '+')
	exchange("tschunk03", "tsmsg0001", "25-36/36", body[24:], '$')
	rep := Frame{TID: "tsreport1", Method: MethodREPORT, ToPath: toP, FromPath: fromP, MessageID: "tsmsg0009",
		ByteRange: ByteRange{1, 36, 36}, ReportStatus: &ReportStatus{Code: 200, Reason: "OK"}}
	peer.send(string(rep.Marshal()))
	wants = append(wants, want{"tsreport1", "REPORT", "", to, from, "tsmsg0009", "1-36/36", "$"})
	// A last lock-step exchange makes sure the REPORT was read before we stop.
	exchange("tsfinal01", "tsmsg0000", "1-0/0", "", '$')
	select {
	case <-ws.Done():
	case <-ctx.Done():
		t.Fatal("message never completed")
	}
	if got.String() != body {
		t.Fatalf("received %q", got.String())
	}
	var rows []want
	for len(rows) < len(wants) {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("tshark ended after %d of %d frames:\n%s", len(rows), len(wants), capLog())
			}
			f := strings.Split(line, "|")
			if len(f) != 8 {
				t.Fatalf("tshark row %q", line)
			}
			// tshark lists the id of the start-line and of the end-line:
			// both must be the one we used.
			ids := strings.Split(f[0], ",")
			if len(ids) != 2 || ids[0] != ids[1] {
				t.Errorf("start-line and end-line ids differ: %q", f[0])
			}
			rows = append(rows, want{ids[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]})
		case <-ctx.Done():
			t.Fatalf("tshark decoded %d of %d frames before the deadline: %+v\n%s", len(rows), len(wants), rows, capLog())
		}
	}
	// Packets arrive in capture order, which lock-step makes our order.
	for i := range wants {
		if rows[i] != wants[i] {
			t.Errorf("frame %d:\n tshark %+v\n    we %+v", i, rows[i], wants[i])
		}
	}
}
