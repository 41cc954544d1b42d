// Package sipx is the SIP transport layer of the cpmlink runtime: a thin,
// callback-driven SIP endpoint and a stateless routing proxy built on
// github.com/emiago/sipgo.
//
// The runtime driver of each role instance (ClientA, PF-A, CF, PF-B, ClientB)
// owns one Endpoint. Protocol decisions — whom to INVITE, when to answer, when
// to ACK — are taken by the generated state machines of package fsm; sipx only
// carries them out on the wire and reports what arrives. It therefore never
// decides on its own when a decision belongs to the driver: an incoming INVITE
// is held (its server transaction stays open, RFC 3261 §17.2.1) until the
// driver calls Answer or Reject, and a 2xx to an INVITE we sent is ACKed only
// when the driver calls Ack (RFC 3261 §13.2.2.4).
//
// What sipx does take care of is the SIP machinery below the decisions:
// dialog identifiers and CSeq numbering (RFC 3261 §12), route sets and remote
// targets (§12.1, §16.12), 2xx retransmission until the ACK arrives (§13.3.1.4),
// the 1300-byte rule that moves large requests from UDP to TCP (§18.1.1),
// CANCEL sequencing (§9.1), multipart/mixed bodies for ad-hoc groups
// (RFC 5366), a small registrar with a location service (§10) that may live in
// a bbolt file across restarts, digest authentication (§22, RFC 7616, RFC 8760)
// as a server and as a client, the RFC 3325 trust domain that decides whose
// P-Asserted-Identity is believed, the SIP/IP core between roles (Proxy, a
// stateless proxy per §16.11), SIP over TLS (§26, sips: per RFC 5630,
// certificates checked per RFC 5922) and locating next hops per RFC 3263
// (Resolver: DNS SRV and A/AAAA, a static table or a hosts table), with
// failover to the next target (§4.3).
//
// Callbacks of a Handler are delivered from one goroutine per Endpoint, in the
// order the endpoint accepted the messages; an INVITE's callback always comes
// before any other callback of its leg. Callbacks must return quickly.
//
// sipx must never import fsm, model, proptest or other runtime packages: it is
// the SIP adapter of DESIGN.md §3 rule 5 and knows nothing about roles.
package sipx
