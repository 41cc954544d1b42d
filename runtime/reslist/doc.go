// Package reslist is the body of an ad-hoc group INVITE for cpmlink: the
// member list as application/resource-lists+xml (RFC 4826 §3.2, used as a
// recipient list by RFC 5366) and the multipart/mixed body (RFC 2046 §5.1)
// that carries it next to the SDP:
//
//	Content-Type: multipart/mixed;boundary=...
//
//	--...
//	Content-Type: application/sdp
//
//	v=0 ...
//	--...
//	Content-Type: application/resource-lists+xml
//	Content-Disposition: recipient-list
//
//	<?xml version="1.0" encoding="UTF-8"?>
//	<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">
//	  <list>
//	    <entry uri="sip:bob@b.example"/>
//	  </list>
//	</resource-lists>
//	--...--
//
// [Marshal] and [Parse] handle the list, [MarshalMultipart] and
// [ParseMultipart] the body. Both parsers take hostile input: sizes and
// counts are bounded before anything is allocated for them, DTDs (and with
// them entity expansion) are refused, and nesting is capped.
//
// It must never import github.com/cpmlink/cpmlink/fsm, model, proptest or any
// other runtime package: it is a leaf that the runtime calls.
package reslist
