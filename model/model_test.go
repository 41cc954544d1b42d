package model

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestDefaultSpecLoads(t *testing.T) {
	s := Default()
	if len(s.Roles) != 5 || len(s.Hops) != 4 {
		t.Fatalf("%d roles, %d hops", len(s.Roles), len(s.Hops))
	}
	for i := 1; i <= 7; i++ {
		name := "fig" + string(rune('0'+i))
		v := s.Variant(name)
		if v == nil {
			t.Fatalf("no variant %s", name)
		}
		if len(v.Resolved) != len(s.KnobKeys()) {
			t.Errorf("%s resolves %d of %d knob keys", name, len(v.Resolved), len(s.KnobKeys()))
		}
	}
}

// TestFigureTable pins the seven figures to DESIGN.md's table (and the patent's figure
// descriptions): who opens each hop, on what, when the CF answers and when PFs ACK.
func TestFigureTable(t *testing.T) {
	s := Default()
	want := map[string]string{
		"fig1": "offerer/ok-received offerer/ack-received offerer/ok-received offerer/ack-received at-once on-upstream-ack",
		"fig2": "offerer/ok-received offerer/ack-received offerer/ok-received offerer/ack-received first-member-ok on-upstream-ack",
		"fig3": "answerer/ack-received answerer/ack-received answerer/ack-received answerer/ack-received at-once on-ok",
		"fig4": "answerer/ack-received answerer/ack-received answerer/ack-received answerer/ack-received first-member-ok on-ok",
		"fig5": "offerer/ok-received offerer/ack-received answerer/ack-received answerer/ack-received first-member-ok on-ok",
		"fig6": "offerer/ok-received offerer/ack-received answerer/ack-received answerer/ack-received first-member-ok on-upstream-ack",
		"fig7": "offerer/ok-received offerer/ack-received answerer/ack-received answerer/ack-received at-once on-upstream-ack",
	}
	for name, w := range want {
		r := s.Variant(name).Resolved
		var got []string
		for _, h := range []string{"hop1", "hop2", "hop3", "hop4"} {
			got = append(got, r["opener."+h]+"/"+r["trigger."+h])
		}
		got = append(got, r["cf-answer"], r["pf-ack"])
		if strings.Join(got, " ") != w {
			t.Errorf("%s:\n got %s\nwant %s", name, strings.Join(got, " "), w)
		}
	}
}

// edit returns the default spec with old replaced by new, failing if old is absent.
func edit(t *testing.T, old, new string) []byte {
	t.Helper()
	src := string(DefaultSource())
	if !strings.Contains(src, old) {
		t.Fatalf("the spec no longer contains %q", old)
	}
	return []byte(strings.Replace(src, old, new, 1))
}

var fileLine = regexp.MustCompile(`^x\.yaml:\d+(:\d+)?: `)

