package main

import (
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/cpmlink/cpmlink/runtime/deploy"
)

// TestRefusals: every refusal of the command line names the flag, the value and what is
// accepted, and exits 2 before anything runs (no socket is opened by any of these).
func TestRefusals(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "f.txt")
	if err := os.WriteFile(file, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	const variants = "fig1, fig2, fig3"
	for _, tc := range []struct {
		args []string
		want string
	}{
		// Sizes: the flag, the value, the forms.
		{[]string{"demo", "--size", "abc"}, `--size: "abc" is not a size: ` + deploy.SizeForms},
		{[]string{"demo", "--size", "2M"}, `--size: "2M" is not a size: `},
		{[]string{"demo", "--chunk-size", "2MiB"}, `--chunk-size: "2MiB" is out of range: between 1B and 1MiB`},
		{[]string{"demo", "--chunk", "0"}, `--chunk-size: "0B" is out of range: between 1B and 1MiB`},
		{[]string{"bench", "--size", "2MB,abc"}, `--size: "abc" is not a message size: comma-separated sizes of at least 1 byte, each ` + deploy.SizeForms},
		// Durations: a unit is needed.
		{[]string{"demo", "--timeout", "5"}, `--timeout: "5" is not a duration: use a unit, e.g. 5s or 2m`},
		{[]string{"send", "--timeout", "5"}, `--timeout: "5" is not a duration: use a unit, e.g. 5s or 2m`},
		{[]string{"send", "--config", exampleConfig, "--from", "sip:alice@a.example", "--to", "sip:team@cf.example", "--file", file, "--timeout", "-1s"}, `--timeout: "-1s" is not positive: give a duration with a unit, e.g. 5s or 2m`},
		{[]string{"bench", "--timeout", "ten"}, `--timeout: "ten" is not a duration`},
		{[]string{"serve", "--grace", "10"}, `--grace: "10" is not a duration`},
		{[]string{"recv", "--expires", "600"}, `--expires: "600" is not a duration`},
		{[]string{"recv", "--as", "sip:bob@b1.example", "--dir", dir, "--expires", "1s"}, `--expires: "1s" is too short: at least 2s`},
		// Numbers.
		{[]string{"demo", "--members", "x"}, `--members: "x" is not a whole number, e.g. 5`},
		{[]string{"demo", "--members", "0"}, `--members: "0" is too small: a group has at least 1 member`},
		{[]string{"explore", "--pfbs", "0"}, `--pfbs: "0" is too small: a group has at least 1 PF-B`},
		{[]string{"diagram", "--members", "-3"}, `--members: "-3" is too small`},
		{[]string{"map", "--cross-check-every", "-1"}, `--cross-check-every: "-1" is too small: 0 (no cross-check) or more`},
		{[]string{"bench", "--members", "5,x"}, `--members: "x" is not a group size: comma-separated whole numbers of at least 1, e.g. 5,100`},
		{[]string{"bench", "--runs", "0"}, `--runs: "0" is too small: at least 1`},
		{[]string{"bench", "--groups", "-1"}, `--groups: "-1" is too small: at least 1 group`},
		{[]string{"bench", "--groups", "2", "--members", "5,100"}, `--members: "5,100" is a list: with --groups it takes one group size`},
		{[]string{"bench", "--groups", "2", "--size", "1MB,2MB"}, `--size: "1MB,2MB" is a list: with --groups it takes one message size`},
		{[]string{"bench", "--groups", "2", "--transport", "tls"}, `--transport: "tls" is not one of udp, tcp`},
		{[]string{"bench", "--groups", "2", "--interval", "0s"}, `--interval: "0s" is not positive`},
		{[]string{"bench", "--groups", "2", "--soak-messages", "0"}, `--soak-messages: "0" is too small: at least 1`},
		{[]string{"bench", "--groups", "2", "--soak", "-5m"}, `--soak: "-5m0s" is negative`},
		{[]string{"bench", "--soak", "5m"}, `--soak: "5m0s" is for --groups only`},
		{[]string{"bench", "--interval", "5ms"}, `--interval: "5ms" is for --groups only`},
		{[]string{"recv", "--as", "sip:bob@b1.example", "--dir", dir, "--count", "-1"}, `--count: "-1" is too small: 0 (run until stopped) or more`},
		{[]string{"demo", "--base-port", "70000"}, `--base-port: "70000" is out of range`},
		// Closed sets.
		{[]string{"send", "--log", "verbose"}, `--log: "verbose" is not one of debug, info, warn, error, off`},
		{[]string{"recv", "--log", "verbose"}, `--log: "verbose" is not one of debug, info, warn, error, off`},
		{[]string{"demo", "--transport", "sctp"}, `--transport: "sctp" is not one of udp, tcp`},
		{[]string{"bench", "--transport", "sctp"}, `--transport: "sctp" is not one of udp, tcp`},
		{[]string{"bench", "--processes", "all"}, `--processes: "all" is not one of servers, cf, none`},
		{[]string{"bench", "--transport", "tls", "--processes", "servers"}, `--processes: "servers" is not possible over --transport tls`},
		{[]string{"bench", "--groups", "2", "--processes", "cf"}, `--processes: "cf" is for one group at a time`},
		{[]string{"bench", "--groups", "2", "--profile", "/tmp/p"}, `--profile: "/tmp/p" is for one group at a time`},
		{[]string{"diagram", "--format", "png"}, `--format: "png" is not one of mermaid, svg`},
		{[]string{"explore", "--json=maybe"}, `--json: "maybe" is not true or false`},
		// Variants: every command lists the known ones; only explore takes all.
		{[]string{"demo", "--variant", "nosuch"}, `--variant: "nosuch" is not a variant of the spec: ` + variants},
		{[]string{"bench", "--variant", "fig1,nosuch"}, `--variant: "nosuch" is not a variant of the spec: ` + variants},
		{[]string{"diagram", "--variant", "nosuch"}, `--variant: "nosuch" is not a variant of the spec: ` + variants},
		{[]string{"diagram", "--variant", "all"}, `--variant: "all" is not accepted here: this command takes one variant: ` + variants},
		{[]string{"demo", "--variant", "all"}, `--variant: "all" is not accepted here: this command takes one variant: ` + variants},
		{[]string{"explore", "--variant", "nosuch"}, `--variant: "nosuch" is not a variant of the spec: ` + variants},
		{[]string{"explore", "--variant", "fig1,fig2", "--replay", "1"}, `--variant: "fig1,fig2" names several variants: --replay replays one`},
		{[]string{"explore", "--variant", "fig1", "--replay", "1,x"}, `--replay: "1,x" is not a path: comma-separated choice numbers`},
		// The command line itself.
		{[]string{"demo", "--bogus"}, `--bogus: no such flag`},
		{[]string{"explore", "--members"}, `--members: needs a value`},
		{[]string{"demo", "stray"}, `unexpected arguments: stray`},
		{[]string{"demo", "--print-routes"}, `--print-routes needs --base-port`},
	} {
		code, stdout, stderr := cli(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("cpmlink %s: exit %d\nstdout: %s\nstderr: %s\nwant exit 2 and %q", strings.Join(tc.args, " "), code, stdout, stderr, tc.want)
		}
		if code == 2 && strings.Contains(stderr, "Usage of") {
			t.Errorf("cpmlink %s: the whole usage follows a refusal:\n%s", strings.Join(tc.args, " "), stderr)
		}
	}
}

