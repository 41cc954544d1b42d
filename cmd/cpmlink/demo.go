package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/proptest"
	"github.com/cpmlink/cpmlink/runtime"
)

func init() {
	register("demo", "run every role on loopback and send a large message to a group", runDemo)
}

// hopRow is one line of the demo's per-hop table.
type hopRow struct {
	Hop     string `json:"hop"`
	Member  string `json:"member,omitempty"`
	Opener  string `json:"opener"`
	Peer    string `json:"peer"`
	Trigger string `json:"trigger"`
	Reused  bool   `json:"reused"`
}

type memberRow struct {
	Member   string `json:"member"`
	SHA256   string `json:"sha256"`
	Bytes    int64  `json:"bytes"`
	Outcome  string `json:"outcome"`
	Intact   bool   `json:"intact"`
	StoredAt string `json:"file,omitempty"`
}

type demoJSON struct {
	Variant    string      `json:"variant"`
	Members    int         `json:"members"`
	PFBs       int         `json:"pfbs"`
	Transport  string      `json:"transport"`
	Bytes      int64       `json:"bytes"`
	Delivered  int         `json:"delivered"`
	Failed     int         `json:"failed"`
	SHA256Sent string      `json:"sha256_sent"`
	PerMember  []memberRow `json:"per_member"`
	Hops       []hopRow    `json:"hops"`
	SetupMS    int64       `json:"setup_ms"`
	DeliveryMS int64       `json:"delivery_ms"`
	TeardownMS int64       `json:"teardown_ms"`
	Trace      string      `json:"trace"`
	Validation string      `json:"trace_validation"`
	Out        string      `json:"out"`
	// SIPCore is where every role sent its SIP; External tells an external core (the
	// --sip-core flag) from the embedded one, and Routes is the table it needed.
	SIPCore  string            `json:"sip_core"`
	External bool              `json:"sip_core_external"`
	Routes   map[string]string `json:"routes"`
}

