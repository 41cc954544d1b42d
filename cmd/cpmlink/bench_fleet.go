package main

// The fleet of bench --groups: its start, its sends, how its deliveries are counted
// (bench_groups.go has the command, the configuration and the report).

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/runtime"
	"github.com/cpmlink/cpmlink/runtime/deploy"
	"github.com/cpmlink/cpmlink/runtime/sipx"
)

// fleet is the deployment bench --groups runs.
type fleet struct {
	cfg     groupsConfig
	core    *sipx.Proxy
	servers []*deploy.RoleProcess
	names   []string
	groups  []*fleetGroup
	scrape  *scraper
}

type fleetGroup struct {
	uri     string
	sender  *runtime.Node
	members []*runtime.Node
	uris    []string
	// seq numbers the group's messages (content keys); taken is how many of each
	// member's Received a tally has looked at.
	seq   atomic.Uint64
	taken []int
	busy  atomic.Bool
}

func fleetGroupURI(g int) string  { return fmt.Sprintf("sip:g%d@cf.example", g+1) }
func fleetSenderURI(g int) string { return fmt.Sprintf("sip:s%d@a.example", g+1) }
func fleetMemberURI(g, i, pfbs, members int) string {
	// Members are spread over the PF-Bs by their index over the whole fleet, so that
	// every PF-B serves every group's share when members < pfbs too.
	return fmt.Sprintf("sip:g%dm%d@b%d.example", g+1, i+1, (g*members+i)%pfbs+1)
}

