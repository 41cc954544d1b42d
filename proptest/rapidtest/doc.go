// Package rapidtest holds proptest's rapid property tests: every named variant under
// schedules, retransmissions, delays and member faults that rapid draws for groups larger
// than the explorer covers, and the check that rapid finds every planted bug of
// proptest/testdata/broken.yaml and shrinks it to one member.
//
// They are a package of their own so that they and proptest's exhaustive tests each get
// go test's ten-minute budget per package: together they took up to 542 s of it on two
// shared cores. The package has no code of its own; its tests import only proptest, fsm and
// model of cpmlink, never its runtime packages.
package rapidtest
