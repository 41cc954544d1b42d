package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestRecvRefuses: recv reports missing flags and a URI that is not a receiver.
func TestRecvRefuses(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--dir", dir}, "--as URI is required"},
		{[]string{"--as", "sip:bob@b1.example"}, "--dir DIR is required"},
		{[]string{"--as", "sip:bob@b1.example", "--dir", dir, "--count", "-1"}, "--count must not be negative"},
		{[]string{"--as", "sip:zoe@b1.example", "--dir", dir}, "not a client of the configuration: sip:zoe@b1.example (the clients are sip:alice@a.example, sip:bob@b1.example, sip:carol@b1.example)"},
		{[]string{"--as", "sip:alice@a.example", "--dir", filepath.Join(dir, "alice")}, "sip:alice@a.example registers with pfa, a PF-A: it transmits (cpmlink send --from sip:alice@a.example)"},
	} {
		code, stdout, stderr := cli(t, append([]string{"recv", "--config", exampleConfig}, tc.args...)...)
		if code != 1 || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("recv %v: exit %d\nstdout: %s\nstderr: %s\nwant %q", tc.args, code, stdout, stderr, tc.want)
		}
	}
}
