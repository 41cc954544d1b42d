// Package msrpsdp is the MSRP media description in SDP for cpmlink: the one
// "m=message" section a large-message-mode INVITE and its answer carry
// (RFC 4975 §8, RFC 6135 a=setup, OMA CPM large message mode), turned into a
// [Media] value and back.
//
// [Marshal] writes a complete session description (v=, o=, s=, c=, t=, m= and
// the a= lines) with CRLF line ends, on github.com/pion/sdp/v3. [Parse] is
// strict: anything it accepts, [Marshal] writes again, and every rejection is
// an [*Error] that wraps [ErrInvalid] and carries a warn-code and a reason fit
// for the Warning header of a SIP 488 (RFC 3261 §20.43).
//
// The package only describes the media; it does not decide who connects
// (that is the generated role machines' job) and does not parse MSRP URIs
// beyond scheme, host, port, session-id and transport.
//
// It must never import github.com/cpmlink/cpmlink/fsm, model, proptest or any
// other runtime package (runtime/msrp included): it is a leaf that the
// runtime calls, never the other way round (DESIGN.md §3).
package msrpsdp