// TestMissingConfig: serve, send and recv without a deployment file point at --config and
// at the example, whichever way the file is missing.
func TestMissingConfig(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "none.yaml")
	for _, args := range [][]string{
		{"serve", "--config", missing},
		{"send", "--config", missing, "--from", "sip:alice@a.example", "--to", "sip:team@cf.example", "--file", missing},
		{"recv", "--config", missing, "--as", "sip:bob@b1.example", "--dir", t.TempDir()},
	} {
		code, _, stderr := cli(t, args...)
		for _, want := range []string{`--config: no deployment file "` + missing + `"`, "--config FILE", "docs/deploy.yaml"} {
			if code != 1 || !strings.Contains(stderr, want) {
				t.Errorf("cpmlink %s: exit %d, %s\nwant exit 1 and %q", args[0], code, stderr, want)
			}
		}
	}
}

// TestDeprecatedChunk: --chunk still sets --chunk-size, says it is deprecated, and is not
// shown in the usage.
func TestDeprecatedChunk(t *testing.T) {
	t.Parallel()
	code, _, stderr := cli(t, "demo", "--chunk", "2MiB")
	if code != 2 || !strings.Contains(stderr, "--chunk is deprecated: use --chunk-size") || !strings.Contains(stderr, `--chunk-size: "2MiB"`) {
		t.Errorf("exit %d\n%s", code, stderr)
	}
	code, _, usage := cli(t, "demo", "-h")
	if code != 0 || !strings.Contains(usage, "-chunk-size size") || strings.Contains(usage, "-chunk ") || !strings.Contains(usage, "-spec file") {
		t.Errorf("demo -h: exit %d\n%s", code, usage)
	}
}

