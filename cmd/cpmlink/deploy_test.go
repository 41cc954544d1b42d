//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/runtime"
	"github.com/cpmlink/cpmlink/runtime/kamailiotest"
)

// deployTestYAML is docs/deploy.yaml's deployment with free ports (%d: core, pfa sip, pfa
// msrp, cf sip, cf msrp, pfb1 sip, pfb1 msrp): pfa and pfb1 authenticate their clients
// against docs/deploy-credentials.txt, and the trust domain is the default one.
const deployTestYAML = `variant: fig1
core:
  listen: 127.0.0.1:%d
  routes:
    cf.example: cf
    b1.example: pfb1
roles:
  - name: pfa
    role: pfa
    uri: sip:pf@a.example
    sip: 127.0.0.1:%d
    msrp: 127.0.0.1:%d
    auth: {credentials: deploy-credentials.txt}
  - name: cf
    role: cf
    uri: sip:cf@cf.example
    sip: 127.0.0.1:%d
    msrp: 127.0.0.1:%d
    groups:
      sip:team@cf.example:
        members: [sip:bob@b1.example, sip:carol@b1.example]
        senders: [sip:alice@a.example]
  - name: pfb1
    role: pfb
    uri: sip:pf@b1.example
    sip: 127.0.0.1:%d
    msrp: 127.0.0.1:%d
    auth: {credentials: deploy-credentials.txt}
clients:
  - uri: sip:alice@a.example
    pf: pfa
  - uri: sip:bob@b1.example
    pf: pfb1
  - uri: sip:carol@b1.example
    pf: pfb1
`

// buildCpmlink builds the command into a temporary directory.
func buildCpmlink(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build cpmlink with")
	}
	bin := filepath.Join(t.TempDir(), "cpmlink")
	if out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// lockedBuffer collects a process's stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is a cpmlink process of the test, in a process group of its own.
type proc struct {
	name   string
	cmd    *exec.Cmd
	lines  chan string // its stdout, line by line; closed at EOF
	stderr lockedBuffer
	out    []string // every stdout line read so far, for failure messages
	done   chan struct{}
	code   int
}

func startProc(t *testing.T, bin, name string, stdin io.Reader, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, lines: make(chan string, 64), done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdin = stdin
	p.cmd.Stderr = &p.stderr
	// Its own process group, so that the cleanup kills whatever it started too.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		// Wait only after the pipe is drained (os/exec's rule for StdoutPipe).
		err := p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			p.code = -1
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
	return p
}

// expect reads stdout lines until one starts with prefix, and returns it.
func (p *proc) expect(ctx context.Context, t *testing.T, prefix string) string {
	t.Helper()
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("%s ended without printing %q:\n%s\nstderr:\n%s", p.name, prefix, strings.Join(p.out, "\n"), p.stderr.String())
			}
			p.out = append(p.out, line)
			if strings.HasPrefix(line, prefix) {
				return line
			}
		case <-ctx.Done():
			t.Fatalf("%s: no line %q: %v\nstdout:\n%s\nstderr:\n%s", p.name, prefix, ctx.Err(), strings.Join(p.out, "\n"), p.stderr.String())
		}
	}
}

// wait waits for the process to exit, reading the rest of its stdout, and returns its
// exit status and every line it printed.
func (p *proc) wait(ctx context.Context, t *testing.T) (int, string) {
	t.Helper()
	for {
		select {
		case line, ok := <-p.lines:
			if ok {
				p.out = append(p.out, line)
				continue
			}
			select {
			case <-p.done:
				return p.code, strings.Join(p.out, "\n")
			case <-ctx.Done():
			}
		case <-ctx.Done():
		}
		t.Fatalf("%s did not exit: %v\nstdout:\n%s\nstderr:\n%s", p.name, ctx.Err(), strings.Join(p.out, "\n"), p.stderr.String())
	}
}

// stop sends SIGTERM and expects a clean exit.
func (p *proc) stop(ctx context.Context, t *testing.T) string {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	code, out := p.wait(ctx, t)
	if code != 0 {
		t.Errorf("%s exited %d after SIGTERM\nstdout:\n%s\nstderr:\n%s", p.name, code, out, p.stderr.String())
	}
	return out
}

// storedLine checks a recv "message N:" line against what was sent: the stored file has
// the sha256 sent, and the line says so.
func storedLine(t *testing.T, who, line, wantSum string, wantBytes int) {
	t.Helper()
	fields := map[string]string{}
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			fields[k] = v
		}
	}
	if fields["sha256"] != wantSum || fields["bytes"] != strconv.Itoa(wantBytes) || fields["from"] != "sip:alice@a.example" {
		t.Errorf("%s: %s\nwant sha256=%s bytes=%d from=sip:alice@a.example", who, line, wantSum, wantBytes)
	}
	b, err := os.ReadFile(fields["file"])
	if err != nil {
		t.Fatalf("%s: %v", who, err)
	}
	if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != wantSum {
		t.Errorf("%s: %s holds %d bytes with another sha256", who, fields["file"], len(b))
	}
}

