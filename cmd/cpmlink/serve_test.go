package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// exampleConfig is the shipped example; the tests that use it never bind its fixed ports.
var exampleConfig = filepath.Join("..", "..", "docs", "deploy.yaml")

// TestServeRefuses: serve reports a bad configuration or role selection and exits 1
// without serving.
func TestServeRefuses(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("variant: fig1\nsip-core: 127.0.0.1:5060\nroles:\n  - name: pfa\n    role: pfa\n    uri: sip:pf@a.example\n    sip: 0.0.0.0:5061\n    msrp: 0.0.0.0:2856\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--config", filepath.Join(t.TempDir(), "none.yaml")}, 1, "--config: no deployment file"},
		{[]string{"--config", bad}, 1, bad + ":7: roles[0] (pfa): sip 0.0.0.0:5061 binds every interface, which names no address a peer could use: set roles[0].advertise"},
		{[]string{"--config", exampleConfig, "--role", "pfb9"}, 1, `no such instance: "pfb9" (the configuration has core, pfa, cf, pfb1)`},
		{[]string{"--config", exampleConfig, "--role", "bob"}, 1, "bob is a client: run it with cpmlink send --from or cpmlink recv --as sip:bob@b1.example"},
		{[]string{"--config", exampleConfig, "--log", "loud"}, 2, `--log: "loud" is not one of debug, info, warn, error, off`},
		{[]string{"--bogus"}, 2, "--bogus: no such flag"},
	} {
		code, stdout, stderr := cli(t, append([]string{"serve"}, tc.args...)...)
		if code != tc.code || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("serve %v: exit %d\nstdout: %s\nstderr: %s\nwant exit %d and %q", tc.args, code, stdout, stderr, tc.code, tc.want)
		}
	}
}
