// Package core holds the hand-written pieces that every generated role machine uses: the
// wrapper that runs one spec machine on looplab/fsm with explicit ignore and reject cells,
// the value types that events and actions carry (LegID, SDP, Outcome ...), the derivation
// of a role's own MSRP parameters, group resolution and the transmitter's result table.
//
// Everything here is pure: no goroutines, sockets, clocks or randomness. Session ids are
// derived from a configured secret, so that the simulator is deterministic and the runtime
// (which passes a random secret) is unguessable.
//
// Package core must never import fsm, runtime, proptest or model: generated code depends
// on it, not the other way round.
package core
