package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/runtime"
	"github.com/cpmlink/cpmlink/runtime/deploy"
	"github.com/cpmlink/cpmlink/runtime/kamailiotest"
)

// syncBuffer is a log's output, written by every node's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// sessionRecords are the session records of a JSON log.
func (s *syncBuffer) sessionRecords(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(s.b.Bytes()))
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if r["msg"] == "session" {
			out = append(out, r)
		}
	}
	return out
}

// sample is one sample of an exposition: its labels and value.
type sample struct {
	labels map[string]string
	value  float64
}

// scrape reads the text exposition at url (written by promhttp) into samples by name.
func scrape(ctx context.Context, t *testing.T, url string) map[string][]sample {
	t.Helper()
	code, body := get(ctx, t, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", url, code, body)
	}
	out := map[string][]sample{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, labels := line, "", map[string]string{}
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			name, rest = line[:i], strings.TrimSpace(line[j+1:])
			for _, kv := range splitLabels(line[i+1 : j]) {
				k, v, _ := strings.Cut(kv, "=")
				uq, err := strconv.Unquote(v)
				if err != nil {
					t.Fatalf("label %q in %q", kv, line)
				}
				labels[k] = uq
			}
		} else {
			name, rest, _ = strings.Cut(line, " ")
		}
		v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err != nil {
			t.Fatalf("value of %q: %v", line, err)
		}
		out[name] = append(out[name], sample{labels, v})
	}
	return out
}

// splitLabels splits `a="x",b="y,z"` at the commas outside quotes.
func splitLabels(s string) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// sum adds the samples of name whose labels include want.
func sum(m map[string][]sample, name string, want map[string]string) float64 {
	total := 0.0
	for _, s := range m[name] {
		ok := true
		for k, v := range want {
			if s.labels[k] != v {
				ok = false
			}
		}
		if ok {
			total += s.value
		}
	}
	return total
}

