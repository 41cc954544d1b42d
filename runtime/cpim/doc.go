// Package cpim is message/cpim (RFC 3862) for cpmlink: the wrapper around
// the large message a ClientA sends over MSRP (OMA CPM large message mode
// wraps every message in CPIM; RFC 4975 §8.6 a=accept-types:message/cpim).
//
// A message/cpim body is a block of CPIM message headers (From, To,
// DateTime, NS and namespaced headers such as imdn.Message-ID), a blank
// line, the MIME headers of the encapsulated object (Content-Type, optional
// Content-Length), another blank line, then the payload:
//
//	From: <sip:alice@a.example>
//	To: <sip:friends@cf.example>
//	DateTime: 2024-05-01T12:00:00Z
//	NS: imdn <urn:ietf:params:imdn>
//	imdn.Message-ID: 34jk324j
//
//	Content-Type: application/octet-stream
//	Content-Length: 5242880
//
//	<5242880 bytes>
//
// Payloads run to gigabytes, so nothing here buffers one: [Wrap] streams the
// header bytes and then the payload, and [Read] parses the two header blocks
// with bounded reads ([MaxHeaderBytes]) and hands back the rest of the stream
// as the payload.
//
// It must never import github.com/cpmlink/cpmlink/fsm, model, proptest or any
// other runtime package: it is a leaf that the runtime calls.
package cpim
