package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/runtime"
	"github.com/cpmlink/cpmlink/runtime/deploy"
	"github.com/cpmlink/cpmlink/runtime/sipx"
)

// roleProcessEnv makes the test binary a role process: bench's servers run in children
// that are this binary, re-executed (as cpmlink re-executes itself with role-process).
const roleProcessEnv = "CPMLINK_TEST_ROLE_PROCESS"

func TestMain(m *testing.M) {
	// As main does: sipgo's connection bookkeeping is not cpmlink's output.
	sipx.SetLibraryLogger(slog.New(slog.DiscardHandler))
	if os.Getenv(pidPipeEnv) != "" {
		// TestBenchChildrenEndWithIt: fd 3 is the test's pipe, which every process of
		// the bench under test holds open until it ends; a role process says its pid.
		pidPipe = os.NewFile(3, "pids")
		if os.Getenv(roleProcessEnv) != "" {
			fmt.Fprintf(pidPipe, "%d\n", os.Getpid())
		}
	}
	if os.Getenv(roleProcessEnv) != "" {
		// As cpmlink's role-process does, with bench --profile's window: a profile still
		// being written when bench ends the process is finished first.
		stop := serveProfileWindow()
		err := deploy.RunRoleProcess(context.Background(), os.Stdin, os.Stdout)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	roleProcess = func(string) *exec.Cmd {
		cmd := deploy.RoleChild(roleProcessEnv)
		if pidPipe != nil {
			cmd.ExtraFiles = []*os.File{pidPipe}
		}
		return cmd
	}
	if args := os.Getenv(benchChildEnv); args != "" {
		// The test binary as cpmlink itself, running the bench of TestBenchChildrenEndWithIt.
		os.Exit(run(strings.Fields(args), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestBenchGroups: bench --groups runs every group's message at once on one set of
// server processes, then a soak bounded by its count (long before its time), and reports
// every delivery, no loss and no duplicate, and each server's figures read from its
// /metrics. No figure of time is asserted: speed is bench's to print.
func TestBenchGroups(t *testing.T) {
	t.Parallel()
	began := time.Now()
	code, out, stderr := cli(t, "bench", "--groups", "3", "--members", "2", "--pfbs", "2", "--size", "20kB", "--runs", "2",
		"--soak", "10m", "--interval", "10ms", "--soak-messages", "12", "--settle", "0s", "--transport", "tcp", "--timeout", "60s", "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	if took := time.Since(began); took > 5*time.Minute {
		t.Errorf("a soak of at most 12 messages took %v: the count did not end it", took)
	}
	var rep groupsReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Groups != 3 || rep.Members != 2 || rep.PFBs != 2 || rep.Bytes != 20_000 || rep.Variant != "fig1" || rep.Transport != "tcp" {
		t.Errorf("configuration: %+v", rep)
	}
	if len(rep.Concurrent) != 2 {
		t.Fatalf("%d rounds, want 2", len(rep.Concurrent))
	}
	for _, p := range rep.Concurrent {
		if p.Messages != 3 || p.Deliveries != 6 || p.Delivered != 6 || p.Failed+p.Lost+p.Duplicated+p.Unknown+p.SendErrors != 0 || p.MaxMS <= 0 || p.P50MS > p.P99MS {
			t.Errorf("%s: %+v", p.Phase, p)
		}
	}
	if s := rep.Soak; s == nil || s.Messages != 12 || s.Deliveries != 24 || s.Delivered != 24 || s.Failed+s.Lost+s.Duplicated+s.Unknown != 0 {
		t.Errorf("soak: %+v", rep.Soak)
	}
	var names []string
	for _, s := range rep.Servers {
		names = append(names, s.Name)
		for _, st := range []procStats{s.Start, s.Warm, s.SoakEnd, s.Settled} {
			if st.RSS == 0 || st.Goroutines == 0 || st.FDs == 0 {
				t.Errorf("%s: %+v: a figure not read", s.Name, st)
			}
		}
		if s.Settled.Sessions != 0 || s.SoakPeakRSS < s.SoakEnd.RSS {
			t.Errorf("%s: %+v", s.Name, s)
		}
	}
	if strings.Join(names, ",") != "pfa,cf,pfb1,pfb2" {
		t.Errorf("servers %v", names)
	}
}

// TestCountDeliveries: every owed delivery is delivered, failed (the sender was told),
// or lost (it was not); a second copy at a member is a duplicate, by Message-ID or by
// content; content nobody sent is unknown; delivery times are per message, to its
// group's last member.
func TestCountDeliveries(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	uris := [][]string{{"sip:a", "sip:b"}, {"sip:c"}}
	msgs := []*sentMsg{
		{group: 0, sha: "m1", start: t0},
		{group: 0, sha: "m2", start: ms(10), out: runtime.Outcome{Members: []runtime.MemberResult{{Member: "sip:b", Outcome: core.FailedOutcome(480)}}}},
		{group: 1, sha: "m3", start: t0, err: errors.New("deadline")},
	}
	held := [][][]runtime.Received{
		{
			{{MessageID: "x1", SHA256: "m1", At: ms(5)}, {MessageID: "x2", SHA256: "m2", At: ms(30)}, {MessageID: "x1", SHA256: "m1", At: ms(6)}},
			{{MessageID: "y1", SHA256: "m1", At: ms(8)}, {MessageID: "y9", SHA256: "m1", At: ms(9)}, {MessageID: "y7", SHA256: "zz", At: ms(9)}},
		},
		{{}},
	}
	r := countDeliveries("p", msgs, uris, held)
	want := phaseResult{Phase: "p", Messages: 3, Deliveries: 5, Delivered: 3, Failed: 1, Lost: 1, Duplicated: 2, Unknown: 1, SendErrors: 1,
		P50MS: 8, P99MS: 8, MaxMS: 8}
	if r != want {
		t.Errorf("got  %+v\nwant %+v", r, want)
	}
	if !r.bad() || (phaseResult{Messages: 1, Deliveries: 2, Delivered: 2}).bad() {
		t.Error("bad(): a phase with losses passes, or a clean one fails")
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		p    int
		want float64
	}{{50, 5}, {99, 10}, {100, 10}, {10, 1}, {0, 1}} {
		if got := percentile(xs, tc.p); got != tc.want {
			t.Errorf("p%d = %v, want %v", tc.p, got, tc.want)
		}
	}
	if percentile(nil, 50) != 0 {
		t.Error("no values: not 0")
	}
}

// TestParseProcStats: the figures come from the Go and process collectors' lines, the
// sessions summed over their labels, whatever else the exposition holds; a missing
// figure is an error, not a zero.
func TestParseProcStats(t *testing.T) {
	text := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
go_gc_duration_seconds{quantile="0.5"} 1.5e-05
process_open_fds 17
process_resident_memory_bytes 2.5165824e+07
cpmlink_sessions{role="cf",state="setup"} 3
cpmlink_sessions{role="cf",state="with } brace"} 2
cpmlink_sessions_other 99
`
	st, err := parseProcStats(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if want := (procStats{RSS: 25165824, Goroutines: 42, FDs: 17, Sessions: 5}); st != want {
		t.Errorf("got %+v, want %+v", st, want)
	}
	if _, err := parseProcStats(strings.NewReader("go_goroutines 3\nprocess_open_fds 2\n")); !errors.Is(err, errScrape) {
		t.Errorf("no RSS: %v", err)
	}
}
