package model

// Fold specialises a condition for one role: "role is X" becomes a constant and the
// boolean algebra around constants is simplified. The generator emits folded conditions,
// so each role's code reads only what that role can observe.
func Fold(n Node, role string) Node {
	switch x := n.(type) {
	case Is:
		if x.Scope == ScopeRole {
			return constNode(contains(x.Values, role))
		}
		return x
	case Not:
		inner := Fold(x.X, role)
		if b, ok := IsConst(inner); ok {
			return constNode(!b)
		}
		return Not{inner}
	case Binary:
		l, r := Fold(x.L, role), Fold(x.R, role)
		lb, lok := IsConst(l)
		rb, rok := IsConst(r)
		switch x.Op {
		case "and":
			switch {
			case lok && !lb, rok && !rb:
				return constNode(false)
			case lok:
				return r
			case rok:
				return l
			}
		case "or":
			switch {
			case lok && lb, rok && rb:
				return constNode(true)
			case lok:
				return r
			case rok:
				return l
			}
		}
		return Binary{x.Op, l, r}
	case Quant:
		body := Fold(x.Body, role)
		return Quant{x.Kind, x.Side, body}
	}
	return n
}

// IsConst reports whether n is a constant, and its value.
func IsConst(n Node) (value, ok bool) {
	if is, isIs := n.(Is); isIs && is.Scope == ScopeConst {
		return is.Name == "true", true
	}
	return false, false
}

func constNode(b bool) Node {
	if b {
		return Is{Scope: ScopeConst, Name: "true"}
	}
	return Is{Scope: ScopeConst, Name: "false"}
}

// SidesUsed returns the side kinds a condition reads (up, down, this).
func SidesUsed(n Node) map[string]bool {
	out := map[string]bool{}
	Walk(n, func(n Node) {
		switch x := n.(type) {
		case Is:
			if x.Scope == SideUp || x.Scope == SideDown || x.Scope == SideThis {
				out[x.Scope] = true
			}
		case Had:
			out[x.Side] = true
		case Quant:
			out[x.Side] = true
		case TriggerOf:
			out[x.Side] = true
		}
	})
	return out
}

// FoldStmts specialises a statement list for one role: conditions are folded and branches
// whose condition is constant are replaced by the branch taken.
func FoldStmts(list []*Stmt, role string) []*Stmt {
	var out []*Stmt
	for _, s := range list {
		switch s.Kind {
		case StmtIf:
			cond := Fold(s.Cond.Root, role)
			if b, ok := IsConst(cond); ok {
				if b {
					out = append(out, FoldStmts(s.Do, role)...)
				} else {
					out = append(out, FoldStmts(s.Else, role)...)
				}
				continue
			}
			c := *s
			c.Cond.Root = cond
			c.Do = FoldStmts(s.Do, role)
			c.Else = FoldStmts(s.Else, role)
			out = append(out, &c)
		case StmtEach:
			c := *s
			c.Do = FoldStmts(s.Do, role)
			if len(c.Do) > 0 {
				out = append(out, &c)
			}
		default:
			out = append(out, s)
		}
	}
	return out
}

// StmtSides returns the side kinds a statement list acts on or reads.
func StmtSides(list []*Stmt) map[string]bool {
	out := map[string]bool{}
	WalkStmts(list, func(s *Stmt) {
		if s.Side != "" {
			out[s.Side] = true
		}
		if s.About == SideUp || s.About == SideDown {
			out[s.About] = true
		}
		if s.Kind == StmtIf {
			for k := range SidesUsed(s.Cond.Root) {
				out[k] = true
			}
		}
	})
	return out
}
