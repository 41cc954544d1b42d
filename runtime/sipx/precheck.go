package sipx

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"
)

// The pre-check sits on the read path of every listener, between the socket
// and sipgo's parser. sipgo drops a request it cannot parse without a word over
// UDP and closes the connection over TCP/TLS; it parses SIP/7.0 as if it were
// SIP/2.0, routes any Request-URI scheme, and does not compare the CSeq method
// with the request's. RFC 3261 and RFC 4475 want an answer instead: 400 for a
// malformed request (§8.2, §16.3 step 1), 505 for a version we do not speak
// (§8.2.2 … §21.5.7), 416 for an unsupported URI scheme (§8.2.2.1, §16.3 step
// 2), and on a stream the connection kept as long as the framing survives.
//
// So each message is framed here (a datagram is one message, §18.3; on a
// stream the empty line and Content-Length delimit it), checked on its raw
// text, and either answered here — 400/416/505 with the Via, From, To, Call-ID
// and CSeq copied (§8.2.6) — or handed on. A request whose header fields carry
// linear white space around ";", "=" and "," (allowed by §7.3.1 and §25.1,
// and which sipgo does not strip: RFC 4475's wsinv) is handed on with that
// white space removed. Responses pass untouched.
//
// Nothing here allocates by a length the peer announces: a stream's buffer
// grows with the bytes that arrived, up to maxMessage, and a message larger
// than that ends the connection.

// maxMessage is the largest message read, sipgo's own limit.
const maxMessage = 65535

// precheck returns the bytes to hand to sipgo (nil: none) and, when the
// message is refused, the response to send and where it goes.
type verdict struct {
	status int
	reason string
}

// checked is a framed request's outcome.
type checked struct {
	pass   []byte  // to sipgo; nil when refused or dropped
	answer []byte  // our response; nil when none
	via    viaAddr // where the answer goes (UDP)
}

// viaAddr is the top Via's port and whether it asks for rport (RFC 3581):
// a UDP response goes to the source IP and this port, or the source port.
type viaAddr struct {
	port  int
	rport bool
}

// header is one header field of the raw text, unfolded.
type rawHeader struct {
	name, value string
}

// checkMessage checks one framed message (head without the empty line, and
// its body).
func checkMessage(head, body []byte) checked {
	if bytes.HasPrefix(head, []byte("SIP/")) {
		return checked{pass: joinMessage(head, body)} // a response
	}
	return checkRequestLines(head, unfold(head), body)
}

// checkRequestLines is checkMessage for a request whose head is already unfolded
// into lines: the stream reader unfolds once for the Content-Length and the check.
func checkRequestLines(head []byte, lines []string, body []byte) checked {
	start := lines[0]
	hs := make([]rawHeader, 0, len(lines)-1)
	malformed := ""
	// plain: every header field is one line written "Name: value", so that
	// normalize would give the head back unchanged, and is spared.
	plain := len(lines) == bytes.Count(head, []byte("\r\n"))+1
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		name = strings.TrimRight(name, " \t")
		if !ok || !isToken(name) {
			malformed = "Malformed Header Field"
			continue
		}
		value = strings.Trim(value, " \t")
		if plain && (len(l) != len(name)+2+len(value) || l[len(name)] != ':' || l[len(name)+1] != ' ') {
			plain = false
		}
		hs = append(hs, rawHeader{name: name, value: value})
	}
	method, _, _ := strings.Cut(start, " ")
	v := checkRequest(start, hs)
	if v.status == 0 && malformed != "" {
		v = verdict{400, malformed}
	}
	out := checked{via: topVia(hs)}
	if v.status == 0 {
		var pass []byte
		if plain && !needsStrip(hs) {
			pass = joinMessage(head, body)
		} else {
			pass = joinMessage(normalize(start, hs), body)
		}
		if _, err := sip.ParseMessage(append([]byte(nil), pass...)); err == nil {
			out.pass = pass
			return out
		}
		v = verdict{400, "Malformed Request"}
	}
	if method == "ACK" || !hasHeader(hs, "via", "v") {
		return out // dropped: an ACK is never answered, and without Via there is no way back
	}
	out.answer = precheckAnswer(v, hs)
	return out
}