// noKeepAlive leaves no idle connection (and its goroutines) behind a request.
var noKeepAlive = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func get(ctx context.Context, t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := noKeepAlive.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// hopRoles are the roles at the two ends of each hop: the INVITE sender (offerer) and
// the INVITE receiver (answerer).
var hopRoles = [4][2]string{{"ClientA", "PFA"}, {"PFA", "CF"}, {"CF", "PFB"}, {"PFB", "ClientB"}}

// TestServeMetrics runs a deployment in one process with its operator's endpoints, sends
// a message to a group of two members on two PF-Bs, and checks what the endpoints say
// against what was sent: /readyz is 503 until every role listens, the counters match the
// message (bytes relayed = its size on every hop it crossed, once per member past the
// CF), the links opened are those the variant names, each role logged one session record
// with each member's outcome, and refusals are counted by reason.
func TestServeMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ports []any
	for p, base := 0, kamailiotest.FreePorts(t, 9); p < 9; p++ {
		ports = append(ports, base+p)
	}
	cfgDir := t.TempDir()
	writeUsers(t, cfgDir)
	c, err := deploy.ParseServeConfig(filepath.Join(cfgDir, "test.yaml"), []byte(fmt.Sprintf(deployYAML, ports...)))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := fsm.VariantByName(c.Variant)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ops := deploy.StartOps(ln)
	defer ops.Close(context.Background())
	base := "http://" + ops.Addr()
	if code, _ := get(ctx, t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz before serving: %d, want 200", code)
	}

	var serverLog, aliceLog syncBuffer
	opts := deploy.ServeOptions{Metrics: ops.Metrics(), Logger: slog.New(slog.NewJSONHandler(&serverLog, nil))}
	// Every role starts while /readyz still says 503.
	starting := 0
	deploy.SetConfigured(&opts, func(nc runtime.NodeConfig) {
		starting++
		if code, _ := get(ctx, t, base+"/readyz"); code != http.StatusServiceUnavailable {
			t.Errorf("/readyz while starting %s: %d, want 503", nc.Name, code)
		}
	})
	served, err := deploy.Serve(ctx, c, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer served.Close()
	if starting != 4 {
		t.Errorf("the hook saw %d roles start, want 4", starting)
	}
	ops.Ready()
	if code, _ := get(ctx, t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz once serving: %d, want 200", code)
	}

	dir := t.TempDir()
	start := func(uri string, log *slog.Logger) *runtime.Node {
		n, err := c.StartClient(ctx, uri, deploy.ClientOptions{StoreDir: filepath.Join(dir, uri), Password: testPasswords[uri], Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		if err := n.Register(ctx, time.Minute); err != nil {
			t.Fatalf("%s registering: %v", uri, err)
		}
		return n
	}
	alice := start("sip:alice@a.example", slog.New(slog.NewJSONHandler(&aliceLog, nil)))
	bob, carol := start("sip:bob@b1.example", nil), start("sip:carol@b2.example", nil)
	members := []string{"sip:bob@b1.example", "sip:carol@b2.example"}

	const size = 300_000
	msg := make([]byte, size)
	rand.NewChaCha8([32]byte{9}).Read(msg)
	// Half-way through the payload, the session is in progress at PF-A and the CF: the
	// gauge says so (setup or transfer, depending on how far the chunks got).
	var during sync.Once
	var duringPFA, duringCF float64
	progress := func(sent int64) {
		if sent < size/2 {
			return
		}
		during.Do(func() {
			m := scrape(ctx, t, base+"/metrics")
			duringPFA = sum(m, "cpmlink_sessions", map[string]string{"role": "PFA"})
			duringCF = sum(m, "cpmlink_sessions", map[string]string{"role": "CF"})
		})
	}
	out, err := alice.Send(ctx, "sip:team@cf.example", nil, runtime.Message{
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(msg)), nil }, Size: size,
		ContentType: "application/octet-stream", Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if o := out.Of(m); o != core.DeliveredOutcome() {
			t.Fatalf("%s: %v", m, o)
		}
	}
	if duringPFA != 1 || duringCF != 1 {
		t.Errorf("sessions during the send: PFA %v, CF %v, want 1 each", duringPFA, duringCF)
	}
	for _, n := range []*runtime.Node{alice, bob, carol} {
		if err := n.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := served.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}

	// The session records: one per role instance, with every member's outcome, and the
	// message's id and MSRP size (the CPIM-wrapped payload) the same at every role.
	recs := serverLog.sessionRecords(t)
	byNode := map[string]map[string]any{}
	for _, r := range recs {
		node, _ := r["node"].(string)
		if byNode[node] != nil {
			t.Errorf("two session records of %s:\n%v\n%v", node, byNode[node], r)
		}
		byNode[node] = r
	}
	sender := aliceLog.sessionRecords(t)
	if len(sender) != 1 || len(byNode) != 4 {
		t.Fatalf("session records: sender %d, servers %v; want 1 and pfa, cf, pfb1, pfb2\n%v", len(sender), len(byNode), recs)
	}
	id, _ := sender[0]["message_id"].(string)
	wrapped, _ := sender[0]["bytes"].(float64)
	if id == "" || wrapped <= size || wrapped > size+1024 {
		t.Fatalf("sender's record: message_id %q, bytes %v (payload %d)", id, wrapped, size)
	}
	for node, wantOutcomes := range map[string][]string{"alice": members, "pfa": members, "cf": members,
		"pfb1": {"sip:bob@b1.example"}, "pfb2": {"sip:carol@b2.example"}} {
		r := byNode[node]
		if node == "alice" {
			r = sender[0]
		}
		oc, _ := r["outcomes"].(map[string]any)
		if r["message_id"] != id || r["bytes"] != wrapped || r["sender"] != "sip:alice@a.example" || r["sip_status"] != 200.0 ||
			len(oc) != len(wantOutcomes) || r["setup_ms"] == nil || r["delivery_ms"] == nil {
			t.Errorf("%s's session record: %v", node, r)
		}
		for _, m := range wantOutcomes {
			if oc[m] != 200.0 {
				t.Errorf("%s's record: outcome of %s %v, want 200", node, m, oc[m])
			}
		}
		if (node == "pfa" || node == "cf" || node == "alice") && r["group"] != "sip:team@cf.example" {
			t.Errorf("%s's record names group %v", node, r["group"])
		}
	}

	m := scrape(ctx, t, base+"/metrics")
	for _, s := range m["cpmlink_sessions"] {
		if s.value != 0 {
			t.Errorf("cpmlink_sessions%v = %v once every session ended", s.labels, s.value)
		}
	}
	// What each relay wrote: the message once onto hop2, once per member onto hop3
	// and hop4.
	for _, w := range []struct {
		role, hop string
		copies    float64
	}{{"PFA", "hop2", 1}, {"CF", "hop3", 2}, {"PFB", "hop4", 2}} {
		l := map[string]string{"role": w.role, "hop": w.hop}
		if got := sum(m, "cpmlink_bytes_relayed_total", l); got != w.copies*wrapped {
			t.Errorf("bytes relayed by %s onto %s: %v, want %v × %v", w.role, w.hop, got, w.copies, wrapped)
		}
		if got := sum(m, "cpmlink_messages_relayed_total", l); got != w.copies {
			t.Errorf("messages relayed by %s onto %s: %v, want %v", w.role, w.hop, got, w.copies)
		}
		// Every member's outcome passes PF-A and the CF; each PF-B reports its own.
		if got := sum(m, "cpmlink_member_outcomes_total", map[string]string{"role": w.role, "status": "200"}); got != 2 {
			t.Errorf("delivered outcomes reported by %s: %v, want 2", w.role, got)
		}
	}
	// The links this process opened, as the variant says: each hop's opener on its
	// trigger, once per link (hop3 and hop4 once per member).
	links := [4]float64{1, 1, 2, 2}
	total := 0.0
	for h := range 4 {
		opener := hopRoles[h][v.Opener[h]]
		if opener == "ClientA" || opener == "ClientB" {
			continue // not this process
		}
		total += links[h]
		hop := "hop" + strconv.Itoa(h+1)
		if got := sum(m, "cpmlink_link_opens_total", map[string]string{"hop": hop, "opener": opener, "trigger": v.Trigger[h].String()}); got != links[h] {
			t.Errorf("%s opened by %s on %s: %v, want %v\n%v", hop, opener, v.Trigger[h], got, links[h], m["cpmlink_link_opens_total"])
		}
	}
	if got := sum(m, "cpmlink_link_opens_total", nil); got != total {
		t.Errorf("links opened in all: %v, want %v", got, total)
	}
	for role, n := range map[string]float64{"PFA": 1, "CF": 1, "PFB": 2} {
		for _, h := range []string{"cpmlink_setup_seconds_count", "cpmlink_delivery_seconds_count"} {
			if got := sum(m, h, map[string]string{"role": role}); got != n {
				t.Errorf("%s{role=%s} = %v, want %v", h, role, got, n)
			}
		}
	}
	if got := sum(m, "cpmlink_refusals_total", nil); got != 0 {
		t.Errorf("refusals after a good send: %v\n%v", got, m["cpmlink_refusals_total"])
	}

	// A member who is not registered: PF-B refuses the CF's INVITE with 480, and every
	// role the outcome passes counts it and logs it in the session's record.
	adhoc, _ := c.AdHocTarget()
	dave := "sip:dave@b1.example"
	out, err = alice.Send(ctx, adhoc, []string{members[0], dave}, runtime.Message{
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(msg[:1000])), nil }, Size: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if o := out.Of(dave); o != core.FailedOutcome(480) {
		t.Fatalf("%s: %v, want failed 480", dave, o)
	}
	for _, n := range []*runtime.Node{alice, bob} {
		if err := n.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := served.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	m = scrape(ctx, t, base+"/metrics")
	for _, w := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"cpmlink_member_outcomes_total", map[string]string{"role": "CF", "status": "480"}, 1},
		{"cpmlink_member_outcomes_total", map[string]string{"role": "PFA", "status": "480"}, 1},
		{"cpmlink_member_outcomes_total", map[string]string{"role": "CF", "status": "200"}, 3},
		{"cpmlink_refusals_total", map[string]string{"role": "PFB", "reason": "sip-480"}, 1},
	} {
		if got := sum(m, w.name, w.labels); got != w.want {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.want)
		}
	}
	var cfRecs int
	for _, r := range serverLog.sessionRecords(t) {
		if r["node"] != "cf" || r["group"] != adhoc {
			continue
		}
		cfRecs++
		oc, _ := r["outcomes"].(map[string]any)
		if oc[members[0]] != 200.0 || oc[dave] != 480.0 || r["delivered"] != 1.0 || r["members"] != 2.0 {
			t.Errorf("the CF's record of the ad-hoc message: %v", r)
		}
	}
	if cfRecs != 1 {
		t.Errorf("the CF logged %d records of the ad-hoc message, want 1", cfRecs)
	}

	// Refusals, by reason: an unknown group (the CF answers 404), and an MSRP SEND for a
	// session the CF does not have (481, RFC 4975 §7.3), written here from the RFC.
	if _, err := alice.Send(ctx, "sip:nosuch@cf.example", nil, runtime.Message{
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(msg[:10])), nil }, Size: 10}); err != nil {
		t.Fatal(err)
	}
	var cfMSRP string
	for _, in := range served.Instances() {
		if in.Name == "cf" {
			cfMSRP = in.MSRP
		}
	}
	if st := rawSend(ctx, t, cfMSRP); st != "481" {
		t.Errorf("a SEND for no session got %q, want 481", st)
	}
	m = scrape(ctx, t, base+"/metrics")
	for reason, want := range map[string]float64{"sip-404": 1, "msrp-481": 1} {
		if got := sum(m, "cpmlink_refusals_total", map[string]string{"role": "CF", "reason": reason}); got != want {
			t.Errorf("CF refusals %s: %v, want %v\n%v", reason, got, want, m["cpmlink_refusals_total"])
		}
	}

	ops.Drain()
	if code, _ := get(ctx, t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining: %d, want 503", code)
	}
	if code, _ := get(ctx, t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz while draining: %d, want 200", code)
	}
}

