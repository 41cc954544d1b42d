package proptest

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"reflect"
	"slices"
	"sort"

	"github.com/cpmlink/cpmlink/fsm/core"
)

// Symmetry reduction (docs/architecture.md, "Symmetry"): members behind one PF-B, and PF-Bs
// with as many members (with their members), are interchangeable. A state and the state
// with such instances swapped (their machines, legs, connections and every name that
// identifies them renamed) have the same future up to that renaming, so the search visits
// one of them: it hashes every state as the least, over the symmetries, of the hash of the
// state renamed, and keeps the state it reached (so counterexample paths replay).

// symmetry is one permutation of role instances and the renaming of the names that
// identify them: instance names and URIs, MSRP hosts and addresses, leg and connection ids,
// MSRP paths.
type symmetry struct {
	role []int
	inv  []int
	name map[string]string
}

func (g *symmetry) perm(r int) int {
	if r < 0 || r >= len(g.role) {
		return r
	}
	return g.role[r]
}

func (g *symmetry) rename(s string) string {
	if t, ok := g.name[s]; ok {
		return t
	}
	return s
}

// symmetries returns the identity and every other symmetry of a world's configuration,
// or nil when the configuration has none. A variant with planted defects gets none: a
// defect may treat members differently (skip-last-member does).
func symmetries(w *World) []*symmetry {
	cfg := w.cfg
	if cfg.Variant.Defects != 0 || cfg.Members < 2 {
		return nil
	}
	byPFB := make([][]int, cfg.PFBs)
	for m := 0; m < cfg.Members; m++ {
		k := cfg.pfbOf(m) - firstPFB
		byPFB[k] = append(byPFB[k], m)
	}
	var out []*symmetry
	for _, rho := range permutations(cfg.PFBs) {
		ok := true
		for k, k2 := range rho {
			ok = ok && len(byPFB[k]) == len(byPFB[k2])
		}
		if !ok {
			continue
		}
		// For each PF-B k, every bijection of its members onto those of rho[k].
		var rec func(k int, pi []int)
		rec = func(k int, pi []int) {
			if k == cfg.PFBs {
				if g := w.symmetry(rho, pi); g != nil {
					out = append(out, g)
				}
				return
			}
			for _, p := range permutations(len(byPFB[k])) {
				next := slices.Clone(pi)
				for i, m := range byPFB[k] {
					next[m] = byPFB[rho[k]][p[i]]
				}
				rec(k+1, next)
			}
		}
		rec(0, make([]int, cfg.Members))
		if len(out) > 5040 {
			return nil
		}
	}
	if len(out) < 2 {
		return nil
	}
	return out
}

// symmetry builds the permutation that moves PF-B k to rho[k] and member m to pi[m], or nil
// when it would swap members with different faults.
func (w *World) symmetry(rho, pi []int) *symmetry {
	cfg := w.cfg
	n := cfg.NumRoles()
	g := &symmetry{role: make([]int, n), inv: make([]int, n), name: map[string]string{}}
	for i := range g.role {
		g.role[i] = i
	}
	for k, k2 := range rho {
		g.role[firstPFB+k] = firstPFB + k2
	}
	for m, m2 := range pi {
		if cfg.Faults[m] != cfg.Faults[m2] {
			return nil
		}
		g.role[cfg.memberIdx(m)] = cfg.memberIdx(m2)
	}
	// Instances are interchangeable only when configured alike but for who they are
	// (name, URI, MSRP host): a member with another answer policy or another a=setup
	// choice is not.
	for i, j := range g.role {
		if i != j && !sameButIdentity(*w.roles[i].Config(), *w.roles[j].Config()) {
			return nil
		}
	}
	for i, j := range g.role {
		g.inv[j] = i
	}
	add := func(a, b string) {
		if a != b {
			g.name[a] = b
		}
	}
	sdp := func(i int) core.SDP {
		c := w.roles[i].Config()
		return core.SDP{Host: c.MSRPHost, Port: c.MSRPPort}
	}
	for i, j := range g.role {
		if i == j {
			continue
		}
		add(w.names[i], w.names[j])
		add(w.uris[i], w.uris[j])
		add(w.roles[i].Config().MSRPHost, w.roles[j].Config().MSRPHost)
		add(sdp(i).Addr(), sdp(j).Addr())
	}
	var legs [][2]core.LegID
	for m, m2 := range pi {
		for hop := 3; hop <= 4; hop++ {
			a, b := w.memberLeg(m, hop), w.memberLeg(m2, hop)
			add(string(a), string(b))
			legs = append(legs, [2]core.LegID{a, b})
		}
	}
	// MSRP paths name the instance and the leg (core.SessionID): every instance's path on
	// every member leg maps to its image's path on the image leg.
	for i := range w.roles {
		for _, l := range legs {
			for _, side := range []string{"up", "down"} {
				add(w.roles[i].Config().OwnSDP(l[0], side, core.SetupNone).Path, w.roles[g.role[i]].Config().OwnSDP(l[1], side, core.SetupNone).Path)
			}
		}
	}
	return g
}

