// Package reducefaulttest holds the test that proptest's reduced search keeps every
// verdict of the plain search when faults are in play: the planted fault-path bugs of
// proptest/testdata/broken.yaml with their fault budget, and every named variant with a
// member that declines or never answers, both searches side by side.
//
// It is a package of its own, as reducetest is, so that it gets go test's ten-minute
// budget per package to itself: in proptest it took 129 s of a package that reached 527 s
// on two shared cores. The package has no code of its own; its test imports only proptest,
// proptest/reducetest (whose Compare it shares) and fsm of cpmlink, never its runtime
// packages.
package reducefaulttest
