package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cpmlink/cpmlink/runtime"
	"github.com/cpmlink/cpmlink/runtime/sipx"
)

// A role process runs one role instance in a process of its own, for a parent that wants
// to measure it alone (the CF's peak heap while it relays a large message to many
// members; a server's RSS, goroutines and open files over a soak). The parent writes a
// RoleRequest (the runtime.NodeConfig, and where to serve metrics) as one JSON line on the
// child's stdin; the child answers with its addresses as one JSON line on stdout, runs
// until its stdin closes, then writes its measurements as a last JSON line and exits.

// RoleRequest is what a parent hands a role process. The NodeConfig's fields are the
// line's own (embedded), so that a bare NodeConfig is a request too.
type RoleRequest struct {
	runtime.NodeConfig
	// MetricsListen, if set, is where the process serves its operator's endpoints
	// (StartOps: /metrics with the Go and process collectors, /healthz, /readyz), the
	// instance adding to its metrics: how a parent reads the child's goroutines, RSS and
	// open files while it runs. An IP and a port, 0 for a free one.
	MetricsListen string `json:",omitempty"`
	// PprofListen, if set, is where the process serves net/http/pprof's /debug/pprof/
	// (heap, goroutine, profile ...): for a parent that hunts a leak or a hot path in the
	// child. Never on by default: a profile shows the process's insides.
	PprofListen string `json:",omitempty"`
	// LinkUps makes the process note when its role's last MSRP link came up
	// (RoleStats.LastLinkUp), from a summary trace it keeps to itself: a parent that
	// times a group's set-up (bench) reads it there, since the role's trace records stay
	// in the child.
	LinkUps bool `json:",omitempty"`
	// TraceDir, with LinkUps, makes the process also write that summary trace as NDJSON
	// to <TraceDir>/<name>.ndjson: the timeline of a set-up (who took which INVITE, 200
	// and LinkUp when) across processes, for `cpmlink bench --profile`. The directory
	// must exist.
	TraceDir string `json:",omitempty"`
	// Core makes the process a SIP/IP core (sipx.StartProxy on the NodeConfig's Host,
	// Advertise and TrustedHosts; no role instance) whose routes the parent sets once the
	// roles' ports are known (RoleProcess.SetRoutes): a group's core in a process of its
	// own (CoreProcess), apart from the members a benchmark runs.
	Core bool `json:",omitempty"`
}

// roleCommand is a line a parent writes to a running role process: for now only a
// core's routes. roleReply is the process's answer, one line.
type roleCommand struct {
	Routes map[string]string `json:"routes"`
}

type roleReply struct {
	Error string `json:"error,omitempty"`
}

// RoleAddrs is what a role process answers once it runs.
type RoleAddrs struct {
	SIP  string `json:"sip"`
	MSRP string `json:"msrp"`
	// Metrics is where the process serves /metrics, "" without RoleRequest.MetricsListen.
	Metrics string `json:"metrics,omitempty"`
	// Pprof is where it serves /debug/pprof/, "" without RoleRequest.PprofListen.
	Pprof string `json:"pprof,omitempty"`
}

// RoleStats is what a role process measured over its life.
type RoleStats struct {
	// PeakHeapBytes is the largest heap (live and not yet swept objects) seen by a
	// sampler that reads runtime/metrics every millisecond.
	PeakHeapBytes uint64 `json:"peak_heap_bytes"`
	// PeakRSSBytes is the kernel's high-water mark of the process (VmHWM), 0 where
	// /proc is not available.
	PeakRSSBytes uint64 `json:"peak_rss_bytes"`
	// RetransmittedInvites is how many INVITEs the role sent again over UDP
	// (sipx.RetransmittedInvites): each is a datagram lost or answered late.
	RetransmittedInvites uint64 `json:"retransmitted_invites"`
	// LastLinkUp is when the role's machine last took a LinkUp (a link of one of its
	// hops came up), with RoleRequest.LinkUps; zero otherwise or when none came up. It
	// is the wall clock, which a parent on the same host shares.
	LastLinkUp time.Time `json:"last_link_up,omitzero"`
	Error      string    `json:"error,omitempty"`
}

