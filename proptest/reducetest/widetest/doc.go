// Package widetest holds reducetest's comparison of the plain and the reduced search at
// two members (over one PF-B and over two), where the symmetries are: the seven figures,
// both searches side by side.
//
// It is a package of its own so that it gets go test's ten-minute budget per package to
// itself: with every size in reducetest, that package took 599 s of it under CI's load.
// The package has no code of its own; its test imports only reducetest.
package widetest
