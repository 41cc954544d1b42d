package sipx

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// reserved are the header fields sipx builds itself; an extra header with one
// of these names would contradict them (compact forms included, RFC 3261 §7.3.3).
var reserved = map[string]bool{
	"via": true, "v": true, "from": true, "f": true, "to": true, "t": true,
	"call-id": true, "i": true, "cseq": true, "contact": true, "m": true,
	"route": true, "record-route": true, "max-forwards": true,
	"content-length": true, "l": true, "content-type": true, "c": true,
	"content-disposition": true,
}

// checkExtra validates extra headers; allowRoute admits Route (a preloaded
// route set of an INVITE, RFC 3261 §8.1.2).
func checkExtra(extra []Header, allowRoute bool) error {
	for _, h := range extra {
		name := strings.ToLower(strings.TrimSpace(h.Name))
		if allowRoute && name == "route" {
			continue
		}
		if reserved[name] {
			return fmt.Errorf("%w: %s", ErrReservedHeader, h.Name)
		}
		if h.Name == "" || strings.ContainsAny(h.Name, ": \r\n") || strings.ContainsAny(h.Value, "\r\n") {
			return fmt.Errorf("%w: malformed header %q", ErrReservedHeader, h.Name)
		}
	}
	return nil
}

func headerValue(hs []Header, name string) string {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

func headersOf(m sip.Message) []Header {
	var out []Header
	for _, h := range headersList(m) {
		out = append(out, Header{Name: h.Name(), Value: h.Value()})
	}
	return out
}

func headersList(m sip.Message) []sip.Header {
	switch m := m.(type) {
	case *sip.Request:
		return m.Headers()
	case *sip.Response:
		return m.Headers()
	}
	return nil
}

// randToken is a random hex string for tags, Call-IDs and branch suffixes
// (RFC 3261 §19.3 asks for at least 32 bits of randomness).
func randToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func parseURI(s string) (sip.Uri, error) {
	var u sip.Uri
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "<"), ">")
	if err := sip.ParseUri(s, &u); err != nil || u.Host == "" {
		return sip.Uri{}, fmt.Errorf("%w: %q", ErrBadURI, s)
	}
	if u.Scheme != "sip" && u.Scheme != "sips" {
		return sip.Uri{}, fmt.Errorf("%w: %q is not a sip: URI", ErrBadURI, s)
	}
	return u, nil
}

// bareURI strips URI parameters and headers: what To and From carry for an
// address of record (RFC 3261 §8.1.1.2).
func bareURI(u sip.Uri) sip.Uri {
	c := *u.Clone()
	c.UriParams = nil
	c.Headers = nil
	return c
}

// uriHost is host as a URI or Via needs it: an IPv6 address in brackets
// (RFC 3261 §25.1), which is also the form sipgo parses and dials.
func uriHost(host string) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		return "[" + host + "]"
	}
	return host
}

// hostIsIP reports whether the URI's host is an IP literal, so that the URI
// can be reached without DNS (sipx never resolves names).
func hostIsIP(u sip.Uri) bool {
	return net.ParseIP(strings.Trim(u.Host, "[]")) != nil
}

// uriTransport is the transport a URI asks for (RFC 3261 §19.1.1), "" if none.
func uriTransport(u sip.Uri) string {
	if v, ok := u.UriParams.Get("transport"); ok {
		return strings.ToUpper(v)
	}
	return ""
}

// newVia is our Via for a new client transaction: a fresh RFC 3261 branch
// (§8.1.1.7) and rport (RFC 3581), so that a proxy answers to the address we
// really sent from and, over TCP, on the connection we opened.
func (e *Endpoint) newVia(transport string) *sip.ViaHeader {
	v := &sip.ViaHeader{
		ProtocolName:    "SIP",
		ProtocolVersion: "2.0",
		Transport:       transport,
		Host:            uriHost(e.cfg.Advertise),
		Port:            e.port(transport),
		Params:          sip.NewParams(),
	}
	v.Params.Add("branch", sip.RFC3261BranchMagicCookie+"-"+randToken(10))
	v.Params.Add("rport", "")
	return v
}

// contactValue is our Contact for transport: where in-dialog requests reach
// us (RFC 3261 §8.1.1.8), with the configured feature tags (RFC 3840).
func (e *Endpoint) contactValue(user, transport string, secure bool) string {
	u := e.contactURI(user, transport, secure)
	v := "<" + u.String() + ">"
	if p := strings.TrimPrefix(strings.TrimSpace(e.cfg.ContactParams), ";"); p != "" {
		v += ";" + p
	}
	return v
}

