package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/runtime"
	"github.com/cpmlink/cpmlink/runtime/deploy"
	"github.com/cpmlink/cpmlink/runtime/sipx"
)

func init() {
	register("bench", "measure set-up and delivery times and the CF's peak heap, beside raw TCP baselines", runBench)
	// role-process is how bench runs each server role (PF-A, CF, PF-Bs) in a process of
	// its own: cpmlink re-executes itself with it (deploy.RunRoleProcess).
	register("role-process", "", func(args []string, stdout, stderr io.Writer) int {
		defer serveProfileWindow()()
		if err := deploy.RunRoleProcess(context.Background(), os.Stdin, stdout); err != nil {
			return fail(stderr, "%v", err)
		}
		return 0
	})
}

// roleProcess makes the command of a role process: cpmlink re-executed (tests replace it
// with their own binary).
var roleProcess = func(self string) *exec.Cmd {
	cmd := exec.Command(self, "role-process")
	cmd.Stderr = os.Stderr
	return cmd
}

// shareCores gives a server process that shares this machine with procs-1 others (and
// bench's own) its share of the cores, as GOMAXPROCS, unless the operator set one. Each Go
// runtime otherwise runs as many schedulers as there are cores, and a process woken by a
// SIP message spins them up looking for work: with twelve processes on two cores that
// spinning was a quarter of the set-up's CPU (docs/performance.md).
func shareCores(c *exec.Cmd, procs int) {
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		return
	}
	addEnv(c, fmt.Sprintf("GOMAXPROCS=%d", max(1, goruntime.NumCPU()/procs)))
}

// addEnv adds kv ("NAME=value") to what c's process inherits.
func addEnv(c *exec.Cmd, kv string) {
	if c.Env == nil {
		c.Env = os.Environ()
	}
	c.Env = append(c.Env, kv)
}

// serverProcesses is how many server processes a run of row starts.
func serverProcesses(row benchRow) int {
	switch row.Processes {
	case "servers":
		return row.PFBs + 3 // the core, PF-A and the CF
	case "cf":
		return 1
	}
	return 0
}

// benchRow is the result of one configuration over several runs.
type benchRow struct {
	Variant    string  `json:"variant"`
	Members    int     `json:"members"`
	PFBs       int     `json:"pfbs"`
	Bytes      int64   `json:"bytes"`
	Runs       int     `json:"runs"`
	SetupMS    []int64 `json:"setup_ms"`
	DeliveryMS []int64 `json:"delivery_ms"`
	// SetupCPUMS is the CPU time (user and system) that bench's process and every server
	// process used from the sender's Start to the last LinkUp, per run (Linux: read from
	// /proc every 10 ms): the set-up's cost, which a loaded machine disturbs far less than
	// its time. Empty where it is not measured.
	SetupCPUMS []int64 `json:"setup_cpu_ms,omitempty"`
	// CFPeakHeap is the largest, over the runs, of the CF process's peak heap.
	CFPeakHeap uint64 `json:"cf_peak_heap_bytes"`
	CFPeakRSS  uint64 `json:"cf_peak_rss_bytes"`
	// Processes says which server roles ran in processes of their own (--processes):
	// "servers" (the SIP/IP core, PF-A, CF and every PF-B), "cf" (the CF alone) or "none".
	Processes string `json:"processes"`
	// Servers are the figures of each server process, the largest over the runs: its
	// /metrics read at the end of a run (every member idle), and its peak heap and RSS
	// over the run.
	Servers []benchServer `json:"servers,omitempty"`
	Failed  int           `json:"failed_members"`
	// RetransmittedInvites is how many INVITEs every role sent again over UDP in all the
	// runs (sipx.RetransmittedInvites, the CF's process included): each is a datagram
	// lost or answered later than T1. 0 is the goal (issue 8).
	RetransmittedInvites uint64 `json:"retransmitted_invites"`
	// The baselines (bench_baseline.go), measured in the same run, one of each after each
	// of cpmlink's runs: the raw TCP chain of as many hops as cpmlink's path carrying
	// Bytes once, and the raw fan-out of Bytes from one writer to Members sockets.
	ChainMS  []float64 `json:"chain_ms"`
	FanoutMS []float64 `json:"fanout_ms"`
	// ChainRatio and FanoutRatio are cpmlink's speed as a fraction of each baseline's,
	// speed being bytes delivered per second over the medians of the runs (0 when no run
	// delivered to every member). cpmlink delivers Bytes to each of Members, the fan-out
	// as much, the chain Bytes once: FanoutRatio = fanout_ms / delivery_ms, ChainRatio =
	// members × chain_ms / delivery_ms. With one member both are the ratio of the times.
	ChainRatio  float64 `json:"chain_ratio"`
	FanoutRatio float64 `json:"fanout_ratio"`
}

