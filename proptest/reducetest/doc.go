// Package reducetest holds the test that proptest's reduced search (sleep sets, symmetry,
// fingerprints) keeps every verdict of the plain search: every named variant and every
// planted bug of proptest/testdata/broken.yaml, both searches side by side, at sizes where
// both finish.
//
// It is a package of its own so that it and proptest's other exhaustive tests each get go
// test's ten-minute budget per package: together they took up to 592 s of it on two
// shared cores. Its test runs one member; widetest runs two, with KeepsVerdicts, its only
// code, which imports only proptest, fsm and fsm/core of cpmlink, never its runtime
// packages.
package reducetest
