package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// No test here asserts a time: speed goals live in `cpmlink bench` and the benchmarks.

// TestRawChainBytes: the raw chain delivers every byte sent, once, over any number of
// hops, for sizes that are and are not a whole number of blocks.
func TestRawChainBytes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		hops int
		size int64
	}{{1, 1}, {4, baselineBlock}, {4, 3*baselineBlock + 17}, {2, 1 << 20}} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var moved atomic.Int64
		run, err := rawChain(ctx, tc.hops, tc.size, &moved)
		cancel()
		if err != nil {
			t.Fatalf("%d hops, %d bytes: %v", tc.hops, tc.size, err)
		}
		if run.Bytes != tc.size || moved.Load() != tc.size || run.Took <= 0 {
			t.Errorf("%d hops, %d bytes: sink counted %d, progress %d, took %v", tc.hops, tc.size, run.Bytes, moved.Load(), run.Took)
		}
	}
}

// TestRawFanOutBytes: every one of the N sockets gets every byte, and the total is N
// times the message.
func TestRawFanOutBytes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n    int
		size int64
	}{{1, 5}, {7, 2*baselineBlock + 1}, {50, 100_000}} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var moved atomic.Int64
		run, err := rawFanOut(ctx, tc.n, tc.size, &moved)
		cancel()
		if err != nil {
			t.Fatalf("%d sockets, %d bytes: %v", tc.n, tc.size, err)
		}
		if want := int64(tc.n) * tc.size; run.Bytes != want || moved.Load() != want {
			t.Errorf("%d sockets, %d bytes: sinks counted %d, progress %d, want %d", tc.n, tc.size, run.Bytes, moved.Load(), want)
		}
	}
}

// TestBaselinesBounded: a baseline whose context has ended, or that is asked for nothing,
// returns an error rather than a figure.
func TestBaselinesBounded(t *testing.T) {
	t.Parallel()
	var moved atomic.Int64
	if _, err := rawChain(context.Background(), 0, 10, &moved); !errors.Is(err, errBaselineArgs) {
		t.Errorf("0 hops: %v", err)
	}
	if _, err := rawFanOut(context.Background(), 3, 0, &moved); !errors.Is(err, errBaselineArgs) {
		t.Errorf("0 bytes: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := rawChain(ctx, 4, 1<<30, &moved); err == nil {
		t.Error("raw chain with an ended context: no error")
	}
	if _, err := rawFanOut(ctx, 4, 1<<30, &moved); err == nil {
		t.Error("raw fan-out with an ended context: no error")
	}
}

// TestBenchRowReport: the ratios are cpmlink's bytes delivered per second over each
// baseline's, from the medians (the chain carries the message once, the fan-out and
// cpmlink once per member), and the text and JSON say them with the baselines beside them.
func TestBenchRowReport(t *testing.T) {
	t.Parallel()
	row := benchRow{Variant: "fig1", Members: 4, PFBs: 2, Bytes: 1 << 20, Runs: 3,
		SetupMS: []int64{10, 12, 11}, DeliveryMS: []int64{400, 200, 250},
		ChainMS: []float64{50, 40.5, 100}, FanoutMS: []float64{25, 20, 30}}
	row.ratios()
	// medians: delivery 250, chain 50, fan-out 25; 4 members.
	if row.ChainRatio != 0.8 || row.FanoutRatio != 0.1 {
		t.Errorf("ratios %v, %v; want 0.8, 0.1", row.ChainRatio, row.FanoutRatio)
	}
	text := row.text(false)
	for _, want := range []string{
		"fig1           4      1MiB  10 / 11 / 12            200 / 250 / 400",
		"4-hop io.Copy chain 40.5 / 50.0 / 100 ms (21 MB/s)",
		"fan-out to 4 sockets 20.0 / 25.0 / 30.0 ms (168 MB/s)",
		"cpmlink: 17 MB/s to 4 members = 80.0 % of the chain's speed, 10.0 % of the fan-out's",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	if !strings.HasPrefix(benchHeader, "variant  members      size  setup ms") {
		t.Errorf("header: %q", benchHeader)
	}
	js, err := json.Marshal(row)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"chain_ratio": 0.8, "fanout_ratio": 0.1, "chain_ms": []any{50.0, 40.5, 100.0}, "fanout_ms": []any{25.0, 20.0, 30.0}} {
		if got, err := json.Marshal(m[k]); err != nil || string(got) != mustJSON(t, want) {
			t.Errorf("%s: %s, want %s", k, got, mustJSON(t, want))
		}
	}

	// A row in which no run reached every member has no delivery time: no ratio.
	failed := benchRow{Variant: "fig3", Members: 2, PFBs: 1, Bytes: 100, Runs: 1, Failed: 1, ChainMS: []float64{1}, FanoutMS: []float64{1}}
	failed.ratios()
	if failed.ChainRatio != 0 || failed.FanoutRatio != 0 || !strings.Contains(failed.text(false), "no run delivered to every member: no ratio") {
		t.Errorf("failed row: %+v\n%s", failed, failed.text(false))
	}
	if one := (&benchRow{Variant: "fig1", Members: 1, Bytes: 1, ChainMS: []float64{0.25}, FanoutMS: []float64{0.125}, DeliveryMS: []int64{1}}).text(false); !strings.Contains(one, "fan-out to 1 socket 0.12 / 0.12 / 0.12 ms") || !strings.Contains(one, "to 1 member =") {
		t.Errorf("one member:\n%s", one)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBenchBaselinesInJSON: bench measures one chain and one fan-out per run of its own,
// and prints the ratios (over TLS, where the CF runs in the test's process).
func TestBenchBaselinesInJSON(t *testing.T) {
	code, out, stderr := cli(t, "bench", "--transport", "tls", "--variant", "fig1", "--members", "2", "--pfbs", "1", "--size", "100kB", "--runs", "2", "--json", "--timeout", "60s")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	var rows []benchRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rows) != 1 || len(rows[0].DeliveryMS) != 2 || len(rows[0].ChainMS) != 2 || len(rows[0].FanoutMS) != 2 ||
		rows[0].ChainRatio <= 0 || rows[0].FanoutRatio <= 0 {
		t.Errorf("rows: %+v", rows)
	}
}

// TestBenchWatch: on a terminal, the progress line is drawn while a phase runs, and
// stopping it twice is harmless; off a terminal nothing is drawn.
func TestBenchWatch(t *testing.T) {
	t.Parallel()
	var buf strings.Builder
	var calls atomic.Int64
	stop := watch(&statusLine{w: &buf, on: true}, func() string { calls.Add(1); return "raw chain: 1.0 MiB of 2.0 MiB" })
	stop()
	stop()
	if calls.Load() < 1 || !strings.Contains(buf.String(), "\rraw chain: 1.0 MiB of 2.0 MiB\x1b[K") {
		t.Errorf("%d calls, drew %q", calls.Load(), buf.String())
	}
	calls.Store(0)
	watch(newStatusLine(&buf), func() string { calls.Add(1); return "" })()
	if calls.Load() != 0 {
		t.Errorf("off a terminal: line asked %d times", calls.Load())
	}
}
