package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/runtime"
)

// TestSendRefuses: send reports missing or contradictory flags and a URI that is not a
// transmitter, before anything is sent.
func TestSendRefuses(t *testing.T) {
	// The clients of the example authenticate: a password lets each case reach its check.
	t.Setenv(passwordEnv, "example")
	file := filepath.Join(t.TempDir(), "f.txt")
	if err := os.WriteFile(file, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--to", "sip:team@cf.example", "--file", file}, 2, "--from URI is required"},
		{[]string{"--from", "sip:alice@a.example", "--file", file}, 2, "give either --to GROUP-URI or --members URI,..."},
		{[]string{"--from", "sip:alice@a.example", "--to", "sip:team@cf.example", "--members", "sip:bob@b1.example", "--file", file}, 2, "give either --to"},
		{[]string{"--from", "sip:alice@a.example", "--to", "sip:team@cf.example"}, 2, "--file PATH (or --file - for stdin) is required"},
		{[]string{"--from", "sip:alice@a.example", "--to", "sip:team@cf.example", "--file", filepath.Dir(file)}, 1, "is not a regular file"},
		{[]string{"--from", "sip:bob@b1.example", "--to", "sip:team@cf.example", "--file", file}, 1, "sip:bob@b1.example registers with pfb1, a PF-B: it receives (cpmlink recv --as sip:bob@b1.example)"},
	} {
		code, stdout, stderr := cli(t, append([]string{"send", "--config", exampleConfig}, tc.args...)...)
		if code != tc.code || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("send %v: exit %d\nstdout: %s\nstderr: %s\nwant exit %d and %q", tc.args, code, stdout, stderr, tc.code, tc.want)
		}
	}
}

// TestOutcomeTable: every member gets a line, with the status of a failure; members the
// transmitter did not hear of take the session's outcome.
func TestOutcomeTable(t *testing.T) {
	var b bytes.Buffer
	o := runtime.Outcome{Members: []runtime.MemberResult{{Member: "sip:bob@b1.example", Outcome: core.DeliveredOutcome()},
		{Member: "sip:dave@b1.example", Outcome: core.FailedOutcome(480)}}}
	if n := printOutcome(&b, []string{"sip:bob@b1.example", "sip:dave@b1.example", "sip:eve@b1.example"}, o); n != 1 {
		t.Errorf("%d delivered", n)
	}
	for _, want := range []string{"sip:bob@b1.example   delivered\n", "sip:dave@b1.example  failed (480 Temporarily Unavailable)\n", "sip:eve@b1.example   unknown (no outcome came back)\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in\n%s", want, b.String())
		}
	}
	b.Reset()
	printOutcome(&b, nil, runtime.Outcome{Rest: core.FailedOutcome(404)})
	if !strings.Contains(b.String(), "(every member)  failed (404 Not Found)") {
		t.Errorf("a session refused as a whole:\n%s", b.String())
	}
}

// TestProgressBar: the bar redraws one line and ends it; off a terminal there is none.
func TestProgressBar(t *testing.T) {
	var b bytes.Buffer
	if isTerminal(&b) {
		t.Error("a buffer is not a terminal")
	}
	p := &progressBar{w: &b, total: 3 << 20}
	p.update(1 << 20)
	p.update(3 << 20)
	p.finish()
	out := b.String()
	if !strings.HasPrefix(out, "\r[==========") || !strings.Contains(out, "100% 3.0 MiB / 3.0 MiB") || !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
		t.Errorf("%q", out)
	}
}

// TestSendUnregistersAfterFailedRegister: a PF that binds a sender but whose answer never
// arrives (issue 8: a 200 too large for UDP was never sent) must not keep the binding
// after the send: send gives up on the REGISTER and still removes it (Expires: 0, the same
// Contact). The PF here is a raw UDP socket written for the test, standing in for the
// SIP/IP core, that answers nothing but the removal.
func TestSendUnregistersAfterFailedRegister(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	port := pc.LocalAddr().(*net.UDPAddr).Port
	dir := t.TempDir()
	conf := filepath.Join(dir, "deploy.yaml")
	yaml := fmt.Sprintf(`variant: fig1
transport: udp
trusted-hosts: []  # no trust domain, no auth: the test is about the binding alone
sip-core: 127.0.0.1:%d
roles:
  - {name: pfa, role: pfa, uri: "sip:pf@a.example", sip: "127.0.0.1:%d", msrp: "127.0.0.1:%d"}
  - name: cf
    role: cf
    uri: sip:cf@cf.example
    sip: 127.0.0.1:%d
    msrp: 127.0.0.1:%d
    groups:
      sip:team@cf.example: {members: [sip:bob@b1.example], senders: [sip:alice@a.example]}
  - {name: pfb1, role: pfb, uri: "sip:pf@b1.example", sip: "127.0.0.1:%d", msrp: "127.0.0.1:%d"}
clients:
  - {uri: "sip:alice@a.example", pf: pfa}
  - {uri: "sip:bob@b1.example", pf: pfb1}
`, port, port+1, port+2, port+3, port+4, port+5, port+6)
	if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "f.txt")
	if err := os.WriteFile(file, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}

	type register struct{ contact, expires string }
	seen := make(chan register, 64)
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			msg := strings.ReplaceAll(string(buf[:n]), "\r\n", "\n")
			head, _, _ := strings.Cut(msg, "\n\n")
			lines := strings.Split(head, "\n")
			if !strings.HasPrefix(lines[0], "REGISTER ") {
				continue
			}
			var r register
			var keep []string
			for _, l := range lines[1:] {
				k, v, _ := strings.Cut(l, ":")
				switch strings.ToLower(strings.TrimSpace(k)) {
				case "contact":
					r.contact, _, _ = strings.Cut(strings.TrimSpace(v), ";expires")
				case "expires":
					r.expires = strings.TrimSpace(v)
				case "via", "from", "to", "call-id", "cseq":
					keep = append(keep, l)
				}
			}
			seen <- r
			if r.expires == "0" {
				res := "SIP/2.0 200 OK\r\n" + strings.Join(keep, "\r\n") + "\r\nContent-Length: 0\r\n\r\n"
				_, _ = pc.WriteTo([]byte(res), from)
			}
		}
	}()
	code, _, stderr := cli(t, "send", "--config", conf, "--from", "sip:alice@a.example", "--to", "sip:team@cf.example",
		"--file", file, "--timeout", "1s")
	if code != 1 || !strings.Contains(stderr, "registering") {
		t.Fatalf("send: exit %d\n%s", code, stderr)
	}
	var bound string
	for {
		select {
		case r := <-seen:
			if r.expires != "0" {
				bound = r.contact
				continue
			}
			if bound == "" || r.contact != bound {
				t.Fatalf("removal of %q, but %q was bound", r.contact, bound)
			}
			return
		default:
			t.Fatalf("the binding %q was never removed", bound)
		}
	}
}
