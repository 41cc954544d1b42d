package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// scraper reads a server process's figures from its /metrics (Prometheus text
// exposition format 0.0.4): go_goroutines (Go collector), process_resident_memory_bytes
// and process_open_fds (process collector), cpmlink_sessions (every label summed) and,
// where the process serves it (role processes do), go_gc_heap_live_bytes.
type scraper struct {
	client *http.Client
}

// errScrape is returned for a /metrics that lacks a figure or does not answer 200.
var errScrape = errors.New("bench: metrics")

func newScraper() *scraper {
	// No keep-alive: every scrape opens and closes its own connection, so that each
	// reading counts the same one connection (and its goroutine) at the server, and
	// none stays between readings.
	return &scraper{client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}}
}

func (s *scraper) read(ctx context.Context, addr string) (procStats, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return procStats{}, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return procStats{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return procStats{}, fmt.Errorf("%w: %s: %s", errScrape, addr, resp.Status)
	}
	return parseProcStats(resp.Body)
}

// parseProcStats takes the figures out of a text exposition.
func parseProcStats(r io.Reader) (procStats, error) {
	var st procStats
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		// name{labels} value [timestamp]; label values may hold spaces, so the value
		// is found after the closing brace.
		name, rest := line, ""
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			name, rest = line[:i], line[j+1:]
		} else if i := strings.IndexByte(line, ' '); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_goroutines":
			st.Goroutines = int(v)
		case "process_resident_memory_bytes":
			st.RSS = uint64(v)
		case "process_open_fds":
			st.FDs = int(v)
		case "go_gc_heap_live_bytes":
			st.HeapLive = uint64(v)
		case "cpmlink_sessions":
			st.Sessions += int(v)
		default:
			continue
		}
		seen[name] = true
	}
	if err := sc.Err(); err != nil {
		return st, err
	}
	for _, n := range []string{"go_goroutines", "process_resident_memory_bytes", "process_open_fds"} {
		if !seen[n] {
			return st, fmt.Errorf("%w: no %s", errScrape, n)
		}
	}
	return st, nil
}