// contactURI is our URI on transport. A secure dialog (sips:) gets a sips:
// Contact (RFC 3261 §8.1.1.8, §12.1.1) on the TLS listener; over TCP, and over
// TLS with a sip: URI, the transport parameter says how to reach us (RFC 5630
// deprecates transport=tls, but a sip: URI has no other way to name the TLS
// port).
func (e *Endpoint) contactURI(user, transport string, secure bool) sip.Uri {
	if secure {
		return sip.Uri{Scheme: "sips", User: user, Host: uriHost(e.cfg.Advertise), Port: e.port(transportTLS)}
	}
	u := sip.Uri{Scheme: "sip", User: user, Host: uriHost(e.cfg.Advertise), Port: e.port(transport)}
	if transport == transportTCP || transport == transportTLS {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", strings.ToLower(transport))
	}
	return u
}

func (e *Endpoint) contactUser() string {
	if e.identity.User != "" {
		return e.identity.User
	}
	return e.cfg.Name
}

// setTransport puts req on transport and applies RFC 3261 §18.1.1: a request
// over 1300 bytes that would go over UDP goes over TCP instead, with the top
// Via changed to match. Over UDP the request leaves from the listening socket
// (Laddr), so that its source is the address in Via; over TCP sipgo reuses or
// dials a connection to the next hop.
func (e *Endpoint) setTransport(req *sip.Request, via *sip.ViaHeader, transport string) {
	apply := func(tp string) {
		via.Transport = tp
		via.Port = e.port(tp)
		req.SetTransport(tp)
		if tp == "UDP" {
			req.Laddr = sip.Addr{IP: e.ip, Port: e.udpPort}
		} else {
			req.Laddr = sip.Addr{}
		}
	}
	apply(transport)
	if transport == "UDP" && len(req.String()) > udpMax {
		apply("TCP")
	}
}

// setBody sets the body built from parts, with its Content-Type and (single
// part) Content-Disposition; Content-Length comes last from SetBody.
func setBody(m sip.Message, parts []Part) error {
	body, ct, disp, err := encodeBody(parts)
	if err != nil {
		return err
	}
	if ct != "" {
		m.AppendHeader(sip.NewHeader("Content-Type", ct))
	}
	if disp != "" {
		m.AppendHeader(sip.NewHeader("Content-Disposition", disp))
	}
	m.SetBody(body)
	return nil
}

func bodyOf(m sip.Message) ([]Part, error) {
	ct, disp := "", ""
	if hs := m.GetHeaders("Content-Type"); len(hs) > 0 {
		ct = hs[0].Value()
	}
	if hs := m.GetHeaders("Content-Disposition"); len(hs) > 0 {
		disp = hs[0].Value()
	}
	return decodeBody(m.Body(), ct, disp)
}

func appendExtra(m sip.Message, extra []Header) {
	for _, h := range extra {
		if strings.EqualFold(strings.TrimSpace(h.Name), "route") {
			continue // placed by the caller, see preloadedRoutes
		}
		m.AppendHeader(sip.NewHeader(strings.TrimSpace(h.Name), h.Value))
	}
}

// preloadedRoutes parses the Route headers among extra: each value one or
// more comma-separated <URI> entries.
func preloadedRoutes(extra []Header) ([]sip.Uri, error) {
	var out []sip.Uri
	for _, h := range extra {
		if !strings.EqualFold(strings.TrimSpace(h.Name), "route") {
			continue
		}
		for _, v := range strings.Split(h.Value, ",") {
			var u sip.Uri
			var p sip.HeaderParams
			if _, err := sip.ParseAddressValue(strings.TrimSpace(v), &u, &p); err != nil || u.Host == "" {
				return nil, fmt.Errorf("%w: Route %q", ErrBadURI, v)
			}
			out = append(out, u)
		}
	}
	return out, nil
}

// assertedIdentity is the first P-Asserted-Identity URI (RFC 3325 §9.1), or
// the From URI without its tag.
func assertedIdentity(req *sip.Request) string {
	for _, h := range req.GetHeaders("P-Asserted-Identity") {
		for _, v := range strings.Split(h.Value(), ",") {
			var u sip.Uri
			var p sip.HeaderParams
			if _, err := sip.ParseAddressValue(strings.TrimSpace(v), &u, &p); err == nil {
				return u.String()
			}
		}
	}
	if f := req.From(); f != nil {
		return f.Address.String()
	}
	return ""
}

func tagOf(p sip.HeaderParams) string {
	t, _ := p.Get("tag")
	return t
}

func toResponse(res *sip.Response) Response {
	parts, err := bodyOf(res)
	if err != nil {
		// A body we cannot split is handed over whole rather than dropped.
		parts = []Part{{ContentType: headerValue(headersOf(res), "Content-Type"), Body: res.Body()}}
	}
	return Response{Status: res.StatusCode, Reason: res.Reason, Parts: parts, Headers: headersOf(res)}
}
