package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchChildEnv makes the test binary run cpmlink with these arguments (space-separated)
// instead of its tests; pidPipeEnv says that fd 3 is a pipe of the test's, which the
// bench passes on to every role process it starts and each role process writes its pid
// to (TestMain).
const (
	benchChildEnv = "CPMLINK_TEST_BENCH_ARGS"
	pidPipeEnv    = "CPMLINK_TEST_PID_PIPE"
)

// pidPipe is fd 3 under pidPipeEnv, kept referenced so that no finalizer closes it.
var pidPipe *os.File

// TestBenchServersInProcesses: by default bench runs the SIP/IP core, the PF-A, the CF and each PF-B in a
// process of its own, reads each one's /metrics, and leaves none of them behind; with
// --processes cf only the CF runs apart (main's former mode).
func TestBenchServersInProcesses(t *testing.T) {
	for _, tc := range []struct {
		processes string
		want      string
	}{
		{"", "core,pfa,cf,pfb1,pfb2"},
		{"cf", "cf"},
	} {
		t.Run("processes="+tc.processes, func(t *testing.T) {
			args := []string{"bench", "--variant", "fig1", "--members", "4", "--pfbs", "2", "--size", "100kB", "--runs", "2",
				"--transport", "udp", "--json", "--timeout", "60s"}
			if tc.processes != "" {
				args = append(args, "--processes", tc.processes)
			}
			code, out, stderr := cli(t, args...)
			if code != 0 {
				t.Fatalf("exit %d\n%s%s", code, out, stderr)
			}
			var rows []benchRow
			if err := json.Unmarshal([]byte(out), &rows); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if len(rows) != 1 || len(rows[0].DeliveryMS) != 2 || len(rows[0].SetupMS) != 2 || rows[0].Failed != 0 {
				t.Fatalf("rows: %+v", rows)
			}
			row := rows[0]
			if want := tc.processes; want != "" && row.Processes != want || want == "" && row.Processes != "servers" {
				t.Errorf("processes %q", row.Processes)
			}
			if row.CFPeakHeap == 0 || row.CFPeakRSS == 0 {
				t.Errorf("the CF's peak heap / RSS not measured: %+v", row)
			}
			for _, ms := range row.SetupMS {
				if ms <= 0 {
					t.Errorf("setup %d ms: no link came up after the send", ms)
				}
			}
			var names []string
			pids := map[int]string{os.Getpid(): "the test"}
			for _, s := range row.Servers {
				names = append(names, s.Name)
				if other, ok := pids[s.PID]; ok || s.PID <= 0 {
					t.Errorf("%s: pid %d, as %s's", s.Name, s.PID, other)
				}
				pids[s.PID] = s.Name
				if s.End.RSS == 0 || s.End.Goroutines == 0 || s.End.FDs == 0 || s.PeakRSSBytes == 0 {
					t.Errorf("%s: %+v: a figure not read", s.Name, s)
				}
				// bench has waited for each child: none is left, as our child or at all.
				if parent, alive := parentOf(s.PID); alive && parent == os.Getpid() {
					t.Errorf("%s (pid %d) still runs after bench ended", s.Name, s.PID)
				}
			}
			if strings.Join(names, ",") != tc.want {
				t.Errorf("server processes %v, want %s", names, tc.want)
			}
		})
	}
}

// parentOf reads pid's parent from /proc/<pid>/stat; alive is false when there is no such
// process (or it is a zombie nobody waited for yet: then it has ended).
func parentOf(pid int) (parent int, alive bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// pid (comm) state ppid ...: comm may hold spaces, so fields are counted after ')'.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 2 || fields[0] == "Z" {
		return 0, false
	}
	parent, _ = strconv.Atoi(fields[1])
	return parent, true
}

