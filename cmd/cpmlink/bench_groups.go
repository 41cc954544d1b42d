package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/runtime/deploy"
)

// bench --groups: many groups at once on one set of server roles (issue 8, item 3).
//
// One PF-A, one CF and the PF-Bs each run in a process of their own (cpmlink
// role-process, serving /metrics on loopback so that bench can read their goroutines,
// RSS and open files); the SIP/IP core, every group's sender and every member run in
// bench's process. The CF holds every group: group g is sip:g<g>@cf.example, sent to by
// sip:s<g>@a.example only, its members sip:g<g>m<i>@b<j>.example spread over the PF-Bs.
//
// Each message has content of its own (ChaCha8 keyed by group and sequence number), so
// that its SHA-256, which every member computes as it receives, names it: a member that
// holds it twice, under the same MSRP Message-ID or not, counts as a duplicate.

// groupsConfig is what one bench --groups run measures.
type groupsConfig struct {
	Variant   fsm.Variant
	Groups    int
	Members   int // per group
	PFBs      int
	Bytes     int64
	Transport string
	// Runs is the number of concurrent rounds: in each, every group's sender sends one
	// message at the same time.
	Runs int
	// Soak, if positive, follows the rounds: a new message every Interval, from the next
	// sender that is not sending one already, until Soak has passed or SoakMessages were
	// sent.
	Soak         time.Duration
	Interval     time.Duration
	SoakMessages int
	// Timeout bounds each message (its Send), and the fleet's start.
	Timeout time.Duration
	// Pprof makes each server process serve /debug/pprof/ on loopback; their addresses
	// are printed on Log once they run.
	Pprof bool
	Log   io.Writer
	// Settle bounds the wait, at the end, for the servers' goroutines and open files to
	// come back to their start: longer than an unused MSRP connection is kept for reuse
	// (runtime/msrp's IdleTimeout, 60 s).
	Settle time.Duration
}

// groupsReport is bench --groups' result (its JSON).
type groupsReport struct {
	Variant    string        `json:"variant"`
	Transport  string        `json:"transport"`
	Groups     int           `json:"groups"`
	Members    int           `json:"members"`
	PFBs       int           `json:"pfbs"`
	Bytes      int64         `json:"bytes"`
	Concurrent []phaseResult `json:"concurrent"`
	Soak       *phaseResult  `json:"soak,omitempty"`
	// Servers are the server processes' figures at the start (the fleet up and
	// registered, nothing sent), after the concurrent rounds, and at the end (after the
	// soak, once every client is idle and the servers have settled).
	Servers []serverReport `json:"servers"`
}

// phaseResult counts one phase's member deliveries: each message sent owes one to each
// member of its group.
type phaseResult struct {
	Phase    string `json:"phase"`
	Messages int    `json:"messages"`
	// Deliveries is messages × members: what was owed.
	Deliveries int `json:"deliveries"`
	// Delivered are held by their member, byte-exact (SHA-256).
	Delivered int `json:"delivered"`
	// Failed are not held, and the sender learned the member failed.
	Failed int `json:"failed"`
	// Lost are not held, yet the sender was told they were delivered, or learned nothing.
	Lost int `json:"lost"`
	// Duplicated are second (third ...) copies of a message at one member.
	Duplicated int `json:"duplicated"`
	// Unknown are messages a member holds that match nothing sent in the phase.
	Unknown int `json:"unknown"`
	// SendErrors are Sends that returned an error (their deliveries are counted above).
	SendErrors int `json:"send_errors"`
	// Delivery times are per message, from its Send to the last member of its group
	// holding it, over the messages every member got.
	P50MS float64 `json:"delivery_p50_ms"`
	P99MS float64 `json:"delivery_p99_ms"`
	MaxMS float64 `json:"delivery_max_ms"`
	// WallMS is the phase from its first Send to every client idle.
	WallMS float64 `json:"wall_ms"`
	// Soak only: what it was asked, and the ticks at which every sender was busy (no
	// message could start).
	IntervalMS float64 `json:"interval_ms,omitempty"`
	BusyTicks  int     `json:"busy_ticks,omitempty"`
}