// rawSend writes one MSRP SEND (RFC 4975 §7.1.1) for a session nobody has to addr and
// returns the status of the response.
func rawSend(ctx context.Context, t *testing.T, addr string) string {
	t.Helper()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	// A transaction id has 4 to 32 characters (RFC 4975 §9, ident).
	req := "MSRP tx7a9 SEND\r\nTo-Path: msrp://" + addr + "/nosuchsession;tcp\r\nFrom-Path: msrp://127.0.0.1:9/probe;tcp\r\n" +
		"Message-ID: probe1\r\nByte-Range: 1-5/5\r\nContent-Type: text/plain\r\n\r\nhello\r\n-------tx7a9$\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	f := strings.Fields(line) // MSRP tx7a9 481 ...
	if len(f) < 3 || f[0] != "MSRP" || f[1] != "tx7a9" {
		t.Fatalf("response line %q", line)
	}
	return f[2]
}

// TestMetricsListenConfig: metrics-listen is checked with the file, at its line, and the
// instances one process serves must agree on it.
func TestMetricsListenConfig(t *testing.T) {
	withListen := func(core, pfa, cf string) string {
		text := fixedYAML()
		text = strings.Replace(text, "  listen: 127.0.0.1:15060\n", "  listen: 127.0.0.1:15060\n  metrics-listen: "+core+"\n", 1)
		text = strings.Replace(text, "    uri: sip:pf@a.example\n", "    uri: sip:pf@a.example\n    metrics-listen: "+pfa+"\n", 1)
		return strings.Replace(text, "    uri: sip:cf@cf.example\n", "    uri: sip:cf@cf.example\n    metrics-listen: "+cf+"\n", 1)
	}
	dir := t.TempDir()
	writeUsers(t, dir)
	c, err := deploy.ParseServeConfig(filepath.Join(dir, "m.yaml"), []byte(withListen(`""`, "127.0.0.1:9465", "127.0.0.1:9464")))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		only []string
		want string
		err  string
	}{
		{[]string{"pfa"}, "127.0.0.1:9465", ""},
		{[]string{"core", "cf"}, "127.0.0.1:9464", ""},
		{[]string{"pfb1"}, "", ""},
		{[]string{"pfa", "cf"}, "", "pfa has metrics-listen 127.0.0.1:9465 and cf has 127.0.0.1:9464, but one process has one listener"},
		{nil, "", "one process has one listener"},
	} {
		got, err := c.MetricsListen(tc.only)
		if got != tc.want || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("MetricsListen(%v) = %q, %v; want %q, %q", tc.only, got, err, tc.want, tc.err)
		}
	}
	_, err = deploy.ParseServeConfig(filepath.Join(dir, "bad.yaml"), []byte(withListen("metrics.example:9464", "127.0.0.1:99999", "127.0.0.1:9464")))
	for _, want := range []string{`bad.yaml:4: core: metrics-listen "metrics.example:9464": an instance binds an IP address`, `roles[0] (pfa): metrics-listen "127.0.0.1:99999": bad port`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad metrics-listen: %v\nwant %q", err, want)
		}
	}
}
