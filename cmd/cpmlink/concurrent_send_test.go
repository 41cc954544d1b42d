//go:build unix

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/runtime/kamailiotest"
)

// concurrentSendsEnv sets how many `cpmlink send` processes TestConcurrentSends starts at
// once (default 20); issue 8's figure is 200 (docs/performance.md has the command).
const concurrentSendsEnv = "CPMLINK_CONCURRENT_SENDS"

// TestConcurrentSends: against `serve` (docs/deploy.yaml's deployment: the core and every
// server role in one process, digest authentication at the PFs), N `cpmlink send`
// processes started at once from one user, then N more each from a user of its own:
// every one exits 0 (both members delivered), each member holds every message, and a
// send right after each burst works. What issue 8 found was the opposite: 20 of 40
// concurrent sends from one user failed, and every later send from it too, its bindings
// having outgrown a UDP response. The test logs each burst's time; it asserts none.
func TestConcurrentSends(t *testing.T) {
	n := 20
	if s := os.Getenv(concurrentSendsEnv); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("%s=%q: a whole number of sends, at least 1", concurrentSendsEnv, s)
		}
		n = v
	}
	bin := buildCpmlink(t)
	// Bounded: 200 processes on a loaded 2-core machine take a minute or two.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute+time.Duration(n)*time.Second)
	defer cancel()
	dir := t.TempDir()
	var ports []any
	for p, base := 0, kamailiotest.FreePorts(t, 7); p < 7; p++ {
		ports = append(ports, base+p)
	}
	// The users u1 ... uN of a.example, each a client of pfa, a sender to the group, and
	// in the credentials file with a password file of its own.
	users := make([]string, n)
	creds, err := os.ReadFile(filepath.Join("..", "..", "docs", "deploy-credentials.txt"))
	if err != nil {
		t.Fatal(err)
	}
	credText := string(creds)
	var clients strings.Builder
	pw := func(user string) string { return filepath.Join(dir, user+".password") }
	passwords := map[string]string{pw("alice"): "alice-example-password", pw("bob"): "bob-example-password", pw("carol"): "carol-example-password"}
	for i := range users {
		u := "u" + strconv.Itoa(i+1)
		users[i] = "sip:" + u + "@a.example"
		credText += fmt.Sprintf("%s a.example password=%s-example-password\n", u, u)
		fmt.Fprintf(&clients, "  - uri: %s\n    pf: pfa\n", users[i])
		passwords[pw(u)] = u + "-example-password"
	}
	text := fmt.Sprintf(deployTestYAML, ports...)
	text = strings.Replace(text, "senders: [sip:alice@a.example]", "senders: [sip:alice@a.example, "+strings.Join(users, ", ")+"]", 1)
	text += clients.String()
	files := map[string]string{filepath.Join(dir, "cpmlink.yaml"): text, filepath.Join(dir, "deploy-credentials.txt"): credText}
	for p, pass := range passwords {
		files[p] = pass + "\n"
	}
	for name, body := range files {
		if err := os.WriteFile(name, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "cpmlink.yaml")
	file := filepath.Join(dir, "payload.bin")
	sum := randomFile(t, file, 100_000)

	serve := startProc(t, bin, "serve", nil, "serve", "--config", cfg)
	serve.expect(ctx, t, "ready: ")
	type member struct {
		p     *proc
		mu    sync.Mutex
		lines []string
		done  chan struct{}
	}
	var members []*member
	for _, m := range []string{"bob", "carol"} {
		p := startProc(t, bin, "recv "+m, nil, "recv", "--config", cfg, "--as", "sip:"+m+"@b1.example", "--password-file", pw(m), "--dir", filepath.Join(dir, m))
		p.expect(ctx, t, "registered sip:"+m+"@b1.example with pfb1")
		mb := &member{p: p, done: make(chan struct{})}
		// Its lines are read as they come, so that a burst's hundreds of lines never fill
		// the pipe and hold the member up.
		go func() {
			defer close(mb.done)
			for l := range p.lines {
				mb.mu.Lock()
				mb.lines = append(mb.lines, l)
				mb.mu.Unlock()
			}
		}()
		members = append(members, mb)
	}

	send := func(from string) *proc {
		user := strings.TrimSuffix(strings.TrimPrefix(from, "sip:"), "@a.example")
		return startProc(t, bin, "send from "+from, nil, "send", "--config", cfg, "--from", from, "--password-file", pw(user),
			"--to", "sip:team@cf.example", "--file", file, "--timeout", "3m")
	}
	check := func(what string, p *proc) bool {
		t.Helper()
		code, out := p.wait(ctx, t)
		if code != 0 || !strings.Contains(out, "2 of 2 members delivered") || !strings.Contains(out, "sha256 "+sum) {
			t.Errorf("%s: exit %d\n%s\nstderr:\n%s", what, code, out, p.stderr.String())
			return false
		}
		return true
	}
	burst := func(name string, from func(i int) string) {
		t.Helper()
		began := time.Now()
		ps := make([]*proc, n)
		for i := range ps {
			ps[i] = send(from(i))
		}
		failed := 0
		for i, p := range ps {
			if !check(fmt.Sprintf("%s: send %d of %d", name, i+1, n), p) {
				failed++
			}
		}
		took := time.Since(began)
		began = time.Now()
		after := check(name+": the send right after", send(from(0)))
		t.Logf("%s: %d concurrent sends, %d failed, all ended in %.1f s; the send right after: ok=%v in %.2f s",
			name, n, failed, took.Seconds(), after, time.Since(began).Seconds())
	}
	burst("one user", func(int) string { return "sip:alice@a.example" })
	burst(fmt.Sprintf("%d users", n), func(i int) string { return users[i] })

	want := 2*n + 2
	for i, mb := range members {
		name := []string{"bob", "carol"}[i]
		mb.p.stop(ctx, t)
		<-mb.done
		stored := 0
		for _, l := range mb.lines {
			if strings.HasPrefix(l, "message ") && strings.Contains(l, "sha256="+sum) {
				stored++
			}
		}
		if stored != want || !strings.HasSuffix(mb.lines[len(mb.lines)-1], fmt.Sprintf("stopped after %d messages", want)) {
			t.Errorf("%s stored %d messages, want %d; last line %q", name, stored, want, mb.lines[len(mb.lines)-1])
		}
	}
	if out := serve.stop(ctx, t); !strings.HasSuffix(out, "stopped") {
		t.Errorf("serve:\n%s", out)
	}
}