// checkRequest checks the request line (RFC 3261 §7.1, §25.1) and the header
// fields every request must have once (§8.1.1, §20).
func checkRequest(start string, hs []rawHeader) verdict {
	parts := strings.Split(start, " ")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return verdict{400, "Malformed Request-Line"}
	}
	method, uri, version := parts[0], parts[1], parts[2]
	if !isToken(method) {
		return verdict{400, "Malformed Method"}
	}
	if version != "SIP/2.0" {
		if isSIPVersion(version) {
			return verdict{505, "Version Not Supported"}
		}
		return verdict{400, "Malformed SIP-Version"}
	}
	scheme, rest, ok := strings.Cut(uri, ":")
	if !ok || !isScheme(scheme) {
		return verdict{400, "Malformed Request-URI"}
	}
	if s := strings.ToLower(scheme); s != "sip" && s != "sips" {
		return verdict{416, "Unsupported URI Scheme"}
	}
	// Header fields are not allowed in a Request-URI (§19.1.1 Table 1). A
	// "?" may stand in the user part (user-unreserved), so look after it.
	if _, hostpart, found := strings.Cut(rest, "@"); found && strings.Contains(hostpart, "?") || !found && strings.Contains(rest, "?") {
		return verdict{400, "Header Fields In Request-URI"}
	}
	// once lists the fields a request carries at most once (§20), counted by
	// index, not by map; once[1:5] are also the four it must carry (§8.1.1).
	once := [...]string{"content-length", "cseq", "call-id", "from", "to", "max-forwards"}
	var counts [len(once)]int
	for _, h := range hs {
		n := canonicalName(h.name)
		if i := slices.Index(once[:], n); i >= 0 {
			counts[i]++
		}
		switch n {
		case "content-length":
			if !isDigits(h.value) {
				return verdict{400, "Bad Content-Length"}
			}
		case "cseq":
			num, m, _ := strings.Cut(h.value, " ")
			n, err := strconv.ParseUint(num, 10, 32)
			if !isDigits(num) || err != nil || n >= 1<<31 {
				return verdict{400, "Bad CSeq"} // §8.1.1.5: less than 2**31
			}
			if strings.Trim(m, " \t") != method {
				return verdict{400, "CSeq Method Does Not Match"} // §8.1.1.5
			}
		case "max-forwards":
			if !isDigits(h.value) {
				return verdict{400, "Bad Max-Forwards"}
			}
		}
	}
	for i, n := range once {
		if counts[i] > 1 {
			return verdict{400, "Multiple " + n + " Values"}
		}
	}
	for i, n := range once[1:5] { // cseq, call-id, from, to
		if counts[i+1] == 0 {
			return verdict{400, "Missing " + n}
		}
	}
	return verdict{}
}

// usualNames maps the spellings of header names that every set-up carries to
// canonicalName's answer, which otherwise lower-cases (allocates) per field.
var usualNames = map[string]string{"Via": "via", "From": "from", "To": "to", "Call-ID": "call-id",
	"CSeq": "cseq", "Contact": "contact", "Content-Length": "content-length", "Content-Type": "content-type",
	"Max-Forwards": "max-forwards", "Route": "route", "Record-Route": "record-route"}

// compact maps the compact forms of RFC 3261 §7.3.3 to the long names.
var compact = map[string]string{"i": "call-id", "m": "contact", "e": "content-encoding", "l": "content-length",
	"c": "content-type", "f": "from", "s": "subject", "k": "supported", "t": "to", "v": "via"}

func canonicalName(name string) string {
	if n, ok := usualNames[name]; ok {
		return n
	}
	n := strings.ToLower(name)
	if long, ok := compact[n]; ok {
		return long
	}
	return n
}

func hasHeader(hs []rawHeader, long, short string) bool {
	for _, h := range hs {
		if n := strings.ToLower(h.name); n == long || n == short {
			return true
		}
	}
	return false
}

