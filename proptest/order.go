package proptest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
)

// PropOrder is the property that the figures' step order holds: every order rule the
// variant lists (fsm.OrderRules, the spec's `orders`) held on every step.
const PropOrder = "order"

// orderCheck is the variant's order rules, prepared for a world: which steps are rules'
// `then` and which are `after` steps to remember. It is configuration, not state: what
// happened is kept per leg (legState.seen), bit i of an end for after[i].
type orderCheck struct {
	rules []*fsm.OrderRule
	// after lists the distinct after steps of the rules, at most 64.
	after []fsm.OrderTerm
	// afterBit gives, for each rule, the bit of each of its after steps.
	afterBit [][]int
}

func newOrderCheck(v fsm.Variant) (*orderCheck, error) {
	rules := v.Order.Rules()
	if len(rules) == 0 {
		return nil, nil
	}
	c := &orderCheck{rules: rules, afterBit: make([][]int, len(rules))}
	for i, r := range rules {
		for _, t := range r.After {
			k := slices.IndexFunc(c.after, func(u fsm.OrderTerm) bool { return u.Text == t.Text })
			if k < 0 {
				k = len(c.after)
				c.after = append(c.after, t)
			}
			c.afterBit[i] = append(c.afterBit[i], k)
		}
	}
	if len(c.after) > 64 {
		return nil, fmt.Errorf("proptest: variant %s: its order rules name %d steps; a leg keeps 64", v.Name, len(c.after))
	}
	return c, nil
}

// termMatches reports whether a step of a role of kind rk, at end end of a leg of hop h,
// through an input or output of the given kind, is the term's.
func termMatches(t *fsm.OrderTerm, rk fsm.RoleKind, h fsm.Hop, end int, kind string) bool {
	return t.Role == rk && t.Hop == h && t.End == end && slices.Contains(t.Kinds, kind)
}

// orderStep checks one step of role r (an input it takes, or an output it produces, of
// the given kind, on leg) against the order rules whose `then` it is, and then remembers
// it where it is a rule's `after` step. It reads the wire as the checkers see it (what was
// delivered to each role and what each role produced), never the roles' own history.
func (w *World) orderStep(r int, kind string, leg core.LegID) *Violation {
	c := w.order
	if c == nil || leg == "" {
		return nil
	}
	rk, _, _ := w.roleAt(r)
	// The only step on a leg before its dialog exists is the INVITE its offerer sends.
	end := 0
	if w.dialog(leg) != nil {
		end = w.endOf(r, leg)
	}
	h, ok := hopAt(rk, end)
	if !ok {
		return nil
	}
	for i, rule := range c.rules {
		if !termMatches(&rule.Then, rk, h, end, kind) {
			continue
		}
		if !w.orderHeld(leg, h, c.afterBit[i]) {
			var after []string
			for _, t := range rule.After {
				after = append(after, fmt.Sprintf("%q", t.Text))
			}
			return &Violation{PropOrder, fmt.Sprintf("on leg %s, %s did %q before %s (rule %q, %s: %s)",
				leg, w.names[r], rule.Then.Text, strings.Join(after, " or "), rule.Name, rule.Cite, rule.Doc)}
		}
	}
	var mask uint64
	for k := range c.after {
		if termMatches(&c.after[k], rk, h, end, kind) {
			mask |= 1 << k
		}
	}
	if mask != 0 {
		le := w.leg(leg)
		le.seen[end] |= mask
	}
	return nil
}

// hopAt returns the hop on which a role of kind rk is the given end (0 the offerer).
func hopAt(rk fsm.RoleKind, end int) (fsm.Hop, bool) {
	for h := fsm.Hop(0); h < fsm.NumHops; h++ {
		if fsm.HopEnds[h][end] == rk {
			return h, true
		}
	}
	return 0, false
}

// orderHeld reports whether one of the after steps (bits into w.order.after) happened on
// a leg of the branch of leg (of hop h): leg itself, its ancestor of the step's hop, or any
// descendant of the step's hop. Hops are listed along the chain, so a hop's number is its
// depth.
func (w *World) orderHeld(leg core.LegID, h fsm.Hop, bits []int) bool {
	for _, k := range bits {
		t := &w.order.after[k]
		switch {
		case t.Hop == h:
			if le := w.dialog(leg); le != nil && le.seen[t.End]&(1<<k) != 0 {
				return true
			}
		case t.Hop < h:
			up := leg
			for d := t.Hop; d < h; d++ {
				up, _ = parentLeg(up)
			}
			if le := w.dialog(up); le != nil && le.seen[t.End]&(1<<k) != 0 {
				return true
			}
		default:
			depth := int(t.Hop - h)
			prefix := string(leg) + "/"
			for i, l := range w.legNames {
				if i < len(w.net.legs) && strings.HasPrefix(string(l), prefix) && strings.Count(string(l)[len(prefix):], "/") == depth-1 &&
					w.net.legs[i].seen[t.End]&(1<<k) != 0 {
					return true
				}
			}
		}
	}
	return false
}