func runBench(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("bench", stderr)
	variants := fs.String("variant", "fig1,fig3", "comma-separated variant `names`")
	members := fs.String("members", "5,100", "comma-separated group `sizes` (numbers of members)")
	pfbs := intFlag(fs, "pfbs", 2, "terminating `PFs` the members are spread over")
	sizes := fs.String("size", "2MiB,100MiB", "comma-separated message `sizes` ("+sizeForms+")")
	runs := intFlag(fs, "runs", 3, "`runs` per configuration (each on a fresh group)")
	transport := fs.String("transport", "udp", "SIP `transport`: udp, tcp, or tls (SIP over TLS and msrps, with a throw-away loopback\n"+
		"certificate; the CF then runs in this process, so its peak heap is not measured)")
	asJSON := fs.Bool("json", false, "print one JSON array")
	timeout := durationFlag(fs, "timeout", 10*time.Minute, "give up on one run after this `long`, e.g. 90s or 5m (with --groups: on one message)")
	groups := intFlag(fs, "groups", 0, "run this many `groups` at once, each with its own sender, on one PF-A, CF and set of PF-Bs in processes\n"+
		"of their own (--members, --size and --variant then take one value; --runs is the number of rounds in which every\n"+
		"group sends one message at the same time)")
	soak := durationFlag(fs, "soak", 0, "with --groups, after the rounds: send a new message every --interval for this `long`, e.g. 5m")
	interval := durationFlag(fs, "interval", 5*time.Millisecond, "with --soak: start a message from the next idle sender this `often`")
	soakMessages := intFlag(fs, "soak-messages", 1_000_000, "with --soak: stop after this many `messages` even if time is left")
	settle := durationFlag(fs, "settle", 90*time.Second, "with --groups, at the end: wait up to this `long` for the servers' goroutines, open files and\n"+
		"sessions to come back to their start (an unused MSRP connection is kept 60 s for reuse)")
	processes := fs.String("processes", "servers", "which server roles run in a `process` of their own: servers (the SIP/IP core, the PF-A, the CF and each PF-B),\n"+
		"cf (the CF alone, the others in bench's process) or none (over --transport tls: none)")
	pprof := fs.Bool("pprof", false, "with --groups: each server process serves /debug/pprof/ on loopback (bench prints where)")
	profile := fs.String("profile", "", "write into this `directory`, for each run (run<N>/): a CPU profile of every process from the sender's Start until every\n"+
		"member is idle, every process's summary trace (NDJSON), and each process's CPU time in the set-up and the delivery (cpu.txt)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *groups != 0 && flagSet(fs, "processes") {
		return refusal(stderr, "bench", errors.New(refuse("processes", *processes, "is for one group at a time: with --groups every server role runs in a process of its own")))
	}
	if *groups != 0 && *profile != "" {
		return refusal(stderr, "bench", errors.New(refuse("profile", *profile, "is for one group at a time: with --groups, --pprof serves each server's profiles")))
	}
	if *groups != 0 {
		return runBenchGroups(fs, stdout, stderr, *groups, *variants, *members, *sizes, *pfbs, *runs, *transport, *asJSON, *timeout, *soak, *interval, *soakMessages, *settle, *pprof)
	}
	for _, f := range []string{"soak", "interval", "soak-messages", "settle", "pprof"} {
		if flagSet(fs, f) {
			return refusal(stderr, "bench", errors.New(refuse(f, fs.Lookup(f).Value.String(), "is for --groups only: the soak runs on many groups at once")))
		}
	}
	if err := errors.Join(atLeast("pfbs", *pfbs, 1, "a group has at least 1 PF-B"), atLeast("runs", *runs, 1, "at least 1"),
		oneOf("transport", *transport, "udp", "tcp", "tls"), oneOf("processes", *processes, "servers", "cf", "none"), positive("timeout", *timeout)); err != nil {
		return refusal(stderr, "bench", err)
	}
	if *transport == "tls" {
		// A TLS configuration cannot be handed to a child process (its key stays in this
		// one): every role runs here.
		if flagSet(fs, "processes") && *processes != "none" {
			return refusal(stderr, "bench", errors.New(refuse("processes", *processes, "is not possible over --transport tls: the TLS key stays in bench's process, and every role with it")))
		}
		*processes = "none"
	}
	all, _ := loadVariants("")
	var vs []fsm.Variant
	for _, name := range strings.Split(*variants, ",") {
		v, err := pickVariant(all, strings.TrimSpace(name))
		if err != nil {
			return refusal(stderr, "bench", err)
		}
		vs = append(vs, v.Variant)
	}
	var ms []int
	for _, m := range strings.Split(*members, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(m))
		if err != nil || n < 1 {
			return refusal(stderr, "bench", errors.New(refuse("members", m, "is not a group size: comma-separated whole numbers of at least 1, e.g. 5,100")))
		}
		ms = append(ms, n)
	}
	var ss []int64
	for _, s := range strings.Split(*sizes, ",") {
		n, err := deploy.ParseSize(s)
		if err != nil || n < 1 {
			return refusal(stderr, "bench", errors.New(refuse("size", s, "is not a message size: comma-separated sizes of at least 1 byte, each "+deploy.SizeForms)))
		}
		ss = append(ss, n)
	}
	self, err := os.Executable()
	if err != nil {
		return fail(stderr, "%v", err)
	}
	// A run of 100 members and 100MiB takes a while: say which one is going, on a terminal.
	status := newStatusLine(stderr)
	if !*asJSON {
		fmt.Fprint(stdout, benchHeader)
	}
	var rows []benchRow
	for _, v := range vs {
		for _, m := range ms {
			for _, size := range ss {
				row := benchRow{Variant: v.Name, Members: m, PFBs: min(*pfbs, m), Bytes: size, Runs: *runs, Processes: *processes}
				// cpmlink's runs and the baselines' alternate (A B A B ...), so that a
				// shared machine's slow minute weighs on both alike.
				for i := 0; i < *runs; i++ {
					what := fmt.Sprintf("bench: %s, %d members, %s: run %d of %d", v.Name, m, deploy.FormatSize(size), i+1, *runs)
					var prof string
					if *profile != "" {
						prof = filepath.Join(*profile, fmt.Sprintf("%s-%d-%s", v.Name, m, deploy.FormatSize(size)))
					}
					if err := benchOnce(&row, v, *transport, self, *timeout, uint64(i), prof, status, what, stderr); err != nil {
						status.clear()
						return fail(stderr, "%s, %d members, %d bytes: %v", v.Name, m, size, err)
					}
					if err := benchBaselines(&row, *timeout, status, what); err != nil {
						status.clear()
						return fail(stderr, "%v", err)
					}
				}
				row.ratios()
				rows = append(rows, row)
				status.clear()
				if !*asJSON {
					fmt.Fprint(stdout, row.text(*processes == "none"))
				}
			}
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rows)
	}
	for _, r := range rows {
		if r.Failed > 0 {
			return 1
		}
	}
	return 0
}

