// Package proptest checks that the generated role machines of package fsm establish the
// four MSRP hops and deliver the message, in every interleaving: a simulated network (no
// sockets) instantiates the roles for a group of N members over M terminating PFs, carries
// SIP messages (an unordered bag, routed by the SIP/IP core), connection attempts and MSRP
// frames (in order per link direction) between them, and lets a scheduler choose what
// happens next.
//
// Two schedulers drive it: Explore visits every interleaving of small groups breadth
// first, with visited-state hashing, and reports a shortest counterexample; the rapid tests
// let pgregory.net/rapid choose schedules, duplicate SIP messages and inject faults for
// larger groups. Both check the properties of DESIGN §4 with checkers that read the wire,
// not the machines' own state.
//
// Package proptest drives fsm; it must never import runtime.
package proptest

// docs/variants.md is generated from the spec and the generated code; the directive lives
// here because proptest sorts after fsm, so `go generate ./...` regenerates fsm first.
//go:generate go run ../cmd/cpmlink docs --out ../docs
