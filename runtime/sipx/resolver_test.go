package sipx

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// DNS record types (RFC 1035 §3.2.2, RFC 3596 §2.1, RFC 2782).
const (
	typeA    = 1
	typeAAAA = 28
	typeSRV  = 33
)

// rr is one resource record of the test zone.
type rr struct {
	typ    uint16
	ip     net.IP // A, AAAA
	prio   uint16 // SRV
	weight uint16
	port   uint16
	target string
}

func srv(prio, weight, port uint16, target string) rr {
	return rr{typ: typeSRV, prio: prio, weight: weight, port: port, target: target}
}
func a(ip string) rr    { return rr{typ: typeA, ip: net.ParseIP(ip).To4()} }
func aaaa(ip string) rr { return rr{typ: typeAAAA, ip: net.ParseIP(ip)} }

// dnsServer is an authoritative DNS server for a test zone on a loopback UDP
// socket, written from RFC 1035 §4 (header, question, answer records; no
// compression in what it writes). It answers NXDOMAIN for names it does not
// know, and records every question.
type dnsServer struct {
	pc   net.PacketConn
	zone map[string][]rr
	mu   sync.Mutex
	asks []string // "name TYPE" per question
	done chan struct{}
}

func startDNS(t *testing.T, zone map[string][]rr) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{pc: pc, zone: map[string][]rr{}, done: make(chan struct{})}
	for n, rrs := range zone {
		s.zone[strings.ToLower(strings.TrimSuffix(n, "."))] = rrs
	}
	go s.serve()
	t.Cleanup(func() { _ = pc.Close(); <-s.done })
	return s
}

// resolver is a net.Resolver whose every query goes to this server.
func (s *dnsServer) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", s.pc.LocalAddr().String())
	}}
}

func (s *dnsServer) asked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.asks...)
}

func (s *dnsServer) serve() {
	defer close(s.done)
	buf := make([]byte, 1500)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if out := s.answer(buf[:n]); out != nil {
			_, _ = s.pc.WriteTo(out, from)
		}
	}
}

// answer builds the response to one query: the header with QR, AA and RA set
// and RD copied, the question echoed, and the records of the asked type.
func (s *dnsServer) answer(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil
	}
	name, off, ok := readName(q, 12)
	if !ok || off+4 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[off:])
	question := q[12 : off+4]
	s.mu.Lock()
	s.asks = append(s.asks, name+" "+typeName(qtype))
	s.mu.Unlock()

	rrs, known := s.zone[name]
	rcode := uint16(0)
	if !known {
		rcode = 3 // NXDOMAIN
	}
	var answers [][]byte
	for _, r := range rrs {
		if r.typ == qtype {
			answers = append(answers, encodeRR(name, r))
		}
	}
	out := make([]byte, 12, 512)
	copy(out, q[:2])
	binary.BigEndian.PutUint16(out[2:], 0x8000|0x0400|(binary.BigEndian.Uint16(q[2:])&0x0100)|0x0080|rcode)
	binary.BigEndian.PutUint16(out[4:], 1)
	binary.BigEndian.PutUint16(out[6:], uint16(len(answers)))
	out = append(out, question...)
	for _, a := range answers {
		out = append(out, a...)
	}
	return out
}

func typeName(t uint16) string {
	switch t {
	case typeA:
		return "A"
	case typeAAAA:
		return "AAAA"
	case typeSRV:
		return "SRV"
	}
	return "TYPE?"
}

// readName reads an uncompressed name (queries carry no compression).
func readName(b []byte, off int) (string, int, bool) {
	var labels []string
	for {
		if off >= len(b) {
			return "", 0, false
		}
		l := int(b[off])
		off++
		if l == 0 {
			break
		}
		if l&0xc0 != 0 || off+l > len(b) {
			return "", 0, false
		}
		labels = append(labels, strings.ToLower(string(b[off:off+l])))
		off += l
	}
	return strings.Join(labels, "."), off, true
}

func encodeName(name string) []byte {
	var out []byte
	for _, l := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		out = append(out, byte(len(l)))
		out = append(out, l...)
	}
	return append(out, 0)
}

