// Package runtime drives the generated role state machines of package fsm
// over real SIP, SDP and MSRP sockets: one role instance is one Node.
//
// It must never hold protocol logic of its own: every decision is taken by the
// generated FSMs; the runtime only turns socket input into events and carries
// out the actions the FSMs return. Deployments (configuration files, their
// validation, which instances a process runs, role processes) are package
// runtime/deploy's, which imports this one; runtime must never import it, nor
// proptest.
package runtime
