package runtime

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cpmlink/cpmlink/runtime/msrp"
)

// Metrics are the Prometheus metrics of the role instances of one process. Every
// instance started with the same Metrics (NodeConfig.Metrics) adds to them, labelled by
// its role, so that a process serving several instances exposes one set. They live in
// the registry NewMetrics is given, never in the global default one: tests that run in
// parallel each have their own. docs/operations.md lists every metric and its labels.
//
// The driver feeds them from the points where it already observes everything a machine
// does (node.step: each event, and each action just before it is carried out; node.note),
// so that no protocol code carries a metric call, and a count precedes whatever the
// action causes at a peer.
type Metrics struct {
	sessions  *sessionGauge
	messages  *prometheus.CounterVec
	bytes     *prometheus.CounterVec
	outcomes  *prometheus.CounterVec
	linkOpens *prometheus.CounterVec
	setup     *prometheus.HistogramVec
	delivery  *prometheus.HistogramVec
	refusals  *refusals
}

// Session states of the sessions gauge: a session is in setup from its first INVITE
// until the message starts to arrive (or, at the transmitter, to leave), in transfer
// until its last chunk arrived (was sent), and ending until every machine of it is over
// (reports and BYE); then it leaves the gauge.
const (
	stateSetup    = "setup"
	stateTransfer = "transfer"
	stateEnding   = "ending"
)

// timeBuckets cover a loopback session (milliseconds) up to a large message over a slow
// link (minutes).
var timeBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// NewMetrics makes the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sessions: &sessionGauge{desc: prometheus.NewDesc("cpmlink_sessions",
			"Sessions in progress, by role and state (setup, transfer, ending).", []string{"role", "state"}, nil),
			counts: map[[2]string]float64{}},
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cpmlink_messages_relayed_total",
			Help: "Messages relayed whole onto a down leg (the last chunk relayed), by relaying role and the hop of the down leg."}, []string{"role", "hop"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cpmlink_bytes_relayed_total",
			Help: "MSRP body bytes (the CPIM-wrapped message) relayed onto a down leg, by relaying role and the hop of the down leg."}, []string{"role", "hop"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cpmlink_member_outcomes_total",
			Help: "Per-member outcomes a role reported upstream (the transmitter: learned), by status: 200 delivered, else the SIP or MSRP status of the failure."},
			[]string{"role", "status"}),
		linkOpens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cpmlink_link_opens_total",
			Help: "MSRP links opened by this process's roles, by hop, opening role, the event that triggered it and whether an existing connection was reused."},
			[]string{"hop", "opener", "trigger", "reused"}),
		setup: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cpmlink_setup_seconds",
			Help: "Per session and role: from its INVITE (the transmitter: its Send) until the message started to arrive (leave).", Buckets: timeBuckets},
			[]string{"role"}),
		delivery: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cpmlink_delivery_seconds",
			Help: "Per session and role: from the message's first chunk until the last member outcome the role learned.", Buckets: timeBuckets},
			[]string{"role"}),
		refusals: &refusals{desc: prometheus.NewDesc("cpmlink_refusals_total",
			"What the roles refused, by role and reason: sip-<status> (a final response the role's machine sent), msrp-<status> (an MSRP failure response), msrp-conn-limit, msrp-silent-conn, msrp-session-limit.",
			[]string{"role", "reason"}, nil), counts: map[[2]string]float64{}},
	}
	reg.MustRegister(m.sessions, m.messages, m.bytes, m.outcomes, m.linkOpens, m.setup, m.delivery, m.refusals)
	return m
}

// sessionGauge is a collector: a session moves from one state to the next in one step
// under its lock, so that a scrape never sees it in both states or in neither (two
// updates of a GaugeVec, one Dec and one Inc, let a scrape fall between them).
type sessionGauge struct {
	desc *prometheus.Desc

	mu     sync.Mutex
	counts map[[2]string]float64 // by role, state
}

func (g *sessionGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *sessionGauge) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, v := range g.counts {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, v, k[0], k[1])
	}
}

// move takes one session of role from state from to state to ("" is none).
func (g *sessionGauge) move(role, from, to string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if from != "" {
		g.counts[[2]string{role, from}]--
	}
	if to != "" {
		g.counts[[2]string{role, to}]++
	}
}

// refusals is a collector: the driver counts the refusals it takes part in, and each
// instance's MSRP endpoint counts its own (msrp.Endpoint.Stats), read at each scrape.
type refusals struct {
	desc *prometheus.Desc

	mu     sync.Mutex
	counts map[[2]string]float64 // by role, reason
	eps    map[*msrp.Endpoint]string
}

func (r *refusals) Describe(ch chan<- *prometheus.Desc) { ch <- r.desc }

func (r *refusals) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	defer r.mu.Unlock()
	all := make(map[[2]string]float64, len(r.counts))
	for k, v := range r.counts {
		all[k] = v
	}
	for ep, role := range r.eps {
		addStats(all, role, ep.Stats())
	}
	for k, v := range all {
		ch <- prometheus.MustNewConstMetric(r.desc, prometheus.CounterValue, v, k[0], k[1])
	}
}

func addStats(to map[[2]string]float64, role string, st msrp.Stats) {
	if st.RefusedConns > 0 {
		to[[2]string{role, "msrp-conn-limit"}] += float64(st.RefusedConns)
	}
	if st.SilentConns > 0 {
		to[[2]string{role, "msrp-silent-conn"}] += float64(st.SilentConns)
	}
	for code, n := range st.Responses {
		to[[2]string{role, "msrp-" + strconv.Itoa(code)}] += float64(n)
	}
}

func (r *refusals) add(role, reason string) {
	r.mu.Lock()
	r.counts[[2]string{role, reason}]++
	r.mu.Unlock()
}

// watch reads an instance's MSRP endpoint at every scrape; unwatch keeps what it
// counted when the instance closes, so that the counters never go back.
func (r *refusals) watch(ep *msrp.Endpoint, role string) {
	r.mu.Lock()
	if r.eps == nil {
		r.eps = map[*msrp.Endpoint]string{}
	}
	r.eps[ep] = role
	r.mu.Unlock()
}

func (r *refusals) unwatch(ep *msrp.Endpoint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	role, ok := r.eps[ep]
	if !ok {
		return
	}
	delete(r.eps, ep)
	addStats(r.counts, role, ep.Stats())
}