func TestSpecErrors(t *testing.T) {
	cases := []struct {
		name, old, new, want string
	}{
		{"unknown key", "name: cpmlink\n", "name: cpmlink\ncolour: blue\n", "field colour not found"},
		{"unknown nested key", "  - name: ClientA\n", "  - name: ClientA\n    colour: blue\n", `unknown key "colour"`},
		{"duplicate key", "    up: false\n    down: one\n", "    up: false\n    up: true\n    down: one\n", `"up" already`},
		{"duplicate role", "  - name: PFA\n", "  - name: ClientA\n", `role "ClientA" already declared`},
		{"unknown role in hop", "{name: hop2, offerer: PFA,", "{name: hop2, offerer: PFX,", `unknown offerer role "PFX"`},
		{"unknown state in condition", `"up.sip is invited and not (role is CF`, `"up.sip is invitd and not (role is CF`, `unknown value "invitd"`},
		{"unknown event in had", `"this had recv-200"`, `"this had recv-2000"`, `no machine of the down side has the event "recv-2000"`},
		{"bad condition syntax", `"session.group is unknown"`, `"session.group is (unknown"`, "expected a name"},
		{"unknown action", "      - SendAck: down\n  - on: recv-200 at down\n", "      - SendAckk: down\n  - on: recv-200 at down\n", `unknown action or verb "SendAckk"`},
		{"role without the side", "  - on: recv-invite at up\n    roles: [ClientB]", "  - on: recv-invite at up\n    roles: [ClientA]", "role ClientA has no up side"},
		{"ambiguous down", `      - if: "defect.forward-ack"`, `      - if: "defect.forward-ack and down.last"`, "role CF has one down side per member"},
		{"uncovered cell", "      - {on: recv-ack, from: [confirmed, ended], ignore: \"a duplicate ACK\"}\n", "      - {on: recv-ack, from: [confirmed, ended, answered], ignore: \"a duplicate ACK\"}\n", "already has a cell"},
		{"impossible trigger", "      trigger: {hop1: ok-received, hop2: ack-received, hop3: ok-received, hop4: ack-received}\n      cf-answer: at-once\n      pf-ack: on-upstream-ack",
			"      trigger: {hop1: ack-received, hop2: ack-received, hop3: ok-received, hop4: ack-received}\n      cf-answer: at-once\n      pf-ack: on-upstream-ack",
			"hop1 is opened by ClientA (the offerer) on ack-received, which ClientA can never observe: it has no up side"},
		{"unknown knob value", "pfb-acks-at-once], set: {pf-ack: on-ok},\n     doc: \"FIG. 2", "pfb-acks-at-once], set: {pf-ack: later},\n     doc: \"FIG. 2", `unknown value "later"`},
		{"unknown order rule", "order: [not cf-answers-at-once, cf-answers-after-member]", "order: [not cf-answers-at-once, cf-answers-after-membr]", `unknown order rule "cf-answers-after-membr"`},
		{"dropped order rule not inherited", "order: [not cf-answers-at-once, cf-answers-after-member, cf-opens-hop3-before-send]", "order: [not cf-answers-at-once, cf-answers-after-member, cf-opens-hop3-before-send, not pfb-opens-hop3]", `drops order rule "pfb-opens-hop3", which it does not inherit`},
		{"order step on no side", "then: PFA send-ack at down", "then: PFA send-ack at sideways", "the side is up or down"},
		{"order step with an unknown event", "after: PFA recv-200 at down", "after: PFA recv-2000 at down", `no machine of the down side has the event "recv-2000"`},
		{"order step without its role", "then: PFA send-ack at down", "then: PFA send-ack", "write a step as ROLE EVENT at SIDE"},
		{"order step of a far role", "after: PFB link-open at up", "after: PFA link-open at down", "another role's step on another hop"},
		{"prompt on no opening nor ACK", "    then: PFA send-200 at up\n", "    prompt: true\n    then: PFA send-200 at up\n", `only a link opening or an ACK can be held to its trigger`},
		{"prompt after another role's step", "then: CF link-open at down\n    after: CF recv-200 at down", "then: CF link-open at down\n    after: PFB send-200 at up", `a prompt rule's after steps are CF's own`},
		{"client hop preset", "{name: fig1-negotiated, base: fig1, set: {initiative: {hop2: negotiated, hop3: negotiated}}", "{name: fig1-negotiated, base: fig1, set: {initiative: {hop1: preset, hop2: negotiated, hop3: negotiated}}",
			"initiative.hop1 is preset; every variant must take negotiated there"},
		{"require names no hop", "    require: {hop1: negotiated, hop4: negotiated}", "    require: {hop1: negotiated, hop9: negotiated}", `require names "hop9", which is not a hop`},
		{"unknown base", "{name: fig1-no-reuse, base: fig1,", "{name: fig1-no-reuse, base: fig0,", `unknown base "fig0"`},
		{"unset knobs", "      reuse: \"on\"\n      initiative: {hop1: negotiated, hop2: preset, hop3: preset, hop4: negotiated}\n  - name: fig2", "  - name: fig2", "leaves knobs unset: reuse, initiative"},
		{"bad party", "do: [{party: {side: up, is: active}}]\n          - if: \"up.setup is undecided and policy.setup is passive\"", "do: [{party: {side: up, is: sideways}}]\n          - if: \"up.setup is undecided and policy.setup is passive\"", "party is: must be active, passive or preset"},
		{"party without side", "do: [{party: {side: down, is: passive}}]\n          - if: \"down.setup is undecided and defect.ignore-setup\"", "do: [{party: {is: passive}}]\n          - if: \"down.setup is undecided and defect.ignore-setup\"", "party needs side:"},
		{"unknown peer-setup", "up.peer-setup is passive", "up.peer-setup is holdconn", "holdconn"},
		{"unknown policy setup", "policy.setup is none\"", "policy.setup is maybe\"", "maybe"},
		{"unknown outcome of an event", `event.outcome is delivered and (flag.success-report`, `event.outcome is deliverd and (flag.success-report`, `unknown value "deliverd"`},
		{"non-boolean event field", `"event.success-report"`, `"event.chunk"`, `no boolean or outcome field "chunk"`},
		{"unknown sender policy", `"policy.sender is closes"`, `"policy.sender is slams"`, `unknown value "slams"`},
		{"unknown expect", "{name: fig1-no-reuse, base: fig1,", "{name: fig1-no-reuse, expect: happiness, base: fig1,", `expect "happiness"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("x.yaml", edit(t, c.old, c.new))
			if err == nil {
				t.Fatalf("accepted")
			}
			if !errors.Is(err, ErrSpec) {
				t.Errorf("error does not wrap ErrSpec: %v", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error lacks %q:\n%v", c.want, err)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !fileLine.MatchString(line) {
					t.Errorf("error line without file:line: %q", line)
				}
			}
		})
	}
}

func TestExtends(t *testing.T) {
	ok := []byte("name: extra\nextends: default\nvariants:\n  - {name: mine, base: fig3, set: {reuse: \"off\"}, expect: deadlock}\n")
	s, err := Parse("x.yaml", ok)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Variants) != 1 || s.Variants[0].Resolved["reuse"] != "off" || s.Variants[0].Resolved["opener.hop1"] != "answerer" {
		t.Errorf("extending variant resolved to %v", s.Variants[0].Resolved)
	}
	if len(s.Rules) == 0 || s.File != "x.yaml" {
		t.Errorf("the base spec's rules were not taken over")
	}
	bad := []byte("name: extra\nextends: default\nflags: [{name: mine}]\n")
	if _, err := Parse("x.yaml", bad); err == nil || !strings.Contains(err.Error(), "declares only name, doc and variants") {
		t.Errorf("an extending spec with rules was accepted: %v", err)
	}
}

func TestExpressionRoundTrip(t *testing.T) {
	for _, src := range []string{
		"up.sip is invited",
		"not (down.link is up|listening) and knob.cf-answer is at-once",
		"any(down: down had recv-200) or trigger(up)",
		"(a.b or c.d) and not e.f",
	} {
		n, err := ParseExpr(src)
		if err != nil {
			if strings.HasPrefix(src, "(a.b") {
				continue // unknown scopes are a parse error, by design
			}
			t.Fatalf("%q: %v", src, err)
		}
		again, err := ParseExpr(Format(n))
		if err != nil || Format(again) != Format(n) {
			t.Errorf("%q: formatted %q does not parse back the same (%v)", src, Format(n), err)
		}
	}
}

func TestFold(t *testing.T) {
	n, err := ParseExpr("role is CF and knob.cf-answer is at-once or up.sip is invited")
	if err != nil {
		t.Fatal(err)
	}
	if got := Format(Fold(n, "PFA")); got != "up.sip is invited" {
		t.Errorf("folded for PFA: %s", got)
	}
	if got := Format(Fold(n, "CF")); got != "(knob.cf-answer is at-once or up.sip is invited)" {
		t.Errorf("folded for CF: %s", got)
	}
}