// RunRoleProcess is the body of a role process: see StartRoleProcess.
func RunRoleProcess(ctx context.Context, in io.Reader, out io.Writer) error {
	sampler := startHeapSampler()
	br := bufio.NewReader(in)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("deploy: role process: reading its configuration: %w", err)
	}
	var req RoleRequest
	if err := json.Unmarshal(line, &req); err != nil {
		return fmt.Errorf("deploy: role process: %w", err)
	}
	var ops *Ops
	if req.MetricsListen != "" {
		ln, err := net.Listen("tcp", req.MetricsListen)
		if err != nil {
			return fmt.Errorf("deploy: role process: metrics listener: %w", err)
		}
		ops = StartOps(ln)
		req.Metrics = ops.Metrics()
		// The heap the last GC found live: unlike RSS (which follows the GC's target,
		// twice the live heap, and what the runtime has not yet returned), it grows only
		// with what the process holds, so a parent reads a leak in it.
		ops.Registry().MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "go_gc_heap_live_bytes",
			Help: "Heap memory occupied by live objects that were marked by the previous GC (runtime/metrics /gc/heap/live:bytes)."},
			func() float64 {
				s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
				metrics.Read(s)
				if s[0].Value.Kind() != metrics.KindUint64 {
					return 0
				}
				return float64(s[0].Value.Uint64())
			}))
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			ops.Close(sctx)
		}()
	}
	var pprofAddr string
	if req.PprofListen != "" {
		ln, err := net.Listen("tcp", req.PprofListen)
		if err != nil {
			return fmt.Errorf("deploy: role process: pprof listener: %w", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		pprofAddr = ln.Addr().String()
	}
	var recs []runtime.Record
	if req.LinkUps {
		tracer, closeTrace, err := LinkUpTracer(req.TraceDir, req.Name, &recs)
		if err != nil {
			return fmt.Errorf("deploy: role process: %w", err)
		}
		defer closeTrace()
		req.Trace = tracer
	}
	var (
		addrs     = RoleAddrs{Pprof: pprofAddr}
		stop      func() error
		setRoutes func(map[string]string) error
	)
	if req.Core {
		px, err := sipx.StartProxy(ctx, sipx.ProxyConfig{Host: req.Host, Advertise: req.Advertise, Routes: map[string]string{},
			TrustedHosts: req.TrustedHosts})
		if err != nil {
			return err
		}
		addrs.SIP, stop, setRoutes = px.UDPAddr(), px.Close, px.SetRoutes
	} else {
		n, err := runtime.StartNode(ctx, req.NodeConfig)
		if err != nil {
			return err
		}
		addrs.SIP, addrs.MSRP, stop = n.SIPAddr(), n.MSRPAddr(), n.Close
	}
	if ops != nil {
		ops.Ready()
		addrs.Metrics = ops.Addr()
	}
	var encMu sync.Mutex
	enc := json.NewEncoder(out)
	if err := enc.Encode(addrs); err != nil {
		stop()
		return err
	}
	// The parent ends the process by closing stdin; before that it may write commands,
	// one line each, each answered with one line.
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		for {
			l, err := br.ReadBytes('\n')
			if len(bytes.TrimSpace(l)) > 0 {
				var c roleCommand
				var r roleReply
				switch jerr := json.Unmarshal(l, &c); {
				case jerr != nil:
					r.Error = fmt.Sprintf("deploy: role process: a command: %v", jerr)
				case setRoutes == nil:
					r.Error = "deploy: role process: routes are for a core process"
				default:
					if err := setRoutes(c.Routes); err != nil {
						r.Error = err.Error()
					}
				}
				encMu.Lock()
				enc.Encode(r)
				encMu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-closed:
	case <-ctx.Done():
	}
	err = stop()
	stats := RoleStats{PeakHeapBytes: sampler.stop(), PeakRSSBytes: peakRSS(), RetransmittedInvites: sipx.RetransmittedInvites(),
		LastLinkUp: LastLinkUp(recs)}
	if err != nil {
		stats.Error = err.Error()
	}
	encMu.Lock()
	defer encMu.Unlock()
	return enc.Encode(stats)
}

// LastLinkUp is the time of the last LinkUp a role took among recs (a trace's records),
// zero for none: when the last of its links came up.
func LastLinkUp(recs []runtime.Record) time.Time {
	var last time.Time
	for _, r := range recs {
		if r.Dir == "in" && r.Type == "LinkUp" && r.Time.After(last) {
			last = r.Time
		}
	}
	return last
}

// heapSampler keeps the largest heap size it sees.
type heapSampler struct {
	quit chan struct{}
	done chan uint64
}

func startHeapSampler() *heapSampler {
	h := &heapSampler{quit: make(chan struct{}), done: make(chan uint64, 1)}
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak {
				peak = v
			}
			select {
			case <-t.C:
			case <-h.quit:
				h.done <- peak
				return
			}
		}
	}()
	return h
}

func (h *heapSampler) stop() uint64 {
	close(h.quit)
	return <-h.done
}

