package proptest

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"runtime/debug"
	"time"
)

// ExploreOptions bound an exhaustive exploration.
type ExploreOptions struct {
	// MaxStates stops the search after this many distinct states (0: 5 million). A search
	// that stops early reports Truncated and proves nothing about the states it skipped.
	MaxStates int
}

// ExploreResult is what an exhaustive exploration found.
type ExploreResult struct {
	Variant     string `json:"variant"`
	Members     int    `json:"members"`
	PFBs        int    `json:"pfbs"`
	Chunks      int    `json:"chunks"`
	States      int    `json:"states"`
	Transitions int    `json:"transitions"`
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

type node struct {
	parent int32
	choice int16
}

// stored is a state waiting in the frontier: its roles' snapshots by number in a table of
// distinct snapshots (most roles are unchanged between neighbouring states, so most are
// shared), and the rest of the state as bytes.
type stored struct {
	roles []int32
	net   []byte
}

// snapTable numbers distinct role snapshots.
type snapTable struct {
	ids   map[string]int32
	snaps [][]byte
}

func (t *snapTable) id(b []byte) int32 {
	if id, ok := t.ids[string(b)]; ok {
		return id
	}
	id := int32(len(t.snaps))
	t.snaps = append(t.snaps, append([]byte(nil), b...))
	t.ids[string(b)] = id
	return id
}

// Explore visits every interleaving of a configuration breadth first, with visited-state
// hashing, checking the step properties on every transition and the end properties in
// every quiescent state. Breadth first makes the first violation found one of the
// shortest; its path replays with Replay.
func Explore(cfg Config, opt ExploreOptions) (*ExploreResult, error) {
	start := time.Now()
	// The search allocates short-lived states at a high rate; collecting less often is
	// worth the memory.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	if opt.MaxStates == 0 {
		opt.MaxStates = 5_000_000
	}
	w, err := NewWorld(cfg)
	if err != nil {
		return nil, err
	}
	res := &ExploreResult{Variant: cfg.Variant.Name, Members: cfg.Members, PFBs: cfg.PFBs, Chunks: cfg.Chunks}
	seed := maphash.MakeSeed()
	table := snapTable{ids: map[string]int32{}}
	var buf []byte
	// capture stores the current state and returns its hash, over the snapshot numbers
	// and the rest: canonical, as equal snapshots get equal numbers.
	capture := func() (uint64, stored) {
		st := stored{roles: make([]int32, len(w.snaps))}
		buf = buf[:0]
		for i, s := range w.snaps {
			st.roles[i] = table.id(s)
			buf = binary.LittleEndian.AppendUint32(buf, uint32(st.roles[i]))
		}
		n := len(buf)
		buf = w.saveNet(buf)
		st.net = buf[n:]
		return maphash.Bytes(seed, buf), st
	}
	h0, root := capture()
	root.net = append([]byte(nil), root.net...)
	visited := map[uint64]int32{h0: 0}
	nodes := []node{{parent: -1, choice: -1}}
	frontier, frontierIdx := []stored{root}, []int32{0}
	load := func(st stored) error {
		for i, id := range st.roles {
			if err := w.restoreRole(i, table.snaps[id]); err != nil {
				return err
			}
		}
		return w.loadNet(st.net)
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
		res.States = len(nodes)
		res.Elapsed = time.Since(start)
		return res, nil
	}
	var parent memState
	for len(frontier) > 0 {
		var next []stored
		var nextIdx []int32
		for fi, st := range frontier {
			if err := load(st); err != nil {
				return nil, err
			}
			w.saveMem(&parent)
			choices := w.Choices()
			if len(choices) == 0 {
				res.EndStates++
				if v := w.quiescent(); v != nil {
					return found(frontierIdx[fi], -1, v)
				}
				continue
			}
			if len(choices) > 1<<15 {
				return nil, fmt.Errorf("proptest: %d choices in one state", len(choices))
			}
			for ci := range choices {
				if ci > 0 {
					if err := w.loadMem(&parent); err != nil {
						return nil, err
					}
					choices = w.Choices()
				}
				res.Transitions++
				if v := w.Apply(choices[ci]); v != nil {
					return found(frontierIdx[fi], ci, v)
				}
				h, child := capture()
				if _, seen := visited[h]; seen {
					continue
				}
				if len(nodes) >= opt.MaxStates {
					res.Truncated = true
					continue
				}
				visited[h] = int32(len(nodes))
				nodes = append(nodes, node{parent: frontierIdx[fi], choice: int16(ci)})
				child.net = append([]byte(nil), child.net...)
				next = append(next, child)
				nextIdx = append(nextIdx, int32(len(nodes)-1))
			}
		}
		frontier, frontierIdx = next, nextIdx
	}
	res.States = len(nodes)
	res.Elapsed = time.Since(start)
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

// Replay runs a path of choice indexes from the initial state and returns the steps taken
// and the violation it ends in (nil if none). At the end of the path, a state with no
// choices is checked as quiescent.
func Replay(cfg Config, path []int) ([]Step, *Violation, error) {
	w, err := NewWorld(cfg)
	if err != nil {
		return nil, nil, err
	}
	log := []Step{{From: w.names[idxClientA], To: w.names[idxClientA], Label: "send the message to " + GroupURI, Note: true}}
	w.SetLog(&log)
	for n, ci := range path {
		choices := w.Choices()
		if ci < 0 || ci >= len(choices) {
			return log, nil, fmt.Errorf("proptest: path step %d: choice %d of %d", n, ci, len(choices))
		}
		if v := w.Apply(choices[ci]); v != nil {
			return log, v, nil
		}
	}
	if len(w.Choices()) == 0 {
		return log, w.quiescent(), nil
	}
	return log, nil, nil
}

// Run drives a world with a scheduler until nothing can happen, and checks the end. pick
// chooses among the current choices (rapid's draw, or a fixed policy); it may instead
// return -1 after duplicating a message through w.Duplicate. The run stops with an error
// after maxSteps deliveries, which only a livelock can reach.
func Run(w *World, pick func(w *World, choices []Choice) int, maxSteps int) *Violation {
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
			return v
		}
	}
	return &Violation{PropDeadlock, fmt.Sprintf("still busy after %d deliveries: a livelock", maxSteps)}
}