func encodeRR(name string, r rr) []byte {
	var data []byte
	switch r.typ {
	case typeA, typeAAAA:
		data = r.ip
	case typeSRV:
		data = binary.BigEndian.AppendUint16(data, r.prio)
		data = binary.BigEndian.AppendUint16(data, r.weight)
		data = binary.BigEndian.AppendUint16(data, r.port)
		data = append(data, encodeName(r.target)...)
	}
	out := encodeName(name)
	out = binary.BigEndian.AppendUint16(out, r.typ)
	out = binary.BigEndian.AppendUint16(out, 1) // IN
	out = binary.BigEndian.AppendUint32(out, 60)
	out = binary.BigEndian.AppendUint16(out, uint16(len(data)))
	return append(out, data...)
}

// testZone: svc.test has SRV records for UDP (two priorities) and TLS, and an
// A record of its own; plain.test has A and AAAA records only.
func testZone() map[string][]rr {
	return map[string][]rr{
		"_sip._udp.svc.test":  {srv(20, 0, 5070, "far.svc.test"), srv(10, 0, 5080, "near.svc.test")},
		"_sips._tcp.svc.test": {srv(10, 0, 5061, "near.svc.test")},
		"near.svc.test":       {a("127.0.0.3")},
		"far.svc.test":        {a("127.0.0.2")},
		"svc.test":            {a("127.0.0.4")},
		"plain.test":          {a("127.0.0.9"), aaaa("::1")},
	}
}

// TestDNSResolver: RFC 3263 §4 against a DNS server of the test's own.
func TestDNSResolver(t *testing.T) {
	dns := startDNS(t, testZone())
	r := &DNSResolver{Resolver: dns.resolver()}
	for _, tc := range []struct {
		name, uri, prefer string
		want              []Target
		noSRV             bool // no SRV query may be made
	}{
		{"srv-priority-order", "sip:svc.test", "", []Target{
			{"UDP", "127.0.0.3:5080", "svc.test"}, {"UDP", "127.0.0.2:5070", "svc.test"}, {"TLS", "127.0.0.3:5061", "svc.test"}}, false},
		{"preferred-transport-first", "sip:svc.test", "TLS", []Target{
			{"TLS", "127.0.0.3:5061", "svc.test"}, {"UDP", "127.0.0.3:5080", "svc.test"}, {"UDP", "127.0.0.2:5070", "svc.test"}}, false},
		{"sips-only-tls", "sips:bob@svc.test", "UDP", []Target{{"TLS", "127.0.0.3:5061", "svc.test"}}, false},
		{"transport-param", "sip:svc.test;transport=udp", "TLS", []Target{
			{"UDP", "127.0.0.3:5080", "svc.test"}, {"UDP", "127.0.0.2:5070", "svc.test"}}, false},
		{"no-srv-for-transport-falls-back-to-A", "sip:svc.test;transport=tcp", "", []Target{{"TCP", "127.0.0.4:5060", "svc.test"}}, false},
		{"explicit-port-skips-srv", "sip:svc.test:5099", "", []Target{{"UDP", "127.0.0.4:5099", "svc.test"}}, true},
		{"a-and-aaaa-fallback", "sip:bob@plain.test", "", []Target{{"UDP", "127.0.0.9:5060", "plain.test"}, {"UDP", "[::1]:5060", "plain.test"}}, false},
		{"a-and-aaaa-fallback-sips", "sips:bob@plain.test", "", []Target{{"TLS", "127.0.0.9:5061", "plain.test"}, {"TLS", "[::1]:5061", "plain.test"}}, false},
		{"numeric-host", "sip:127.0.0.1", "", []Target{{"UDP", "127.0.0.1:5060", ""}}, true},
		{"numeric-host-preferred-transport", "sip:127.0.0.1:7000", "TCP", []Target{{"TCP", "127.0.0.1:7000", ""}}, true},
		{"numeric-ipv6-sips", "sips:[::1]", "", []Target{{"TLS", "[::1]:5061", ""}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(dns.asked())
			got, err := r.Resolve(testCtx(t), tc.uri, tc.prefer)
			if err != nil {
				t.Fatal(err)
			}
			if tc.name == "a-and-aaaa-fallback" || tc.name == "a-and-aaaa-fallback-sips" {
				// The order of A and AAAA is the address selection of RFC 6724
				// (net.Resolver's); compare as a set.
				if len(got) != 2 || !(reflect.DeepEqual(got, tc.want) || reflect.DeepEqual(got, []Target{tc.want[1], tc.want[0]})) {
					t.Fatalf("got %v, want %v in either order", got, tc.want)
				}
			} else if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for _, q := range dns.asked()[before:] {
				if tc.noSRV && strings.HasSuffix(q, " SRV") {
					t.Errorf("asked %s for %s (RFC 3263 §4.2: no SRV)", q, tc.uri)
				}
				if strings.HasPrefix(tc.uri, "sips:") && strings.HasPrefix(q, "_sip.") {
					t.Errorf("asked %s for a sips: URI", q)
				}
			}
			if strings.HasPrefix(tc.name, "numeric") && len(dns.asked()) != before {
				t.Errorf("a numeric host made DNS queries: %v", dns.asked()[before:])
			}
		})
	}
	t.Run("unknown-name", func(t *testing.T) {
		if _, err := r.Resolve(testCtx(t), "sip:nowhere.test", ""); !errors.Is(err, ErrNoRoute) {
			t.Fatalf("got %v, want ErrNoRoute", err)
		}
	})
	t.Run("bad-transport", func(t *testing.T) {
		if _, err := r.Resolve(testCtx(t), "sip:svc.test;transport=sctp", ""); !errors.Is(err, ErrNoRoute) {
			t.Fatalf("got %v, want ErrNoRoute", err)
		}
		if _, err := r.Resolve(testCtx(t), "sips:svc.test;transport=udp", ""); !errors.Is(err, ErrBadURI) {
			t.Fatalf("sips with transport=udp: %v, want ErrBadURI", err)
		}
	})
}