// startFleet starts the core, the server processes (made by roleCmd), and every client,
// and registers the clients.
func startFleet(ctx context.Context, cfg groupsConfig, roleCmd func() *exec.Cmd, status *statusLine) (f *fleet, err error) {
	f = &fleet{cfg: cfg, scrape: newScraper()}
	defer func() {
		if err != nil {
			f.close()
		}
	}()
	logger := slog.New(slog.DiscardHandler)
	if f.core, err = sipx.StartProxy(ctx, sipx.ProxyConfig{Host: "127.0.0.1", Routes: map[string]string{}, Logger: logger}); err != nil {
		return nil, err
	}
	proxy := f.core.UDPAddr()
	server := func(kind fsm.RoleKind, name, uri string, groups map[string]core.Group) (*deploy.RoleProcess, error) {
		nc := runtime.NodeConfig{Kind: kind, Name: name, URI: uri, Host: "127.0.0.1", Variant: cfg.Variant, Proxy: proxy,
			Transport: cfg.Transport, Groups: groups}
		req := deploy.RoleRequest{NodeConfig: nc, MetricsListen: "127.0.0.1:0"}
		if cfg.Pprof {
			req.PprofListen = "127.0.0.1:0"
		}
		p, err := deploy.StartRoleProcessWith(ctx, roleCmd(), req)
		if err != nil {
			return nil, err
		}
		if cfg.Pprof {
			status.clear()
			fmt.Fprintf(cfg.Log, "bench: %s (pid %d): go tool pprof http://%s/debug/pprof/heap\n", name, p.Pid(), p.PprofAddr())
		}
		f.servers = append(f.servers, p)
		f.names = append(f.names, name)
		return p, nil
	}
	groups := map[string]core.Group{}
	for g := 0; g < cfg.Groups; g++ {
		fg := &fleetGroup{uri: fleetGroupURI(g), taken: make([]int, cfg.Members)}
		for i := 0; i < cfg.Members; i++ {
			fg.uris = append(fg.uris, fleetMemberURI(g, i, cfg.PFBs, cfg.Members))
		}
		groups[fg.uri] = core.Group{Members: fg.uris, Senders: []string{fleetSenderURI(g)}}
		f.groups = append(f.groups, fg)
	}
	status.show("bench: starting the servers")
	pfa, err := server(fsm.RolePFA, "pfa", "sip:pf@a.example", nil)
	if err != nil {
		return nil, err
	}
	cf, err := server(fsm.RoleCF, "cf", "sip:cf@cf.example", groups)
	if err != nil {
		return nil, err
	}
	routes := map[string]string{"a.example": pfa.SIPAddr(), "cf.example": cf.SIPAddr()}
	var pfbs []*deploy.RoleProcess
	for j := 0; j < cfg.PFBs; j++ {
		p, err := server(fsm.RolePFB, "pfb"+strconv.Itoa(j+1), fmt.Sprintf("sip:pf@b%d.example", j+1), nil)
		if err != nil {
			return nil, err
		}
		pfbs = append(pfbs, p)
		routes[fmt.Sprintf("b%d.example", j+1)] = p.SIPAddr()
	}
	if err := f.core.SetRoutes(routes); err != nil {
		return nil, err
	}
	client := func(kind fsm.RoleKind, name, uri, pf string) (*runtime.Node, error) {
		return runtime.StartNode(ctx, runtime.NodeConfig{Kind: kind, Name: name, URI: uri, Host: "127.0.0.1", Variant: cfg.Variant,
			Proxy: proxy, Transport: cfg.Transport, OriginatingPF: pf, Discard: true})
	}
	var nodes []*runtime.Node
	for g, fg := range f.groups {
		status.show("bench: starting the clients: %d of %d groups", g, cfg.Groups)
		if fg.sender, err = client(fsm.RoleClientA, "s"+strconv.Itoa(g+1), fleetSenderURI(g), pfa.SIPAddr()); err != nil {
			return nil, err
		}
		nodes = append(nodes, fg.sender)
		for i, uri := range fg.uris {
			pf := pfbs[(g*cfg.Members+i)%cfg.PFBs]
			m, err := client(fsm.RoleClientB, fmt.Sprintf("g%dm%d", g+1, i+1), uri, pf.SIPAddr())
			if err != nil {
				return nil, err
			}
			fg.members = append(fg.members, m)
			nodes = append(nodes, m)
		}
	}
	// Registrations go a few dozen at a time: they are set-up, not what is measured.
	var done atomic.Int64
	stop := watch(status, func() string {
		return fmt.Sprintf("bench: registering the clients: %d of %d", done.Load(), len(nodes))
	})
	defer stop()
	errs := make(chan error, len(nodes))
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := n.Register(ctx, time.Hour); err != nil {
				errs <- fmt.Errorf("%s registering: %w", n.Name(), err)
			}
			done.Add(1)
		})
	}
	wg.Wait()
	close(errs)
	if err := errors.Join(slices.Collect(chanValues(errs))...); err != nil {
		return nil, err
	}
	return f, nil
}

func chanValues[T any](ch <-chan T) func(func(T) bool) {
	return func(yield func(T) bool) {
		for v := range ch {
			if !yield(v) {
				return
			}
		}
	}
}

// close stops every client, then the servers, then the core.
func (f *fleet) close() error {
	var errs []error
	for _, fg := range f.groups {
		for _, n := range append([]*runtime.Node{fg.sender}, fg.members...) {
			if n != nil {
				errs = append(errs, n.Close())
			}
		}
	}
	for _, p := range f.servers {
		errs = append(errs, p.Close())
	}
	if f.core != nil {
		errs = append(errs, f.core.Close())
	}
	return errors.Join(errs...)
}

// clients lists every client node.
func (f *fleet) clients() []*runtime.Node {
	var out []*runtime.Node
	for _, fg := range f.groups {
		out = append(out, fg.sender)
		out = append(out, fg.members...)
	}
	return out
}

// waitIdle waits until every client has ended its sessions, bounded by ctx and by one
// message's timeout: a session that never ends is named (runtime's error says which
// node) instead of holding the run until its end.
func (f *fleet) waitIdle(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	for _, n := range f.clients() {
		if err := n.WaitIdle(ctx); err != nil {
			return err
		}
	}
	return nil
}