// topVia reads the port and rport of the first Via value.
func topVia(hs []rawHeader) viaAddr {
	for _, h := range hs {
		if canonicalName(h.name) != "via" {
			continue
		}
		first, _, _ := strings.Cut(stripLWS(h.value), ",")
		// SIP/2.0/UDP host:port;params — sent-by follows the protocol after LWS.
		sentBy, params, _ := strings.Cut(first, ";")
		if i := strings.LastIndexAny(sentBy, " \t"); i >= 0 {
			sentBy = sentBy[i+1:]
		}
		va := viaAddr{port: 5060}
		if _, p, err := net.SplitHostPort(sentBy); err == nil {
			if n, err := strconv.Atoi(p); err == nil && n > 0 && n < 65536 {
				va.port = n
			}
		}
		for _, p := range strings.Split(params, ";") {
			if strings.EqualFold(p, "rport") {
				va.rport = true
			}
		}
		return va
	}
	return viaAddr{port: 5060}
}

// precheckAnswer builds a stateless response (RFC 3261 §8.2.6: Via, From, To with a
// tag, Call-ID and CSeq copied).
func precheckAnswer(v verdict, hs []rawHeader) []byte {
	var b strings.Builder
	b.WriteString("SIP/2.0 " + strconv.Itoa(v.status) + " " + v.reason + "\r\n")
	for _, h := range hs {
		switch canonicalName(h.name) {
		case "via", "from", "call-id":
			b.WriteString(h.name + ": " + h.value + "\r\n")
		case "cseq":
			// Copied when it can be read back: a malformed CSeq would only make
			// the response unparsable at the client.
			if num, m, ok := strings.Cut(h.value, " "); ok && isDigits(num) && isToken(strings.Trim(m, " \t")) {
				b.WriteString(h.name + ": " + h.value + "\r\n")
			}
		case "to":
			val := h.value
			if !strings.Contains(strings.ToLower(stripLWS(val)), ";tag=") {
				val += ";tag=" + randToken(8)
			}
			b.WriteString(h.name + ": " + val + "\r\n")
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return []byte(b.String())
}

// unfold splits a header section into lines, joining continuation lines
// (RFC 3261 §7.3.1) with one space.
func unfold(head []byte) []string {
	raw := strings.Split(string(head), "\r\n")
	out := make([]string, 0, len(raw))
	for _, l := range raw {
		if len(out) > 1 && l != "" && (l[0] == ' ' || l[0] == '\t') {
			out[len(out)-1] = strings.TrimRight(out[len(out)-1], " \t") + " " + strings.Trim(l, " \t")
			continue
		}
		out = append(out, l)
	}
	return out
}

// normalize rebuilds the header section with the linear white space that
// sipgo does not expect removed from the fields it parses: around ";", "="
// and "," outside quoted strings and <>, and around "/" in Via.
func normalize(start string, hs []rawHeader) []byte {
	var b bytes.Buffer
	b.WriteString(start)
	for _, h := range hs {
		v := h.value
		if stripped(h.name) {
			v = stripLWS(v)
		}
		b.WriteString("\r\n" + h.name + ": " + v)
	}
	return b.Bytes() // without the last CRLF, as a head is framed
}

// stripped says whether normalize strips the white space of a header field.
func stripped(name string) bool {
	switch canonicalName(name) {
	case "from", "to", "contact", "route", "record-route", "via":
		return true
	}
	return false
}

// needsStrip says whether normalize would change a value of hs.
func needsStrip(hs []rawHeader) bool {
	for _, h := range hs {
		if stripped(h.name) && stripLWS(h.value) != h.value {
			return true
		}
	}
	return false
}

// stripLWS removes white space next to ";", "=", "," and "/" outside quoted
// strings and angle brackets.
func stripLWS(v string) string {
	if !strings.ContainsAny(v, " \t") {
		return v
	}
	var b strings.Builder
	quoted, escaped, angle := false, false, false
	pendingSpace := false
	sep := func(c byte) bool { return c == ';' || c == '=' || c == ',' || c == '/' }
	var last byte
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case quoted:
			b.WriteByte(c)
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				quoted = false
			}
			last = c
			continue
		case angle:
			b.WriteByte(c)
			if c == '>' {
				angle = false
			}
			last = c
			continue
		case c == ' ' || c == '\t':
			pendingSpace = true
			continue
		}
		if pendingSpace && !sep(c) && !sep(last) && b.Len() > 0 {
			b.WriteByte(' ')
		}
		pendingSpace = false
		switch c {
		case '"':
			quoted = true
		case '<':
			angle = true
		}
		b.WriteByte(c)
		last = c
	}
	return b.String()
}

