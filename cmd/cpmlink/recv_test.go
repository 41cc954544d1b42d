package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestRecvRefuses: recv reports missing flags and a URI that is not a receiver.
func TestRecvRefuses(t *testing.T) {
	// The clients of the example authenticate: a password lets each case reach its check.
	t.Setenv(passwordEnv, "example")
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--dir", dir}, 2, "--as URI is required"},
		{[]string{"--as", "sip:bob@b1.example"}, 2, "--dir DIR is required"},
		{[]string{"--as", "sip:zoe@b1.example", "--dir", dir}, 1, "not a client of the configuration: sip:zoe@b1.example (the clients are sip:alice@a.example, sip:bob@b1.example, sip:carol@b1.example)"},
		{[]string{"--as", "sip:alice@a.example", "--dir", filepath.Join(dir, "alice")}, 1, "sip:alice@a.example registers with pfa, a PF-A: it transmits (cpmlink send --from sip:alice@a.example)"},
	} {
		code, stdout, stderr := cli(t, append([]string{"recv", "--config", exampleConfig}, tc.args...)...)
		if code != tc.code || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("recv %v: exit %d\nstdout: %s\nstderr: %s\nwant exit %d and %q", tc.args, code, stdout, stderr, tc.code, tc.want)
		}
	}
}
