package reslist

// rfc5366List, rfc5366SDP and rfc5366Body are the INVITE body of the
// example in RFC 5366 §4 (SDP abridged, CRLF line ends as on the wire).
const rfc5366List = `<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"
 xmlns:cp="urn:ietf:params:xml:ns:copycontrol">
 <list>
   <entry uri="sip:bill@example.com" cp:copyControl="to" />
   <entry uri="sip:randy@example.net" cp:copyControl="to"
     cp:anonymize="true"/>
   <entry uri="sip:eddy@example.com" cp:copyControl="to"
     cp:anonymize="true"/>
   <entry uri="sip:joe@example.org" cp:copyControl="cc" />
   <entry uri="sip:carol@example.net" cp:copyControl="cc"
     cp:anonymize="true"/>
   <entry uri="sip:ted@example.net" cp:copyControl="bcc" />
   <entry uri="sip:andy@example.com" cp:copyControl="bcc" />
 </list>
</resource-lists>
`

var rfc5366URIs = []string{
	"sip:bill@example.com", "sip:randy@example.net", "sip:eddy@example.com", "sip:joe@example.org",
	"sip:carol@example.net", "sip:ted@example.net", "sip:andy@example.com",
}

const rfc5366SDP = "v=0\r\n" +
	"o=example 2890844526 2890842807 IN IP4 atlanta.example.com\r\n" +
	"s=-\r\n" +
	"c=IN IP4 192.0.2.1\r\n" +
	"t=0 0\r\n" +
	"m=audio 20000 RTP/AVP 0\r\n" +
	"a=rtpmap:0 PCMU/8000\r\n"

const rfc5366ContentType = `multipart/mixed;boundary="boundary1"`

const rfc5366Body = "--boundary1\r\n" +
	"Content-Type: application/sdp\r\n" +
	"\r\n" +
	rfc5366SDP +
	"\r\n--boundary1\r\n" +
	"Content-Type: application/resource-lists+xml\r\n" +
	"Content-Disposition: recipient-list\r\n" +
	"\r\n" +
	rfc5366List +
	"\r\n--boundary1--\r\n"