// peakRSS reads the process's resident high-water mark (Linux).
func peakRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// RoleProcess is a role instance running in a child process.
type RoleProcess struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
	addrs RoleAddrs
	once  sync.Once
	stats RoleStats
	err   error
}

// StartRoleProcess starts cmd, a program that calls RunRoleProcess (a test binary or
// cpmlink itself, re-executed), hands it cfg and waits, bounded by ctx, until it runs.
func StartRoleProcess(ctx context.Context, cmd *exec.Cmd, cfg runtime.NodeConfig) (*RoleProcess, error) {
	return StartRoleProcessWith(ctx, cmd, RoleRequest{NodeConfig: cfg})
}

// StartRoleProcessWith is StartRoleProcess with the whole request (metrics).
func StartRoleProcessWith(ctx context.Context, cmd *exec.Cmd, req RoleRequest) (*RoleProcess, error) {
	cfg := req.NodeConfig
	if cmd.SysProcAttr == nil {
		// The child ends with its parent, however the parent ends (a failure, Ctrl-C,
		// SIGKILL): a role process left behind would hold its ports and its CPU.
		cmd.SysProcAttr = roleChildAttr()
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &RoleProcess{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout), name: cfg.Name}
	line, err := json.Marshal(req)
	if err == nil {
		_, err = stdin.Write(append(line, '\n'))
	}
	if err == nil {
		type answer struct {
			line []byte
			err  error
		}
		ch := make(chan answer, 1)
		go func() {
			l, err := p.out.ReadBytes('\n')
			ch <- answer{l, err}
		}()
		select {
		case a := <-ch:
			err = a.err
			if err == nil {
				err = json.Unmarshal(a.line, &p.addrs)
			}
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("deploy: starting the %s process: %w", cfg.Name, err)
	}
	return p, nil
}

// SIPAddr is where the child's role takes SIP.
func (p *RoleProcess) SIPAddr() string { return p.addrs.SIP }

// MSRPAddr is where the child's role takes MSRP connections.
func (p *RoleProcess) MSRPAddr() string { return p.addrs.MSRP }

// MetricsAddr is where the child serves /metrics, "" unless it was asked to
// (RoleRequest.MetricsListen).
func (p *RoleProcess) MetricsAddr() string { return p.addrs.Metrics }

// PprofAddr is where the child serves /debug/pprof/, "" unless it was asked to
// (RoleRequest.PprofListen).
func (p *RoleProcess) PprofAddr() string { return p.addrs.Pprof }

// Pid is the child's process id (its /proc/<pid> on Linux).
func (p *RoleProcess) Pid() int { return p.cmd.Process.Pid }

// Stop ends the child (it closes the node, then reports) and returns what it measured.
func (p *RoleProcess) Stop() (RoleStats, error) {
	p.once.Do(func() {
		p.stdin.Close()
		line, err := p.out.ReadBytes('\n')
		if err == nil {
			err = json.Unmarshal(line, &p.stats)
		}
		werr := p.cmd.Wait()
		p.err = errors.Join(err, werr)
		if p.stats.Error != "" {
			p.err = errors.Join(p.err, errors.New(p.stats.Error))
		}
	})
	return p.stats, p.err
}

// Close stops the child, dropping what it measured: what a runtime.Group calls.
func (p *RoleProcess) Close() error {
	_, err := p.Stop()
	return err
}

// CFProcess is a runtime.GroupConfig.StartCF that runs the group's CF in the child that
// cmd makes (a program that calls RunRoleProcess: a test binary or cpmlink, re-executed).
func CFProcess(cmd func() *exec.Cmd) func(context.Context, runtime.NodeConfig) (runtime.RemoteRole, error) {
	return RoleProcesses(cmd, RoleRequest{}, nil)
}

// RoleProcesses is a runtime.GroupConfig.StartPFA, StartCF or StartPFB that runs each role
// instance it is asked for in a child of its own that cmd makes, with req's other fields
// (metrics, LinkUps) beside the instance's NodeConfig. started, if not nil, is told of
// each child once it runs (for a parent that reads the children's /metrics and stats).
func RoleProcesses(cmd func() *exec.Cmd, req RoleRequest, started func(*RoleProcess)) func(context.Context, runtime.NodeConfig) (runtime.RemoteRole, error) {
	return func(ctx context.Context, cfg runtime.NodeConfig) (runtime.RemoteRole, error) {
		r := req
		r.NodeConfig = cfg
		p, err := startTold(ctx, cmd(), r, started)
		if err != nil {
			// A nil *RoleProcess in the interface would look like a running role.
			return nil, err
		}
		return p, nil
	}
}

// LinkUpTracer is the tracer of a process whose set-up is timed by its LinkUps (bench and
// its role processes): a summary trace into dir/name.ndjson when dir is not "", else
// only the LinkUps, kept in keep. Building every other record would cost the role's
// driver, in the very set-up it times. closeTrace flushes and closes the file.
func LinkUpTracer(dir, name string, keep *[]runtime.Record) (tracer *runtime.Tracer, closeTrace func() error, err error) {
	if dir == "" {
		tracer = runtime.NewTracer(nil, keep)
		tracer.Summary = true
		tracer.Only = []string{"LinkUp"}
		return tracer, func() error { return nil }, nil
	}
	f, err := os.Create(filepath.Join(dir, name+".ndjson"))
	if err != nil {
		return nil, nil, err
	}
	bw := bufio.NewWriter(f)
	tracer = runtime.NewTracer(bw, keep)
	tracer.Summary = true
	return tracer, func() error { return errors.Join(bw.Flush(), f.Close()) }, nil
}

// startTold starts the child and tells started, if not nil, once it runs.
func startTold(ctx context.Context, cmd *exec.Cmd, r RoleRequest, started func(*RoleProcess)) (*RoleProcess, error) {
	p, err := StartRoleProcessWith(ctx, cmd, r)
	if err == nil && started != nil {
		started(p)
	}
	return p, err
}

// SetRoutes gives a core process (RoleRequest.Core) its static routes, domain to
// host:port, replacing the ones it had (sipx.Proxy.SetRoutes), and returns once they are
// in place.
func (p *RoleProcess) SetRoutes(routes map[string]string) error {
	line, err := json.Marshal(roleCommand{Routes: routes})
	if err != nil {
		return err
	}
	if _, err := p.stdin.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("deploy: %s: routes: %w", p.name, err)
	}
	l, err := p.out.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("deploy: %s: routes: %w", p.name, err)
	}
	var r roleReply
	if err := json.Unmarshal(l, &r); err != nil {
		return fmt.Errorf("deploy: %s: routes: %w", p.name, err)
	}
	if r.Error != "" {
		return fmt.Errorf("deploy: %s: routes: %s", p.name, r.Error)
	}
	return nil
}

