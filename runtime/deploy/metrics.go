package deploy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cpmlink/cpmlink/runtime"
)

// Ops is what a serve process offers its operator over HTTP (docs/operations.md):
// /metrics (Prometheus text exposition, from a registry of the process's own, never the
// global default one), /healthz (200 while the process runs) and /readyz (503 until
// every instance of the process listens, 200 then, 503 again once it drains).
type Ops struct {
	reg     *prometheus.Registry
	metrics *runtime.Metrics
	ln      net.Listener
	srv     *http.Server
	// state is opsStarting, opsReady or opsDraining.
	state atomic.Int32
	done  chan struct{}
}

const (
	opsStarting = iota
	opsReady
	opsDraining
)

// StartOps serves the operator's endpoints on ln (injected, so that a caller chooses the
// address and a test port 0); the process is not ready until Ready.
func StartOps(ln net.Listener) *Ops {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	o := &Ops{reg: reg, metrics: runtime.NewMetrics(reg), ln: ln, done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch o.state.Load() {
		case opsReady:
			fmt.Fprintln(w, "ready")
		case opsDraining:
			http.Error(w, "draining", http.StatusServiceUnavailable)
		default:
			http.Error(w, "starting", http.StatusServiceUnavailable)
		}
	})
	o.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(o.done)
		_ = o.srv.Serve(ln)
	}()
	return o
}

// Metrics are the process's metrics, for ServeOptions.Metrics.
func (o *Ops) Metrics() *runtime.Metrics { return o.metrics }

// Registry is the process's registry, for a caller that adds collectors of its own.
func (o *Ops) Registry() *prometheus.Registry { return o.reg }

// Addr is where the endpoints are served.
func (o *Ops) Addr() string { return o.ln.Addr().String() }

// Ready says that every instance of the process listens: /readyz answers 200.
func (o *Ops) Ready() { o.state.CompareAndSwap(opsStarting, opsReady) }

// Drain says that the process stops taking new sessions: /readyz answers 503 again, so
// that a load balancer sends new work elsewhere while sessions in flight end.
func (o *Ops) Drain() { o.state.Store(opsDraining) }

// Close stops serving, waiting up to ctx for the requests in flight.
func (o *Ops) Close(ctx context.Context) error {
	err := o.srv.Shutdown(ctx)
	<-o.done
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// MetricsListen is the address the configuration names for the operator's endpoints
// of a process that serves only (every server instance when empty): the metrics-listen
// of its instances, which must agree, since a process has one listener. "" when none
// names one.
func (c *ServeConfig) MetricsListen(only []string) (string, error) {
	want := map[string]bool{}
	for _, o := range only {
		want[o] = true
	}
	all := len(want) == 0
	addr, from := "", ""
	take := func(name, a string) error {
		if a == "" {
			return nil
		}
		if addr != "" && a != addr {
			return fmt.Errorf("%w: %s has metrics-listen %s and %s has %s, but one process has one listener: run them in two processes, or give them the same address",
				ErrConfig, from, addr, name, a)
		}
		addr, from = a, name
		return nil
	}
	if c.Core != nil && (all || want["core"]) {
		if err := take("core", c.Core.MetricsListen); err != nil {
			return "", err
		}
	}
	for _, r := range c.Roles {
		if all || want[r.Name] {
			if err := take(r.Name, r.MetricsListen); err != nil {
				return "", err
			}
		}
	}
	return addr, nil
}

// CheckListen checks an address of the operator's endpoints: an IP (or a wildcard) and a
// port, 0 for a free one.
func CheckListen(addr string) error {
	if _, _, err := bindAddr(addr); err != nil {
		return err
	}
	return nil
}

// checkMetrics checks every metrics-listen of the file.
func (c *ServeConfig) checkMetrics(p *problems) {
	if c.Core != nil && c.Core.MetricsListen != "" {
		if err := CheckListen(c.Core.MetricsListen); err != nil {
			p.at("core.metrics-listen", "core: metrics-listen %v", err)
		}
	}
	for i, r := range c.Roles {
		if r.MetricsListen != "" {
			if err := CheckListen(r.MetricsListen); err != nil {
				p.at("roles["+strconv.Itoa(i)+"].metrics-listen", "roles[%d] (%s): metrics-listen %v", i, r.Name, err)
			}
		}
	}
}
