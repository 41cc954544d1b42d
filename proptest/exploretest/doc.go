// Package exploretest holds proptest's longest exhaustive tests: every named variant
// explored in every interleaving, and the check that the number of workers does not
// change what a search finds.
//
// They are a package of their own so that they get go test's ten-minute budget per
// package to themselves: with them, proptest took 404 s of it in CI and ran out of it
// on two cores shared with `cpmlink map` and a mutation run. The package has no code of
// its own; its tests import only proptest, fsm and fsm/core of cpmlink.
package exploretest