// benchOnce runs one message on a fresh group whose server roles run in child processes
// (row.Processes says which), and adds what it measured to row. Members hash what they
// receive and keep nothing; tracing keeps only the records that are not about single
// chunks, enough for the set-up time (each child notes its own last LinkUp), and without
// --profile only the LinkUps.
//
// With profDir, the run is profiled (bench --profile, bench_profile.go) into profDir/run<N>.
func benchOnce(row *benchRow, v fsm.Variant, transport, self string, timeout time.Duration, seed uint64, profDir string, status *statusLine, what string, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	began := time.Now()
	var members []*runtime.Node
	var mu sync.Mutex
	// How many members hold the message so far, from the members themselves (the
	// Received lists), redrawn while the run goes on.
	stop := watch(status, func() string {
		mu.Lock()
		ms := members
		mu.Unlock()
		if ms == nil {
			return fmt.Sprintf("%s: cpmlink: starting the group (%.0fs)", what, time.Since(began).Seconds())
		}
		have := 0
		for _, m := range ms {
			if len(m.Received()) > 0 {
				have++
			}
		}
		return fmt.Sprintf("%s: cpmlink: %d of %d members have it (%.0fs)", what, have, len(ms), time.Since(began).Seconds())
	})
	defer stop()
	var recs []runtime.Record
	var prof *benchProfile
	traceDir := ""
	if profDir != "" {
		var err error
		if prof, err = newBenchProfile(profDir, int(seed)+1); err != nil {
			return err
		}
		traceDir = prof.dir
	}
	// The set-up is timed by the last LinkUp, of the members and the sender here.
	tracer, closeTrace, err := deploy.LinkUpTracer(traceDir, "bench", &recs)
	if err != nil {
		return err
	}
	defer closeTrace()
	gcfg := runtime.GroupConfig{Variant: v, Members: row.Members, PFBs: row.PFBs, Transport: transport,
		Discard: true, Trace: tracer}
	// The children, in the order they started (the core, PF-A, CF, PF-Bs): each serves
	// /metrics on loopback and each role notes when its last link came up.
	var procs []*deploy.RoleProcess
	started := func(p *deploy.RoleProcess) { procs = append(procs, p) }
	req := deploy.RoleRequest{MetricsListen: "127.0.0.1:0", LinkUps: true}
	if prof != nil {
		req.TraceDir = prof.dir
	}
	command := func() *exec.Cmd {
		c := roleProcess(self)
		shareCores(c, serverProcesses(*row))
		if prof != nil {
			addEnv(c, profileWindowEnv+"="+prof.dir)
		}
		return c
	}
	child := deploy.RoleProcesses(command, req, started)
	switch row.Processes {
	case "servers":
		gcfg.StartPFA, gcfg.StartCF, gcfg.StartPFB = child, child, child
		// The SIP/IP core too: in bench's process it shared a Go runtime with the 1000
		// members hashing what they receive, and every SIP message of the set-up
		// crosses it (docs/performance.md).
		gcfg.StartCore = deploy.CoreProcess(command, deploy.RoleRequest{MetricsListen: "127.0.0.1:0"}, started)
	case "cf":
		gcfg.StartCF = child
	}
	if transport == "tls" {
		tlsConf, err := runtime.LoopbackTLS()
		if err != nil {
			return err
		}
		gcfg.TLS = tlsConf
	}
	g, err := runtime.StartGroup(ctx, gcfg)
	if err != nil {
		return err
	}
	// On every way out: the group's Close stops every child too (each also ends with
	// bench itself: deploy's parent-death signal).
	defer g.Close()
	// Counted from here: the members' REGISTERs are not INVITEs, but a run's INVITEs are.
	rexmitBefore := sipx.RetransmittedInvites()
	defer stop() // before g.Close: the watcher asks the members
	mu.Lock()
	members = g.Members
	mu.Unlock()
	h := sha256.New()
	io.Copy(h, benchPayload(seed, row.Bytes))
	want := hex.EncodeToString(h.Sum(nil))
	if prof != nil {
		if err := prof.start(procs); err != nil {
			return err
		}
		defer prof.stop()
	}
	cpu := startCPUSampler(procs)
	defer cpu.stop()
	start := time.Now()
	out, err := g.ClientA.Send(ctx, runtime.GroupURI, nil, runtime.Message{
		Open: func() (io.ReadCloser, error) {
			return io.NopCloser(benchPayload(seed, row.Bytes)), nil
		},
		Size:        row.Bytes,
		ContentType: "application/octet-stream",
	})
	if err != nil {
		return err
	}
	if err := g.WaitIdle(ctx); err != nil {
		return err
	}
	prof.stop()
	cpu.stop()
	var last time.Time
	failed := 0
	for i, m := range g.Members {
		uri := runtime.MemberURI(i, row.PFBs)
		rec := m.Received()
		var why string
		switch o := out.Of(uri); {
		case o.Kind != core.Delivered:
			why = o.String()
		case len(rec) != 1 || rec[0].SHA256 != want:
			why = fmt.Sprintf("reported delivered, yet holds %d message(s), not the one sent", len(rec))
		default:
			if rec[0].At.After(last) {
				last = rec[0].At
			}
			continue
		}
		if failed++; failed <= 3 {
			fmt.Fprintf(stderr, "bench: run %d: %s: %s\n", seed+1, uri, why)
		}
	}
	row.RetransmittedInvites += sipx.RetransmittedInvites() - rexmitBefore
	lastUp := deploy.LastLinkUp(recs)
	if err := row.addServers(ctx, procs, &lastUp); err != nil {
		return err
	}
	if prof != nil {
		if err := prof.finish(cpu, start, lastUp, last); err != nil {
			return err
		}
	}
	if failed > 0 {
		// A run that did not reach everyone has no delivery time to report.
		fmt.Fprintf(stderr, "bench: run %d: %d of %d members did not get the message\n", seed+1, failed, row.Members)
		row.Failed += failed
		return nil
	}
	if used, ok := cpu.total(start, lastUp); ok {
		row.SetupCPUMS = append(row.SetupCPUMS, used.Milliseconds())
	}
	row.SetupMS = append(row.SetupMS, lastUp.Sub(start).Milliseconds())
	row.DeliveryMS = append(row.DeliveryMS, last.Sub(start).Milliseconds())
	return nil
}

