package proptest

import (
	"strings"
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/model"
	"pgregory.net/rapid"
)

// TestOrderRulesOfAnExtendingSpec: a file that extends the default spec lists the default
// spec's order rules on its own variants, inherits them through a base and drops them with
// "not NAME"; a variant whose knob table contradicts the rules it states fails with the
// property order, and one whose rules match its table passes; a prompt rule holds a link
// opening and an ACK to the step of its trigger.
func TestOrderRulesOfAnExtendingSpec(t *testing.T) {
	s, err := model.Parse("mine.yaml", []byte(`name: mine
extends: default
doc: variants of my own
variants:
  - name: fig6-acks-at-once
    doc: FIG. 6 whose PFs ACK at once, stating so.
    base: fig6
    order: [not pfa-acks-after-ack, not pfb-acks-after-ack]
    set: {pf-ack: on-ok}
  - name: fig6-table-wrong
    doc: FIG. 6 whose table lets the PFs ACK at once, against the figure it inherits.
    base: fig6
    set: {pf-ack: on-ok}
    expect: order
  - name: fig5-cf-answers-at-once
    doc: FIG. 5 whose table has the CF answer at once, against a rule it adds.
    base: fig5
    order: [cf-answers-at-once]
    set: {cf-answer: at-once}
    expect: order
  - name: fig7-cf-hop3-late
    doc: >
      fig7-cf-hop3 whose CF opens hop3 on the SEND, against the figure's "on the member's
      200 OK": in FIG. 7 the CF answers at once, so the SEND may come before that 200 or
      after it, and only the prompt rule tells the later opening from the right one.
    base: fig7-cf-hop3
    set: {trigger: {hop3: send-received}}
    expect: order
  - name: fig2-ack-at-once-late
    doc: >
      fig2-ack-at-once whose PFs wait for the upstream ACK (the mutant flip-knob@c847cc6d,
      which makes it fig2): no rule the variant states orders an ACK after anything but its
      200 OK, so only the prompt rules tell "at once" from "later".
    base: fig2-ack-at-once
    set: {pf-ack: on-upstream-ack}
    expect: order
`))
	if err != nil {
		t.Fatal(err)
	}
	vs, err := VariantsOf(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 5 {
		t.Fatalf("%d variants", len(vs))
	}
	fig6, _ := fsm.VariantByName("fig6")
	if got, want := vs[0].Order, fig6.Order&^(fsm.OrderPFAAcksAfterAck|fsm.OrderPFBAcksAfterAck); got != want {
		t.Errorf("fig6-acks-at-once states %v, want %v", got, want)
	}
	if vs[1].Order != fig6.Order {
		t.Errorf("fig6-table-wrong states %v, want fig6's %v", vs[1].Order, fig6.Order)
	}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			res, err := Explore(Config{Variant: v.Variant, Members: 1, PFBs: 1, Chunks: 1}, ExploreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case v.Expect == "" && res.Violation != nil:
				t.Errorf("found %v", res.Violation)
			case v.Expect != "" && (res.Violation == nil || res.Violation.Property != v.Expect):
				t.Errorf("found %v, want a %s violation", res.Violation, v.Expect)
			}
			// fig5-cf-answers-at-once states both CF rules (it adds one and keeps the other),
			// which no table can meet: the first member's 200 OK would come both before and
			// after the CF's own. Its at-once table breaks the inherited rule.
			if v.Name == "fig5-cf-answers-at-once" && res.Violation != nil && !strings.Contains(res.Violation.Detail, "cf-answers-after-member") {
				t.Errorf("the CF's answer broke %v, want the inherited cf-answers-after-member", res.Violation)
			}
			if v.Name == "fig2-ack-at-once-late" && res.Violation != nil && !strings.Contains(res.Violation.Detail, "acks-at-once") {
				t.Errorf("the late ACK broke %v, want a prompt rule pfa-acks-at-once or pfb-acks-at-once", res.Violation)
			}
			if v.Name == "fig7-cf-hop3-late" && res.Violation != nil && !strings.Contains(res.Violation.Detail, `without "CF link-open at down" (rule "cf-opens-hop3-on-200"`) {
				t.Errorf("the late opening broke %v, want the prompt rule cf-opens-hop3-on-200", res.Violation)
			}
		})
	}
}

// TestValidateTraceChecksOrder: the runtime's trace validation checks the figure's order.
// A run of FIG. 1's knobs with the PFs ACKing at once (fig1-ack-at-once, which states no
// wait) validates against its own variant, and the same trace fails with the property
// order against FIG. 1, whose S106 and S111 wait for the upstream ACK.
func TestValidateTraceChecksOrder(t *testing.T) {
	early, _ := fsm.VariantByName("fig1-ack-at-once")
	fig1, _ := fsm.VariantByName("fig1")
	rapid.Check(t, func(t *rapid.T) {
		cfg := DrawConfig(t, early, Sizes{MaxMembers: 3, MaxPFBs: 2, MaxChunks: 2})
		recs, viol := recordRun(t, cfg)
		if viol != nil {
			t.Fatalf("the run itself failed: %v", viol)
		}
		if _, got, err := ValidateTrace(cfg, recs, true); err != nil || got != nil {
			t.Fatalf("the run does not validate against its own variant: %v %v", err, got)
		}
		cfg.Variant.Order = fig1.Order
		_, got, err := ValidateTrace(cfg, recs, true)
		if err != nil {
			t.Fatal(err)
		}
		if got == nil || got.Property != PropOrder || !strings.Contains(got.Detail, "acks-after-ack") {
			t.Fatalf("validated against FIG. 1's order: %v, want an order violation of S106/S111", got)
		}
	})
}