func randomFile(t *testing.T, path string, n int) string {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// writeTLSFiles writes a throw-away loopback certificate (runtime.LoopbackTLS) as PEM:
// cert.pem (its own CA) and key.pem.
func writeTLSFiles(t *testing.T, dir string) {
	t.Helper()
	conf, err := runtime.LoopbackTLS()
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.MarshalPKCS8PrivateKey(conf.Certificates[0].PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string]*pem.Block{
		"cert.pem": {Type: "CERTIFICATE", Bytes: conf.Certificates[0].Certificate[0]},
		"key.pem":  {Type: "PRIVATE KEY", Bytes: key},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDeployFiveProcesses runs docs/deploy.md with free ports: PF-A, CF (with the core)
// and PF-B as serve processes, two members as recv processes, and the transmitter as send
// processes; then it stops them all with SIGTERM. Once over MSRP, once over msrps.
func TestDeployFiveProcesses(t *testing.T) {
	bin := buildCpmlink(t)
	t.Run("msrp", func(t *testing.T) { testDeploy(t, bin, false) })
	t.Run("msrps", func(t *testing.T) { testDeploy(t, bin, true) })
}

func testDeploy(t *testing.T, bin string, withTLS bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cpmlink.yaml")
	var ports []any
	for p, base := 0, kamailiotest.FreePorts(t, 7); p < 7; p++ {
		ports = append(ports, base+p)
	}
	text := fmt.Sprintf(deployTestYAML, ports...)
	scheme := "msrp"
	if withTLS {
		writeTLSFiles(t, dir)
		text += "tls:\n  cert: cert.pem\n  key: key.pem\n  ca: cert.pem\n"
		scheme = "msrps"
	}
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// The page's credentials file, and each client's password in a file of its own.
	creds, err := os.ReadFile(filepath.Join("..", "..", "docs", "deploy-credentials.txt"))
	if err != nil {
		t.Fatal(err)
	}
	pw := func(user string) string { return filepath.Join(dir, user+".password") }
	for name, text := range map[string]string{filepath.Join(dir, "deploy-credentials.txt"): string(creds),
		pw("alice"): "alice-example-password\n", pw("bob"): "bob-example-password\n", pw("carol"): "carol-example-password\n", pw("wrong"): "guess\n"} {
		if err := os.WriteFile(name, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	trace := filepath.Join(dir, "pfb1.ndjson")

	servers := []*proc{
		startProc(t, bin, "serve core,cf", nil, "serve", "--config", cfg, "--role", "core,cf"),
		startProc(t, bin, "serve pfa", nil, "serve", "--config", cfg, "--role", "pfa"),
		startProc(t, bin, "serve pfb1", nil, "serve", "--config", cfg, "--role", "pfb1", "--trace", trace),
	}
	for _, s := range servers {
		s.expect(ctx, t, "ready: ")
	}
	if !strings.HasPrefix(servers[0].out[0], "started core (SIP/IP core) sip 127.0.0.1:") || !strings.HasPrefix(servers[0].out[1], "started cf (CF sip:cf@cf.example) sip 127.0.0.1:") ||
		!strings.Contains(servers[0].out[1], " "+scheme+" 127.0.0.1:") {
		t.Errorf("serve core,cf printed\n%s", strings.Join(servers[0].out, "\n"))
	}

	bob := startProc(t, bin, "recv bob", nil, "recv", "--config", cfg, "--as", "sip:bob@b1.example", "--password-file", pw("bob"), "--dir", filepath.Join(dir, "bob"), "--count", "3")
	carol := startProc(t, bin, "recv carol", nil, "recv", "--config", cfg, "--as", "sip:carol@b1.example", "--password-file", pw("carol"), "--dir", filepath.Join(dir, "carol"))
	bob.expect(ctx, t, "registered sip:bob@b1.example with pfb1")
	carol.expect(ctx, t, "registered sip:carol@b1.example with pfb1")

	// 1. A file to the pre-defined group.
	file := filepath.Join(dir, "payload.bin")
	sum1 := randomFile(t, file, 1<<20+12345)
	start := time.Now()
	send := startProc(t, bin, "send --to", nil, "send", "--config", cfg, "--from", "sip:alice@a.example", "--password-file", pw("alice"), "--to", "sip:team@cf.example", "--file", file)
	code, out := send.wait(ctx, t)
	t.Logf("send to the group: %v", time.Since(start))
	if code != 0 || !strings.Contains(out, "sha256 "+sum1) || !strings.Contains(out, "2 of 2 members delivered") {
		t.Fatalf("send --to: exit %d\n%s\nstderr:\n%s", code, out, send.stderr.String())
	}
	for _, m := range []string{"sip:bob@b1.example", "sip:carol@b1.example"} {
		if !outcomeLine(out, m, "delivered") {
			t.Errorf("send --to: no line saying %s delivered:\n%s", m, out)
		}
	}
	storedLine(t, "bob", bob.expect(ctx, t, "message 1: "), sum1, 1<<20+12345)
	storedLine(t, "carol", carol.expect(ctx, t, "message 1: "), sum1, 1<<20+12345)

	// 2. Standard input to an ad-hoc group.
	stdin := make([]byte, 200_000)
	rand.Read(stdin)
	s2 := sha256.Sum256(stdin)
	sum2 := hex.EncodeToString(s2[:])
	send = startProc(t, bin, "send --members -", bytes.NewReader(stdin), "send", "--config", cfg, "--from", "sip:alice@a.example", "--password-file", pw("alice"),
		"--members", "sip:bob@b1.example,sip:carol@b1.example", "--file", "-")
	if code, out := send.wait(ctx, t); code != 0 || !strings.Contains(out, "sha256 "+sum2+"  200000 bytes") {
		t.Fatalf("send --members --file -: exit %d\n%s\nstderr:\n%s", code, out, send.stderr.String())
	}
	storedLine(t, "bob", bob.expect(ctx, t, "message 2: "), sum2, 200_000)
	storedLine(t, "carol", carol.expect(ctx, t, "message 2: "), sum2, 200_000)

	// A wrong password: refused at the PF-A, nothing sent (bob and carol store nothing:
	// their next messages are number 3).
	send = startProc(t, bin, "send wrong password", nil, "send", "--config", cfg, "--from", "sip:alice@a.example", "--password-file", pw("wrong"),
		"--to", "sip:team@cf.example", "--file", file)
	if code, out := send.wait(ctx, t); code != 1 || !strings.Contains(send.stderr.String(), "registering with pfa: sipx: REGISTER answered 401") {
		t.Errorf("send with a wrong password: exit %d\n%s\nstderr:\n%s", code, out, send.stderr.String())
	}

	// The PF-B restarted: its members are served at once from its state dir (the recv
	// processes do not register again within the test).
	if out := servers[2].stop(ctx, t); !strings.HasSuffix(out, "stopped") {
		t.Errorf("%s:\n%s", servers[2].name, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "cpmlink.state", "pfb1.db")); err != nil {
		t.Errorf("pfb1's location store: %v", err)
	}
	servers[2] = startProc(t, bin, "serve pfb1 again", nil, "serve", "--config", cfg, "--role", "pfb1")
	servers[2].expect(ctx, t, "ready: ")

	// 3. A member who is not registered: the others still get it, and send says who did
	// not, with the status, and exits 1.
	sum3 := randomFile(t, file, 5000)
	send = startProc(t, bin, "send to dave", nil, "send", "--config", cfg, "--from", "sip:alice@a.example", "--password-file", pw("alice"),
		"--members", "sip:bob@b1.example,sip:dave@b1.example", "--file", file)
	code, out = send.wait(ctx, t)
	if code != 1 || !outcomeLine(out, "sip:dave@b1.example", "failed (480 Temporarily Unavailable)") || !outcomeLine(out, "sip:bob@b1.example", "delivered") {
		t.Errorf("send to an unregistered member: exit %d\n%s", code, out)
	}
	storedLine(t, "bob", bob.expect(ctx, t, "message 3: "), sum3, 5000)

	// bob stops by itself after --count 3; carol and the servers on SIGTERM.
	if code, out := bob.wait(ctx, t); code != 0 || !strings.HasSuffix(out, "stopped after 3 messages") {
		t.Errorf("recv --count 3: exit %d\n%s\nstderr:\n%s", code, out, bob.stderr.String())
	}
	if out := carol.stop(ctx, t); !strings.HasSuffix(out, "stopped after 2 messages") {
		t.Errorf("recv carol:\n%s", out)
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

	// The PF-B's trace: NDJSON records of its own node.
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for _, l := range lines {
		var r struct{ Node string }
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.Node != "pfb1" {
			t.Fatalf("trace line %q: %v", l, err)
		}
	}
	if len(lines) < 10 {
		t.Errorf("trace: only %d records", len(lines))
	}
	// The links were what the configuration says: the paths PF-B offered and answered.
	if !strings.Contains(string(b), `"`+scheme+`://`) {
		t.Errorf("no %s:// path in the PF-B's trace", scheme)
	}
}

// outcomeLine reports whether a line of out starts with the member and has the outcome.
func outcomeLine(out, member, outcome string) bool {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == member && strings.Contains(l, outcome) {
			return true
		}
	}
	return false
}
