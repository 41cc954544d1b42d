package proptest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// ExploreOptions bound an exhaustive exploration.
type ExploreOptions struct {
	// MaxStates stops the search after this many distinct states (0: 5 million). A search
	// that stops early reports Truncated and proves nothing about the states it skipped.
	MaxStates int
	// NoReduce runs the plain search: every enabled step of every state is taken. By
	// default the search prunes steps with sleep sets (docs/architecture.md, "Reductions"),
	// which visits the same states and reaches the same verdicts with fewer transitions.
	NoReduce bool
	// Workers expand each level's states in parallel (0: GOMAXPROCS). The result does not
	// depend on it.
	Workers int
	workers int
}

// ExploreResult is what an exhaustive exploration found.
type ExploreResult struct {
	Variant string `json:"variant"`
	Members int    `json:"members"`
	PFBs    int    `json:"pfbs"`
	Chunks  int    `json:"chunks"`
	States  int    `json:"states"`
	// Transitions counts the steps the search took; PlainTransitions the steps the plain
	// search takes over the same states (every enabled step of every state), so that
	// Transitions/PlainTransitions is the reduction's ratio.
	Transitions      int `json:"transitions"`
	PlainTransitions int `json:"plain_transitions"`
	// Asleep counts the steps the sleep sets pruned; Revisits the states expanded again
	// because a later path reached them with a smaller sleep set.
	Asleep   int  `json:"asleep,omitempty"`
	Revisits int  `json:"revisits,omitempty"`
	Reduced  bool `json:"reduced"`
	// Symmetries is the number of permutations of interchangeable members and PF-Bs the
	// search identified states under (1 or 0: none); the states it visits are at least the
	// plain search's divided by it.
	Symmetries int `json:"symmetries,omitempty"`
	// Collision estimates the probability that two distinct states shared a 64-bit
	// fingerprint (n²/2^65), in which case the search skipped one of them.
	Collision float64 `json:"collision_probability"`
	// EndStates counts the distinct quiescent states (every one was checked).
	EndStates int  `json:"end_states"`
	Truncated bool `json:"truncated,omitempty"`
	// Violation is the first property found violated, on a shortest path to it.
	Violation *Violation    `json:"-"`
	Trace     []Step        `json:"-"`
	Path      []int         `json:"path,omitempty"`
	Elapsed   time.Duration `json:"-"`
}

// OK reports whether every property held in every explored state.
func (r *ExploreResult) OK() bool { return r.Violation == nil && !r.Truncated }

// node is one visited state: how it was first reached (for the counterexample path), its
// sleep set (a bit per choice index; choices from 64 on are never asleep) and whether it
// was expanded already.
type node struct {
	sleep uint64
	// real is the hash of the state as first reached, where the visited set holds the hash
	// of its symmetry class: a state that only matches up to symmetry has its choices listed
	// in another order, so sleep sets do not carry over.
	real     uint64
	parent   int32
	choice   int16
	expanded bool
}

// stored is a state waiting in the frontier: its roles' snapshots by number in a table of
// distinct snapshots (most roles are unchanged between neighbouring states, so most are
// shared), and the rest of the state as bytes.
type stored struct {
	roles []int32
	net   []byte
}

// entry is one expansion to do: a state and its node; a revisit expands only the choices
// in only, which an earlier expansion of the same state skipped as asleep.
type entry struct {
	st      stored
	node    int32
	revisit bool
	only    uint64
	sleep   uint64
}

// snapTable numbers distinct role snapshots, for the workers of one search at once: a
// snapshot's number says its shard (low bits) and its place there.
type snapTable struct {
	seed   maphash.Seed
	shards [snapShards]snapShard
}

const snapShards = 32

type snapShard struct {
	mu    sync.RWMutex
	ids   map[string]int32
	snaps [][]byte
}

func newSnapTable() *snapTable {
	t := &snapTable{seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].ids = map[string]int32{}
	}
	return t
}

