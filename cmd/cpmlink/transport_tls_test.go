package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemoOverTLS: demo --transport tls runs every role, the embedded core and the
// members over SIP over TLS and msrps, and each member holds the message byte for byte;
// an external core cannot take the throw-away certificate, so it is refused.
func TestDemoOverTLS(t *testing.T) {
	dir := t.TempDir()
	code, out, stderr := cli(t, "demo", "--transport", "tls", "--members", "3", "--pfbs", "2", "--size", "200kB", "--json",
		"--out", filepath.Join(dir, "demo"), "--timeout", "60s")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	var res demoJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if res.Transport != "tls" || res.Delivered != 3 || res.Failed != 0 || len(res.PerMember) != 3 {
		t.Fatalf("transport %s, %d delivered, %d failed, %d members", res.Transport, res.Delivered, res.Failed, len(res.PerMember))
	}
	for _, m := range res.PerMember {
		if !m.Intact {
			t.Errorf("member %+v does not hold the message intact", m)
		}
	}
	if code, _, stderr := cli(t, "demo", "--transport", "tls", "--sip-core", "127.0.0.1:5060"); code != 2 || !strings.Contains(stderr, "--transport tls runs the embedded SIP/IP core") {
		t.Errorf("demo --transport tls --sip-core: exit %d, %s", code, stderr)
	}
}

// TestBenchOverTLS: bench --transport tls measures a run over SIP over TLS and msrps in
// which every member got the message.
func TestBenchOverTLS(t *testing.T) {
	code, out, stderr := cli(t, "bench", "--transport", "tls", "--variant", "fig1", "--members", "2", "--pfbs", "1", "--size", "100kB", "--runs", "1", "--json", "--timeout", "60s")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	var rows []benchRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rows) != 1 || rows[0].Failed != 0 || len(rows[0].DeliveryMS) != 1 {
		t.Errorf("rows: %+v", rows)
	}
}