func (p phaseResult) bad() bool {
	return p.Delivered != p.Deliveries || p.Duplicated > 0 || p.Unknown > 0
}

// serverReport is one server process's figures at four moments: the start (the fleet up
// and registered, nothing sent), warm (after the concurrent rounds, every client idle),
// soak end (right after the soak, every client idle) and settled (once goroutines, open
// files and sessions are back at the start's, or Settle has passed).
type serverReport struct {
	Name    string    `json:"name"`
	Start   procStats `json:"start"`
	Warm    procStats `json:"warm"`
	SoakEnd procStats `json:"soak_end"`
	Settled procStats `json:"settled"`
	// SoakPeakRSS is the largest RSS sampled during the soak; SoakRSS are the samples,
	// one every tenth of the soak (at least a second apart). A leak grows them to the
	// end; a heap that reached its working set stays flat after the first.
	SoakPeakRSS  uint64   `json:"soak_peak_rss_bytes"`
	SoakRSS      []uint64 `json:"soak_rss_bytes"`
	SoakHeapLive []uint64 `json:"soak_heap_live_bytes"`
	// SettleMS is how long the settled figures took to come back to the start's (or the
	// bound on that wait, when they did not).
	SettleMS float64 `json:"settle_ms"`
}

// procStats is what a server process's /metrics says of it (the Go and process
// collectors, and cpmlink_sessions summed over its labels).
type procStats struct {
	RSS uint64 `json:"rss_bytes"`
	// HeapLive is the heap the process's last GC found live: what grows with a leak,
	// where RSS also follows the GC's target and what the runtime keeps.
	HeapLive   uint64 `json:"heap_live_bytes"`
	Goroutines int    `json:"goroutines"`
	FDs        int    `json:"open_fds"`
	Sessions   int    `json:"sessions"`
}

// benchGroups runs bench --groups: the fleet, the concurrent rounds, the soak.
func benchGroups(cfg groupsConfig, roleCmd func() *exec.Cmd, status *statusLine) (groupsReport, error) {
	rep := groupsReport{Variant: cfg.Variant.Name, Transport: cfg.Transport, Groups: cfg.Groups, Members: cfg.Members, PFBs: cfg.PFBs, Bytes: cfg.Bytes}
	// The whole run is bounded: the start, each round and the soak by a message's timeout
	// at most, beyond the soak's own length.
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.Runs+3)*cfg.Timeout+cfg.Soak+cfg.Settle)
	defer cancel()
	f, err := startFleet(ctx, cfg, roleCmd, status)
	if err != nil {
		return rep, err
	}
	defer f.close()
	start, err := f.stats(ctx)
	if err != nil {
		return rep, err
	}
	for i := 0; i < cfg.Runs; i++ {
		r, err := f.concurrent(ctx, fmt.Sprintf("concurrent %d of %d", i+1, cfg.Runs), status)
		if err != nil {
			return rep, err
		}
		rep.Concurrent = append(rep.Concurrent, r)
	}
	warm, err := f.stats(ctx)
	if err != nil {
		return rep, err
	}
	soakEnd, peak, series, live := warm, make([]uint64, len(warm)), make([][]uint64, len(warm)), make([][]uint64, len(warm))
	if cfg.Soak > 0 {
		// The servers' RSS is sampled during the soak: a leak grows it steadily.
		sctx, stopSampling := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() {
			t := time.NewTicker(max(cfg.Soak/10, time.Second))
			defer t.Stop()
			for {
				select {
				case <-t.C:
				case <-sctx.Done():
					return
				}
				if now, err := f.stats(sctx); err == nil {
					for i := range now {
						peak[i] = max(peak[i], now[i].RSS)
						series[i] = append(series[i], now[i].RSS)
						live[i] = append(live[i], now[i].HeapLive)
					}
				}
			}
		})
		r, err := f.soak(ctx, status)
		stopSampling()
		wg.Wait()
		if err != nil {
			return rep, err
		}
		rep.Soak = &r
		if soakEnd, err = f.stats(ctx); err != nil {
			return rep, err
		}
	}
	status.show("bench: waiting for the servers to settle")
	settled, took, err := f.settle(ctx, start, cfg.Settle)
	if err != nil {
		return rep, err
	}
	for i, name := range f.names {
		rep.Servers = append(rep.Servers, serverReport{Name: name, Start: start[i], Warm: warm[i], SoakEnd: soakEnd[i], Settled: settled[i],
			SoakPeakRSS: max(peak[i], soakEnd[i].RSS), SoakRSS: series[i], SoakHeapLive: live[i], SettleMS: millis(took)})
	}
	return rep, nil
}

