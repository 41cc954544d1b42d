//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/runtime/kamailiotest"
)

// dispatcherCfg is the Kamailio configuration of docs/deploy.md's "Scale-out behind
// Kamailio", as the test runs it.
const dispatcherCfg = "testdata/kamailio-dispatcher.cfg"

// dispatcherYAML is the deployment of docs/deploy.md's "Scale-out behind Kamailio" with
// the ports as verbs: %[1]d Kamailio, then each role's SIP and MSRP ports (pfa, cf1, cf2,
// pfb1, pfb2). Both CFs know the same groups (one YAML anchor); both PF-Bs serve the
// members' domain, with one credentials file.
const dispatcherYAML = `variant: fig1
transport: tcp
sip-core: 127.0.0.1:%[1]d
roles:
  - name: pfa
    role: pfa
    uri: sip:pf@a.example
    sip: 127.0.0.1:%[2]d
    msrp: 127.0.0.1:%[3]d
    auth: {credentials: scale-credentials.txt}
  - name: cf1
    role: cf
    uri: sip:cf1@cf.example
    sip: 127.0.0.1:%[4]d
    msrp: 127.0.0.1:%[5]d
    groups: &groups
      sip:red@cf.example: {members: [sip:bob@b1.example, sip:carol@b1.example, sip:dave@b1.example, sip:erin@b1.example], senders: [sip:alice@a.example]}
      sip:green@cf.example: {members: [sip:bob@b1.example, sip:carol@b1.example, sip:dave@b1.example, sip:erin@b1.example], senders: [sip:alice@a.example]}
      sip:blue@cf.example: {members: [sip:bob@b1.example, sip:carol@b1.example, sip:dave@b1.example, sip:erin@b1.example], senders: [sip:alice@a.example]}
      sip:amber@cf.example: {members: [sip:bob@b1.example, sip:carol@b1.example, sip:dave@b1.example, sip:erin@b1.example], senders: [sip:alice@a.example]}
  - name: cf2
    role: cf
    uri: sip:cf2@cf.example
    sip: 127.0.0.1:%[6]d
    msrp: 127.0.0.1:%[7]d
    groups: *groups
  - name: pfb1
    role: pfb
    uri: sip:pf1@b1.example
    sip: 127.0.0.1:%[8]d
    msrp: 127.0.0.1:%[9]d
    auth: {credentials: scale-credentials.txt}
  - name: pfb2
    role: pfb
    uri: sip:pf2@b1.example
    sip: 127.0.0.1:%[10]d
    msrp: 127.0.0.1:%[11]d
    auth: {credentials: scale-credentials.txt}
clients:
  - {uri: sip:alice@a.example, pf: pfa}
  - {uri: sip:bob@b1.example, pf: pfb1}
  - {uri: sip:carol@b1.example, pf: pfb1}
  - {uri: sip:dave@b1.example, pf: pfb1}
  - {uri: sip:erin@b1.example, pf: pfb1}
`

// dispatcherList is the dispatcher's destination file: set 1 the CFs, set 2 the PF-Bs,
// over TCP (the deployment's transport), so that a dead destination refuses at once.
func dispatcherList(cf1, cf2, pfb1, pfb2 int) string {
	return fmt.Sprintf(`# set destination flags priority attributes
1 sip:127.0.0.1:%d;transport=tcp 0 0 name=cf1
1 sip:127.0.0.1:%d;transport=tcp 0 0 name=cf2
2 sip:127.0.0.1:%d;transport=tcp 0 0 name=pfb1
2 sip:127.0.0.1:%d;transport=tcp 0 0 name=pfb2
`, cf1, cf2, pfb1, pfb2)
}

var scaleMembers = []string{"sip:bob@b1.example", "sip:carol@b1.example", "sip:dave@b1.example", "sip:erin@b1.example"}
var scaleGroups = []string{"sip:red@cf.example", "sip:green@cf.example", "sip:blue@cf.example", "sip:amber@cf.example"}

