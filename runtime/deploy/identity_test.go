package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/runtime"
	"github.com/cpmlink/cpmlink/runtime/deploy"
	"github.com/cpmlink/cpmlink/runtime/kamailiotest"
	"github.com/cpmlink/cpmlink/runtime/sipx"
)

// TestServeConfigIdentity: the keys of trusted identity, registrations and limits, valid
// and each mistake at its line (the harness of TestServeConfigErrors).
func TestServeConfigIdentity(t *testing.T) {
	const pfaAuth = "    auth: {credentials: users.txt}\n"
	for _, tc := range []struct {
		name, old, new, at, want string
	}{
		{"trusted hosts", "variant: fig1", "variant: fig1\ntrusted-hosts: [127.0.0.1, 10.0.0.0/8, \"::1\", \"[2001:db8::1]\"]", "", ""},
		{"trusted host by name", "variant: fig1", "variant: fig1\ntrusted-hosts:\n  - 127.0.0.1\n  - core.example.net", "- core.example.net", `trusted-hosts: "core.example.net" is not an IP address or a CIDR prefix`},
		{"trusted hosts as a map", "variant: fig1", "variant: fig1\ntrusted-hosts: {core: 127.0.0.1}", "trusted-hosts:", "into a list"},
		{"PF-A without auth in a trust domain", pfaAuth, "", "name: pfa", "roles[0] (pfa): a PF-A in a trust domain must authenticate its clients: add auth (credentials: FILE), or set trusted-hosts: []"},
		{"PF-A without auth, no trust domain", pfaAuth, "", "", ""},
		{"auth at the CF", "uri: sip:cf@cf.example\n", "uri: sip:cf@cf.example\n    auth: {credentials: users.txt}\n", "auth: {credentials: users.txt}\n    sip: 127.0.0.1:15062", "roles[1] (cf): auth is a PF's: a cf has no users and no registrations"},
		{"auth without credentials", pfaAuth, "    auth: {nonce-ttl: 1m}\n", "auth: {nonce-ttl", "roles[0] (pfa): auth.credentials is required"},
		{"bad nonce-ttl", "nonce-ttl: 5m", "nonce-ttl: soon", "nonce-ttl: soon", `roles[2] (pfb1): auth.nonce-ttl "soon": a positive duration`},
		{"MD5 only", "nonce-ttl: 5m", "nonce-ttl: 5m\n      algorithms: [md5]", "", ""},
		{"unknown algorithm", "nonce-ttl: 5m", "nonce-ttl: 5m\n      algorithms: [SHA-512-256]", "algorithms: [SHA-512-256]", `roles[2] (pfb1): auth.algorithms ["SHA-512-256"]: SHA-256 and MD5`},
		{"algorithm twice", "nonce-ttl: 5m", "nonce-ttl: 5m\n      algorithms: [MD5, md5]", "algorithms: [MD5, md5]", `auth.algorithms ["MD5" "md5"]: SHA-256 and MD5, each at most once`},
		{"bad realm", pfaAuth, "    auth: {realm: \"a b\", credentials: users.txt}\n", "realm: \"a b\"", `auth.realm "a b": no quotes`},
		{"unknown auth key", pfaAuth, "    auth: {credentials: users.txt, password: hunter2}\n", "password: hunter2", `unknown key "password" in auth`},
		{"max-contacts and contacts-policy", "uri: sip:pf@b2.example\n", "uri: sip:pf@b2.example\n    max-contacts: 3\n    contacts-policy: overwrite\n", "", ""},
		{"no cap", "uri: sip:pf@b2.example\n", "uri: sip:pf@b2.example\n    max-contacts: -1\n", "", ""},
		{"bad max-contacts", "uri: sip:pf@b2.example\n", "uri: sip:pf@b2.example\n    max-contacts: -5\n", "max-contacts: -5", "roles[3] (pfb2): max-contacts -5: a positive number, or -1 for no cap"},
		{"bad contacts-policy", "uri: sip:pf@b2.example\n", "uri: sip:pf@b2.example\n    contacts-policy: evict\n", "contacts-policy: evict", `contacts-policy "evict": refuse or overwrite`},
		{"max-contacts at the CF", "uri: sip:cf@cf.example\n", "uri: sip:cf@cf.example\n    max-contacts: 3\n", "max-contacts: 3", "roles[1] (cf): max-contacts is a PF's"},
		{"msrp-limits", "variant: fig1", "variant: fig1\nmsrp-limits: {max-conns: 100, max-conns-per-host: -1, first-frame-timeout: 3s, max-sessions: 50, max-header-bytes: 8KiB}", "", ""},
		{"a role's msrp-limits", "uri: sip:cf@cf.example\n", "uri: sip:cf@cf.example\n    msrp-limits: {max-sessions: 20000}\n", "", ""},
		{"msrp-limits header size", "variant: fig1", "variant: fig1\nmsrp-limits:\n  max-header-bytes: 2GB", "max-header-bytes: 2GB", `msrp-limits.max-header-bytes "2GB": a size between 256 bytes and 1 MiB`},
		{"msrp-limits timeout", "variant: fig1", "variant: fig1\nmsrp-limits:\n  first-frame-timeout: 0s", "first-frame-timeout: 0s", `msrp-limits.first-frame-timeout "0s": a positive duration`},
		{"msrp-limits count", "uri: sip:cf@cf.example\n", "uri: sip:cf@cf.example\n    msrp-limits: {max-conns: -3}\n", "msrp-limits: {max-conns: -3}", "roles[1].msrp-limits.max-conns -3: a positive number, or -1 for no bound"},
		{"msrp-limits count not a number", "variant: fig1", "variant: fig1\nmsrp-limits:\n  max-sessions: many", "max-sessions: many", "cannot unmarshal"},
		{"msrp-limits unknown key", "variant: fig1", "variant: fig1\nmsrp-limits:\n  max-conn: 5", "max-conn: 5", `unknown key "max-conn" in msrp-limits`},
		{"state-dir", "variant: fig1", "variant: fig1\nstate-dir: /var/lib/cpmlink", "", ""},
		{"client user", "uri: sip:alice@a.example\n", "uri: sip:alice@a.example\n    user: alice\n", "", ""},
		{"client user without auth", "    pf: pfb2\n", "    pf: pfb2\n    user: carol\n", "user: carol", "clients[2] (sip:carol@b2.example): user names an entry of its PF's credentials, and pfb2 has no auth"},
		{"client user with a colon", "uri: sip:alice@a.example\n", "uri: sip:alice@a.example\n    user: \"al:ice\"\n", "user: \"al:ice\"", `user "al:ice": no ':'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := fixedYAML()
			if strings.HasSuffix(tc.name, "no trust domain") {
				base = "trusted-hosts: []\n" + base
			}
			text := strings.Replace(base, tc.old, tc.new, 1)
			if text == base {
				t.Fatalf("the edit %q did not apply", tc.old)
			}
			_, err := deploy.ParseServeConfig("cfg.yaml", []byte(text))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want no error, got %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, deploy.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got\n%v\nwant a ConfigError with %q", err, tc.want)
			}
			i := strings.Index(text, tc.at)
			if i < 0 {
				t.Fatalf("%q is not in the configuration", tc.at)
			}
			loc := fmt.Sprintf("cfg.yaml:%d: ", strings.Count(text[:i], "\n")+1)
			if !slices.ContainsFunc(strings.Split(err.Error(), "\n"), func(l string) bool { return strings.HasPrefix(l, loc) && strings.Contains(l, tc.want) }) {
				t.Errorf("got\n%v\nwant %q at %s", err, tc.want, loc)
			}
		})
	}
}

// TestServeCredentials: a PF's credentials file is read by the process that serves it,
// and what would make its clients fail is an error before anything starts, all of it at
// once, at the line of auth.credentials (and of the credentials file's own line).
func TestServeCredentials(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name  string
		users string // "" for no file
		only  []string
		want  []string
	}{
		{"no file", "", nil, []string{"cfg.yaml:14: roles[0] (pfa): auth.credentials: open ", "users.txt: no such file", "cfg.yaml:30: roles[2] (pfb1): auth.credentials: open "}},
		{"a bad line", testUsers + "bob b1.example\n", nil, []string{"cfg.yaml:14: roles[0] (pfa): auth.credentials: users.txt:5: want <username> <realm> <secret>",
			"cfg.yaml:30: roles[2] (pfb1): auth.credentials: users.txt:5:"}},
		{"an unknown secret", strings.Replace(testUsers, "password=alice", "pasword=alice", 1), []string{"pfa"}, []string{`cfg.yaml:14: roles[0] (pfa): auth.credentials: users.txt:2: unknown key "pasword"`}},
		{"a client without an entry", strings.Replace(testUsers, "bob b1.example", "bobby b1.example", 1), []string{"pfb1"},
			[]string{`cfg.yaml:40: clients[1] (sip:bob@b1.example): users.txt has no user "bob" in realm b1.example (add one, or name its entry with clients[1].user)`}},
		{"with a mistake of the file", "", []string{"pfa"}, []string{"cfg.yaml:1: variant \"fig9\" is not a named variant", "cfg.yaml:14: roles[0] (pfa): auth.credentials: open "}},
		{"an entry for another aor", strings.Replace(testUsers, "alice a.example password=alice-example-password", "alice a.example password=x aor=sip:alicia@a.example", 1), []string{"pfa"},
			[]string{`cfg.yaml:38: clients[0] (sip:alice@a.example): user "alice" of users.txt may not act as sip:alice@a.example (its aor= differs): pfa would refuse it 403`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.users != "" {
				if err := os.WriteFile(filepath.Join(dir, "users.txt"), []byte(tc.users), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			c, err := deploy.ParseServeConfig(filepath.Join(dir, "cfg.yaml"), []byte(fixedYAML()))
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(tc.name, "with a mistake") {
				c.Variant = "fig9"
			}
			s, err := deploy.Serve(ctx, c, tc.only, deploy.ServeOptions{})
			if err == nil {
				s.Close()
				t.Fatal("Serve started")
			}
			if !errors.Is(err, deploy.ErrConfig) {
				t.Errorf("%v does not wrap ErrConfig", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got\n%v\nwant %q", err, w)
				}
			}
			if _, err := os.Stat(deploy.StateDir(c)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the state dir was made before the configuration was accepted: %v", err)
			}
		})
	}
}

// identityYAML is deployYAML with mallory, a user of pfa who is no sender of the group.
func identityYAML() string {
	return strings.Replace(deployYAML, "clients:\n", "clients:\n  - uri: sip:mallory@a.example\n    pf: pfa\n", 1) +
		"msrp-limits: {max-conns: 64, first-frame-timeout: 5s, max-header-bytes: 8KiB}\n"
}

// TestServeTrustedIdentity: with auth on at pfa and pfb1 and the default trust domain, a
// sender with a wrong password is refused, a user who authenticates as herself but claims
// to be the sender is refused, a user the group does not allow is refused by the CF on her
// authenticated identity, and none of them stores anything at a member; the real sender
// then delivers to every member. The roles get what the file says (NodeConfig).
func TestServeTrustedIdentity(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d := startIdentity(t, ctx, t.TempDir())

	pfa, pfb1 := d.configs["pfa"], d.configs["pfb1"]
	if pfa.Auth == nil || pfa.Auth.Realm != "a.example" || pfb1.Auth == nil || pfb1.Auth.Realm != "b1.example" || pfb1.Auth.NonceTTL != 5*time.Minute || d.configs["pfb2"].Auth != nil {
		t.Errorf("auth: pfa %+v, pfb1 %+v, pfb2 %+v", pfa.Auth, pfb1.Auth, d.configs["pfb2"].Auth)
	}
	for _, name := range []string{"pfa", "cf", "pfb1", "pfb2"} {
		nc := d.configs[name]
		if !slices.Equal(nc.TrustedHosts, []string{"127.0.0.1"}) {
			t.Errorf("%s trusts %v, want the servers' 127.0.0.1", name, nc.TrustedHosts)
		}
		if want := (runtime.MSRPLimits{MaxConns: 64, FirstFrameTimeout: 5 * time.Second, MaxHeaderBytes: 8 << 10}); nc.MSRPLimits != want {
			t.Errorf("%s: msrp limits %+v, want %+v", name, nc.MSRPLimits, want)
		}
		wantStore := ""
		if name != "cf" {
			wantStore = filepath.Join(d.dir, "test.state", name+".db")
		}
		if nc.LocationStore != wantStore {
			t.Errorf("%s: location store %q, want %q", name, nc.LocationStore, wantStore)
		}
	}

	members := d.members(t, ctx)
	// A wrong password: REGISTER is refused.
	if n, err := d.c.StartClient(ctx, "sip:alice@a.example", deploy.ClientOptions{Password: "guess"}); err != nil {
		t.Fatal(err)
	} else {
		err := n.Register(ctx, time.Minute)
		n.Close()
		var se *sipx.StatusError
		if !errors.As(err, &se) || se.Status != 401 && se.Status != 403 {
			t.Errorf("alice with a wrong password registered: %v", err)
		}
	}
	// No password at all is refused before anything is sent.
	if _, err := d.c.StartClient(ctx, "sip:alice@a.example", deploy.ClientOptions{}); !errors.Is(err, deploy.ErrNoPassword) {
		t.Errorf("StartClient without a password: %v", err)
	}
	// mallory's credentials, claiming to be alice: refused at REGISTER and at INVITE.
	alice := &d.c.Clients[slices.IndexFunc(d.c.Clients, func(cl deploy.ClientConfig) bool { return cl.URI == "sip:alice@a.example" })]
	alice.User = "mallory"
	forged, err := d.c.StartClient(ctx, alice.URI, deploy.ClientOptions{Password: "mallory-example-password"})
	alice.User = ""
	if err != nil {
		t.Fatal(err)
	}
	var se *sipx.StatusError
	if err := forged.Register(ctx, time.Minute); !errors.As(err, &se) || se.Status != 403 {
		t.Errorf("mallory registering as alice: %v, want 403", err)
	}
	msg := []byte("not from alice")
	out, err := forged.Send(ctx, "sip:team@cf.example", nil, message(msg))
	if err == nil && out.Of("sip:bob@b1.example") == core.DeliveredOutcome() {
		t.Errorf("mallory as alice delivered: %v", out)
	}
	forged.Close()
	// mallory as herself: authenticated, and not a sender of the group.
	mallory := d.client(t, ctx, "sip:mallory@a.example", "mallory-example-password")
	out, err = mallory.Send(ctx, "sip:team@cf.example", nil, message(msg))
	if err != nil {
		t.Fatal(err)
	}
	if o := out.Of("sip:bob@b1.example"); o.Kind != core.Failed || o.Status != 403 {
		t.Errorf("mallory to alice's group: %v, want failed 403", o)
	}
	// Around the PF-A, from a host outside the default trust domain: the core removes the
	// asserted identity, and the CF refuses a request that has none.
	if status := d.forgedInvite(t); status != 403 {
		t.Errorf("an INVITE to the CF asserting alice from 127.0.0.2: %d, want 403", status)
	}
	for _, m := range members {
		if rs := m.Received(); len(rs) != 0 {
			t.Fatalf("%s stored %d messages from forged or refused senders", m.Name(), len(rs))
		}
	}
	d.deliver(t, ctx, members, 0)
}

// forgedInvite sends, from a raw UDP socket on 127.0.0.2 (outside the trust domain of
// 127.0.0.1), an INVITE for alice's group straight to the CF through the core, with a
// P-Asserted-Identity of alice, and returns the final status (RFC 3261 text written for
// the test; it ACKs a final non-2xx answer, §17.1.1.3).
func (d *identity) forgedInvite(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot bind 127.0.0.2: %v", err)
	}
	defer pc.Close()
	core, err := net.ResolveUDPAddr("udp", d.c.SIPCore)
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	_, port, _ := net.SplitHostPort(addr)
	const group = "sip:team@cf.example"
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=message " + port +
		" TCP/MSRP *\r\na=path:msrp://" + addr + "/forged1;tcp\r\na=accept-types:message/cpim\r\na=sendonly\r\n"
	head := "Via: SIP/2.0/UDP " + addr + ";branch=z9hG4bK-forged1;rport\r\nRoute: <sip:" + d.c.SIPCore + ";lr>\r\nMax-Forwards: 70\r\n" +
		"From: <sip:alice@a.example>;tag=forged\r\nCall-ID: forged1@127.0.0.2\r\n"
	invite := "INVITE " + group + " SIP/2.0\r\n" + head + "To: <" + group + ">\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@" + addr + ">\r\n" +
		"P-Asserted-Identity: <sip:alice@a.example>\r\nAccept-Contact: *;+g.oma.sip-im.large-message\r\n" +
		"Content-Type: application/sdp\r\nContent-Length: " + strconv.Itoa(len(sdp)) + "\r\n\r\n" + sdp
	if _, err := pc.WriteTo([]byte(invite), core); err != nil {
		t.Fatal(err)
	}
	_ = pc.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 65535)
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no final answer to the forged INVITE: %v", err)
		}
		msg, _, _ := strings.Cut(string(buf[:n]), "\r\n\r\n")
		lines := strings.Split(msg, "\r\n")
		f := strings.Fields(lines[0])
		if len(f) < 2 || f[0] != "SIP/2.0" {
			continue
		}
		status, _ := strconv.Atoi(f[1])
		if status < 200 {
			continue
		}
		to := ""
		for _, l := range lines[1:] {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "To") {
				to = strings.TrimSpace(v)
			}
		}
		if status >= 300 {
			ack := "ACK " + group + " SIP/2.0\r\n" + head + "To: " + to + "\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
			_, _ = pc.WriteTo([]byte(ack), core)
		}
		return status
	}
}

// TestServeRestartKeepsMembers: a PF-B served again from the same file, after its members
// registered, reaches them at once from its state dir; the same restart with an empty
// state dir (the control, which shows the test can fail) answers 480 for them.
func TestServeRestartKeepsMembers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d := startIdentity(t, ctx, t.TempDir())
	members := d.members(t, ctx)
	d.restart(t, ctx)
	d.deliver(t, ctx, members, 0)

	d.c.StateDir = t.TempDir()
	d.restart(t, ctx)
	out, err := d.alice.Send(ctx, "sip:team@cf.example", nil, message([]byte("after a restart without state")))
	if err != nil {
		t.Fatal(err)
	}
	if o := out.Of("sip:bob@b1.example"); o.Kind != core.Failed || o.Status != 480 {
		t.Errorf("bob behind a PF-B that forgot him: %v, want failed 480", o)
	}
	if o := out.Of("sip:carol@b2.example"); o != core.DeliveredOutcome() {
		t.Errorf("carol, whose PF-B was not restarted: %v", o)
	}
}

// identity is a running deployYAML with auth: every role but pfb1 in one Served, pfb1
// in another (its own process, as `serve --role pfb1` would be).
type identity struct {
	c       *deploy.ServeConfig
	dir     string
	rest    *deploy.Served
	pfb1    *deploy.Served
	configs map[string]runtime.NodeConfig
	alice   *runtime.Node
}

func startIdentity(t *testing.T, ctx context.Context, dir string) *identity {
	t.Helper()
	var ports []any
	for p, base := 0, kamailiotest.FreePorts(t, 9); p < 9; p++ {
		ports = append(ports, base+p)
	}
	writeUsers(t, dir)
	c, err := deploy.ParseServeConfig(filepath.Join(dir, "test.yaml"), []byte(fmt.Sprintf(identityYAML(), ports...)))
	if err != nil {
		t.Fatal(err)
	}
	d := &identity{c: c, dir: dir, configs: map[string]runtime.NodeConfig{}}
	opts := deploy.ServeOptions{}
	deploy.SetConfigured(&opts, func(nc runtime.NodeConfig) { d.configs[nc.Name] = nc })
	if d.rest, err = deploy.Serve(ctx, c, []string{"core", "pfa", "cf", "pfb2"}, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.rest.Close() })
	if d.pfb1, err = deploy.Serve(ctx, c, []string{"pfb1"}, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.pfb1.Close() })
	return d
}

// restart stops pfb1 and serves it again.
func (d *identity) restart(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := d.pfb1.Close(); err != nil {
		t.Fatal(err)
	}
	var err error
	if d.pfb1, err = deploy.Serve(ctx, d.c, []string{"pfb1"}, deploy.ServeOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (d *identity) client(t *testing.T, ctx context.Context, uri, password string) *runtime.Node {
	t.Helper()
	n, err := d.c.StartClient(ctx, uri, deploy.ClientOptions{StoreDir: filepath.Join(d.dir, uri), Password: password})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.Register(ctx, time.Minute); err != nil {
		t.Fatalf("%s registering: %v", uri, err)
	}
	return n
}

// members starts and registers bob (pfb1, with auth) and carol (pfb2, without), and
// alice, the group's sender.
func (d *identity) members(t *testing.T, ctx context.Context) []*runtime.Node {
	t.Helper()
	d.alice = d.client(t, ctx, "sip:alice@a.example", testPasswords["sip:alice@a.example"])
	return []*runtime.Node{d.client(t, ctx, "sip:bob@b1.example", testPasswords["sip:bob@b1.example"]), d.client(t, ctx, "sip:carol@b2.example", "")}
}

// deliver sends from alice to the group and checks that every member stored it as its
// message number i+1.
func (d *identity) deliver(t *testing.T, ctx context.Context, members []*runtime.Node, i int) {
	t.Helper()
	msg := []byte(fmt.Sprintf("from alice, message %d", i+1))
	out, err := d.alice.Send(ctx, "sip:team@cf.example", nil, message(msg))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		rs, err := m.WaitReceived(ctx, i)
		if err != nil {
			t.Fatalf("%s: %v (outcomes %+v)", m.Name(), err, out)
		}
		if got, _ := os.ReadFile(rs[i].File); string(got) != string(msg) {
			t.Errorf("%s stored %q, want %q", m.Name(), got, msg)
		}
	}
	for _, uri := range []string{"sip:bob@b1.example", "sip:carol@b2.example"} {
		if o := out.Of(uri); o != core.DeliveredOutcome() {
			t.Errorf("%s: %v", uri, o)
		}
	}
	for _, n := range append([]*runtime.Node{d.alice}, members...) {
		if err := n.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func message(b []byte) runtime.Message {
	return runtime.Message{Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(string(b))), nil },
		Size: int64(len(b)), ContentType: "text/plain"}
}