// failed says whether the run lost, failed or duplicated anything.
func (r groupsReport) failed() bool {
	for _, p := range r.Concurrent {
		if p.bad() {
			return true
		}
	}
	return r.Soak != nil && r.Soak.bad()
}

// text is the report as bench prints it.
func (r groupsReport) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d groups × %d members × %s, %s over %s, %s: servers in processes of their own (pfa, cf, %s)\n",
		r.Groups, r.Members, deploy.FormatSize(r.Bytes), r.Variant, r.Transport, plural(r.PFBs, "PF-B"), plural(r.PFBs, "pfb"))
	fmt.Fprintf(&b, "%-22s %8s %10s %10s %6s %5s %5s %5s  %-27s %s\n", "phase", "messages", "deliveries", "delivered", "failed", "lost", "dup", "unkn", "delivery ms p50 / p99 / max", "wall s")
	line := func(p phaseResult) {
		fmt.Fprintf(&b, "%-22s %8d %10d %10d %6d %5d %5d %5d  %-27s %.1f\n", p.Phase, p.Messages, p.Deliveries, p.Delivered, p.Failed, p.Lost, p.Duplicated, p.Unknown,
			sigFigures(p.P50MS)+" / "+sigFigures(p.P99MS)+" / "+sigFigures(p.MaxMS), p.WallMS/1000)
	}
	for _, p := range r.Concurrent {
		line(p)
	}
	if s := r.Soak; s != nil {
		line(*s)
		rate := 0.0
		if s.WallMS > 0 {
			rate = float64(s.Messages) / (s.WallMS / 1000)
		}
		fmt.Fprintf(&b, "  soak: a message every %s asked, %.0f messages/s sent; %d ticks found every sender busy; %d sends returned an error\n",
			time.Duration(s.IntervalMS*float64(time.Millisecond)), rate, s.BusyTicks, s.SendErrors)
	}
	fmt.Fprintf(&b, "%-6s %-30s %-30s %-30s %-22s %-20s %s\n", "server", "RSS MiB", "live heap MiB", "soak: RSS, live heap from 1/5", "goroutines", "open fds", "sessions")
	for _, s := range r.Servers {
		four := func(a, b, c, d int) string { return fmt.Sprintf("%d / %d / %d / %d", a, b, c, d) }
		mib4 := func(a, b, c, d uint64) string {
			return fmt.Sprintf("%.1f / %.1f / %.1f / %.1f", mibf(a), mibf(b), mibf(c), mibf(d))
		}
		soak := "-"
		if n := len(s.SoakRSS); n > 0 {
			// From the second sample, a fifth into the soak: by then the sessions kept a
			// guard unit after their end are at their steady number.
			i := min(1, n-1)
			soak = fmt.Sprintf("%+.0f %%, %+.0f %%", growth(s.SoakRSS[i], s.SoakEnd.RSS), growth(s.SoakHeapLive[i], s.SoakEnd.HeapLive))
		}
		fmt.Fprintf(&b, "%-6s %-30s %-30s %-30s %-22s %-20s %s\n", s.Name,
			mib4(s.Start.RSS, s.Warm.RSS, s.SoakEnd.RSS, s.Settled.RSS),
			mib4(s.Start.HeapLive, s.Warm.HeapLive, s.SoakEnd.HeapLive, s.Settled.HeapLive),
			soak,
			four(s.Start.Goroutines, s.Warm.Goroutines, s.SoakEnd.Goroutines, s.Settled.Goroutines),
			four(s.Start.FDs, s.Warm.FDs, s.SoakEnd.FDs, s.Settled.FDs),
			four(s.Start.Sessions, s.Warm.Sessions, s.SoakEnd.Sessions, s.Settled.Sessions))
	}
	if len(r.Servers) > 0 {
		fmt.Fprintf(&b, "  each: start (fleet up, nothing sent) / warm (after the rounds) / soak end (= warm without a soak) / settled (%.1f s later: back at the start's, or the bound)\n"+
			"  soak: growth from the second of ten samples (a fifth into the soak) to its end; live heap: what the last GC found live\n", r.Servers[0].SettleMS/1000)
	}
	return b.String()
}

