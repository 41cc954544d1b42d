package kamailiotest

import (
	"context"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const importPath = "github.com/cpmlink/cpmlink/runtime/kamailiotest"

// TestOnlyTestsImportIt: the package imports "testing" and starts processes, so no
// non-test file of the module may import it.
func TestOnlyTestsImportIt(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not at %s: %v", root, err)
	}
	fset := token.NewFileSet()
	seen := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		seen++
		af, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range af.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == importPath {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s imports %s: only tests may", rel, importPath)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 20 {
		t.Fatalf("read only %d non-test Go files under %s: the walk is wrong", seen, root)
	}
}

func TestRoutesDefine(t *testing.T) {
	got, err := RoutesDefine(map[string]string{"cf.example": "127.0.0.1:5071", "a.example": "127.0.0.1:5070", "b1.example": "[::1]:5072"})
	if want := `ROUTES="a.example=127.0.0.1:5070;b1.example=[::1]:5072;cf.example=127.0.0.1:5071"`; err != nil || got != want {
		t.Errorf("got %s, %v; want %s", got, err, want)
	}
	for _, bad := range []map[string]string{
		{"a.example;x": "127.0.0.1:1"},
		{"a.example": "localhost:1"},
		{"a.example": "127.0.0.1"},
		{"a=b": "127.0.0.1:1"},
	} {
		if got, err := RoutesDefine(bad); err == nil {
			t.Errorf("%v: accepted as %s", bad, got)
		}
	}
}

// TestKamailioDefaults: the committed configuration's defaults are those docs/kamailio.md
// promises (cmd/cpmlink's tests check them against the demo's port layout).
func TestKamailioDefaults(t *testing.T) {
	port, routes := Defaults()
	if port != 5060 || len(routes) != 4 || routes["a.example"] != "127.0.0.1:5070" {
		t.Errorf("Defaults() = %d, %v", port, routes)
	}
	// And Kamailio itself accepts the file as it is.
	bin := Require(t)
	out, err := exec.Command(bin, "-c", "-f", filepath.Join("testdata", "kamailio-sip-core.cfg")).CombinedOutput()
	if err != nil {
		t.Errorf("kamailio -c: %v\n%s", err, tail(out, 3000))
	}
}

// udpPeer is a raw SIP peer: what the core relays to it can be read back.
type udpPeer struct{ net.PacketConn }

func newPeer(t *testing.T) udpPeer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return udpPeer{pc}
}

// read returns the first line of the next datagram, bounded by ctx.
func (p udpPeer) read(t *testing.T, ctx context.Context) string {
	t.Helper()
	dl, _ := ctx.Deadline()
	_ = p.SetReadDeadline(dl)
	buf := make([]byte, 65535)
	n, _, err := p.ReadFrom(buf)
	if err != nil {
		t.Fatalf("nothing arrived at %s: %v", p.LocalAddr(), err)
	}
	line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
	return line
}

// TestKamailioRoutes starts Kamailio with a table of two domains and checks the three ways it
// routes an initial request: by the Request-URI's domain, by a preloaded Route after its
// own (taking precedence over the domain), and to a Request-URI that is an IP:port.
func TestKamailioRoutes(t *testing.T) {
	one, two := newPeer(t), newPeer(t)
	var core string
	k := Start(t, func(addr string) map[string]string {
		core = addr
		return map[string]string{"one.example": one.LocalAddr().String(), "two.example": two.LocalAddr().String()}
	})
	if k.Addr != core {
		t.Fatalf("setup was told %s, Kamailio runs on %s", core, k.Addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sender := newPeer(t)
	to, err := net.ResolveUDPAddr("udp", k.Addr)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		uri, route string
		at         udpPeer
	}{
		{uri: "sip:u@two.example", at: two},
		{uri: "sip:u@two.example", route: fmt.Sprintf("<sip:%s;lr>, <sip:%s;lr>", k.Addr, one.LocalAddr()), at: one},
		{uri: "sip:u@" + one.LocalAddr().String(), at: one},
	} {
		req := fmt.Sprintf("OPTIONS %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-t%d;rport\r\nMax-Forwards: 70\r\n", tc.uri, sender.LocalAddr(), i)
		if tc.route != "" {
			req += "Route: " + tc.route + "\r\n"
		}
		req += fmt.Sprintf("From: <sip:t@test.example>;tag=t%d\r\nTo: <%s>\r\nCall-ID: t%d@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", i, tc.uri, i)
		if _, err := sender.WriteTo([]byte(req), to); err != nil {
			t.Fatal(err)
		}
		if got, want := tc.at.read(t, ctx), "OPTIONS "+tc.uri+" SIP/2.0"; got != want {
			t.Errorf("request %d: %s arrived, want %s", i, got, want)
		}
	}
}

// TestKamailioTrustDomain: a request from outside TRUSTED_NET reaches the next hop without
// its P-Asserted-Identity and P-Preferred-Identity (RFC 3325 §5); the same request from
// inside keeps them. The trust domain is a list whose second entry holds the trusted
// sender (127.0.0.1), the untrusted one sends from 127.0.0.2. Without the rule the first
// check fails.
func TestKamailioTrustDomain(t *testing.T) {
	untrusted, err := net.ListenPacket("udp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot bind 127.0.0.2: %v", err)
	}
	defer untrusted.Close()
	trusted := newPeer(t)
	cf := newPeer(t)
	define, err := TrustedDefine([]string{"10.9.9.0/24", "127.0.0.1"})
	if err != nil || define != `TRUSTED_NET="10.9.9.0/24,127.0.0.1/32"` {
		t.Fatalf("TrustedDefine: %s %v", define, err)
	}
	k := StartDefines(t, []string{define}, func(string) map[string]string {
		return map[string]string{"cf.example": cf.LocalAddr().String()}
	})
	to, err := net.ResolveUDPAddr("udp", k.Addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, tc := range []struct {
		from net.PacketConn
		keep bool
	}{{untrusted, false}, {trusted, true}} {
		callID := fmt.Sprintf("trust%d@test", i)
		req := fmt.Sprintf("MESSAGE sip:team@cf.example SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-trust%d;rport\r\nMax-Forwards: 70\r\n"+
			"From: <sip:mallory@a.example>;tag=m%d\r\nTo: <sip:team@cf.example>\r\nCall-ID: %s\r\nCSeq: 1 MESSAGE\r\n"+
			"P-Asserted-Identity: <sip:alice@a.example>\r\nP-Preferred-Identity: <sip:alice@a.example>\r\nContent-Length: 0\r\n\r\n",
			tc.from.LocalAddr(), i, i, callID)
		if _, err := tc.from.WriteTo([]byte(req), to); err != nil {
			t.Fatal(err)
		}
		// Read what the core relayed for this Call-ID (retransmissions of an earlier one
		// are skipped), bounded by ctx.
		dl, _ := ctx.Deadline()
		_ = cf.SetReadDeadline(dl)
		buf := make([]byte, 65535)
		var got string
		for !strings.Contains(got, "Call-ID: "+callID+"\r\n") {
			n, _, err := cf.ReadFrom(buf)
			if err != nil {
				t.Fatalf("request %d never reached the next hop: %v", i, err)
			}
			got = string(buf[:n])
		}
		for _, h := range []string{"P-Asserted-Identity:", "P-Preferred-Identity:"} {
			if strings.Contains(got, "\r\n"+h) != tc.keep {
				t.Errorf("from %s: %s kept %v, want %v:\n%s", tc.from.LocalAddr(), h, !tc.keep, tc.keep, got)
			}
		}
	}
}