func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("demo", stderr)
	variant := fs.String("variant", "fig1", "variant `name` (see docs/variants.md)")
	specPath := fs.String("spec", "", "spec `file` the variant comes from; it must compile to the generated code, as a spec\n"+
		"that only adds variants (extends: default) does (default: the embedded spec)")
	members := intFlag(fs, "members", defaultMembers, "group `members`")
	pfbs := intFlag(fs, "pfbs", defaultPFBs, "terminating `PFs` the members are spread over")
	size := sizeFlag(fs, "size", "2MiB", "message `size`")
	transport := fs.String("transport", "udp", "SIP `transport`: udp, tcp, or tls (SIP over TLS and msrps, with a throw-away loopback certificate)")
	sipCore := fs.String("sip-core", "", "external SIP/IP core `host:port` (default: the embedded one); see docs/kamailio.md")
	basePort := intFlag(fs, "base-port", 0, "fixed loopback ports from `port` on, so that an external SIP/IP core can route to the roles:\n"+
		"the i-th instance of pfa, cf, pfb1.., clientA, m1.. takes SIP port+i (UDP and TCP) and MSRP port+n+i (n instances)\n"+
		"(default: free ports chosen at start)")
	printRoutes := fs.Bool("print-routes", false, "print where each instance listens and the SIP/IP core's routing table, then exit (needs --base-port)")
	out := fs.String("out", "cpmlink-demo", "`directory` for the trace, the diagrams and the members' stores")
	asJSON := fs.Bool("json", false, "print one JSON object")
	chunk := sizeFlag(fs, "chunk-size", "64KiB", "MSRP chunk `size`, at most 1MiB")
	alias(fs, "chunk", "chunk-size")
	timeout := durationFlag(fs, "timeout", 2*time.Minute, "give up after this `long`, e.g. 90s or 5m")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if err := errors.Join(atLeast("members", *members, 1, "a group has at least 1 member"),
		atLeast("pfbs", *pfbs, 1, "a group has at least 1 PF-B"),
		oneOf("transport", *transport, "udp", "tcp", "tls"),
		inRange("base-port", *basePort, 0, 65535, "0 (free ports) or a port up to 65535, leaving room for every instance"),
		sizeRange("chunk-size", *chunk, 1, 1<<20, "between 1B and 1MiB"),
		positive("timeout", *timeout)); err != nil {
		return refusal(stderr, "demo", err)
	}
	all, err := loadVariants(*specPath)
	if err != nil {
		return fail(stderr, "demo: --spec: %v", err)
	}
	nv, err := pickVariant(all, *variant)
	if err != nil {
		return refusal(stderr, "demo", err)
	}
	v, n, chunkSize := nv.Variant, *size, *chunk
	gcfg := runtime.GroupConfig{Variant: v, Members: *members, PFBs: *pfbs, Transport: *transport,
		SIPCore: *sipCore, BasePort: *basePort, StoreDir: filepath.Join(*out, "members"), ChunkSize: int(chunkSize)}
	if *transport == "tls" {
		// SIP over TLS runs through the embedded core, which takes the group's certificate.
		if *sipCore != "" || *printRoutes {
			return refusal(stderr, "demo", errors.New("--transport tls runs the embedded SIP/IP core (it serves the throw-away certificate): leave out --sip-core and --print-routes"))
		}
		if gcfg.TLS, err = runtime.LoopbackTLS(); err != nil {
			return fail(stderr, "demo: %v", err)
		}
	}
	if *printRoutes {
		if *basePort == 0 {
			return refusal(stderr, "demo", errors.New("--print-routes needs --base-port: without it the ports are chosen at start"))
		}
		printLayout(stdout, gcfg, *asJSON)
		return 0
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fail(stderr, "%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	// The message: random bytes, written once so that the members' copies can be compared.
	sentPath := filepath.Join(*out, "sent.bin")
	sent, err := writeRandom(sentPath, n)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	traceFile, err := os.Create(filepath.Join(*out, "trace.ndjson"))
	if err != nil {
		return fail(stderr, "%v", err)
	}
	defer traceFile.Close()
	var recs []runtime.Record
	gcfg.Trace = runtime.NewTracer(traceFile, &recs)
	g, err := runtime.StartGroup(ctx, gcfg)
	if err != nil && *sipCore != "" {
		// The clients REGISTER through the core as the group starts: this is where an
		// external core that is not running, or routes elsewhere, shows first.
		return fail(stderr, "starting the group: %v\n(is the SIP/IP core at %s running, with the routes --print-routes shows? see docs/kamailio.md)", err, *sipCore)
	}
	if err != nil {
		return fail(stderr, "starting the group: %v", err)
	}
	defer g.Close()

	start := time.Now()
	outcome, sendErr := g.ClientA.Send(ctx, runtime.GroupURI, nil, runtime.Message{
		Open:        func() (io.ReadCloser, error) { return os.Open(sentPath) },
		Size:        n,
		ContentType: "application/octet-stream",
	})
	delivered := time.Since(start)
	idleErr := g.WaitIdle(ctx)
	teardown := time.Since(start)

	res := demoJSON{Variant: v.Name, Members: *members, PFBs: *pfbs, Transport: *transport, Bytes: n, SHA256Sent: sent,
		Trace: filepath.Join(*out, "trace.ndjson"), Out: *out, SIPCore: g.CoreAddr(), External: *sipCore != "", Routes: g.Routes()}
	ok := sendErr == nil && idleErr == nil
	var last time.Time
	for i, m := range g.Members {
		row := memberRow{Member: runtime.MemberURI(i, *pfbs), Outcome: outcome.Of(runtime.MemberURI(i, *pfbs)).String()}
		for _, r := range m.Received() {
			row.SHA256, row.Bytes, row.StoredAt = r.SHA256, r.Bytes, r.File
			if r.At.After(last) {
				last = r.At
			}
		}
		row.Intact = row.SHA256 == sent && row.Bytes == n
		if row.Intact {
			res.Delivered++
		} else {
			res.Failed++
			ok = false
		}
		res.PerMember = append(res.PerMember, row)
	}
	res.Hops, res.SetupMS = hopTable(v, recs, start)
	if !last.IsZero() {
		res.DeliveryMS = last.Sub(start).Milliseconds()
	} else {
		res.DeliveryMS = delivered.Milliseconds()
	}
	res.TeardownMS = teardown.Milliseconds()

	// The diagrams of what happened and the check against the spec both read the trace
	// file back: what a user finds in --out is what was checked.
	cfg := proptest.Config{Variant: v, Members: *members, PFBs: *pfbs}
	trace, err := readTrace(res.Trace)
	if err != nil {
		return fail(stderr, "reading the trace back: %v", err)
	}
	// A run that failed before any chunk moved still replays with a one-chunk message.
	cfg.Chunks = max(1, trace.Chunks)
	d := trace.Diagram(cfg, v.Name+": what happened")
	if err := os.WriteFile(filepath.Join(*out, "sequence.mmd"), []byte(d.Mermaid()), 0o644); err != nil {
		return fail(stderr, "%v", err)
	}
	if err := os.WriteFile(filepath.Join(*out, "sequence.svg"), d.SVG(), 0o644); err != nil {
		return fail(stderr, "%v", err)
	}
	// The run, checked against the spec: replayed as a schedule of the simulator.
	res.Validation = validateRun(cfg, trace, idleErr == nil)
	if !strings.HasPrefix(res.Validation, "ok") {
		ok = false
	}

	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
	} else {
		printDemo(stdout, res)
		if sendErr != nil {
			fmt.Fprintf(stdout, "\nsender: %v\n", sendErr)
		}
		if idleErr != nil {
			fmt.Fprintf(stdout, "teardown: %v\n", idleErr)
		}
	}
	if !ok {
		return 1
	}
	return 0
}

