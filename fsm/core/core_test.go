package core

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// A two-state machine with every cell kind.
func testDef() *MachineDef {
	return NewMachineDef("door", []string{"shut", "open"}, []string{"push", "pull", "kick"}, 0, []uint8{0},
		[][]Cell{
			{{Kind: CellTo, To: 1}, {Kind: CellIgnore, Reason: "already shut"}, {}},
			{{Kind: CellTo, To: 1}, {Kind: CellTo, To: 0}, {Kind: CellReject, Reason: "never kick an open door"}},
		})
}

func TestMachineCells(t *testing.T) {
	m := testDef().New()
	if c, err := m.Fire(0); err != nil || c.Kind != CellTo || m.Name() != "open" || m.f.Current() != "open" {
		t.Fatalf("push from shut: %v %v, now %s (looplab %s)", c, err, m.Name(), m.f.Current())
	}
	if c, err := m.Fire(0); err != nil || c.Kind != CellTo || m.Name() != "open" {
		t.Fatalf("self transition: %v %v", c, err)
	}
	if c, _ := m.Fire(2); c.Kind != CellReject || m.Name() != "open" {
		t.Fatalf("reject cell: %v, now %s", c, m.Name())
	}
	m.Fire(1)
	if c, _ := m.Fire(1); c.Kind != CellIgnore || m.Name() != "shut" {
		t.Fatalf("ignore cell: %v, now %s", c, m.Name())
	}
	if _, err := m.Fire(2); !errors.Is(err, ErrNoCell) || !strings.Contains(err.Error(), "kick in state shut") {
		t.Fatalf("missing cell: %v", err)
	}
	if !m.Terminal() {
		t.Error("shut is terminal")
	}
	m.Set(1)
	if m.f.Current() != "open" || m.Terminal() {
		t.Error("Set does not reach looplab")
	}
}

func TestEncDecRoundTrip(t *testing.T) {
	var e Enc
	p := SDP{Host: "127.0.0.1", Port: 2855, Path: "msrp://127.0.0.1:2855/abc;tcp", Setup: SetupActpass, TLS: true}
	r := Results{Expect: 3, Members: []MemberOutcome{{"sip:a", DeliveredOutcome()}}, Rest: FailedOutcome(408)}
	e.I(-7)
	e.S("hello")
	e.SDP(p)
	e.Strings([]string{"x", ""})
	e.Results(&r)
	e.Bool(true)
	d := Dec{B: e.B}
	if d.I() != -7 || d.S() != "hello" || d.SDP() != p || !reflect.DeepEqual(d.Strings(), []string{"x", ""}) {
		t.Fatal("round trip")
	}
	if got := d.Results(); !reflect.DeepEqual(got, r) || !d.Bool() || d.Err != nil || len(d.B) != 0 {
		t.Fatalf("results %+v err %v", got, d.Err)
	}
	// A truncated or lying encoding is an error, never a panic or a huge allocation.
	for n := 0; n < len(e.B); n++ {
		d := Dec{B: e.B[:n]}
		d.I()
		d.S()
		d.SDP()
		d.Strings()
		d.Results()
		d.Bool()
		if d.Err == nil {
			t.Fatalf("truncated at %d: no error", n)
		}
	}
	lie := Dec{B: []byte{0xff, 0xff, 0xff, 0x0f}}
	if lie.Strings(); lie.Err == nil {
		t.Fatal("a huge claimed count was accepted")
	}
}

func TestResults(t *testing.T) {
	var r Results
	if r.Complete() {
		t.Fatal("empty results are complete")
	}
	if !r.Record("sip:b", DeliveredOutcome(), 2) || r.Record("sip:b", FailedOutcome(486), 2) {
		t.Fatal("a member's first outcome must stick")
	}
	r.Record("sip:a", FailedOutcome(486), 2)
	if !r.Complete() || r.Members[0].Member != "sip:a" || r.Of("sip:b").Kind != Delivered {
		t.Fatalf("%+v", r)
	}
	var g Results
	g.Record("sip:a", DeliveredOutcome(), 3)
	if !g.FailRest(408) || g.FailRest(500) || !g.Complete() || g.Of("sip:z").Status != 408 || g.Of("sip:a").Kind != Delivered {
		t.Fatalf("%+v", g)
	}
}

func TestBestStatus(t *testing.T) {
	for _, c := range []struct {
		in   []int
		want int
	}{
		{nil, 480},
		{[]int{408, 486}, 486},
		{[]int{486, 603, 480}, 603},
		{[]int{503, 408}, 503},
		{[]int{408}, 408},
		{[]int{486, 480}, 480},
	} {
		if got := BestStatus(c.in); got != c.want {
			t.Errorf("BestStatus(%v) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestSessionIDs(t *testing.T) {
	a := SessionID("s", "cf", "leg", "up")
	if a != SessionID("s", "cf", "leg", "up") || len(a) != 16 {
		t.Fatalf("not deterministic or wrong length: %q", a)
	}
	for _, b := range []string{SessionID("t", "cf", "leg", "up"), SessionID("s", "cf", "leg", "down"), SessionID("s", "pf", "leg", "up")} {
		if a == b {
			t.Fatal("ids collide across inputs")
		}
	}
	c := Config{Name: "cf", MSRPHost: "::1", MSRPPort: 2855, Secret: "s", TLS: true}
	p := c.OwnSDP("leg", "up", SetupActive)
	if p.Path != "msrps://[::1]:2855/"+a+";tcp" || p.Addr() != "[::1]:2855" {
		t.Fatalf("%+v", p)
	}
}

func TestResolve(t *testing.T) {
	c := Config{Groups: map[string]Group{
		"sip:g": {Members: []string{"sip:a", "sip:b"}},
		"sip:h": {Members: []string{"sip:a"}, Senders: []string{"sip:boss"}},
	}}
	if m, st := c.Resolve("sip:g", "sip:x", nil); st != GroupOK || len(m) != 2 {
		t.Error("pre-defined group")
	}
	if m, st := c.Resolve("sip:nope", "sip:x", []string{"sip:c"}); st != GroupOK || m[0] != "sip:c" {
		t.Error("ad-hoc list wins")
	}
	if _, st := c.Resolve("sip:nope", "sip:x", nil); st != GroupUnknown {
		t.Error("unknown group")
	}
	if _, st := c.Resolve("sip:h", "sip:x", nil); st != GroupForbidden {
		t.Error("forbidden sender")
	}
}

// TestStepErrorSaysEachFailureOnce: a reaction that fails the same way each round until
// the step gives up must not fill the step's error with copies of one line.
func TestStepErrorSaysEachFailureOnce(t *testing.T) {
	e := NewEngine(Config{Name: "x"}, &Layout{Columns: []string{"door"}, Up: []*MachineDef{testDef()}, Down: []*MachineDef{testDef()}})
	e.Begin()
	for range 5 {
		e.Errorf("%w: no cell for %s", ErrNoCell, "a")
	}
	e.Errorf("%w: no cell for %s", ErrNoCell, "b")
	e.Errorf("%w: no cell for %s", ErrNoCell, "b")
	e.Errorf("%w: x", ErrUnsettled)
	_, err := e.End()
	want := "fsm: no cell: no cell for a (4 more times)\nfsm: no cell: no cell for b (once more)\nfsm: reactions did not settle: x"
	if err == nil || err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	if !errors.Is(err, ErrNoCell) || !errors.Is(err, ErrUnsettled) {
		t.Errorf("error %v no longer wraps its causes", err)
	}
	e.Begin()
	if _, err := e.End(); err != nil {
		t.Errorf("the next step starts with %v, want no error", err)
	}
}
