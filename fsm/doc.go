// Package fsm holds the role machines generated from the spec (model/cpmlink.yaml): one
// type per role (ClientA, PFA, CF, PFB, ClientB) with a pure Step function that takes an
// event and returns the actions to carry out. The runtime drives them over real SIP, SDP
// and MSRP sockets; the simulator and the explorer in proptest drive the very same code
// through every interleaving.
//
// Every *_gen.go file is generated: edit the spec and run `go generate ./...`.
//
// Package fsm must never import runtime, proptest or model: it is the pure core.
package fsm

//go:generate go run github.com/cpmlink/cpmlink/gen/fsmgen -spec ../model/cpmlink.yaml -out .
