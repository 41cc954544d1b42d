package proptest

import (
	"runtime"
	"sync"

	"github.com/cpmlink/cpmlink/fsm"
)

// KnobSpace enumerates every combination of knob values the generated code knows, in a
// stable order (the last knob key varies fastest), and returns the possible ones (those
// Variant.Check accepts) and how many were impossible. The per-hop initiative knob is
// enumerated as the figures use it, so that the map stays the size of the opener and
// trigger space: negotiated on every hop with a client end (a standard client must be
// followed there), and preset or negotiated on the hops between servers together.
func KnobSpace() (possible []fsm.Variant, impossible int) {
	keys := fsm.KnobKeys
	idx := make([]int, len(keys))
	for {
		var v fsm.Variant
		for i, k := range keys {
			if err := v.Set(k, fsm.KnobValues(k)[idx[i]]); err != nil {
				panic(err)
			}
		}
		switch {
		case !mappedInitiative(v):
		case v.Check() == nil:
			possible = append(possible, v)
		default:
			impossible++
		}
		i := len(keys) - 1
		for ; i >= 0; i-- {
			idx[i]++
			if idx[i] < len(fsm.KnobValues(keys[i])) {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			return possible, impossible
		}
	}
}

// Class is how a point of the knob space fared in exhaustive exploration.
type Class struct {
	Variant fsm.Variant
	// Result is "live", "deadlock", or the name of another violated property.
	Result string
	Detail string
	States int
}

// Classify explores every variant for one configuration shape, in parallel, and reports
// each one's class in the order given. progress, if not nil, is called after each with
// how many are done and the index and class of the one just done, one call at a time.
func Classify(vs []fsm.Variant, members, pfbs, chunks int, progress func(done, i int, c Class)) ([]Class, error) {
	out := make([]Class, len(vs))
	errs := make([]error, len(vs))
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r, err := Explore(Config{Variant: vs[i], Members: members, PFBs: pfbs, Chunks: chunks}, ExploreOptions{Workers: 1})
				if err != nil {
					errs[i] = err
					continue
				}
				c := Class{Variant: vs[i], Result: "live", States: r.States}
				switch {
				case r.Violation != nil:
					c.Result, c.Detail = r.Violation.Property, r.Violation.Detail
				case r.Truncated:
					c.Result = "truncated"
				}
				out[i] = c
				if progress != nil {
					mu.Lock()
					done++
					progress(done, i, c)
					mu.Unlock()
				}
			}
		}()
	}
	for i := range vs {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// mappedInitiative reports whether a variant's initiative is one the map covers: negotiated
// on the hops with a client end, the same on the others.
func mappedInitiative(v fsm.Variant) bool {
	between := -1
	for h := fsm.Hop(0); h < fsm.NumHops; h++ {
		client := fsm.HopEnds[h][0] == fsm.RoleClientA || fsm.HopEnds[h][1] == fsm.RoleClientB
		switch {
		case client && v.Initiative[h] != fsm.InitiativeNegotiated:
			return false
		case client:
		case between < 0:
			between = int(v.Initiative[h])
		case between != int(v.Initiative[h]):
			return false
		}
	}
	return true
}