func joinMessage(head, body []byte) []byte {
	out := make([]byte, 0, len(head)+4+len(body))
	out = append(out, head...)
	out = append(out, "\r\n\r\n"...)
	return append(out, body...)
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-.!%*_+`'~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

func isScheme(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isSIPVersion: "SIP" "/" 1*DIGIT "." 1*DIGIT (RFC 3261 §25.1).
func isSIPVersion(s string) bool {
	rest, ok := strings.CutPrefix(strings.ToUpper(s), "SIP/")
	if !ok {
		return false
	}
	major, minor, ok := strings.Cut(rest, ".")
	return ok && isDigits(major) && isDigits(minor)
}

// contentLength reads the Content-Length of a header section: -1 when
// absent, -2 when unusable (not digits, several, or over maxMessage).
func contentLength(head []byte) int { return contentLengthLines(unfold(head)) }

// contentLengthLines is contentLength of a head unfolded into lines.
func contentLengthLines(lines []string) int {
	n, found := -1, false
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok || canonicalName(strings.TrimRight(name, " \t")) != "content-length" {
			continue
		}
		value = strings.Trim(value, " \t")
		if found || !isDigits(value) || len(value) > 6 {
			return -2
		}
		found = true
		n, _ = strconv.Atoi(value)
		if n > maxMessage {
			return -2
		}
	}
	return n
}

// precheckPacketConn checks each datagram before sipgo's UDP reader sees it.
type precheckPacketConn struct {
	net.PacketConn
}

func (c precheckPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil || n == 0 {
			return n, addr, err
		}
		data := b[:n]
		end := bytes.Index(data, []byte("\r\n\r\n"))
		if end < 0 || len(bytes.Trim(data, "\r\n\x00")) == 0 {
			return n, addr, err // keep-alives and fragments: sipgo's business
		}
		head, body := data[:end], data[end+4:]
		if !bytes.HasPrefix(head, []byte("SIP/")) {
			switch cl := contentLength(head); {
			case cl == -2:
				c.answer(checkBadLength(head), addr)
				continue
			case cl > len(body):
				// The datagram is shorter than its Content-Length (§18.3).
				c.answer(checkBadLengthReason(head, "Content-Length Larger Than Message"), addr)
				continue
			case cl >= 0:
				body = body[:cl] // octets after the message are discarded (§18.3)
			}
		}
		ck := checkMessage(head, body)
		if ck.pass == nil {
			if ck.answer != nil {
				c.answerVia(ck, addr)
			}
			continue
		}
		if len(ck.pass) > len(b) {
			return n, addr, nil // cannot grow in sipgo's buffer: hand on the original
		}
		return copy(b, ck.pass), addr, nil
	}
}

// checkBadLength answers a request whose Content-Length cannot be used.
func checkBadLength(head []byte) checked {
	return checkBadLengthReason(head, "Bad Content-Length")
}

func checkBadLengthReason(head []byte, reason string) checked {
	lines := unfold(head)
	var hs []rawHeader
	for _, l := range lines[1:] {
		if name, value, ok := strings.Cut(l, ":"); ok {
			hs = append(hs, rawHeader{name: strings.TrimRight(name, " \t"), value: strings.Trim(value, " \t")})
		}
	}
	method, _, _ := strings.Cut(lines[0], " ")
	if method == "ACK" || !hasHeader(hs, "via", "v") {
		return checked{}
	}
	return checked{answer: precheckAnswer(verdict{400, reason}, hs), via: topVia(hs)}
}

func (c precheckPacketConn) answer(ck checked, addr net.Addr) {
	if ck.answer != nil {
		c.answerVia(ck, addr)
	}
}

// answerVia sends a UDP response to the source address and the Via port, or
// the source port with rport (RFC 3261 §18.2.2, RFC 3581 §4).
func (c precheckPacketConn) answerVia(ck checked, addr net.Addr) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return
	}
	dst := *ua
	if !ck.via.rport {
		dst.Port = ck.via.port
	}
	_, _ = c.PacketConn.WriteTo(ck.answer, &dst)
}

// precheckListener checks what arrives on every accepted connection.
type precheckListener struct {
	net.Listener
}

func (l precheckListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newPrecheckConn(c), nil
}

// precheckConn frames a stream into messages and hands sipgo only checked
// ones; its answers are written on the connection itself (§18.2.2).
type precheckConn struct {
	net.Conn
	mu    sync.Mutex // Read is called by sipgo's one reader; mu guards against misuse
	in    []byte     // received, not yet framed
	ready []byte     // checked, not yet read by sipgo
	fail  error      // the framing is lost: returned once ready is empty
	buf   []byte     // read buffer
}

// ConnectionState is the TLS state of a TLS connection (transport_tls.go
// checks the certificate of a pooled connection), empty otherwise.
func (c *precheckConn) ConnectionState() tls.ConnectionState {
	if cs, ok := c.Conn.(interface{ ConnectionState() tls.ConnectionState }); ok {
		return cs.ConnectionState()
	}
	return tls.ConnectionState{}
}

func newPrecheckConn(c net.Conn) *precheckConn { return &precheckConn{Conn: c} }

// errFraming ends a connection whose framing cannot be recovered.
var errFraming = errors.New("sipx: stream framing lost")

func (c *precheckConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf == nil {
		c.buf = make([]byte, 4096)
	}
	for len(c.ready) == 0 {
		if c.fail != nil {
			return 0, c.fail
		}
		if c.frame() {
			continue
		}
		n, err := c.Conn.Read(c.buf)
		c.in = append(c.in, c.buf[:n]...)
		if err != nil {
			if n > 0 {
				continue
			}
			return 0, err
		}
	}
	n := copy(b, c.ready)
	c.ready = c.ready[n:]
	if len(c.ready) == 0 {
		c.ready = nil
	}
	return n, nil
}

// frame takes one message (or a run of CRLF keep-alives) from in, checks it
// and puts what sipgo may read into ready; false when more bytes are needed.
func (c *precheckConn) frame() bool {
	if len(c.in) == 0 {
		return false
	}
	// Keep-alives between messages (RFC 5626 §3.5.1) go to sipgo as they are.
	i := 0
	for i < len(c.in) && (c.in[i] == '\r' || c.in[i] == '\n') {
		i++
	}
	if i > 0 {
		c.ready, c.in = append(c.ready, c.in[:i]...), c.in[i:]
		return true
	}
	end := bytes.Index(c.in, []byte("\r\n\r\n"))
	if end < 0 {
		if len(c.in) > maxMessage {
			c.fail = errFraming
			return true
		}
		return false
	}
	head := c.in[:end]
	if bytes.HasPrefix(head, []byte("SIP/")) {
		// A response: sipgo frames it (a bad length ends the connection there).
		cl := contentLength(head)
		if cl < 0 {
			c.ready, c.in = append(c.ready, c.in...), nil
			return true
		}
		if len(c.in) < end+4+cl {
			return false
		}
		c.ready = append(c.ready, c.in[:end+4+cl]...)
		c.in = c.in[end+4+cl:]
		return true
	}
	lines := unfold(head)
	cl := contentLengthLines(lines)
	if cl < 0 {
		// No usable Content-Length: the end of the message is unknown (§18.3,
		// RFC 4475 §3.1.2.3). Answer 400 and close.
		reason := "Bad Content-Length"
		if cl == -1 {
			reason = "Missing Content-Length"
		}
		if ck := checkBadLengthReason(head, reason); ck.answer != nil {
			_, _ = c.Conn.Write(ck.answer)
		}
		c.fail = errFraming
		return true
	}
	if len(c.in) < end+4+cl {
		if end+4+cl > maxMessage {
			c.fail = errFraming
			return true
		}
		return false
	}
	ck := checkRequestLines(head, lines, c.in[end+4:end+4+cl])
	c.in = c.in[end+4+cl:]
	if len(c.in) == 0 {
		c.in = nil
	}
	if ck.pass != nil {
		c.ready = append(c.ready, ck.pass...)
	} else if ck.answer != nil {
		_, _ = c.Conn.Write(ck.answer)
	}
	return true
}