// TestDNSResolverWeights: within a priority, a weight-0 record comes after
// every weighted one, and records are picked first in proportion to their
// weight (RFC 2782).
func TestDNSResolverWeights(t *testing.T) {
	dns := startDNS(t, map[string][]rr{
		"_sip._udp.w.test": {srv(10, 0, 5001, "zero.w.test"), srv(10, 1, 5002, "light.w.test"), srv(10, 99, 5003, "heavy.w.test"), srv(5, 0, 5004, "top.w.test")},
		"zero.w.test":      {a("127.0.0.5")},
		"light.w.test":     {a("127.0.0.6")},
		"heavy.w.test":     {a("127.0.0.7")},
		"top.w.test":       {a("127.0.0.8")},
	})
	r := &DNSResolver{Resolver: dns.resolver()}
	const runs = 200
	heavyFirst := 0
	for range runs {
		got, err := r.Resolve(testCtx(t), "sip:w.test;transport=udp", "")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 4 {
			t.Fatalf("got %v, want 4 targets", got)
		}
		if got[0].Addr != "127.0.0.8:5004" {
			t.Fatalf("priority 5 is not first: %v", got)
		}
		if got[3].Addr != "127.0.0.5:5001" {
			t.Fatalf("the weight-0 record is not last of its priority: %v", got)
		}
		if got[1].Addr == "127.0.0.7:5003" {
			heavyFirst++
		}
	}
	// Weight 99 against 1: expected 198 of 200; fewer than 150 has a
	// probability far below 1e-30.
	if heavyFirst < 150 {
		t.Errorf("the weight-99 record came first %d times of %d", heavyFirst, runs)
	}
	if heavyFirst == runs {
		t.Logf("the weight-1 record never came first in %d runs (expected about 2)", runs)
	}
}

