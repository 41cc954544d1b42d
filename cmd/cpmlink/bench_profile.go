package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/cpmlink/cpmlink/runtime/deploy"
)

// `cpmlink bench --profile DIR` answers "is the set-up CPU-bound, and where does the CPU
// go?" for one message at a time (docs/performance.md, issue 8). For each run it writes,
// into DIR/run<N>/:
//
//   - <role>.cpu.pprof: a CPU profile of every process (bench's own, the PF-A, the CF, each
//     PF-B) from the sender's Start until every member is idle: the message's set-up and
//     delivery, not the group's start and registrations (CPMLINK_PROFILE covers a whole
//     life);
//   - <role>.ndjson: every process's summary trace (which INVITE, 200, ACK and LinkUp each
//     role took when), the timeline across processes;
//   - cpu.txt: each process's CPU time (user + system, from /proc/<pid>/stat every 10 ms)
//     from Start to the last LinkUp and to the last delivery, as seconds and as cores.
//
// A role process starts and stops its CPU profile on SIGUSR1 and SIGUSR2
// (profileWindowEnv names the directory), which bench sends at Start and at the end.

// profileWindowEnv names the directory a role process writes its windowed CPU profile to
// (role-<pid>.cpu.pprof), on bench's signals.
const profileWindowEnv = "CPMLINK_PROFILE_WINDOW"

// serveProfileWindow makes a role process start a CPU profile on SIGUSR1 and stop it on
// SIGUSR2, when bench asked for it; stop ends a profile still running (the process ends).
func serveProfileWindow() (stop func()) {
	dir := os.Getenv(profileWindowEnv)
	if dir == "" || profileStartSig == nil {
		return func() {}
	}
	var mu sync.Mutex
	var f *os.File
	end := func() {
		if f != nil {
			pprof.StopCPUProfile()
			f.Close()
			f = nil
		}
	}
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, profileStartSig, profileStopSig)
	go func() {
		for s := range sig {
			mu.Lock()
			if s == profileStartSig && f == nil {
				var err error
				f, err = os.Create(filepath.Join(dir, fmt.Sprintf("role-%d.cpu.pprof", os.Getpid())))
				if err == nil {
					err = pprof.StartCPUProfile(f)
				}
				if err != nil {
					fmt.Fprintf(os.Stderr, "cpmlink: role process: profile: %v\n", err)
					if f != nil {
						f.Close()
					}
					f = nil
				}
			} else if s == profileStopSig {
				end()
			}
			mu.Unlock()
		}
	}()
	return func() {
		signal.Stop(sig)
		mu.Lock()
		end()
		mu.Unlock()
	}
}

// benchProfile is one run's --profile: bench's own CPU profile and the children's.
type benchProfile struct {
	dir     string
	procs   []*deploy.RoleProcess
	f       *os.File
	started bool
}

// cpuSampler reads the CPU time of bench's process and of every server process each
// 10 ms during a run, so that bench can say how much CPU the set-up took, apart from the
// group's start: a figure a loaded machine disturbs far less than a time.
type cpuSampler struct {
	names map[int]string
	stopS chan struct{}
	done  chan struct{}
	// samples[pid] is the CPU time the process had used at each sampling time.
	mu      sync.Mutex
	samples map[int][]cpuSample
}

type cpuSample struct {
	at  time.Time
	cpu time.Duration
}

// newBenchProfile makes DIR/run<N>/ for one run.
func newBenchProfile(dir string, run int) (*benchProfile, error) {
	d := filepath.Join(dir, fmt.Sprintf("run%d", run))
	if err := os.MkdirAll(d, 0o755); err != nil {
		return nil, fmt.Errorf("bench: --profile: %w", err)
	}
	return &benchProfile{dir: d}, nil
}

// start starts the window: bench's profile, each child's, and the sampler.
func (p *benchProfile) start(procs []*deploy.RoleProcess) error {
	p.procs = procs
	f, err := os.Create(filepath.Join(p.dir, "bench.cpu.pprof"))
	if err != nil {
		return fmt.Errorf("bench: --profile: %w", err)
	}
	// CPMLINK_PROFILE's whole-life profile, if one runs, takes precedence.
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		os.Remove(f.Name())
	} else {
		p.f = f
	}
	signalAll(procs, profileStartSig)
	p.started = true
	return nil
}

// stop ends the window (bench's profile, the children's).
func (p *benchProfile) stop() {
	if p == nil || !p.started {
		return
	}
	p.started = false
	signalAll(p.procs, profileStopSig)
	if p.f != nil {
		pprof.StopCPUProfile()
		p.f.Close()
		p.f = nil
	}
}

