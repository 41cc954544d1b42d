package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cpmlink/cpmlink/runtime/deploy"
)

// TestPasswordRefusals: a client of a PF with auth gets a clear error, before anything is
// sent, without a password, with a --password-file that does not exist, and with one whose
// first line is empty.
func TestPasswordRefusals(t *testing.T) {
	t.Setenv(passwordEnv, "")
	dir := t.TempDir()
	file := filepath.Join(dir, "f.txt")
	empty := filepath.Join(dir, "empty.password")
	for name, text := range map[string]string{file: "hello", empty: "\nsecret on line 2\n"} {
		if err := os.WriteFile(name, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"send", "--from", "sip:alice@a.example", "--to", "sip:team@cf.example", "--file", file},
			`send: sip:alice@a.example's pf pfa authenticates its clients (auth): give the password of user "alice" with --password-file FILE or in $CPMLINK_PASSWORD`},
		{[]string{"recv", "--as", "sip:bob@b1.example", "--dir", filepath.Join(dir, "bob")},
			`recv: sip:bob@b1.example's pf pfb1 authenticates its clients (auth): give the password of user "bob"`},
		{[]string{"send", "--from", "sip:alice@a.example", "--to", "sip:team@cf.example", "--file", file, "--password-file", filepath.Join(dir, "none")},
			"send: --password-file: open " + filepath.Join(dir, "none") + ": no such file or directory"},
		{[]string{"recv", "--as", "sip:bob@b1.example", "--dir", filepath.Join(dir, "bob"), "--password-file", empty},
			"recv: --password-file " + empty + `: the first line is empty: it must hold the password of user "bob"`},
	} {
		args := append([]string{tc.args[0], "--config", exampleConfig}, tc.args[1:]...)
		code, stdout, stderr := cli(t, args...)
		if code != 1 || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("%v: exit %d\nstdout: %s\nstderr: %s\nwant %q", tc.args, code, stdout, stderr, tc.want)
		}
	}
}

// TestClientPassword: the first line of --password-file, else $CPMLINK_PASSWORD, with the
// file first; nothing for a client whose PF does not authenticate.
func TestClientPassword(t *testing.T) {
	cfg, err := deploy.LoadServeConfig(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pw := filepath.Join(dir, "alice.password")
	if err := os.WriteFile(pw, []byte("from-the-file\r\nnot this\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(passwordEnv, "from-the-environment")
	if got, err := clientPassword(cfg, "sip:alice@a.example", pw); err != nil || got != "from-the-file" {
		t.Errorf("--password-file: %q %v", got, err)
	}
	if got, err := clientPassword(cfg, "sip:alice@a.example", ""); err != nil || got != "from-the-environment" {
		t.Errorf("$%s: %q %v", passwordEnv, got, err)
	}

	open, err := deploy.ParseServeConfig("open.yaml", []byte("variant: fig1\ntrusted-hosts: []\nsip-core: 127.0.0.1:5060\nroles:\n  - {name: pfa, role: pfa, uri: sip:pf@a.example, sip: 127.0.0.1:5061, msrp: 127.0.0.1:2855}\nclients:\n  - {uri: sip:alice@a.example, pf: pfa}\n"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(passwordEnv, "")
	if got, err := clientPassword(open, "sip:alice@a.example", ""); err != nil || got != "" {
		t.Errorf("a PF without auth: %q %v", got, err)
	}
}
