package runtime

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A role process runs one role instance in a process of its own, for a parent that wants
// to measure it alone (the CF's peak heap while it relays a large message to many
// members). The parent writes the NodeConfig as one JSON line on the child's stdin; the
// child answers with its addresses as one JSON line on stdout, runs until its stdin
// closes, then writes its measurements as a last JSON line and exits.

// RoleAddrs is what a role process answers once it runs.
type RoleAddrs struct {
	SIP  string `json:"sip"`
	MSRP string `json:"msrp"`
}

// RoleStats is what a role process measured over its life.
type RoleStats struct {
	// PeakHeapBytes is the largest heap (live and not yet swept objects) seen by a
	// sampler that reads runtime/metrics every millisecond.
	PeakHeapBytes uint64 `json:"peak_heap_bytes"`
	// PeakRSSBytes is the kernel's high-water mark of the process (VmHWM), 0 where
	// /proc is not available.
	PeakRSSBytes uint64 `json:"peak_rss_bytes"`
	Error        string `json:"error,omitempty"`
}

// RunRoleProcess is the body of a role process: see StartRoleProcess.
func RunRoleProcess(ctx context.Context, in io.Reader, out io.Writer) error {
	sampler := startHeapSampler()
	br := bufio.NewReader(in)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("runtime: role process: reading its configuration: %w", err)
	}
	var cfg NodeConfig
	if err := json.Unmarshal(line, &cfg); err != nil {
		return fmt.Errorf("runtime: role process: %w", err)
	}
	n, err := StartNode(ctx, cfg)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	if err := enc.Encode(RoleAddrs{SIP: n.SIPAddr(), MSRP: n.MSRPAddr()}); err != nil {
		n.Close()
		return err
	}
	// The parent ends the process by closing stdin.
	closed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, br)
		close(closed)
	}()
	select {
	case <-closed:
	case <-ctx.Done():
	}
	err = n.Close()
	stats := RoleStats{PeakHeapBytes: sampler.stop(), PeakRSSBytes: peakRSS()}
	if err != nil {
		stats.Error = err.Error()
	}
	return enc.Encode(stats)
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
func StartRoleProcess(ctx context.Context, cmd *exec.Cmd, cfg NodeConfig) (*RoleProcess, error) {
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
	p := &RoleProcess{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	line, err := json.Marshal(cfg)
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
		return nil, fmt.Errorf("runtime: starting the %s process: %w", cfg.Name, err)
	}
	return p, nil
}

// SIPAddr is where the child's role takes SIP.
func (p *RoleProcess) SIPAddr() string { return p.addrs.SIP }

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