// TestDispatcherScaleOut runs docs/deploy.md's "Scale-out behind Kamailio": Kamailio's
// dispatcher module in front of two CF processes (groups hashed on their URI) and two
// PF-B processes (members hashed on their address of record), with OPTIONS probing. It
// sends to every group, SIGKILLs the CF that carries a transfer in flight, checks what
// that transfer's sender learns, waits for the dispatcher to mark the CF inactive, and
// sends to every group again: all of them now reach every member through the survivor.
func TestDispatcherScaleOut(t *testing.T) {
	kamailio := kamailiotest.Require(t)
	kamcmd, err := exec.LookPath("kamcmd")
	if err != nil {
		t.Skip("kamcmd not installed (Debian package kamailio): the test reads the dispatcher's state with it")
	}
	bin := buildCpmlink(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()

	base := kamailiotest.FreePorts(t, 11)
	port := func(i int) int { return base + i }
	var ports []any
	for i := range 11 {
		ports = append(ports, port(i))
	}
	cfg := filepath.Join(dir, "cpmlink.yaml")
	files := map[string]string{
		// A short guard unit, so that the sender of the transfer cut by the kill hears of it
		// within seconds (the default, 32 s, would take minutes; see docs/deploy.md).
		cfg: fmt.Sprintf(dispatcherYAML, ports...) + "guard: 2s\n",
		filepath.Join(dir, "scale-credentials.txt"): scaleCredentials,
		filepath.Join(dir, "dispatcher.list"):       dispatcherList(port(3), port(5), port(7), port(9)),
	}
	for _, u := range []string{"alice", "bob", "carol", "dave", "erin"} {
		files[filepath.Join(dir, u+".password")] = u + "-scale-password\n"
	}
	for name, text := range files {
		if err := os.WriteFile(name, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pw := func(uri string) string {
		user := strings.TrimPrefix(uri[:strings.IndexByte(uri, '@')], "sip:")
		return filepath.Join(dir, user+".password")
	}

	// The server roles, each in a process of its own, each with a trace (NDJSON records of
	// what its machine did) that tells the test which CF and PF-B took what.
	names := []string{"pfa", "cf1", "cf2", "pfb1", "pfb2"}
	servers := map[string]*proc{}
	trace := func(name string) string { return filepath.Join(dir, name+".ndjson") }
	for _, n := range names {
		servers[n] = startProc(t, bin, "serve "+n, nil, "serve", "--config", cfg, "--role", n, "--trace", trace(n))
	}
	for _, n := range names {
		servers[n].expect(ctx, t, "ready: ")
	}
	// The dispatcher's probe is an OPTIONS: every role answers it 200, over UDP and TCP.
	for i, n := range names {
		for _, network := range []string{"udp", "tcp"} {
			if status := optionsStatus(ctx, t, network, port(1+2*i)); status != 200 {
				t.Fatalf("%s answers OPTIONS over %s with %d, want 200", n, network, status)
			}
		}
	}

	// Kamailio, with the destinations and a control socket in the test's directory.
	ctl := "unix:" + filepath.Join(dir, "ctl")
	args := []string{"-f", dispatcherCfgPath(t), "-DD", "-E", "-m", "64", "-M", "8",
		"-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"), "-w", dir,
		"-A", "SIP_PORT=" + strconv.Itoa(port(0)),
		"-A", `DS_LIST="` + filepath.Join(dir, "dispatcher.list") + `"`,
		"-A", `CTL="` + ctl + `"`,
		"-A", fmt.Sprintf(`ROUTES="a.example=127.0.0.1:%d"`, port(1))}
	checkDispatcherConfig(ctx, t, kamailio, dir, args)
	k, err := kamailiotest.StartChild(t, exec.Command(kamailio, args...), filepath.Join(dir, "kamailio.log"))
	if err != nil {
		t.Fatal(err)
	}
	ds := &dsState{t: t, kamcmd: kamcmd, ctl: ctl, dir: dir, k: k}
	want := map[int]string{port(3): "AP", port(5): "AP", port(7): "AP", port(9): "AP"}
	ds.waitFor(ctx, "every destination active and probed", func(s map[int]string) bool { return sameFlags(s, want) })

	// The members register through Kamailio: each REGISTER goes to the PF-B her address of
	// record hashes to.
	recvs := map[string]*proc{}
	for _, m := range scaleMembers {
		user := strings.TrimPrefix(m[:strings.IndexByte(m, '@')], "sip:")
		recvs[m] = startProc(t, bin, "recv "+user, nil, "recv", "--config", cfg, "--as", m, "--password-file", pw(m), "--dir", filepath.Join(dir, user))
	}
	for _, m := range scaleMembers {
		recvs[m].expect(ctx, t, "registered "+m)
	}
	send := func(group, file string) (int, string, *proc) {
		p := startProc(t, bin, "send to "+group, nil, "send", "--config", cfg, "--from", "sip:alice@a.example", "--password-file", pw("sip:alice@a.example"),
			"--to", group, "--file", file, "--timeout", "1m")
		code, out := p.wait(ctx, t)
		return code, out, p
	}
	expectDelivered := func(group, file, sum string, size int) {
		t.Helper()
		code, out, p := send(group, file)
		if code != 0 || !strings.Contains(out, fmt.Sprintf("%d of %d members delivered", len(scaleMembers), len(scaleMembers))) {
			t.Fatalf("send to %s: exit %d\n%s\nstderr:\n%s", group, code, out, p.stderr.String())
		}
		for _, m := range scaleMembers {
			storedLine(t, m, recvs[m].expect(ctx, t, "message "), sum, size)
		}
	}

	// 1. Every group, every member: which CF took each group, which PF-B each member.
	small := filepath.Join(dir, "small.bin")
	sum := randomFile(t, small, 64<<10)
	for _, g := range scaleGroups {
		expectDelivered(g, small, sum, 64<<10)
	}
	onCF := map[string][]string{}
	for _, g := range scaleGroups {
		var at []string
		for _, cf := range []string{"cf1", "cf2"} {
			if traceMentions(t, trace(cf), g) {
				at = append(at, cf)
			}
		}
		if len(at) != 1 {
			t.Fatalf("group %s was taken by %v, want exactly one CF", g, at)
		}
		onCF[at[0]] = append(onCF[at[0]], g)
	}
	onPFB := map[string][]string{}
	for _, m := range scaleMembers {
		var at []string
		for _, pfb := range []string{"pfb1", "pfb2"} {
			if traceMentions(t, trace(pfb), m) {
				at = append(at, pfb)
			}
		}
		if len(at) != 1 {
			t.Fatalf("member %s was served by %v, want exactly one PF-B", m, at)
		}
		onPFB[at[0]] = append(onPFB[at[0]], m)
	}
	t.Logf("groups by CF: %v; members by PF-B: %v", onCF, onPFB)
	if len(onCF["cf1"]) == 0 || len(onCF["cf2"]) == 0 || len(onPFB["pfb1"]) == 0 || len(onPFB["pfb2"]) == 0 {
		t.Fatalf("the dispatcher left an instance idle: groups %v, members %v", onCF, onPFB)
	}

	// 2. A large message to a group of cf1, and cf1 SIGKILLed while it relays it.
	victim, survivor, victimPort := "cf1", "cf2", port(3)
	group := onCF[victim][0]
	big := filepath.Join(dir, "big.bin")
	randomFile(t, big, 64<<20)
	mark := traceSize(t, trace(victim))
	inflightStart := time.Now()
	inflight := startProc(t, bin, "send in flight", nil, "send", "--config", cfg, "--from", "sip:alice@a.example", "--password-file", pw("sip:alice@a.example"),
		"--to", group, "--file", big, "--timeout", "1m")
	waitTrace(ctx, t, trace(victim), mark, `"type":"RelayChunk"`)
	if err := servers[victim].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()

	// 3. The dispatcher's probe finds cf1 dead; the rest stays active.
	want[victimPort] = "IP"
	ds.waitFor(ctx, victim+" inactive, the others active", func(s map[int]string) bool { return sameFlags(s, want) })
	t.Logf("%s marked inactive %v after the kill", victim, time.Since(killed).Round(time.Millisecond))

	// The transfer's sender learns a failure for every member, none delivered.
	code, out := inflight.wait(ctx, t)
	t.Logf("the sender of the transfer in flight, %v after the kill:\n%s", time.Since(killed).Round(time.Millisecond), out)
	if took := time.Since(inflightStart); took >= time.Minute {
		t.Errorf("the sender learned of the dead CF only from its own --timeout 1m (after %v)", took)
	}
	if code != 1 || !strings.Contains(out, fmt.Sprintf("0 of %d members delivered", len(scaleMembers))) {
		t.Errorf("send in flight on the killed CF: exit %d, want 1 and 0 delivered\n%s\nstderr:\n%s", code, out, inflight.stderr.String())
	}
	for _, m := range scaleMembers {
		if !outcomeLine(out, m, "failed (408 Request Timeout)") {
			t.Errorf("send in flight on the killed CF: no failure reported for %s:\n%s", m, out)
		}
	}

	// 4. Every group again, those of the dead CF too: each reaches every member, byte-exact,
	// through the survivor.
	mark = traceSize(t, trace(survivor))
	sum = randomFile(t, small, 300_000)
	for _, g := range scaleGroups {
		expectDelivered(g, small, sum, 300_000)
	}
	for _, g := range scaleGroups {
		if !traceMentionsAfter(t, trace(survivor), mark, g) {
			t.Errorf("group %s after the kill: not in %s's trace", g, survivor)
		}
	}

	// An ad-hoc group needs the one CF a deployment names for it: with two, send says so.
	adhoc := startProc(t, bin, "send ad hoc", nil, "send", "--config", cfg, "--from", "sip:alice@a.example", "--password-file", pw("sip:alice@a.example"),
		"--members", strings.Join(scaleMembers, ","), "--file", small)
	if code, out := adhoc.wait(ctx, t); code == 0 || !strings.Contains(adhoc.stderr.String(), "an ad-hoc group goes to the deployment's CF, and it has 2") {
		t.Errorf("send --members with two CFs: exit %d\n%s\nstderr:\n%s", code, out, adhoc.stderr.String())
	}

	// Each member stored the eight messages that were delivered, and nothing of the one
	// cut by the kill (not even a partial file).
	for _, m := range scaleMembers {
		if out := recvs[m].stop(ctx, t); !strings.HasSuffix(out, fmt.Sprintf("stopped after %d messages", 2*len(scaleGroups))) {
			t.Errorf("recv %s:\n%s", m, out)
		}
		user := strings.TrimPrefix(m[:strings.IndexByte(m, '@')], "sip:")
		entries, err := os.ReadDir(filepath.Join(dir, user))
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 2*len(scaleGroups) {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Errorf("%s's store holds %d entries, want the %d messages: %v", m, len(entries), 2*len(scaleGroups), names)
		}
	}
	for _, n := range names {
		if n != victim {
			servers[n].stop(ctx, t)
		}
	}
}

// scaleCredentials are the test's users, one realm per PF domain; both PF-Bs read it.
const scaleCredentials = `alice a.example password=alice-scale-password
bob b1.example password=bob-scale-password
carol b1.example password=carol-scale-password
dave b1.example password=dave-scale-password
erin b1.example password=erin-scale-password
`

// checkDispatcherConfig runs `kamailio -c` on the configuration with the test's defines:
// it skips the test when the dispatcher module cannot be loaded, and fails it when the
// configuration is refused for any other reason.
func checkDispatcherConfig(ctx context.Context, t *testing.T, kamailio, dir string, args []string) {
	t.Helper()
	c, err := kamailiotest.StartChild(t, exec.Command(kamailio, append([]string{"-c"}, args...)...), filepath.Join(dir, "kamailio-check.log"))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatalf("kamailio -c: %v", ctx.Err())
	}
	if err := c.Err(); err != nil {
		out := c.LogTail(3000)
		if strings.Contains(out, "dispatcher.so") {
			t.Skipf("kamailio's dispatcher module is not available (Debian's kamailio package ships dispatcher.so):\n%s", out)
		}
		t.Fatalf("kamailio -c refuses %s: %v\n%s", dispatcherCfg, err, out)
	}
}

func dispatcherCfgPath(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(dispatcherCfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// optionsStatus sends an OPTIONS (RFC 3261 §11) to 127.0.0.1:port over network and
// returns the status of the answer; the request is written here from the RFC.
func optionsStatus(ctx context.Context, t *testing.T, network string, port int) int {
	t.Helper()
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	tr := strings.ToUpper(network)
	req := fmt.Sprintf("OPTIONS sip:127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/%s %s;branch=z9hG4bK-opt%d;rport\r\nMax-Forwards: 70\r\nFrom: <sip:probe@cpmlink.invalid>;tag=p1\r\nTo: <sip:127.0.0.1:%d>\r\nCall-ID: opt%d@cpmlink.invalid\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
		port, tr, conn.LocalAddr(), port, port, port)
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("OPTIONS over %s to %d: %v", network, port, err)
	}
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "SIP/2.0" {
		t.Fatalf("OPTIONS over %s to %d: answered %q", network, port, line)
	}
	code, _ := strconv.Atoi(f[1])
	return code
}

// dsState reads the dispatcher's destinations and their flags with kamcmd.
type dsState struct {
	t      *testing.T
	kamcmd string
	ctl    string
	dir    string
	k      *kamailiotest.Child
	n      int
}

// dsDestRE finds a destination and its flags in kamcmd's dispatcher.list output.
var dsDestRE = regexp.MustCompile(`URI: sip:127\.0\.0\.1:(\d+);transport=tcp\s+FLAGS: ([A-Z]+)`)

// list returns the port of every destination with its flags (A active, I inactive, D
// disabled, T trying; P: probed).
func (d *dsState) list(ctx context.Context) (map[int]string, error) {
	d.n++
	logPath := filepath.Join(d.dir, fmt.Sprintf("kamcmd-%d.out", d.n))
	c, err := kamailiotest.StartChild(d.t, exec.Command(d.kamcmd, "-s", d.ctl, "dispatcher.list"), logPath)
	if err != nil {
		return nil, err
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		c.Stop()
		return nil, ctx.Err()
	}
	b, _ := os.ReadFile(logPath)
	if err := c.Err(); err != nil {
		return nil, fmt.Errorf("kamcmd dispatcher.list: %v: %s", err, b)
	}
	out := map[int]string{}
	for _, m := range dsDestRE.FindAllSubmatch(b, -1) {
		p, _ := strconv.Atoi(string(m[1]))
		out[p] = string(m[2])
	}
	return out, nil
}

// waitFor asks for the dispatcher's state until ok holds of it, under ctx and a 20 s
// deadline; each probe waits a little longer than the one before.
func (d *dsState) waitFor(ctx context.Context, what string, ok func(map[int]string) bool) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var last map[int]string
	var lastErr error
	wait := 20 * time.Millisecond
	for {
		s, err := d.list(ctx)
		if err == nil && ok(s) {
			return
		}
		last, lastErr = s, err
		select {
		case <-d.k.Done():
			d.t.Fatalf("kamailio exited: %v\n%s", d.k.Err(), d.k.LogTail(3000))
		case <-ctx.Done():
			d.t.Fatalf("dispatcher: never %s: last state %v (%v)\n%s", what, last, lastErr, d.k.LogTail(3000))
		case <-time.After(wait):
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

func sameFlags(got, want map[int]string) bool {
	if len(got) != len(want) {
		return false
	}
	for p, f := range want {
		if got[p] != f {
			return false
		}
	}
	return true
}

func traceSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func traceMentions(t *testing.T, path, s string) bool { return traceMentionsAfter(t, path, 0, s) }

// traceMentionsAfter reports whether the trace holds s (as a JSON string's content) past
// offset.
func traceMentionsAfter(t *testing.T, path string, offset int64, s string) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return int64(len(b)) > offset && bytes.Contains(b[offset:], []byte(s))
}

// waitTrace waits until the trace holds s past offset: polling a file the process writes
// record by record, under ctx.
func waitTrace(ctx context.Context, t *testing.T, path string, offset int64, s string) {
	t.Helper()
	wait := time.Millisecond
	for !traceMentionsAfter(t, path, offset, s) {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: no %s: %v", path, s, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 20*time.Millisecond)
	}
}

// The ports docs/deploy.md's scale-out section gives the deployment: Kamailio on 15060,
// then the roles' SIP and MSRP ports as in deploy.yaml (SIP 15061..., MSRP 12855...).
var scaleDocPorts = []any{15060, 15061, 12855, 15062, 12856, 15063, 12857, 15064, 12858, 15065, 12859}

// TestDispatcherDocs: what docs/deploy.md and docs/kamailio.md show of the scale-out
// deployment is what TestDispatcherScaleOut runs: the YAML (with the page's ports), the
// credentials, the dispatcher list, and the dispatcher part of the Kamailio configuration,
// quoted unchanged; and the configuration's defaults are the page's.
func TestDispatcherDocs(t *testing.T) {
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	deployDoc, kamDoc, cfg := read("../../docs/deploy.md"), read("../../docs/kamailio.md"), read(dispatcherCfg)
	begin, end := strings.Index(cfg, "# BEGIN dispatcher"), strings.Index(cfg, "# END dispatcher")
	if begin < 0 || end < begin {
		t.Fatalf("%s: no BEGIN/END dispatcher markers", dispatcherCfg)
	}
	block := cfg[strings.IndexByte(cfg[begin:], '\n')+begin+1 : end]
	for _, c := range []struct{ doc, name, text string }{
		{deployDoc, "deploy.md: the deployment", fmt.Sprintf(dispatcherYAML, scaleDocPorts...)},
		{deployDoc, "deploy.md: the credentials", scaleCredentials},
		{deployDoc, "deploy.md: the dispatcher list", dispatcherList(15062, 15063, 15064, 15065)},
		{kamDoc, "kamailio.md: the dispatcher block of " + dispatcherCfg, block},
	} {
		if !strings.Contains(c.doc, "```\n"+c.text+"```\n") && !strings.Contains(c.doc, "```yaml\n"+c.text+"```\n") && !strings.Contains(c.doc, "```sh\n"+c.text+"```\n") {
			t.Errorf("%s is not quoted as the test runs it; it should read:\n%s", c.name, c.text)
		}
	}
	// The defaults of the configuration are the page's: Kamailio's ROUTES reaches the
	// page's pfa, and the domains are those of the YAML.
	for _, want := range []string{`#!define ROUTES "a.example=127.0.0.1:15061"`, `#!define CF_DOMAIN "cf.example"`, `#!define PFB_DOMAIN "b1.example"`} {
		if !strings.Contains(cfg, want) {
			t.Errorf("%s: no %s", dispatcherCfg, want)
		}
	}
}