func writeRandom(path string, n int64) (string, error) {
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, n); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), f.Close()
}

// hopTable reads, from the trace, who opened (or reused) each hop's link, and when the
// last link came up.
func hopTable(v fsm.Variant, recs []runtime.Record, start time.Time) ([]hopRow, int64) {
	// The two ends of each dialog, and the member each leg serves (the Target of its
	// INVITE, on hop3 and hop4), from the records of both ends.
	ends := map[string][]string{}
	target := map[[2]string]string{}
	// hop4's INVITE targets the member's registered contact (sip:m1@127.0.0.1:45127);
	// the table names the member by its address of record, from hop3's INVITE.
	aor := map[string]string{}
	var lastUp time.Time
	for _, r := range recs {
		if r.Dialog != "" && !slices.Contains(ends[r.Dialog], r.Node) {
			ends[r.Dialog] = append(ends[r.Dialog], r.Node)
		}
		if t, ok := r.Fields["Target"].(string); ok && (r.Type == "SendInvite" || r.Type == "InviteReceived") {
			target[[2]string{r.Node, r.Leg}] = t
			if r.Hop == "hop3" {
				aor[userPart(t)] = t
			}
		}
		if r.Dir == "in" && r.Type == "LinkUp" && r.Time.After(lastUp) {
			lastUp = r.Time
		}
	}
	var rows []hopRow
	for _, r := range recs {
		if r.Dir != "out" || (r.Type != "OpenLink" && r.Type != "ReuseLink") {
			continue
		}
		row := hopRow{Hop: r.Hop, Opener: r.Node, Reused: r.Type == "ReuseLink"}
		if h := hopIndex(r.Hop); h >= 0 {
			row.Trigger = v.Trigger[h].String()
			if h >= int(fsm.Hop3) {
				row.Member = target[[2]string{r.Node, r.Leg}]
			}
			if a, ok := aor[userPart(row.Member)]; ok {
				row.Member = a
			}
		}
		for _, n := range ends[r.Dialog] {
			if n != r.Node {
				row.Peer = n
			}
		}
		rows = append(rows, row)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].Hop != rows[j].Hop {
			return rows[i].Hop < rows[j].Hop
		}
		// m2 before m10: members in the order they were numbered.
		a, b := memberNo(rows[i].Member), memberNo(rows[j].Member)
		if a != b {
			return a < b
		}
		return rows[i].Member < rows[j].Member
	})
	var setup int64
	if !lastUp.IsZero() {
		setup = lastUp.Sub(start).Milliseconds()
	}
	return rows, setup
}

// userPart returns the user of a SIP URI (m1 of sip:m1@127.0.0.1:45127).
func userPart(uri string) string {
	u := strings.TrimPrefix(strings.TrimPrefix(uri, "sips:"), "sip:")
	if i := strings.IndexByte(u, '@'); i >= 0 {
		return u[:i]
	}
	return ""
}

// memberNo is the number of a member's URI (10 of sip:m10@b2.example), or -1.
func memberNo(uri string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(userPart(uri), "m"))
	if err != nil {
		return -1
	}
	return n
}

func hopIndex(name string) int {
	for h := fsm.Hop(0); h < fsm.NumHops; h++ {
		if h.String() == name {
			return int(h)
		}
	}
	return -1
}