// TestBenchChildrenEndWithIt: a bench killed while its servers run (SIGINT, as Ctrl-C
// sends, and SIGKILL, where no code of bench's runs any more) leaves no role process
// behind. Every role process holds the write end of a pipe the test reads: the read ends
// (EOF) only when all of them have ended.
func TestBenchChildrenEndWithIt(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs Linux's parent-death signal and /proc")
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			// Large enough that the run is still going when the servers are up.
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), pidPipeEnv+"=1",
				benchChildEnv+"=bench --variant fig1 --members 40 --pfbs 2 --size 50MB --runs 3 --transport tcp --json --timeout 60s")
			cmd.ExtraFiles = []*os.File{w}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			w.Close()
			deadline, _ := ctx.Deadline()
			r.SetReadDeadline(deadline)
			// The first run's servers: PF-A, CF, two PF-Bs.
			lines := bufio.NewScanner(r)
			var pids []int
			for len(pids) < 4 && lines.Scan() {
				pid, err := strconv.Atoi(lines.Text())
				if err != nil {
					t.Fatalf("pipe: %q", lines.Text())
				}
				pids = append(pids, pid)
			}
			if len(pids) < 4 {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("%d role processes started (%v)", len(pids), lines.Err())
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err = cmd.Wait()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.Success() {
				t.Fatalf("bench ended with %v, not by %v: it was not killed while it ran", err, sig)
			}
			// EOF once every role process has closed the pipe, that is, ended.
			for lines.Scan() {
			}
			if err := lines.Err(); err != nil {
				for _, pid := range pids {
					if _, alive := parentOf(pid); alive {
						t.Errorf("role process %d still runs", pid)
						syscall.Kill(pid, syscall.SIGKILL)
					}
				}
				t.Fatalf("waiting for the role processes to end: %v", err)
			}
		})
	}
}

// TestBenchProfile: bench --profile writes, for a run, a CPU profile of bench and of every
// server process (each renamed by its role), each process's summary trace with its
// LinkUps, and the CPU time of every process in the set-up and the delivery.
func TestBenchProfile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	code, out, stderr := cli(t, "bench", "--variant", "fig1", "--members", "4", "--pfbs", "2", "--size", "100kB", "--runs", "1",
		"--transport", "tcp", "--timeout", "60s", "--profile", dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	run := filepath.Join(dir, "fig1-4-100kB", "run1")
	roles := []string{"bench", "core", "pfa", "cf", "pfb1", "pfb2"}
	for _, r := range roles {
		b, err := os.ReadFile(filepath.Join(run, r+".cpu.pprof"))
		// A profile is gzipped protobuf (runtime/pprof).
		if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
			t.Errorf("%s.cpu.pprof: %v, %d bytes", r, err, len(b))
		}
	}
	for _, r := range []string{"bench", "cf", "pfb1", "pfb2"} {
		b, err := os.ReadFile(filepath.Join(run, r+".ndjson"))
		if err != nil || !strings.Contains(string(b), `"type":"LinkUp"`) {
			t.Errorf("%s.ndjson: %v, no LinkUp in %d bytes", r, err, len(b))
		}
	}
	b, err := os.ReadFile(filepath.Join(run, "cpu.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range append(roles, "all") {
		if !regexp.MustCompile(`(?m)^` + r + ` +\d* +\d+\.\d\d +\d+\.\d\d +\d+\.\d\d +\d+\.\d\d$`).Match(b) {
			t.Errorf("cpu.txt has no line for %s:\n%s", r, b)
		}
	}
	if !regexp.MustCompile(`CPU used by every process .* in the set-up: \d+ / \d+ / \d+ ms`).MatchString(out) {
		t.Errorf("no set-up CPU line:\n%s", out)
	}
}

// TestShareCores: a server process bench starts gets its share of the cores, and an
// operator's GOMAXPROCS wins.
func TestShareCores(t *testing.T) {
	last := func(c *exec.Cmd) string {
		v := ""
		for _, e := range c.Env {
			if s, ok := strings.CutPrefix(e, "GOMAXPROCS="); ok {
				v = s
			}
		}
		return v
	}
	t.Setenv("GOMAXPROCS", "") // its cleanup restores the test's own
	os.Unsetenv("GOMAXPROCS")
	c := exec.Command("true")
	shareCores(c, 1000*goruntime.NumCPU())
	if got := last(c); got != "1" {
		t.Errorf("%d processes on %d cores: GOMAXPROCS=%q, want 1", 1000*goruntime.NumCPU(), goruntime.NumCPU(), got)
	}
	c = exec.Command("true")
	shareCores(c, 1)
	if got, want := last(c), strconv.Itoa(goruntime.NumCPU()); got != want {
		t.Errorf("one process: GOMAXPROCS=%q, want %s", got, want)
	}
	t.Setenv("GOMAXPROCS", "7")
	c = exec.Command("true")
	shareCores(c, 1000)
	if got := last(c); got != "" {
		t.Errorf("operator's GOMAXPROCS=7 (inherited) overridden by %q", got)
	}
}
