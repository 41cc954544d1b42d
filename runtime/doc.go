// Package runtime drives the generated role state machines of package fsm
// over real SIP, SDP and MSRP sockets.
//
// It must never hold protocol logic of its own: every decision is taken by the
// generated FSMs; the runtime only turns socket input into events and carries
// out the actions the FSMs return.
package runtime