func sameButIdentity(a, b core.Config) bool {
	a.Name, a.URI, a.MSRPHost = "", "", ""
	b.Name, b.URI, b.MSRPHost = "", "", ""
	return reflect.DeepEqual(a, b)
}

// permutations lists every permutation of 0..n-1, the identity first.
func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for pos := len(p); pos >= 0; pos-- {
			q := make([]int, 0, n)
			q = append(q, p[:pos]...)
			q = append(q, n-1)
			q = append(q, p[pos:]...)
			out = append(out, q)
		}
	}
	return out
}

// canon hashes states up to symmetry for one searcher (its world).
type canon struct {
	w    *World
	syms []*symmetry
	seed maphash.Seed
	// roleHash caches the hash of a role snapshot renamed by a symmetry, by symmetry and
	// snapshot number.
	roleHash map[[2]int32]uint64
	// itemKey caches the renamed encoding of a bag item, by symmetry and item key.
	itemKey []map[string][]byte
	// renamedIDs maps, per symmetry, a string's number to its image's number, plus one.
	renamedIDs [][]uint64
	buf        []byte
	enc        core.Enc
	items      []item
	net        network
	world      World
}

func newCanon(w *World, seed maphash.Seed) *canon {
	syms := symmetries(w)
	if syms == nil {
		return nil
	}
	c := &canon{w: w, syms: syms, seed: seed, roleHash: map[[2]int32]uint64{}, itemKey: make([]map[string][]byte, len(syms)), renamedIDs: make([][]uint64, len(syms))}
	for i := range c.itemKey {
		c.itemKey[i] = map[string][]byte{}
	}
	return c
}

// fingerprint returns the least hash of the current state renamed by each symmetry; ids are
// the roles' snapshot numbers. ok is false when the state cannot be renamed (a leg or an
// item outside what the renaming knows): the caller then uses the state's own hash.
// net is the state's own encoding of the network, which is what the identity writes.
func (c *canon) fingerprint(ids []int32, net []byte) (uint64, bool) {
	best, any := uint64(0), false
	for _, it := range c.w.net.bag {
		if _, ok := c.itemKey[0][string(it.key)]; !ok && !bytes.Equal(encodeItemAs(it, nil), it.key) {
			return 0, false
		}
	}
	for gi, g := range c.syms {
		c.buf = c.buf[:0]
		for j := range ids {
			i := g.inv[j]
			h, ok := c.roleHash[[2]int32{int32(gi), ids[i]}]
			if !ok {
				var good bool
				h, good = c.renamedRole(i, g)
				if !good {
					return 0, false
				}
				c.roleHash[[2]int32{int32(gi), ids[i]}] = h
			}
			c.buf = binary.LittleEndian.AppendUint64(c.buf, h)
		}
		if len(g.name) == 0 {
			c.buf = append(c.buf, net...)
		} else {
			var ok bool
			c.buf, ok = c.renamedNet(gi, g, c.buf)
			if !ok {
				return 0, false
			}
		}
		h := maphash.Bytes(c.seed, c.buf)
		if !any || h < best {
			best, any = h, true
		}
	}
	return best, any
}

