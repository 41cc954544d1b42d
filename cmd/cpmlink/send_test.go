package main

import (
	"bytes"
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
	file := filepath.Join(t.TempDir(), "f.txt")
	if err := os.WriteFile(file, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--to", "sip:team@cf.example", "--file", file}, "--from URI is required"},
		{[]string{"--from", "sip:alice@a.example", "--file", file}, "give either --to GROUP-URI or --members URI,..."},
		{[]string{"--from", "sip:alice@a.example", "--to", "sip:team@cf.example", "--members", "sip:bob@b1.example", "--file", file}, "give either --to"},
		{[]string{"--from", "sip:alice@a.example", "--to", "sip:team@cf.example"}, "--file PATH (or --file - for stdin) is required"},
		{[]string{"--from", "sip:alice@a.example", "--to", "sip:team@cf.example", "--file", filepath.Dir(file)}, "is not a regular file"},
		{[]string{"--from", "sip:bob@b1.example", "--to", "sip:team@cf.example", "--file", file}, "sip:bob@b1.example registers with pfb1, a PF-B: it receives (cpmlink recv --as sip:bob@b1.example)"},
	} {
		code, stdout, stderr := cli(t, append([]string{"send", "--config", exampleConfig}, tc.args...)...)
		if code != 1 || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("send %v: exit %d\nstdout: %s\nstderr: %s\nwant %q", tc.args, code, stdout, stderr, tc.want)
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
