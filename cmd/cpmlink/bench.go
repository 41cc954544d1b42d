package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/runtime"
)

func init() {
	register("bench", "measure set-up and delivery times and the CF's peak heap", runBench)
	// role-process is how bench runs the CF in a process of its own: cpmlink re-executes
	// itself with it (runtime.RunRoleProcess).
	register("role-process", "", func(args []string, stdout, stderr io.Writer) int {
		if err := runtime.RunRoleProcess(context.Background(), os.Stdin, stdout); err != nil {
			return fail(stderr, "%v", err)
		}
		return 0
	})
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
	// CFPeakHeap is the largest, over the runs, of the CF process's peak heap.
	CFPeakHeap uint64 `json:"cf_peak_heap_bytes"`
	CFPeakRSS  uint64 `json:"cf_peak_rss_bytes"`
	Failed     int    `json:"failed_members"`
}

func runBench(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("bench", stderr)
	variants := fs.String("variant", "fig1,fig3", "comma-separated variant `names`")
	members := fs.String("members", "5,100", "comma-separated group `sizes`")
	pfbs := fs.Int("pfbs", 2, "terminating PFs the members are spread over")
	sizes := fs.String("size", "2MB,100MB", "comma-separated message `sizes`")
	runs := fs.Int("runs", 3, "runs per configuration (each on a fresh group)")
	transport := fs.String("transport", "udp", "SIP transport: udp or tcp")
	asJSON := fs.Bool("json", false, "print one JSON array")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up on one run after this long")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	self, err := os.Executable()
	if err != nil {
		return fail(stderr, "%v", err)
	}
	var vs []fsm.Variant
	for _, name := range strings.Split(*variants, ",") {
		v, ok := fsm.VariantByName(strings.TrimSpace(name))
		if !ok {
			return fail(stderr, "unknown variant %q", name)
		}
		vs = append(vs, v)
	}
	var ms []int
	for _, m := range strings.Split(*members, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(m), &n); err != nil || n < 1 {
			return fail(stderr, "bad --members %q", m)
		}
		ms = append(ms, n)
	}
	var ss []int64
	for _, s := range strings.Split(*sizes, ",") {
		n, err := runtime.ParseSize(s)
		if err != nil || n < 1 {
			return fail(stderr, "bad --size %q", s)
		}
		ss = append(ss, n)
	}
	if *runs < 1 {
		return fail(stderr, "--runs must be at least 1")
	}
	if !*asJSON {
		fmt.Fprintf(stdout, "%-8s %7s %9s  %-22s %-22s %s\n", "variant", "members", "size", "setup ms (min/med/max)", "delivery ms (min/med/max)", "CF peak heap / RSS")
	}
	var rows []benchRow
	for _, v := range vs {
		for _, m := range ms {
			for _, size := range ss {
				row := benchRow{Variant: v.Name, Members: m, PFBs: min(*pfbs, m), Bytes: size, Runs: *runs}
				for i := 0; i < *runs; i++ {
					if err := benchOnce(&row, v, *transport, self, *timeout, uint64(i), stderr); err != nil {
						return fail(stderr, "%s, %d members, %d bytes: %v", v.Name, m, size, err)
					}
				}
				rows = append(rows, row)
				if !*asJSON {
					fmt.Fprintf(stdout, "%-8s %7d %9s  %-22s %-22s %.1f / %.1f MB%s\n", row.Variant, row.Members, humanSize(row.Bytes),
						spread(row.SetupMS), spread(row.DeliveryMS), float64(row.CFPeakHeap)/(1<<20), float64(row.CFPeakRSS)/(1<<20), failedNote(row.Failed))
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

// benchOnce runs one message on a fresh group whose CF runs in a child process, and adds
// what it measured to row. Members hash what they receive and keep nothing; tracing
// keeps only the records that are not about single chunks, enough for the set-up time.
func benchOnce(row *benchRow, v fsm.Variant, transport, self string, timeout time.Duration, seed uint64, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var recs []runtime.Record
	tracer := runtime.NewTracer(nil, &recs)
	tracer.Summary = true
	g, err := runtime.StartGroup(ctx, runtime.GroupConfig{Variant: v, Members: row.Members, PFBs: row.PFBs, Transport: transport,
		Discard: true, Trace: tracer, CFProcess: func() *exec.Cmd {
			cmd := exec.Command(self, "role-process")
			cmd.Stderr = os.Stderr
			return cmd
		}})
	if err != nil {
		return err
	}
	defer g.Close()
	key := [32]byte{byte(seed)}
	h := sha256.New()
	io.Copy(h, io.LimitReader(rand.NewChaCha8(key), row.Bytes))
	want := hex.EncodeToString(h.Sum(nil))
	start := time.Now()
	out, err := g.ClientA.Send(ctx, runtime.GroupURI, nil, runtime.Message{
		Open: func() (io.ReadCloser, error) {
			return io.NopCloser(io.LimitReader(rand.NewChaCha8(key), row.Bytes)), nil
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
	stats, err := g.StopCF()
	if err != nil {
		return err
	}
	row.CFPeakHeap = max(row.CFPeakHeap, stats.PeakHeapBytes)
	row.CFPeakRSS = max(row.CFPeakRSS, stats.PeakRSSBytes)
	if failed > 0 {
		// A run that did not reach everyone has no delivery time to report.
		fmt.Fprintf(stderr, "bench: run %d: %d of %d members did not get the message\n", seed+1, failed, row.Members)
		row.Failed += failed
		return nil
	}
	_, setup := hopTable(v, recs, start)
	row.SetupMS = append(row.SetupMS, setup)
	row.DeliveryMS = append(row.DeliveryMS, last.Sub(start).Milliseconds())
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

func humanSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}