// TestDefaultGroup: the commands that run or check one group default to the same group.
func TestDefaultGroup(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"demo", "explore", "diagram"} {
		_, _, usage := cli(t, cmd, "-h")
		for _, want := range []string{"-members members\n    \tgroup members (default 2)", "(default 2)"} {
			if !strings.Contains(usage, want) {
				t.Errorf("%s -h lacks %q:\n%s", cmd, want, usage)
			}
		}
	}
}

// TestSendNothingListening: send whose SIP/IP core or PF is not running says so, naming
// it and where it was looked for, instead of waiting for the REGISTER's deadline: over
// UDP, loopback answers a datagram to a closed port with ICMP port unreachable at once;
// over TCP the connect is refused.
func TestSendNothingListening(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "f.txt")
	if err := os.WriteFile(file, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	// docs/deploy.yaml authenticates alice (docs/deploy-credentials.txt): the probe runs
	// once her password is known, as it would for a real sender.
	pw := filepath.Join(t.TempDir(), "alice.pw")
	if err := os.WriteFile(pw, []byte("alice-example-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, transport string
		// edit points the core or the PF at port; want is what send says then.
		edit func(conf, port string) string
		want string
	}{
		{"core/udp", "udp", func(conf, port string) string {
			return strings.Replace(conf, "listen: 127.0.0.1:15060", "listen: 127.0.0.1:"+port, 1)
		}, "send: sip:alice@a.example registers through the SIP/IP core: nothing listens at 127.0.0.1:PORT (udp)"},
		{"core/tcp", "tcp", func(conf, port string) string {
			return strings.Replace(conf, "listen: 127.0.0.1:15060", "listen: 127.0.0.1:"+port, 1)
		}, "send: sip:alice@a.example registers through the SIP/IP core: nothing listens at 127.0.0.1:PORT (tcp)"},
		// Without a core section the client sends its REGISTER to the sip-core of the
		// file; here that is the PF itself, as a deployment without a proxy would have it.
		{"pf/udp", "udp", func(conf, port string) string {
			conf = strings.Replace(conf, "sip: 127.0.0.1:15061", "sip: 127.0.0.1:"+port, 1)
			return withoutCore(conf, "127.0.0.1:"+port)
		}, "send: sip:alice@a.example registers with pfa: nothing listens at 127.0.0.1:PORT (udp)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// A port nothing listens on: taken, then given back.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
			ln.Close()
			conf := strings.Replace(tc.edit(string(b), port), "transport: udp", "transport: "+tc.transport, 1)
			path := filepath.Join(t.TempDir(), "cpmlink.yaml")
			if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := cli(t, "send", "--config", path, "--password-file", pw, "--from", "sip:alice@a.example", "--to", "sip:team@cf.example", "--file", file)
			want := strings.Replace(tc.want, "PORT", port, 1)
			if code != 1 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "cpmlink serve --config "+path) || stdout != "" {
				t.Errorf("exit %d\nstdout: %s\nstderr: %s\nwant %q", code, stdout, stderr, want)
			}
		})
	}
}

// withoutCore drops the core section of a configuration and names sip-core instead.
func withoutCore(conf, sipCore string) string {
	var out []string
	in := false
	for _, l := range strings.Split(conf, "\n") {
		switch {
		case strings.HasPrefix(l, "core:"):
			in = true
			out = append(out, "sip-core: "+sipCore)
			continue
		case in && (strings.HasPrefix(l, " ") || l == ""):
			continue
		}
		in = false
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// TestVersionLine: the version names the module version, the revision and whether the
// tree was modified, from the build information.
func TestVersionLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		bi   debug.BuildInfo
		want string
	}{
		{debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.0"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "9cd98f1c2b3a4d5e6f708192a3b4c5d6e7f80912"}, {Key: "vcs.time", Value: "2026-12-05T03:00:00Z"}, {Key: "vcs.modified", Value: "false"}}},
			"cpmlink v1.2.0 (revision 9cd98f1c2b3a, 2026-12-05T03:00:00Z) go1.26.0"},
		{debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "9cd98f1"}, {Key: "vcs.modified", Value: "true"}}},
			"cpmlink (devel) (revision 9cd98f1, modified) go1.26.0"},
		{debug.BuildInfo{GoVersion: "go1.26.0"}, "cpmlink (unknown) (no VCS revision recorded) go1.26.0"},
	} {
		if got := versionLine(&tc.bi); got != tc.want {
			t.Errorf("versionLine = %q, want %q", got, tc.want)
		}
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, _ := cli(t, args...)
		if code != 0 || !strings.HasPrefix(out, "cpmlink ") {
			t.Errorf("cpmlink %v: exit %d, %q", args, code, out)
		}
	}
}