// benchServer is one server process's figures in a row.
type benchServer struct {
	Name string `json:"name"`
	// PID is the process's id in the last run.
	PID int `json:"pid"`
	// End is read from the process's /metrics at the end of a run, every member idle.
	End           procStats `json:"end"`
	PeakHeapBytes uint64    `json:"peak_heap_bytes"`
	PeakRSSBytes  uint64    `json:"peak_rss_bytes"`
	// RetransmittedInvites is how many INVITEs this process sent again over UDP, in all
	// the runs (the row's figure is the sum over bench's process and every server's).
	RetransmittedInvites uint64 `json:"retransmitted_invites"`
}

// addServers reads each child's /metrics, then stops it and takes what it measured over
// its life: the CF's peak heap and RSS, every child's retransmitted INVITEs, and the
// latest of their last LinkUps into lastUp. Each figure kept is the largest over runs.
func (r *benchRow) addServers(ctx context.Context, procs []*deploy.RoleProcess, lastUp *time.Time) error {
	scrape := newScraper()
	for _, p := range procs {
		end, err := scrape.read(ctx, p.MetricsAddr())
		if err != nil {
			return fmt.Errorf("%s: %w", p.Name(), err)
		}
		stats, err := p.Stop()
		if err != nil {
			return fmt.Errorf("%s: %w", p.Name(), err)
		}
		r.RetransmittedInvites += stats.RetransmittedInvites
		if stats.LastLinkUp.After(*lastUp) {
			*lastUp = stats.LastLinkUp
		}
		if p.Name() == "cf" {
			r.CFPeakHeap = max(r.CFPeakHeap, stats.PeakHeapBytes)
			r.CFPeakRSS = max(r.CFPeakRSS, stats.PeakRSSBytes)
		}
		i := slices.IndexFunc(r.Servers, func(s benchServer) bool { return s.Name == p.Name() })
		if i < 0 {
			r.Servers = append(r.Servers, benchServer{Name: p.Name()})
			i = len(r.Servers) - 1
		}
		s := &r.Servers[i]
		s.PID = p.Pid()
		s.End = procStats{RSS: max(s.End.RSS, end.RSS), HeapLive: max(s.End.HeapLive, end.HeapLive),
			Goroutines: max(s.End.Goroutines, end.Goroutines), FDs: max(s.End.FDs, end.FDs), Sessions: max(s.End.Sessions, end.Sessions)}
		s.PeakHeapBytes = max(s.PeakHeapBytes, stats.PeakHeapBytes)
		s.PeakRSSBytes = max(s.PeakRSSBytes, stats.PeakRSSBytes)
		s.RetransmittedInvites += stats.RetransmittedInvites
	}
	return nil
}