// stats reads every server's figures.
func (f *fleet) stats(ctx context.Context) ([]procStats, error) {
	out := make([]procStats, len(f.servers))
	for i, p := range f.servers {
		s, err := f.scrape.read(ctx, p.MetricsAddr())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.names[i], err)
		}
		out[i] = s
	}
	return out, nil
}

// sentMsg is one message a sender sent.
type sentMsg struct {
	group int
	sha   string
	start time.Time
	out   runtime.Outcome
	err   error
}

// send sends group g's next message and waits for its outcome (bounded by the
// configured timeout).
func (f *fleet) send(ctx context.Context, g int) *sentMsg {
	fg := f.groups[g]
	seq := fg.seq.Add(1)
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], uint64(g))
	binary.LittleEndian.PutUint64(key[8:], seq)
	h := sha256.New()
	io.Copy(h, io.LimitReader(rand.NewChaCha8(key), f.cfg.Bytes))
	m := &sentMsg{group: g, sha: hex.EncodeToString(h.Sum(nil))}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	m.start = time.Now()
	m.out, m.err = fg.sender.Send(ctx, fg.uri, nil, runtime.Message{
		Open: func() (io.ReadCloser, error) {
			return io.NopCloser(io.LimitReader(rand.NewChaCha8(key), f.cfg.Bytes)), nil
		},
		Size:        f.cfg.Bytes,
		ContentType: "application/octet-stream",
	})
	return m
}

// tally counts the deliveries of msgs (one phase's, every client idle) from what the
// members hold beyond what earlier tallies looked at.
func (f *fleet) tally(phase string, msgs []*sentMsg) phaseResult {
	held := make([][][]runtime.Received, len(f.groups))
	uris := make([][]string, len(f.groups))
	for g, fg := range f.groups {
		uris[g] = fg.uris
		for i, mem := range fg.members {
			recs := mem.Received()[fg.taken[i]:]
			fg.taken[i] += len(recs)
			held[g] = append(held[g], recs)
		}
	}
	return countDeliveries(phase, msgs, uris, held)
}

// countDeliveries counts what msgs owed (one delivery to each member of the message's
// group) against what the members hold: held[g][i] is what member uris[g][i] received in
// the phase. A message is named by its SHA-256; a second copy of one (same Message-ID or
// same content) is a duplicate.
func countDeliveries(phase string, msgs []*sentMsg, uris [][]string, held [][][]runtime.Received) phaseResult {
	byGroup := make([]map[string]*sentMsg, len(uris))
	for g := range byGroup {
		byGroup[g] = map[string]*sentMsg{}
	}
	r := phaseResult{Phase: phase, Messages: len(msgs)}
	for _, m := range msgs {
		byGroup[m.group][m.sha] = m
		r.Deliveries += len(uris[m.group])
		if m.err != nil {
			r.SendErrors++
		}
	}
	// got[message][member] is when the member held it.
	got := map[*sentMsg][]time.Time{}
	for g := range held {
		for i, recs := range held[g] {
			ids, shas := map[string]bool{}, map[string]bool{}
			for _, rec := range recs {
				if ids[rec.MessageID] || shas[rec.SHA256] {
					r.Duplicated++
					continue
				}
				ids[rec.MessageID], shas[rec.SHA256] = true, true
				m := byGroup[g][rec.SHA256]
				if m == nil {
					r.Unknown++
					continue
				}
				if got[m] == nil {
					got[m] = make([]time.Time, len(uris[g]))
				}
				got[m][i] = rec.At
			}
		}
	}
	var times []float64
	for _, m := range msgs {
		var last time.Time
		all := true
		for i, uri := range uris[m.group] {
			var at time.Time
			if got[m] != nil {
				at = got[m][i]
			}
			if !at.IsZero() {
				r.Delivered++
				if at.After(last) {
					last = at
				}
				continue
			}
			all = false
			if o := m.out.Of(uri); o.Kind == core.Failed {
				r.Failed++
			} else {
				r.Lost++
			}
		}
		if all {
			times = append(times, millis(last.Sub(m.start)))
		}
	}
	slices.Sort(times)
	r.P50MS, r.P99MS, r.MaxMS = percentile(times, 50), percentile(times, 99), percentile(times, 100)
	return r
}