func printDemo(w io.Writer, r demoJSON) {
	fmt.Fprintf(w, "cpmlink demo: variant %s, %d members over %d PF-Bs, SIP over %s, %d bytes\n", r.Variant, r.Members, r.PFBs, r.Transport, r.Bytes)
	core := "embedded"
	if r.External {
		core = "external"
	}
	fmt.Fprintf(w, "SIP/IP core %s (%s), routes:", r.SIPCore, core)
	for _, d := range slices.Sorted(maps.Keys(r.Routes)) {
		fmt.Fprintf(w, " %s=%s", d, r.Routes[d])
	}
	fmt.Fprint(w, "\n\n")
	// Columns as wide as their widest cell, so that long names keep the table aligned.
	width := func(head string, cell func(hopRow) string) int {
		n := len(head)
		for _, h := range r.Hops {
			n = max(n, len(cell(h)))
		}
		return n
	}
	member := func(h hopRow) string {
		if h.Member == "" {
			return "(all)"
		}
		return h.Member
	}
	wm := width("for member", member)
	wo := width("opener", func(h hopRow) string { return h.Opener })
	wp := width("peer", func(h hopRow) string { return h.Peer })
	wt := width("trigger", func(h hopRow) string { return h.Trigger })
	fmt.Fprintf(w, "%-5s %-*s %-*s %-*s %-*s %s\n", "hop", wm, "for member", wo, "opener", wp, "peer", wt, "trigger", "connection")
	for _, h := range r.Hops {
		conn := "new"
		if h.Reused {
			conn = "reused"
		}
		fmt.Fprintf(w, "%-5s %-*s %-*s %-*s %-*s %s\n", h.Hop, wm, member(h), wo, h.Opener, wp, h.Peer, wt, h.Trigger, conn)
	}
	fmt.Fprintf(w, "\ntimings: all hops up %d ms after the INVITE, last byte delivered at %d ms, sessions ended at %d ms\n\n", r.SetupMS, r.DeliveryMS, r.TeardownMS)
	fmt.Fprintf(w, "%-22s %-64s %s\n", "sender", r.SHA256Sent, "")
	for _, m := range r.PerMember {
		mark := "OK"
		if !m.Intact {
			mark = "MISMATCH (" + m.Outcome + ")"
		}
		fmt.Fprintf(w, "%-22s %-64s %s\n", m.Member, m.SHA256, mark)
	}
	fmt.Fprintf(w, "\n%d delivered byte-exact, %d failed. Trace validation: %s\n", r.Delivered, r.Failed, r.Validation)
	fmt.Fprintf(w, "Wrote %s, %s and %s.\n", r.Trace, filepath.Join(r.Out, "sequence.mmd"), filepath.Join(r.Out, "sequence.svg"))
}

// layoutJSON is what --print-routes --json prints.
type layoutJSON struct {
	BasePort  int               `json:"base_port"`
	Instances []instanceJSON    `json:"instances"`
	Routes    map[string]string `json:"routes"`
	// KamailioDefine gives the routing table to the project's Kamailio configuration
	// (docs/kamailio.md): kamailio -A 'ROUTES="..."'.
	KamailioDefine string `json:"kamailio_define"`
}

// instanceJSON is one runtime.Placement.
type instanceJSON struct {
	Name     string `json:"name"`
	Domain   string `json:"domain,omitempty"`
	SIPPort  int    `json:"sip_port"`
	MSRPPort int    `json:"msrp_port"`
}

// printLayout prints where each role instance of a group with fixed ports listens, and
// the routing table a SIP/IP core needs for it.
func printLayout(w io.Writer, cfg runtime.GroupConfig, asJSON bool) {
	routes := cfg.FixedRoutes()
	res := layoutJSON{BasePort: cfg.BasePort, Routes: routes, KamailioDefine: kamailioDefine(routes)}
	for _, p := range cfg.Layout() {
		res.Instances = append(res.Instances, instanceJSON(p))
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(res)
		return
	}
	fmt.Fprintf(w, "Where each role instance listens (--base-port %d, %d members over %d PF-Bs), on 127.0.0.1:\n\n", cfg.BasePort, cfg.Members, cfg.PFBs)
	fmt.Fprintf(w, "%-9s %-12s %-14s %s\n", "instance", "domain", "SIP (UDP+TCP)", "MSRP (TCP)")
	for _, p := range res.Instances {
		dom := p.Domain
		if dom == "" {
			dom = "-"
		}
		fmt.Fprintf(w, "%-9s %-12s %-14d %d\n", p.Name, dom, p.SIPPort, p.MSRPPort)
	}
	fmt.Fprintf(w, "\nThe SIP/IP core's routing table (Request-URI domain -> next hop):\n\n")
	for _, d := range slices.Sorted(maps.Keys(routes)) {
		fmt.Fprintf(w, "%-12s %s\n", d, routes[d])
	}
	fmt.Fprintf(w, "\nFor the project's Kamailio configuration (docs/kamailio.md):\n\n  -A '%s'\n", res.KamailioDefine)
}

// kamailioDefine is the routing table as the project's Kamailio configuration takes it
// through a pre-processor define: ROUTES="domain=host:port;...", domains sorted.
func kamailioDefine(routes map[string]string) string {
	var pairs []string
	for _, d := range slices.Sorted(maps.Keys(routes)) {
		pairs = append(pairs, d+"="+routes[d])
	}
	return `ROUTES="` + strings.Join(pairs, ";") + `"`
}

// validateRun replays the run's trace against the spec (proptest.ValidateTrace).
func validateRun(cfg proptest.Config, t *proptest.Trace, complete bool) string {
	_, viol, err := proptest.ValidateTrace(cfg, t.Records, complete)
	switch {
	case err != nil:
		return "error: " + err.Error()
	case viol != nil:
		return "VIOLATED " + strings.Join(cfg.Explain(viol), "\n  ")
	}
	return fmt.Sprintf("ok (%d events replayed through the spec's checkers)", len(t.Records))
}

func readTrace(path string) (*proptest.Trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return proptest.ReadTrace(f)
}
