package kamailiotest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// Child is an external program a test started (Kamailio, sipp): in a process group of its
// own, so that ending it ends the workers it forks too, and ended at the cleanup of the
// test that started it.
type Child struct {
	// Log is the file its standard output and error go to.
	Log  string
	cmd  *exec.Cmd
	logf *os.File
	done chan struct{}
	err  error
}

// StartChild starts cmd with its standard output and error to the file logPath (unless
// cmd already sends them elsewhere) and ends its process group with SIGKILL at t's
// cleanup, after which a failed test logs the tail of logPath. On Linux the program also gets SIGTERM if the test binary dies first (a test
// run killed at its timeout or by hand), so that no Kamailio is left holding ports.
func StartChild(t testing.TB, cmd *exec.Cmd, logPath string) (*Child, error) {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	if cmd.Stdout == nil {
		cmd.Stdout = logf
	}
	if cmd.Stderr == nil {
		cmd.Stderr = logf
	}
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	c := &Child{Log: logPath, cmd: cmd, logf: logf, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			t.Logf("%s (tail):\n%s", filepath.Base(logPath), c.LogTail(4000))
		}
	})
	return c, nil
}

// Done is closed when the program has ended.
func (c *Child) Done() <-chan struct{} { return c.done }

// Err is how the program ended (nil: exit status 0); call it once Done is closed.
func (c *Child) Err() error {
	<-c.done
	return c.err
}

// Stop kills the program's whole process group and waits for the program; it may be
// called more than once.
func (c *Child) Stop() {
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.done
	_ = c.logf.Close()
}

// LogTail is the last n bytes of the program's log, for a failure message.
func (c *Child) LogTail(n int) string {
	b, _ := os.ReadFile(c.Log)
	return tail(b, n)
}
