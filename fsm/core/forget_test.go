package core

import "testing"

// TestForget: only a session whose every machine is terminal is forgotten, and with it
// its legs; the others stay as they were.
func TestForget(t *testing.T) {
	// testDef's initial state, shut, is terminal; open is not.
	e := NewEngine(Config{Name: "x"}, &Layout{Columns: []string{"door"}, Up: []*MachineDef{testDef()}, Down: []*MachineDef{testDef()}})
	a, b := e.NewSession("a"), e.NewSession("b")
	e.AddSide(a, true, "a", 0, "")
	e.AddSide(a, false, "a/0", 1, "m")
	open := e.AddSide(b, true, "b", 0, "")
	open.M[0].Fire(0)
	if !a.Over() || b.Over() {
		t.Fatalf("over: a %v, b %v", a.Over(), b.Over())
	}
	if e.Forget("b") || e.Forget("nosuch") {
		t.Error("forgot a session that is not over, or none")
	}
	if !e.Forget("a") {
		t.Fatal("did not forget a session that is over")
	}
	if s, sd := e.Lookup("a/0"); s != nil || sd != nil {
		t.Error("a forgotten session's leg is still known")
	}
	if ss := e.Sessions(); len(ss) != 1 || ss[0] != b {
		t.Errorf("sessions left: %v", ss)
	}
	if s, _ := e.Lookup("b"); s != b || e.Terminal() {
		t.Error("the session not over was touched")
	}
}