// TestStaticResolver: the operator's table, RFC 3263 applied to it.
func TestStaticResolver(t *testing.T) {
	dns := startDNS(t, testZone())
	tbl := map[string][]Target{
		"B1.Example": {{Transport: "udp", Addr: "127.0.0.1:5060"}, {Transport: "TCP", Addr: "127.0.0.1:5060"}, {Transport: "TLS", Addr: "127.0.0.1:5061", Name: "b1.example"}},
	}
	s, err := NewStaticResolver(tbl, &DNSResolver{Resolver: dns.resolver()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	for _, tc := range []struct {
		uri, prefer string
		want        []Target
	}{
		{"sip:m1@b1.example", "", []Target{{"UDP", "127.0.0.1:5060", ""}, {"TCP", "127.0.0.1:5060", ""}, {"TLS", "127.0.0.1:5061", "b1.example"}}},
		{"sip:m1@B1.EXAMPLE", "TCP", []Target{{"TCP", "127.0.0.1:5060", ""}, {"UDP", "127.0.0.1:5060", ""}, {"TLS", "127.0.0.1:5061", "b1.example"}}},
		{"sips:m1@b1.example", "", []Target{{"TLS", "127.0.0.1:5061", "b1.example"}}},
		{"sip:m1@b1.example;transport=tcp", "", []Target{{"TCP", "127.0.0.1:5060", ""}}},
		{"sip:m1@b1.example:7000;transport=tcp", "", []Target{{"TCP", "127.0.0.1:7000", ""}}},
		{"sip:127.0.0.2:7001", "TCP", []Target{{"TCP", "127.0.0.2:7001", ""}}},
		// Not in the table: DNS, through Next.
		{"sips:x@svc.test", "", []Target{{"TLS", "127.0.0.3:5061", "svc.test"}}},
	} {
		got, err := s.Resolve(ctx, tc.uri, tc.prefer)
		if err != nil {
			t.Fatalf("%s: %v", tc.uri, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s (prefer %q): got %v, want %v", tc.uri, tc.prefer, got, tc.want)
		}
	}
	alone, _ := NewStaticResolver(tbl, nil)
	if _, err := alone.Resolve(ctx, "sip:svc.test", ""); !errors.Is(err, ErrNoRoute) {
		t.Errorf("a name outside the table without Next: %v, want ErrNoRoute", err)
	}
	onlyUDP, _ := NewStaticResolver(map[string][]Target{"u.example": {{Transport: "UDP", Addr: "127.0.0.1:5060"}}}, nil)
	if _, err := onlyUDP.Resolve(ctx, "sips:u.example", ""); !errors.Is(err, ErrNoRoute) {
		t.Errorf("sips: to a name with no TLS target: %v, want ErrNoRoute", err)
	}
	for _, bad := range []Target{{Transport: "SCTP", Addr: "127.0.0.1:1"}, {Transport: "UDP", Addr: "pf.example:5060"}, {Transport: "UDP", Addr: "127.0.0.1"}, {Transport: "UDP", Addr: "127.0.0.1:0"}} {
		if err := s.Set("x.example", []Target{bad}); !errors.Is(err, ErrConfig) {
			t.Errorf("Set(%v): %v, want ErrConfig", bad, err)
		}
	}
	if err := s.Set("b1.example", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Lookup("b1.example"); ok {
		t.Error("an empty Set did not remove the name")
	}
}

// TestFailover: RFC 3263 §4.3 — a request whose first target refuses the
// connection goes to the next one, from an endpoint (targets from DNS SRV)
// and from the core (targets from its table); a target that accepts it ends
// the search.
func TestFailover(t *testing.T) {
	ctx := testCtx(t)
	dead := freeTCPPort(t)
	bob := startEP(t, Config{Name: "bob", Identity: "sip:bob@b.test", Transport: "tcp"})
	bp := bob.tcpPort
	deadAddr := "127.0.0.1:" + strconv.Itoa(dead)
	dns := startDNS(t, map[string][]rr{
		"_sip._tcp.b.test": {srv(10, 0, uint16(dead), "down.b.test"), srv(20, 0, uint16(bp), "up.b.test")},
		"down.b.test":      {a("127.0.0.1")},
		"up.b.test":        {a("127.0.0.1")},
	})

	t.Run("endpoint", func(t *testing.T) {
		alice := startEP(t, Config{Name: "alice", Identity: "sip:alice@a.test", Transport: "tcp", Resolver: &DNSResolver{Resolver: dns.resolver()}})
		if err := alice.Invite("hop1", "sip:bob@b.test", "", nil, nil); err != nil {
			t.Fatal(err)
		}
		inv := bob.rec.next(t, ctx, "invite")
		if err := bob.Answer(inv.leg, nil, nil); err != nil {
			t.Fatal(err)
		}
		if r := alice.rec.next(t, ctx, "response"); r.res.Status != 200 {
			t.Fatalf("caller got %v", r)
		}
		if err := alice.Ack("hop1"); err != nil {
			t.Fatal(err)
		}
		bob.rec.next(t, ctx, "ack")
		if err := alice.Bye("hop1"); err != nil {
			t.Fatal(err)
		}
		bob.rec.next(t, ctx, "bye")
	})

	t.Run("core", func(t *testing.T) {
		p, h := startProxy(t, nil)
		if err := p.SetTargets("b.test", []Target{{Transport: "TCP", Addr: deadAddr}, {Transport: "TCP", Addr: bob.TCPAddr()}}); err != nil {
			t.Fatal(err)
		}
		alice := startEP(t, Config{Name: "alice", Identity: "sip:alice@a.test", Transport: "tcp", Proxy: p.TCPAddr()})
		if err := alice.Invite("hop1", "sip:bob@b.test", "", nil, nil); err != nil {
			t.Fatal(err)
		}
		inv := bob.rec.next(t, ctx, "invite")
		if err := bob.Reject(inv.leg, 486, "", nil); err != nil {
			t.Fatal(err)
		}
		if r := alice.rec.next(t, ctx, "response"); r.res.Status != 486 {
			t.Fatalf("caller got %v", r)
		}
		h.waitFor(t, ctx, "the INVITE to the dead target", func(x proxyHop) bool { return x.Method == "INVITE" && x.Dest == deadAddr })
		h.waitFor(t, ctx, "the INVITE to bob", func(x proxyHop) bool { return x.Method == "INVITE" && x.Dest == bob.TCPAddr() })
	})

	t.Run("all-dead", func(t *testing.T) {
		p, _ := startProxy(t, nil)
		if err := p.SetTargets("b.test", []Target{{Transport: "TCP", Addr: deadAddr}}); err != nil {
			t.Fatal(err)
		}
		alice := startEP(t, Config{Name: "alice", Identity: "sip:alice@a.test", Transport: "tcp", Proxy: p.TCPAddr()})
		if err := alice.Invite("hop1", "sip:bob@b.test", "", nil, nil); err != nil {
			t.Fatal(err)
		}
		if r := alice.rec.next(t, ctx, "response"); r.res.Status != 503 || r.res.Local {
			t.Fatalf("caller got %v (local %v), want the core's 503", r, r.res.Local)
		}
	})
}

// TestHostsResolver: a hosts table is RFC 3263's A/AAAA step without DNS: the
// transport §4.1 picks, the port given or its default, the name to verify.
func TestHostsResolver(t *testing.T) {
	ctx := testCtx(t)
	dns := startDNS(t, testZone())
	h := &HostsResolver{Hosts: map[string][]net.IP{"PF.Example": {net.ParseIP("127.0.0.7"), net.ParseIP("::1")}},
		Next: &DNSResolver{Resolver: dns.resolver()}}
	for _, tc := range []struct {
		uri, prefer string
		want        []Target
	}{
		{"sip:pf.example", "", []Target{{"UDP", "127.0.0.7:5060", "pf.example"}, {"UDP", "[::1]:5060", "pf.example"}}},
		{"sip:pf.example:5070", "TCP", []Target{{"TCP", "127.0.0.7:5070", "pf.example"}, {"TCP", "[::1]:5070", "pf.example"}}},
		{"sips:pf.example", "UDP", []Target{{"TLS", "127.0.0.7:5061", "pf.example"}, {"TLS", "[::1]:5061", "pf.example"}}},
		{"sip:pf.example;transport=tls", "", []Target{{"TLS", "127.0.0.7:5061", "pf.example"}, {"TLS", "[::1]:5061", "pf.example"}}},
		{"sips:x@svc.test", "", []Target{{"TLS", "127.0.0.3:5061", "svc.test"}}},
	} {
		got, err := h.Resolve(ctx, tc.uri, tc.prefer)
		if err != nil {
			t.Fatalf("%s: %v", tc.uri, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s (prefer %q): got %v, want %v", tc.uri, tc.prefer, got, tc.want)
		}
	}
	alone := &HostsResolver{Hosts: h.Hosts}
	if _, err := alone.Resolve(ctx, "sip:svc.test", ""); !errors.Is(err, ErrNoRoute) {
		t.Errorf("a name outside the table without Next: %v, want ErrNoRoute", err)
	}
}
