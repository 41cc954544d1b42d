package proptest

import (
	"runtime"
	"sync"

	"github.com/cpmlink/cpmlink/fsm"
)

// KnobSpace enumerates every combination of knob values the generated code knows, in a
// stable order (the last knob key varies fastest), and returns the possible ones (those
// Variant.Check accepts) and how many were impossible.
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
		if v.Check() == nil {
			possible = append(possible, v)
		} else {
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
// each one's class in the order given. progress, if not nil, is called after each.
func Classify(vs []fsm.Variant, members, pfbs, chunks int, progress func(done int)) ([]Class, error) {
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
				r, err := Explore(Config{Variant: vs[i], Members: members, PFBs: pfbs, Chunks: chunks}, ExploreOptions{})
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
					progress(done)
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
