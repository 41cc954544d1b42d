//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/runtime/kamailiotest"
)

// TestServeMetricsAndSessionLog runs the deployment of docs/deploy.md in one serve process
// with --metrics-listen and --log-format json, two members as recv processes and a send
// with --log-format json, then checks what an operator would read: the metrics endpoint's
// counters against the message sent, /readyz and /healthz, and exactly one JSON session
// record per message and role instance on the processes' stderr, with every member's
// outcome.
func TestServeMetricsAndSessionLog(t *testing.T) {
	bin := buildCpmlink(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cpmlink.yaml")
	var ports []any
	for p, base := 0, kamailiotest.FreePorts(t, 7); p < 7; p++ {
		ports = append(ports, base+p)
	}
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(deployTestYAML, ports...)), 0o644); err != nil {
		t.Fatal(err)
	}
	creds, err := os.ReadFile(filepath.Join("..", "..", "docs", "deploy-credentials.txt"))
	if err != nil {
		t.Fatal(err)
	}
	pw := func(user string) string { return filepath.Join(dir, user+".password") }
	for name, text := range map[string]string{filepath.Join(dir, "deploy-credentials.txt"): string(creds),
		pw("alice"): "alice-example-password\n", pw("bob"): "bob-example-password\n", pw("carol"): "carol-example-password\n"} {
		if err := os.WriteFile(name, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	serve := startProc(t, bin, "serve", nil, "serve", "--config", cfg, "--metrics-listen", "127.0.0.1:0", "--log-format", "json")
	line := serve.expect(ctx, t, "metrics on http://")
	url := strings.Fields(line)[2] // metrics on URL (health ...)
	base := strings.TrimSuffix(url, "/metrics")
	serve.expect(ctx, t, "ready: ")
	for path, want := range map[string]int{"/readyz": 200, "/healthz": 200} {
		if code, body := httpGet(ctx, t, base+path); code != want {
			t.Errorf("GET %s: %d %s, want %d", path, code, body, want)
		}
	}

	members := []string{"sip:bob@b1.example", "sip:carol@b1.example"}
	bob := startProc(t, bin, "recv bob", nil, "recv", "--config", cfg, "--as", members[0], "--password-file", pw("bob"), "--dir", filepath.Join(dir, "bob"), "--count", "1", "--log-format", "json")
	carol := startProc(t, bin, "recv carol", nil, "recv", "--config", cfg, "--as", members[1], "--password-file", pw("carol"), "--dir", filepath.Join(dir, "carol"), "--count", "1")
	bob.expect(ctx, t, "registered ")
	carol.expect(ctx, t, "registered ")

	const size = 700_000
	file := filepath.Join(dir, "payload.bin")
	randomFile(t, file, size)
	send := startProc(t, bin, "send", nil, "send", "--config", cfg, "--from", "sip:alice@a.example", "--password-file", pw("alice"),
		"--to", "sip:team@cf.example", "--file", file, "--log-format", "json")
	if code, out := send.wait(ctx, t); code != 0 || !strings.Contains(out, "2 of 2 members delivered") {
		t.Fatalf("send: exit %d\n%s\nstderr:\n%s", code, out, send.stderr.String())
	}
	for _, r := range []*proc{bob, carol} {
		if code, out := r.wait(ctx, t); code != 0 {
			t.Fatalf("%s: exit %d\n%s", r.name, code, out)
		}
	}

	// A receiver's record: its own outcome (recv waits for the session's end before it
	// exits).
	got := sessionLines(t, bob.name, bob.stderr.String())
	if len(got) != 1 || got[0]["member"] != members[0] || got[0]["role"] != "ClientB" {
		t.Fatalf("recv --log-format json wrote %d session records:\n%s", len(got), bob.stderr.String())
	}
	if oc, _ := got[0]["outcomes"].(map[string]any); oc[members[0]] != 200.0 || len(oc) != 1 {
		t.Errorf("bob's session record: %v", got[0])
	}

	// The sender's record: the group, every member delivered, the MSRP size of the
	// message (the CPIM-wrapped payload) and its id, which every role's record repeats.
	sent := sessionLines(t, send.name, send.stderr.String())
	if len(sent) != 1 {
		t.Fatalf("send wrote %d session records, want 1:\n%s", len(sent), send.stderr.String())
	}
	rec := sent[0]
	wrapped, _ := rec["bytes"].(float64)
	if rec["group"] != "sip:team@cf.example" || rec["sender"] != "sip:alice@a.example" || rec["message_id"] == nil ||
		wrapped <= size || wrapped > size+1024 || rec["delivered"] != 2.0 {
		t.Errorf("send's session record: %v", rec)
	}

	// Every counter below counts an action before it is carried out, so once send has
	// its outcomes (each REPORT came after the chunks it reports on, and was counted
	// before it left each role), the counters hold the whole message. The sessions'
	// ends (BYE) and their records may still be on the way: the records are read once
	// serve has drained.
	m := scrapeText(ctx, t, url)
	for _, w := range []struct {
		role, hop string
		copies    float64
	}{{"PFA", "hop2", 1}, {"CF", "hop3", 2}, {"PFB", "hop4", 2}} {
		l := map[string]string{"role": w.role, "hop": w.hop}
		if got := sumSamples(m, "cpmlink_bytes_relayed_total", l); got != w.copies*wrapped {
			t.Errorf("cpmlink_bytes_relayed_total%v = %v, want %v × %v", l, got, w.copies, wrapped)
		}
		if got := sumSamples(m, "cpmlink_messages_relayed_total", l); got != w.copies {
			t.Errorf("cpmlink_messages_relayed_total%v = %v, want %v", l, got, w.copies)
		}
		if got := sumSamples(m, "cpmlink_member_outcomes_total", map[string]string{"role": w.role, "status": "200"}); got != 2 {
			t.Errorf("delivered outcomes at %s: %v, want 2", w.role, got)
		}
	}
	// fig1: every link is opened by its hop's INVITE sender, hop1 by alice (not here).
	for _, w := range []struct {
		hop, opener, trigger string
		n                    float64
	}{{"hop2", "PFA", "ack-received", 1}, {"hop3", "CF", "ok-received", 2}, {"hop4", "PFB", "ack-received", 2}} {
		if got := sumSamples(m, "cpmlink_link_opens_total", map[string]string{"hop": w.hop, "opener": w.opener, "trigger": w.trigger}); got != w.n {
			t.Errorf("%s opened by %s on %s: %v, want %v", w.hop, w.opener, w.trigger, got, w.n)
		}
	}

	if out := serve.stop(ctx, t); !strings.HasSuffix(out, "stopped") {
		t.Errorf("serve:\n%s", out)
	}
	perNode := map[string]int{}
	for _, r := range sessionLines(t, serve.name, serve.stderr.String()) {
		node, _ := r["node"].(string)
		perNode[node]++
		oc, _ := r["outcomes"].(map[string]any)
		want := members
		if node == "pfb1" {
			// A PF-B's session is one member's.
			want = []string{r["member"].(string)}
		}
		if r["message_id"] != rec["message_id"] || r["bytes"] != wrapped || len(oc) != len(want) {
			t.Errorf("%s's session record: %v", node, r)
		}
		for _, mb := range want {
			if oc[mb] != 200.0 {
				t.Errorf("%s's session record: %s has %v, want 200", node, mb, oc[mb])
			}
		}
	}
	if perNode["pfa"] != 1 || perNode["cf"] != 1 || perNode["pfb1"] != 2 || len(perNode) != 3 {
		t.Errorf("session records per instance: %v, want pfa 1, cf 1, pfb1 2 (one per member)", perNode)
	}
}

// sessionLines parses a process's stderr as JSON lines (--log-format json) and returns
// its session records.
func sessionLines(t *testing.T, who, stderr string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(stderr))
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: stderr line %q is not JSON: %v", who, sc.Text(), err)
		}
		if r["msg"] == "session" {
			out = append(out, r)
		}
	}
	return out
}

var plainClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func httpGet(ctx context.Context, t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := plainClient.Do(req)
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

type sample struct {
	labels map[string]string
	value  float64
}

// scrapeText reads a Prometheus text exposition into samples by metric name. The label
// values of ours hold no comma or quote, so a plain split does.
func scrapeText(ctx context.Context, t *testing.T, url string) map[string][]sample {
	t.Helper()
	code, body := httpGet(ctx, t, url)
	if code != 200 {
		t.Fatalf("GET %s: %d", url, code)
	}
	out := map[string][]sample{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || line[0] == '#' || !strings.HasPrefix(line, "cpmlink_") {
			continue
		}
		name, labels, rest := line, map[string]string{}, ""
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			name, rest = line[:i], line[j+1:]
			for _, kv := range strings.Split(line[i+1:j], ",") {
				k, v, _ := strings.Cut(kv, "=")
				labels[k] = strings.Trim(v, `"`)
			}
		} else {
			name, rest, _ = strings.Cut(line, " ")
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		out[name] = append(out[name], sample{labels, v})
	}
	return out
}

func sumSamples(m map[string][]sample, name string, want map[string]string) float64 {
	total := 0.0
	for _, s := range m[name] {
		ok := true
		for k, v := range want {
			ok = ok && s.labels[k] == v
		}
		if ok {
			total += s.value
		}
	}
	return total
}

// TestObservabilityRefusals: a bad --log-format or --metrics-listen is refused before
// anything starts, naming the flag, the value and what is accepted.
func TestObservabilityRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--log-format", "xml"}, `--log-format: "xml" is not one of text, json`},
		{[]string{"send", "--log-format", "logfmt"}, `--log-format: "logfmt" is not one of text, json`},
		{[]string{"recv", "--log-format", "XML"}, `--log-format: "XML" is not one of text, json`},
		{[]string{"serve", "--metrics-listen", "localhost:9464"}, `--metrics-listen: "localhost:9464" is not an IP:port to listen on, e.g. 127.0.0.1:9464 or 0.0.0.0:9464`},
		{[]string{"serve", "--metrics-listen", "9464"}, `--metrics-listen: "9464" is not an IP:port`},
	} {
		code, stdout, stderr := cli(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("cpmlink %s: exit %d\nstdout: %s\nstderr: %s\nwant exit 2 and %q", strings.Join(tc.args, " "), code, stdout, stderr, tc.want)
		}
	}
}