func failedNote(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("  (%d member deliveries failed)", n)
}

func spread(xs []int64) string {
	if len(xs) == 0 {
		return "-"
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return fmt.Sprintf("%d / %d / %d", s[0], s[len(s)/2], s[len(s)-1])
}

// benchBaselines measures one raw chain and one raw fan-out of row's bytes (see
// bench_baseline.go) and adds their times to row.
func benchBaselines(row *benchRow, timeout time.Duration, status *statusLine, what string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var moved atomic.Int64
	stop := watch(status, func() string {
		return fmt.Sprintf("%s: raw %d-hop TCP chain: %s of %s", what, fsm.NumHops, mib(moved.Load()), mib(row.Bytes))
	})
	chain, err := rawChain(ctx, fsm.NumHops, row.Bytes, &moved)
	stop()
	if err != nil {
		return err
	}
	moved.Store(0)
	all := row.Bytes * int64(row.Members)
	stop = watch(status, func() string {
		return fmt.Sprintf("%s: raw fan-out to %s: %s of %s", what, plural(row.Members, "socket"), mib(moved.Load()), mib(all))
	})
	fan, err := rawFanOut(ctx, row.Members, row.Bytes, &moved)
	stop()
	if err != nil {
		return err
	}
	row.ChainMS = append(row.ChainMS, millis(chain.Took))
	row.FanoutMS = append(row.FanoutMS, millis(fan.Took))
	return nil
}

// watch redraws the status line with line() four times a second until the returned
// function is first called; off a terminal it does nothing.
func watch(status *statusLine, line func() string) (stop func()) {
	if !status.on {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			status.show("%s", line())
			select {
			case <-t.C:
			case <-done:
				return
			}
		}
	})
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// millis is d in milliseconds, to the microsecond: a small message crosses the raw chain
// in well under a millisecond.
func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func median[T int64 | float64](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// ratios sets the row's ratios from the medians of its runs.
func (r *benchRow) ratios() {
	d := median(r.DeliveryMS)
	if d <= 0 {
		r.ChainRatio, r.FanoutRatio = 0, 0
		return
	}
	// Rounded to 3 places: the runs' spread is far wider than that.
	round := func(x float64) float64 { return math.Round(x*1000) / 1000 }
	r.ChainRatio = round(float64(r.Members) * median(r.ChainMS) / float64(d))
	r.FanoutRatio = round(median(r.FanoutMS) / float64(d))
}

// benchLine lays out the header and cpmlink's line of each row.
const benchLine = "%-8s %7v %9s  %-22s  %-25s  %s%s\n"

var benchHeader = fmt.Sprintf(benchLine, "variant", "members", "size", "setup ms (min/med/max)", "delivery ms (min/med/max)", "CF peak heap / RSS", "")

// text is the row as bench prints it: cpmlink's figures on one line, then the baselines
// of the same run, then cpmlink's speed as a fraction of each.
func (r *benchRow) text(cfInProcess bool) string {
	heap := fmt.Sprintf("%.1f / %.1f MiB", float64(r.CFPeakHeap)/(1<<20), float64(r.CFPeakRSS)/(1<<20))
	if cfInProcess {
		heap = "- (the CF ran in this process)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, benchLine, r.Variant, r.Members, deploy.FormatSize(r.Bytes),
		spread(r.SetupMS), spread(r.DeliveryMS), heap, failedNote(r.Failed))
	fmt.Fprintf(&b, "  SIP: %s retransmitted over UDP in %s\n", plural(int(r.RetransmittedInvites), "INVITE"), plural(r.Runs, "run"))
	if len(r.SetupCPUMS) > 0 {
		fmt.Fprintf(&b, "  CPU used by every process (bench's, the servers') in the set-up: %s ms, %.2f cores at the median\n",
			spread(r.SetupCPUMS), float64(median(r.SetupCPUMS))/float64(max(1, median(r.SetupMS))))
	}
	if line := r.serversText(); line != "" {
		b.WriteString(line)
	}
	all := r.Bytes * int64(r.Members)
	fmt.Fprintf(&b, "  same run, raw loopback TCP: %d-hop io.Copy chain %s ms (%s), fan-out to %s %s ms (%s)\n",
		fsm.NumHops, spreadMS(r.ChainMS), rate(r.Bytes, median(r.ChainMS)), plural(r.Members, "socket"), spreadMS(r.FanoutMS), rate(all, median(r.FanoutMS)))
	if len(r.DeliveryMS) == 0 {
		b.WriteString("  cpmlink: no run delivered to every member: no ratio\n")
	} else {
		fmt.Fprintf(&b, "  cpmlink: %s to %s = %s %% of the chain's speed, %s %% of the fan-out's\n",
			rate(all, float64(median(r.DeliveryMS))), plural(r.Members, "member"), sigFigures(100*r.ChainRatio), sigFigures(100*r.FanoutRatio))
	}
	return b.String()
}

// serversText is one line of the server processes' figures at the end of a run (largest
// over the runs), the PF-Bs as one range: "" when no server ran in a process of its own.
func (r *benchRow) serversText() string {
	if len(r.Servers) == 0 {
		return ""
	}
	var parts []string
	var pfbs []benchServer
	for _, s := range r.Servers {
		if strings.HasPrefix(s.Name, "pfb") {
			pfbs = append(pfbs, s)
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.1f MiB RSS (peak %.1f), %d goroutines, %d fds", s.Name,
			float64(s.End.RSS)/(1<<20), float64(s.PeakRSSBytes)/(1<<20), s.End.Goroutines, s.End.FDs))
	}
	if len(pfbs) > 0 {
		span := func(f func(benchServer) float64, format string) string {
			lo, hi := f(pfbs[0]), f(pfbs[0])
			for _, s := range pfbs[1:] {
				lo, hi = min(lo, f(s)), max(hi, f(s))
			}
			if l, h := fmt.Sprintf(format, lo), fmt.Sprintf(format, hi); l != h {
				return l + "–" + h
			}
			return fmt.Sprintf(format, lo)
		}
		name := pfbs[0].Name
		if len(pfbs) > 1 {
			name = fmt.Sprintf("%s–%s (each)", pfbs[0].Name, pfbs[len(pfbs)-1].Name)
		}
		parts = append(parts, fmt.Sprintf("%s %s MiB RSS (peak %s), %s goroutines, %s fds", name,
			span(func(s benchServer) float64 { return float64(s.End.RSS) / (1 << 20) }, "%.1f"),
			span(func(s benchServer) float64 { return float64(s.PeakRSSBytes) / (1 << 20) }, "%.1f"),
			span(func(s benchServer) float64 { return float64(s.End.Goroutines) }, "%.0f"),
			span(func(s benchServer) float64 { return float64(s.End.FDs) }, "%.0f")))
	}
	return "  server processes at the end of a run: " + strings.Join(parts, "; ") + "\n"
}

// rate is n bytes over ms milliseconds, in MB/s (SI, as network figures are).
func rate(n int64, ms float64) string {
	if ms <= 0 {
		return "- MB/s"
	}
	return fmt.Sprintf("%.0f MB/s", float64(n)/1e6/(ms/1000))
}

func spreadMS(xs []float64) string {
	if len(xs) == 0 {
		return "-"
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return sigFigures(s[0]) + " / " + sigFigures(s[len(s)/2]) + " / " + sigFigures(s[len(s)-1])
}

// figures writes x to three significant figures, or whole when it is larger: the runs
// spread far wider than that.
func sigFigures(x float64) string {
	switch {
	case x >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case x >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64)
	}
	return strconv.FormatFloat(x, 'f', 2, 64)
}