func (t *snapTable) id(b []byte) int32 {
	k := int(maphash.Bytes(t.seed, b) % snapShards)
	sh := &t.shards[k]
	sh.mu.RLock()
	id, ok := sh.ids[string(b)]
	sh.mu.RUnlock()
	if ok {
		return id
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if id, ok := sh.ids[string(b)]; ok {
		return id
	}
	id = int32(len(sh.snaps)*snapShards + k)
	key := string(b)
	sh.ids[key] = id
	// The table holds each snapshot once: the map's key, viewed as bytes (never written).
	sh.snaps = append(sh.snaps, unsafe.Slice(unsafe.StringData(key), len(key)))
	return id
}

func (t *snapTable) snap(id int32) []byte {
	sh := &t.shards[id%snapShards]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.snaps[id/snapShards]
}

// choiceID names a choice across states: what it delivers, not where it is listed.
type choiceID struct {
	kind     ChoiceKind
	key      []byte
	leg, dir int
}

func (w *World) choiceID(c Choice, buf []byte) choiceID {
	id := choiceID{kind: c.Kind, leg: c.leg, dir: c.dir}
	if c.Kind == ChooseItem {
		id.key = append(buf[:0], w.net.bag[c.item].key...)
		id.leg, id.dir = 0, 0
	}
	return id
}

func (w *World) is(c Choice, id *choiceID) bool {
	if c.Kind != id.kind {
		return false
	}
	if c.Kind == ChooseItem {
		return bytes.Equal(w.net.bag[c.item].key, id.key)
	}
	return c.leg == id.leg && c.dir == id.dir
}

// errDynamicLeg stops a search with several workers when a leg appears that the worlds
// did not number in advance: each worker's world would number it on its own.
var errDynamicLeg = errors.New("proptest: a leg outside the expected ones appeared")

// child is a successor found by a worker: its fingerprint, the state, the choice that led
// to it and its sleep set.
type child struct {
	h     uint64
	real  uint64
	st    stored
	ci    int
	sleep uint64
}

// expansion is what a worker found expanding one frontier entry.
type expansion struct {
	end       bool
	violation *Violation
	violCI    int
	children  []child
	taken     int
	asleep    int
	plain     int
	err       error
}

// searcher is one worker: its own world, stepped through the frontier's states.
type searcher struct {
	w          *World
	cfg        Config
	opt        ExploreOptions
	table      *snapTable
	seed       maphash.Seed
	dep, must  [][]bool
	legs       int
	buf        []byte
	parent     memState
	actors     []int
	ids        []choiceID
	childSleep []*choiceID
	fps        []footprint
	canon      *canon
	// parentIDs are the snapshot numbers of the state being expanded (s.parent's), and
	// legEnc its legs' encodings: a successor differs from it in one or two roles and legs.
	parentIDs []int32
	legEnc    legEncCache
	// choices and next are buffers for the choices of the state expanded and of a successor.
	choices, next []Choice
	// probed holds the (role state, input) pairs the hostile probes tried (Config.Hostile),
	// hostile is their buffer.
	probed  map[string]struct{}
	hostile []hostileInput
}

// capture stores the world's current state and returns its fingerprint (up to symmetry,
// when the search uses symmetries) and the hash of the state itself.
func (s *searcher) capture() (uint64, uint64, stored) {
	real, st := s.captureReal()
	if s.canon != nil {
		if h, ok := s.canon.fingerprint(st.roles, st.net); ok {
			return h, real, st
		}
	}
	return real, real, st
}

// captureReal stores the world's current state and returns its hash, over the snapshot
// numbers and the rest: canonical, as equal snapshots get equal numbers.
func (s *searcher) captureReal() (uint64, stored) {
	w := s.w
	st := stored{roles: make([]int32, len(w.snaps))}
	s.buf = s.buf[:0]
	for i, sn := range w.snaps {
		if s.parentIDs != nil && bytes.Equal(sn, s.parent.snaps[i]) {
			st.roles[i] = s.parentIDs[i]
		} else {
			st.roles[i] = s.table.id(sn)
		}
		s.buf = binary.LittleEndian.AppendUint32(s.buf, uint32(st.roles[i]))
	}
	n := len(s.buf)
	s.buf = w.saveNet(s.buf)
	st.net = s.buf[n:]
	return maphash.Bytes(s.seed, s.buf), st
}

func (s *searcher) load(st stored) error {
	for i, id := range st.roles {
		if err := s.w.restoreRole(i, s.table.snap(id)); err != nil {
			return err
		}
	}
	return s.w.loadNet(st.net)
}

// expand takes the steps of one frontier entry that are not asleep. visited and nodes are
// only read: the merge, after every worker is done with the level, writes them.
func (s *searcher) expand(e entry, sleep uint64, visited map[uint64]int32, nodes []node) (x expansion) {
	w := s.w
	if x.err = s.load(e.st); x.err != nil {
		return x
	}
	w.saveMem(&s.parent)
	s.parentIDs = e.st.roles
	w.fillLegEnc(&s.legEnc, s.parent.net.legs)
	w.legEnc = &s.legEnc
	defer func() { s.parentIDs, w.legEnc = nil, nil }()
	s.choices = w.choicesInto(s.choices)
	choices := s.choices
	if len(choices) == 0 {
		if !e.revisit {
			x.end = true
			x.violation = w.quiescent()
			x.violCI = -1
			if x.violation == nil && s.cfg.Hostile {
				x.violation = w.probeHostile(s.probed, s.hostile[:0])
			}
		}
		return x
	}
	if !e.revisit && s.cfg.Hostile {
		if x.violation = w.probeHostile(s.probed, s.hostile[:0]); x.violation != nil {
			x.violCI = -1
			return x
		}
	}
	if len(choices) > 1<<15 {
		x.err = fmt.Errorf("proptest: %d choices in one state", len(choices))
		return x
	}
	if !e.revisit {
		x.plain = len(choices)
	}
	reduce := !s.opt.NoReduce
	// What each choice delivers and to whom, read in this state: the sleep sets of the
	// successors are made of them.
	s.actors = s.actors[:0]
	for len(s.ids) < len(choices) {
		s.ids = append(s.ids, choiceID{})
	}
	for len(s.fps) < min(len(choices), 64) {
		s.fps = append(s.fps, footprint{})
	}
	for i, c := range choices {
		s.actors = append(s.actors, w.actor(c))
		if reduce && i < 64 {
			s.ids[i] = w.choiceID(c, s.ids[i].key)
		}
	}
	actors, ids, fps := s.actors, s.ids, s.fps
	var done uint64
	applied := false
	for ci := range choices {
		var bit uint64
		if ci < 64 {
			bit = 1 << ci
		}
		if sleep&bit != 0 {
			x.asleep++
			continue
		}
		if e.revisit && e.only != ^uint64(0) && e.only&bit == 0 {
			continue
		}
		if applied {
			if x.err = w.loadMem(&s.parent); x.err != nil {
				return x
			}
			// The same list as before (the state is the parent again), into the same buffer.
			s.choices = w.choicesInto(s.choices)
			choices = s.choices
		}
		x.taken++
		applied = true
		if v := w.Apply(choices[ci]); v != nil {
			x.violation, x.violCI = v, ci
			return x
		}
		if len(w.legNames) != s.legs && s.opt.workers > 1 {
			x.err = errDynamicLeg
			return x
		}
		// The successor's sleep set: the choices asleep here that commute with this one
		// (roles that share no leg), and the choices taken before this one whose
		// footprint here commutes with its footprint.
		s.childSleep = s.childSleep[:0]
		if reduce && actors[ci] >= 0 && ci < 64 {
			w.footprintOf(&s.parent, actors[ci], choices[ci], &fps[ci])
			for j := 0; j < 64 && j < len(choices); j++ {
				a := actors[j]
				switch {
				case a < 0 || j == ci:
				case sleep&(1<<j) != 0 && !s.dep[a][actors[ci]]:
					s.childSleep = append(s.childSleep, &ids[j])
				case j < ci && done&(1<<j) != 0 && !s.must[a][actors[ci]] && commutes(&fps[j], &fps[ci]):
					s.childSleep = append(s.childSleep, &ids[j])
				}
			}
		}
		done |= bit
		h, real, st := s.capture()
		var mask uint64
		if len(s.childSleep) > 0 {
			s.next = w.choicesInto(s.next)
			for k, c := range s.next {
				if k == 64 {
					break
				}
				for _, id := range s.childSleep {
					if w.is(c, id) {
						mask |= 1 << k
						break
					}
				}
			}
		}
		// A state seen in an earlier level (or this one) whose sleep set this path would
		// not shrink needs nothing: leave it out before the merge.
		if idx, seen := visited[h]; seen && (nodes[idx].sleep == 0 || nodes[idx].real == real && nodes[idx].sleep&^mask == 0) {
			continue
		}
		st.net = append([]byte(nil), st.net...)
		x.children = append(x.children, child{h: h, real: real, st: st, ci: ci, sleep: mask})
	}
	return x
}

// Explore visits every interleaving of a configuration breadth first, with visited-state
// fingerprints, checking the step properties on every transition and the end properties
// in every quiescent state. Breadth first makes the first violation found one of the
// shortest; its path replays with Replay.
//
// The frontier of each level is expanded by opt.Workers workers (default GOMAXPROCS),
// each with its own world; their successors are merged in frontier order, so the verdict,
// the states and the counterexample do not depend on the number of workers.
//
// Unless opt.NoReduce, steps are pruned with sleep sets: after exploring step a and then
// step b from a state, where a and b commute, the search does not take a again after b,
// because b-then-a reaches the state a-then-b reached, through the same checks. Every
// state is still visited (each state keeps its sleep set, and a later path that reaches it
// with a smaller one expands the difference), so every end state is checked and every
// step property is checked on some step equal to each pruned one.
func Explore(cfg Config, opt ExploreOptions) (*ExploreResult, error) {
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	opt.workers = opt.Workers
	res, err := explore(cfg, opt)
	if errors.Is(err, errDynamicLeg) {
		opt.workers = 1
		return explore(cfg, opt)
	}
	return res, err
}

// exploreBatch is how many frontier entries are expanded before their successors are
// merged.
const exploreBatch = 4096

// expandBatch expands the entries of batch, entry i with sleep set sleeps[i], on every
// worker, into out (as long as batch). visited and nodes are only read. out ends after the
// first entry, in batch order, that found a violation or failed.
func expandBatch(workers []*searcher, batch []entry, sleeps []uint64, visited map[uint64]int32, nodes []node, out []expansion) []expansion {
	if len(workers) == 1 {
		for i, e := range batch {
			out[i] = workers[0].expand(e, sleeps[i], visited, nodes)
			if out[i].err != nil || out[i].violation != nil {
				return out[:i+1]
			}
		}
		return out
	}
	var nextIdx atomic.Int64
	var stop atomic.Int64
	stop.Store(int64(len(batch)))
	var wg sync.WaitGroup
	for _, s := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(nextIdx.Add(1) - 1)
				if i >= len(batch) || int64(i) > stop.Load() {
					return
				}
				out[i] = s.expand(batch[i], sleeps[i], visited, nodes)
				if out[i].err != nil || out[i].violation != nil {
					for {
						cur := stop.Load()
						if int64(i) >= cur || stop.CompareAndSwap(cur, int64(i)) {
							break
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	if n := int(stop.Load()); n < len(batch) {
		out = out[:n+1]
	}
	return out
}

func explore(cfg Config, opt ExploreOptions) (*ExploreResult, error) {
	start := time.Now()
	// The search allocates short-lived states at a high rate; collecting a little less
	// often is worth some memory, but not the fivefold peak of a lazy collector.
	defer debug.SetGCPercent(debug.SetGCPercent(150))
	if opt.MaxStates == 0 {
		opt.MaxStates = 5_000_000
	}
	res := &ExploreResult{Variant: cfg.Variant.Name, Members: cfg.Members, PFBs: cfg.PFBs, Chunks: cfg.Chunks, Reduced: !opt.NoReduce}
	table := newSnapTable()
	seed := maphash.MakeSeed()
	workers := make([]*searcher, opt.workers)
	strs := newStringTable()
	for i := range workers {
		w, err := NewWorld(cfg)
		if v := (*Violation)(nil); errors.As(err, &v) {
			// The sender's first step (Start) broke a property: the counterexample is
			// the empty path.
			res.Violation = v
			return res, nil
		}
		if err != nil {
			return nil, err
		}
		w.strs = &localStrings{t: strs, ids: map[string]uint64{}}
		workers[i] = &searcher{w: w, cfg: cfg, opt: opt, table: table, seed: seed, dep: dependence(cfg), must: alwaysDependent(cfg), legs: len(w.legNames), probed: map[string]struct{}{}}
		if !opt.NoReduce {
			workers[i].canon = newCanon(w, seed)
			if workers[i].canon != nil {
				res.Symmetries = len(workers[i].canon.syms)
			}
		}
	}
	h0, real0, root := workers[0].capture()
	root.net = append([]byte(nil), root.net...)
	visited := map[uint64]int32{h0: 0}
	nodes := []node{{parent: -1, choice: -1, real: real0}}
	frontier := []entry{{st: root, node: 0}}
	finish := func() {
		res.States = len(visited)
		res.Collision = CollisionProbability(len(visited), 64)
		res.Elapsed = time.Since(start)
	}
	found := func(parent int32, choice int, v *Violation) (*ExploreResult, error) {
		path := pathTo(nodes, parent)
		if choice >= 0 {
			path = append(path, choice)
		}
		res.Path = path
		trace, rv, err := Replay(cfg, path)
		if err != nil {
			return nil, err
		}
		if rv == nil || rv.Property != v.Property {
			return nil, fmt.Errorf("proptest: replaying %v gave %v, the search found %v", path, rv, v)
		}
		res.Violation, res.Trace = rv, trace
		finish()
		return res, nil
	}
	var out []expansion
	var sleeps []uint64
	for len(frontier) > 0 {
		// The sleep set of an entry is its node's as merged by the end of the level before:
		// read once, so that merging the level's first batches does not change what its
		// later batches expand.
		sleeps = sleeps[:0]
		for _, e := range frontier {
			if e.revisit {
				sleeps = append(sleeps, e.sleep)
			} else {
				sleeps = append(sleeps, nodes[e.node].sleep)
			}
		}
		levelEnd := int32(len(nodes))
		var next []entry
		// Expand and merge the level a batch at a time, in frontier order: the successors of
		// a whole level held at once were the search's peak of memory (FIG. 5 at 3 / 2: 930 MB
		// live at the end of its large levels, 170-450 MB between them). A batch's
		// expansions read the visited set as merged so far, which only leaves out more of
		// the successors whose merge would change nothing.
		for lo := 0; lo < len(frontier); lo += exploreBatch {
			batch := frontier[lo:min(lo+exploreBatch, len(frontier))]
			if cap(out) < len(batch) {
				out = make([]expansion, len(batch))
			}
			out = expandBatch(workers, batch, sleeps[lo:], visited, nodes, out[:len(batch)])
			// Merge in frontier order.
			for i := range out {
				x := &out[i]
				e := batch[i]
				if x.err != nil {
					return nil, x.err
				}
				if !e.revisit {
					nodes[e.node].expanded = true
				}
				res.Transitions += x.taken
				res.PlainTransitions += x.plain
				res.Asleep += x.asleep
				if x.end {
					res.EndStates++
				}
				for _, c := range x.children {
					if idx, seen := visited[c.h]; seen {
						old := &nodes[idx]
						if old.real != c.real {
							// The same state up to symmetry, its choices in another order: the
							// sleep sets cannot be compared, so the state is expanded in full
							// (again, from this arrival, if it was expanded already).
							if old.sleep != 0 && idx < levelEnd {
								// The arrival, not the state first reached, is expanded: it
								// gets a node of its own (outside the visited set), so that a
								// violation found there has a path that replays.
								old.sleep = 0
								nodes = append(nodes, node{parent: e.node, choice: int16(c.ci), real: c.real, expanded: true})
								next = append(next, entry{st: c.st, node: int32(len(nodes) - 1), revisit: true, only: ^uint64(0)})
								res.Revisits++
							}
							nodes[idx].sleep = 0
							continue
						}
						if idx >= levelEnd {
							// Waiting in the next level: it will be expanded with the
							// smaller sleep set.
							old.sleep &= c.sleep
							continue
						}
						if skipped := old.sleep &^ c.sleep; skipped != 0 {
							// Reached again with a smaller sleep set: the steps the first
							// expansion skipped, and this path does not, must be taken too.
							old.sleep &= c.sleep
							next = append(next, entry{st: c.st, node: idx, revisit: true, only: skipped, sleep: old.sleep})
							res.Revisits++
						}
						continue
					}
					if len(visited) >= opt.MaxStates {
						res.Truncated = true
						continue
					}
					visited[c.h] = int32(len(nodes))
					nodes = append(nodes, node{parent: e.node, choice: int16(c.ci), sleep: c.sleep, real: c.real})
					next = append(next, entry{st: c.st, node: int32(len(nodes) - 1)})
				}
				if x.violation != nil {
					return found(e.node, x.violCI, x.violation)
				}
				out[i] = expansion{}
				// Expanded: its state is no longer needed.
				batch[i].st = stored{}
			}
		}
		frontier = next
	}
	finish()
	return res, nil
}

func pathTo(nodes []node, i int32) []int {
	var rev []int
	for i > 0 {
		rev = append(rev, int(nodes[i].choice))
		i = nodes[i].parent
	}
	out := make([]int, len(rev))
	for j := range rev {
		out[j] = rev[len(rev)-1-j]
	}
	return out
}

// startStep is the first step of every run: the user hands ClientA (roleAt's "clientA")
// the message for the group (S101).
func startStep() Step {
	return Step{From: "clientA", To: "clientA", Label: "send the message to " + GroupURI, Note: true}
}

// Replay runs a path of choice indexes from the initial state and returns the steps taken
// and the violation it ends in (nil if none). At the end of the path, a state with no
// choices is checked as quiescent.
func Replay(cfg Config, path []int) ([]Step, *Violation, error) {
	w, err := NewWorld(cfg)
	if v := (*Violation)(nil); errors.As(err, &v) && len(path) == 0 {
		return []Step{startStep()}, v, nil
	}
	if err != nil {
		return nil, nil, err
	}
	log := []Step{startStep()}
	w.SetLog(&log)
	for n, ci := range path {
		choices := w.Choices()
		if ci < 0 || ci >= len(choices) {
			return log, nil, fmt.Errorf("proptest: path step %d: choice %d of %d", n, ci, len(choices))
		}
		if v := w.Apply(choices[ci]); v != nil {
			w.blame()
			return log, v, nil
		}
	}
	if len(w.Choices()) == 0 {
		if v := w.quiescent(); v != nil || !cfg.Hostile {
			return log, v, nil
		}
	}
	if cfg.Hostile {
		return log, w.probeHostile(nil, nil), nil
	}
	return log, nil, nil
}

// Run drives a world with a scheduler until nothing can happen, and checks the end. pick
// chooses among the current choices (rapid's draw, or a fixed policy); it may instead
// return -1 after duplicating a message through w.Duplicate. The run stops with an error
// after maxSteps deliveries, which only a livelock can reach.
func Run(w *World, pick func(w *World, choices []Choice) int, maxSteps int) *Violation {
	var probed map[string]struct{} // the foreign offers probed this run (ForeignOffers)
	if w.cfg.ForeignOffers {
		probed = map[string]struct{}{}
	}
	for n := 0; n < maxSteps; n++ {
		choices := w.Choices()
		if len(choices) == 0 {
			return w.quiescent()
		}
		i := pick(w, choices)
		if i < 0 {
			continue
		}
		if v := w.Apply(choices[i]); v != nil {
			w.blame()
			return v
		}
		if w.cfg.ForeignOffers {
			if v := w.probeForeignOffers(probed); v != nil {
				return v
			}
		}
	}
	return &Violation{PropDeadlock, fmt.Sprintf("still busy after %d deliveries: a livelock", maxSteps)}
}