// CoreProcess is a runtime.GroupConfig.StartCore that runs the group's SIP/IP core in a
// child that cmd makes, named "core", with req's other fields (metrics) beside it;
// started, if not nil, is told of the child once it runs.
func CoreProcess(cmd func() *exec.Cmd, req RoleRequest, started func(*RoleProcess)) func(context.Context, sipx.ProxyConfig) (runtime.RemoteCore, error) {
	return func(ctx context.Context, pc sipx.ProxyConfig) (runtime.RemoteCore, error) {
		if pc.TLS != nil {
			return nil, errors.New("deploy: a core process takes no TLS (its key stays in the parent)")
		}
		r := req
		r.NodeConfig = runtime.NodeConfig{Name: "core", Host: pc.Host, Advertise: pc.Advertise, TrustedHosts: pc.TrustedHosts}
		r.Core, r.LinkUps, r.TraceDir = true, false, ""
		p, err := startTold(ctx, cmd(), r, started)
		if err != nil {
			return nil, err // not a nil *RoleProcess in the interface
		}
		return p, nil
	}
}

// Name is the role instance's name (its NodeConfig's).
func (p *RoleProcess) Name() string { return p.name }

// ErrNoCFProcess is returned by StopCF for a group whose CF does not run in a child.
var ErrNoCFProcess = errors.New("deploy: the CF does not run in a process of its own")

// StopCF stops the CF of a group started with CFProcess and returns what it measured; it
// is idempotent, and the group's Close calls it too.
func StopCF(g *runtime.Group) (RoleStats, error) {
	p, ok := g.RemoteCF.(*RoleProcess)
	if !ok {
		return RoleStats{}, ErrNoCFProcess
	}
	return p.Stop()
}

// ServeRoleChild makes a test binary its own role process, as cpmlink re-executes itself
// with role-process: called first in TestMain, it runs RunRoleProcess and exits when env
// is set in the environment, and returns otherwise. RoleChild starts such a child.
func ServeRoleChild(env string) {
	if os.Getenv(env) == "" {
		return
	}
	if err := RunRoleProcess(context.Background(), os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// RoleChild re-executes the running test binary, running no test, as a role process
// (see ServeRoleChild).
func RoleChild(env string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env+"=1")
	cmd.Stderr = os.Stderr
	return cmd
}