// percentile is the p-th percentile of sorted xs (nearest rank), 0 for none.
func percentile(xs []float64, p int) float64 {
	if len(xs) == 0 {
		return 0
	}
	i := (len(xs)*p + 99) / 100 // ceil(len × p / 100), the nearest rank
	return xs[max(0, min(len(xs)-1, i-1))]
}

// concurrent sends one message from every group's sender at once and waits for every
// outcome and every client to be idle.
func (f *fleet) concurrent(ctx context.Context, phase string, status *statusLine) (phaseResult, error) {
	msgs := make([]*sentMsg, len(f.groups))
	var done atomic.Int64
	began := time.Now()
	stop := watch(status, func() string {
		return fmt.Sprintf("bench: %s: %d of %d groups' messages through (%.0fs)", phase, done.Load(), len(f.groups), time.Since(began).Seconds())
	})
	var wg sync.WaitGroup
	for g := range f.groups {
		wg.Go(func() {
			msgs[g] = f.send(ctx, g)
			done.Add(1)
		})
	}
	wg.Wait()
	err := f.waitIdle(ctx)
	stop()
	wall := time.Since(began)
	if err != nil {
		return phaseResult{}, err
	}
	r := f.tally(phase, msgs)
	r.WallMS = millis(wall)
	return r, nil
}

// soak starts a message every interval from the next sender that is idle, until the
// soak's time has passed or its count was sent, then waits for every outcome.
func (f *fleet) soak(ctx context.Context, status *statusLine) (phaseResult, error) {
	cfg := f.cfg
	var mu sync.Mutex
	var msgs []*sentMsg
	var started, finished atomic.Int64
	began := time.Now()
	stop := watch(status, func() string {
		s, d := started.Load(), finished.Load()
		return fmt.Sprintf("bench: soak: %d sent, %d through, %d in flight (%s of %s)", s, d, s-d,
			time.Since(began).Truncate(time.Second), cfg.Soak)
	})
	defer stop()
	end := time.NewTimer(cfg.Soak)
	defer end.Stop()
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	var wg sync.WaitGroup
	busy, next := 0, 0
loop:
	for int(started.Load()) < cfg.SoakMessages {
		select {
		case <-tick.C:
		case <-end.C:
			break loop
		case <-ctx.Done():
			break loop
		}
		picked := -1
		for k := range f.groups {
			g := (next + k) % len(f.groups)
			if f.groups[g].busy.CompareAndSwap(false, true) {
				picked = g
				break
			}
		}
		if picked < 0 {
			busy++
			continue
		}
		next = picked + 1
		started.Add(1)
		wg.Go(func() {
			m := f.send(ctx, picked)
			f.groups[picked].busy.Store(false)
			mu.Lock()
			msgs = append(msgs, m)
			mu.Unlock()
			finished.Add(1)
		})
	}
	wg.Wait()
	err := f.waitIdle(ctx)
	wall := time.Since(began)
	if err != nil {
		return phaseResult{}, err
	}
	r := f.tally("soak", msgs)
	r.WallMS, r.IntervalMS, r.BusyTicks = millis(wall), millis(cfg.Interval), busy
	return r, nil
}

// settle waits, up to bound, until every server's goroutines, open files and sessions
// are back at start's, and returns the last figures and how long that took.
func (f *fleet) settle(ctx context.Context, start []procStats, bound time.Duration) ([]procStats, time.Duration, error) {
	began := time.Now()
	for {
		now, err := f.stats(ctx)
		if err != nil {
			return nil, 0, err
		}
		back := true
		for i := range now {
			if now[i].Goroutines > start[i].Goroutines || now[i].FDs > start[i].FDs || now[i].Sessions > start[i].Sessions {
				back = false
			}
		}
		took := time.Since(began)
		if back || took >= bound {
			return now, took, nil
		}
		select {
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
			return now, took, nil
		}
	}
}