func mibf(n uint64) float64 { return float64(n) / (1 << 20) }

// growth is the percentage by which to exceeds from.
func growth(from, to uint64) float64 {
	if from == 0 {
		return 0
	}
	return 100 * (float64(to) - float64(from)) / float64(from)
}

// flagSet says whether the command line gave the flag.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// runBenchGroups is bench with --groups: the flags are checked for it, the run made, the
// report printed; exit 1 if anything was lost, failed or duplicated.
func runBenchGroups(fs *flag.FlagSet, stdout, stderr io.Writer, groups int, variants, members, sizes string, pfbs, runs int,
	transport string, asJSON bool, timeout, soak, interval time.Duration, soakMessages int, settle time.Duration, pprof bool) int {
	// The lists' defaults are per-group bench's: --groups has its own (issue 8's case).
	for _, d := range []struct {
		name string
		v    *string
		def  string
	}{{"variant", &variants, "fig1"}, {"members", &members, "10"}, {"size", &sizes, "100kB"}} {
		if !flagSet(fs, d.name) {
			*d.v = d.def
		}
	}
	one := func(flagName, v, what string) error {
		if strings.Contains(v, ",") {
			return errors.New(refuse(flagName, v, "is a list: with --groups it takes one "+what))
		}
		return nil
	}
	err := errors.Join(atLeast("groups", groups, 1, "at least 1 group"), atLeast("pfbs", pfbs, 1, "a group has at least 1 PF-B"),
		atLeast("runs", runs, 0, "0 or more rounds"), positive("timeout", timeout),
		one("variant", variants, "variant"), one("members", members, "group size"), one("size", sizes, "message size"),
		oneOf("transport", transport, "udp", "tcp"), positive("interval", interval),
		atLeast("soak-messages", soakMessages, 1, "at least 1"))
	if settle < 0 {
		err = errors.Join(err, errors.New(refuse("settle", settle.String(), "is negative: give a duration with a unit, e.g. 90s, or 0 not to wait")))
	}
	if soak < 0 {
		err = errors.Join(err, errors.New(refuse("soak", soak.String(), "is negative: give a duration with a unit, e.g. 5m, or 0 for no soak")))
	}
	if err != nil {
		return refusal(stderr, "bench", err)
	}
	cfg := groupsConfig{Groups: groups, PFBs: pfbs, Runs: runs, Transport: transport, Timeout: timeout,
		Soak: soak, Interval: interval, SoakMessages: soakMessages, Settle: settle, Pprof: pprof, Log: stderr}
	all, _ := loadVariants("")
	v, err := pickVariant(all, strings.TrimSpace(variants))
	if err != nil {
		return refusal(stderr, "bench", err)
	}
	cfg.Variant = v.Variant
	if cfg.Members, err = strconv.Atoi(strings.TrimSpace(members)); err != nil || cfg.Members < 1 {
		return refusal(stderr, "bench", errors.New(refuse("members", members, "is not a group size: a whole number of at least 1, e.g. 10")))
	}
	if cfg.Bytes, err = deploy.ParseSize(sizes); err != nil || cfg.Bytes < 1 {
		return refusal(stderr, "bench", errors.New(refuse("size", sizes, "is not a message size: a size of at least 1 byte, "+deploy.SizeForms)))
	}
	self, err := os.Executable()
	if err != nil {
		return fail(stderr, "%v", err)
	}
	status := newStatusLine(stderr)
	rep, err := benchGroups(cfg, func() *exec.Cmd {
		c := roleProcess(self)
		shareCores(c, cfg.PFBs+2) // PF-A, the CF and the PF-Bs; the core runs here
		return c
	}, status)
	status.clear()
	if err != nil {
		return fail(stderr, "bench --groups: %v", err)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		fmt.Fprint(stdout, rep.text())
	}
	if rep.failed() {
		return 1
	}
	return 0
}