// finish, once the children have ended, names their profiles by role and writes cpu.txt:
// each process's CPU time from start to setupEnd (the last LinkUp) and to deliveredEnd.
func (p *benchProfile) finish(cpu *cpuSampler, start, setupEnd, deliveredEnd time.Time) error {
	var err error
	for _, c := range p.procs {
		from := filepath.Join(p.dir, fmt.Sprintf("role-%d.cpu.pprof", c.Pid()))
		if _, serr := os.Stat(from); serr == nil {
			err = errors.Join(err, os.Rename(from, filepath.Join(p.dir, c.Name()+".cpu.pprof")))
		}
	}
	return errors.Join(err, os.WriteFile(filepath.Join(p.dir, "cpu.txt"), cpu.table(start, setupEnd, deliveredEnd), 0o644))
}

// startCPUSampler starts reading the CPU time of bench's process and of procs.
func startCPUSampler(procs []*deploy.RoleProcess) *cpuSampler {
	c := &cpuSampler{names: map[int]string{os.Getpid(): "bench"}, samples: map[int][]cpuSample{},
		stopS: make(chan struct{}), done: make(chan struct{})}
	for _, p := range procs {
		c.names[p.Pid()] = p.Name()
	}
	go c.sample()
	return c
}

// sample reads every process's CPU time each 10 ms until stop.
func (c *cpuSampler) sample() {
	defer close(c.done)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		now := time.Now()
		c.mu.Lock()
		for pid := range c.names {
			if cpu, err := procCPU(pid); err == nil {
				c.samples[pid] = append(c.samples[pid], cpuSample{now, cpu})
			}
		}
		c.mu.Unlock()
		select {
		case <-c.stopS:
			return
		case <-t.C:
		}
	}
}

// stop takes a last sample and ends the sampler; it is idempotent.
func (c *cpuSampler) stop() {
	select {
	case <-c.stopS:
	default:
		close(c.stopS)
	}
	<-c.done
}

// total is the CPU time every process used from from to to, and whether it was measured
// (it is not where /proc is not).
func (c *cpuSampler) total(from, to time.Time) (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var sum time.Duration
	for _, xs := range c.samples {
		sum += cpuAt(xs, to) - cpuAt(xs, from)
	}
	return sum, len(c.samples) > 0
}

// table is cpu.txt: each process's CPU time from start to the last LinkUp and to the
// last delivery.
func (c *cpuSampler) table(start, setupEnd, deliveredEnd time.Time) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	pids := make([]int, 0, len(c.samples))
	for pid := range c.samples {
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	var b bytes.Buffer
	setup, all := setupEnd.Sub(start), deliveredEnd.Sub(start)
	fmt.Fprintf(&b, "# CPU time (user+system) per process, from the sender's Start\n")
	fmt.Fprintf(&b, "# to the last LinkUp (%.0f ms) and to the last delivery (%.0f ms)\n", millis(setup), millis(all))
	fmt.Fprintf(&b, "%-8s %7s %12s %8s %15s %8s\n", "process", "pid", "setup cpu s", "cores", "delivery cpu s", "cores")
	var sumS, sumD time.Duration
	for _, pid := range pids {
		xs := c.samples[pid]
		s, d := cpuAt(xs, setupEnd)-cpuAt(xs, start), cpuAt(xs, deliveredEnd)-cpuAt(xs, start)
		sumS, sumD = sumS+s, sumD+d
		fmt.Fprintf(&b, "%-8s %7d %12.2f %8.2f %15.2f %8.2f\n", c.names[pid], pid, s.Seconds(), cores(s, setup), d.Seconds(), cores(d, all))
	}
	fmt.Fprintf(&b, "%-8s %7s %12.2f %8.2f %15.2f %8.2f\n", "all", "", sumS.Seconds(), cores(sumS, setup), sumD.Seconds(), cores(sumD, all))
	return b.Bytes()
}

func cores(cpu, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return cpu.Seconds() / wall.Seconds()
}

// cpuAt is the CPU time of the last sample at or before t (the first one if none).
func cpuAt(xs []cpuSample, t time.Time) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	i := sort.Search(len(xs), func(i int) bool { return xs[i].at.After(t) })
	if i == 0 {
		return xs[0].cpu
	}
	return xs[i-1].cpu
}

// procCPU reads a process's user and system time from /proc/<pid>/stat (fields 14 and
// 15, in clock ticks: 100 a second on Linux, USER_HZ).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("bench: /proc stat: no command name")
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, errors.New("bench: /proc stat: too short")
	}
	u, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	s, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(u+s) * 10 * time.Millisecond, nil
}

// signalAll sends s to every child (nowhere without signals for it).
func signalAll(procs []*deploy.RoleProcess, s os.Signal) {
	if s == nil {
		return
	}
	for _, c := range procs {
		if pr, err := os.FindProcess(c.Pid()); err == nil {
			pr.Signal(s)
		}
	}
}
