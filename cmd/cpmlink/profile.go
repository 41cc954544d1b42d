package main

import (
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/pprof"
	"runtime/trace"
)

// profileEnv names a directory: with it set, every cpmlink process (bench's role
// processes too, which inherit the environment) writes a CPU profile, block and mutex
// profiles and an execution trace of its whole life there, named by command and pid.
// It is how the figures of docs/performance.md were explained; it costs nothing unset.
const profileEnv = "CPMLINK_PROFILE"

// startProfiles starts the profiles profileEnv asks for and returns the function that
// writes them out.
func startProfiles(cmd string) (stop func()) {
	dir := os.Getenv(profileEnv)
	if dir == "" {
		return func() {}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "cpmlink: %s: %v\n", profileEnv, err)
		return func() {}
	}
	base := filepath.Join(dir, fmt.Sprintf("%s-%d", cmd, os.Getpid()))
	cpu, err1 := os.Create(base + ".cpu.pprof")
	tr, err2 := os.Create(base + ".trace")
	if err1 != nil || err2 != nil {
		fmt.Fprintf(os.Stderr, "cpmlink: %s: %v %v\n", profileEnv, err1, err2)
		return func() {}
	}
	pprof.StartCPUProfile(cpu)
	trace.Start(tr)
	// Every blocking event and every contended lock: the question is what waits.
	goruntime.SetBlockProfileRate(1)
	goruntime.SetMutexProfileFraction(1)
	return func() {
		trace.Stop()
		pprof.StopCPUProfile()
		cpu.Close()
		tr.Close()
		for _, p := range []string{"block", "mutex", "goroutine"} {
			if f, err := os.Create(base + "." + p + ".pprof"); err == nil {
				pprof.Lookup(p).WriteTo(f, 0)
				f.Close()
			}
		}
	}
}