// renamedRole hashes role i's state, renamed by g. It first checks that the role's sessions
// are all of its state: encoded without renaming they must give its snapshot.
func (c *canon) renamedRole(i int, g *symmetry) (uint64, bool) {
	w := c.w
	r := w.roles[i]
	c.enc = core.Enc{B: c.enc.B[:0]}
	core.EncodeSessions(&c.enc, core.NextKey(w.snaps[i]), r.Sessions())
	if !bytes.Equal(c.enc.B, w.snaps[i]) {
		return 0, false
	}
	c.enc = core.Enc{B: c.enc.B[:0], Rename: g.rename}
	core.EncodeSessions(&c.enc, core.NextKey(w.snaps[i]), r.Sessions())
	return maphash.Bytes(c.seed, c.enc.B), true
}

// renamedNet appends the network and observations as they are with g applied: legs moved
// to their images' places, role numbers permuted, items and connections renamed and sorted
// again, each member's observations moved to its image.
func (c *canon) renamedNet(gi int, g *symmetry, dst []byte) ([]byte, bool) {
	w := c.w
	n := &c.net
	n.legs = slices.Grow(n.legs[:0], len(w.net.legs))[:len(w.net.legs)]
	for i := range w.net.legs {
		j, ok := w.legIdx[core.LegID(g.rename(string(w.legNames[i])))]
		if !ok || j >= len(n.legs) {
			return dst, false
		}
		l := w.net.legs[i]
		l.ends = [2]int{g.perm(l.ends[0]), g.perm(l.ends[1])}
		l.opener = g.perm(l.opener)
		n.legs[j] = l
	}
	n.bag = n.bag[:0]
	for _, it := range w.net.bag {
		key, ok := c.itemKey[gi][string(it.key)]
		if !ok {
			orig := string(it.key)
			it.from, it.to = g.perm(it.from), g.perm(it.to)
			key = encodeItemAs(it, g.rename)
			c.itemKey[gi][orig] = key
		}
		n.bag = append(n.bag, item{key: key})
	}
	sort.Slice(n.bag, func(a, b int) bool { return bytes.Compare(n.bag[a].key, n.bag[b].key) < 0 })
	n.conns = n.conns[:0]
	for _, ce := range w.net.conns {
		ce.role = g.perm(ce.role)
		n.conns = append(n.conns, ce)
	}
	sort.Slice(n.conns, func(a, b int) bool {
		x, y := n.conns[a], n.conns[b]
		return x.role < y.role || x.role == y.role && g.rename(string(x.conn)) < g.rename(string(y.conn))
	})
	members := slices.Grow(c.world.obs.members[:0], len(w.obs.members))[:len(w.obs.members)]
	for m := range w.obs.members {
		members[g.perm(w.cfg.memberIdx(m))-w.cfg.memberIdx(0)] = w.obs.members[m]
	}
	// The fault budget and whether a fault harmed the run name no instance: they are
	// carried as they are.
	n.faultsLeft, n.harmed, n.lostEarly = w.net.faultsLeft, w.net.harmed, w.net.lostEarly
	c.world = World{net: *n, obs: observations{members: members, rest: w.obs.rest}, rename: g.rename}
	if w.strs != nil {
		// Rename numbered strings by number: each string is renamed once per symmetry.
		ids := &c.renamedIDs[gi]
		c.world.rename = nil
		c.world.internAs = func(s string) uint64 {
			id := w.strs.intern(s)
			if id < uint64(len(*ids)) && (*ids)[id] != 0 {
				return (*ids)[id] - 1
			}
			r := w.strs.intern(g.rename(s))
			for uint64(len(*ids)) <= id {
				*ids = append(*ids, 0)
			}
			(*ids)[id] = r + 1
			return r
		}
	}
	return c.world.saveNet(dst), true
}

// encodeItemAs is encodeItem with every string renamed (rn nil: exactly encodeItem).
func encodeItemAs(it item, rn func(string) string) []byte {
	e := core.Enc{Rename: rn}
	e.U(uint64(it.kind))
	e.I(it.from)
	e.I(it.to)
	e.S(string(it.leg))
	switch it.kind {
	case itConnect:
		e.S(string(it.conn))
		e.Bool(it.reused)
		e.SDP(it.peer)
	case itFail:
		e.I(it.status)
	case itSIP:
		encodeEvent(&e, it.ev)
	}
	return e.B
}
