package kamailiotest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary, run again by TestKilledTestLeavesNoKamailio, start a
// Kamailio, print its pid and wait to be killed.
const helperEnv = "CPMLINK_KAMAILIOTEST_HELPER"

// TestKilledTestLeavesNoKamailio kills a test binary that runs Kamailio, with SIGKILL, so
// that none of its cleanups run (as when `go test -timeout` or a user ends it), and checks
// that Kamailio and every worker it forked are gone soon after, not left holding ports.
func TestKilledTestLeavesNoKamailio(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		k := Start(t, func(string) map[string]string { return nil })
		fmt.Printf("kamailio pid %d\n", k.child.cmd.Process.Pid)
		// Until the parent kills us; if it never does, until it closes our stdin.
		_, _ = io.Copy(io.Discard, os.Stdin)
		return
	}
	Require(t)
	// Starting the helper and its Kamailio has a bound of its own: on a loaded machine it
	// can take most of a shared one, leaving too little to the check that matters here.
	startCtx, cancelStart := context.WithTimeout(context.Background(), time.Minute)
	defer cancelStart()
	helper := exec.CommandContext(startCtx, os.Args[0], "-test.run=^TestKilledTestLeavesNoKamailio$", "-test.count=1")
	helper.Env = append(os.Environ(), helperEnv+"=1")
	stdin, err := helper.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	pid := 0
	lines := bufio.NewScanner(out)
	for pid == 0 && lines.Scan() {
		if v, ok := strings.CutPrefix(lines.Text(), "kamailio pid "); ok {
			pid, _ = strconv.Atoi(v)
		}
	}
	if pid == 0 {
		_ = helper.Process.Kill()
		t.Fatalf("the helper never reported a Kamailio (%v)", helper.Wait())
	}
	// Whatever the verdict, this test leaves nothing behind itself.
	defer syscall.Kill(-pid, syscall.SIGKILL)
	if n := groupAlive(t, pid); n == 0 {
		t.Fatal("Kamailio's process group is empty while the helper runs: the check below would prove nothing")
	}
	_ = helper.Process.Kill()
	_ = helper.Wait()
	killed := time.Now()
	// Kamailio ends on the parent-death signal, its main process ending its workers: poll
	// the group until it is empty, bounded by ctx.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	backoff := 10 * time.Millisecond
	for {
		n := groupAlive(t, pid)
		if n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d Kamailio processes (group %d) still run %v after the test binary that started them was killed",
				n, pid, time.Since(killed).Round(time.Millisecond))
		case <-time.After(backoff):
			backoff = min(2*backoff, 200*time.Millisecond)
		}
	}
}

// groupAlive counts the processes of process group pgid that are not zombies (a container
// whose init does not reap leaves zombies; they hold no ports).
func groupAlive(t *testing.T, pgid int) int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			continue // ended while we looked
		}
		if err != nil {
			t.Fatal(err)
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its ')'.
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			n++
		}
	}
	return n
}
