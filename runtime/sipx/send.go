package sipx

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// nextHop is where a request goes first (RFC 3261 §8.1.2, §12.2.1.1, loose
// routing): its top Route — the outbound proxy, when one is configured — else
// its Request-URI.
func nextHop(req *sip.Request) sip.Uri {
	if r := req.Route(); r != nil {
		return r.Address
	}
	return req.Recipient
}

// secureRequest says that req must travel over TLS on every hop: its
// Request-URI or its top Route is a sips: URI (RFC 3261 §26.2.2, §8.1.1.8).
func secureRequest(req *sip.Request) bool {
	if req.Recipient.Scheme == "sips" {
		return true
	}
	r := req.Route()
	return r != nil && r.Address.Scheme == "sips"
}

// secureDialog says that the dialog req creates is secure, so that our
// Contact in the 2xx must be a sips: URI (RFC 3261 §12.1.1): its Request-URI
// is sips:, or its top Record-Route is (or, without Record-Route, its Contact).
func secureDialog(req *sip.Request) bool {
	if req.Recipient.Scheme == "sips" {
		return true
	}
	if rr := req.RecordRoute(); rr != nil {
		return rr.Address.Scheme == "sips"
	}
	c := req.Contact()
	return c != nil && c.Address.Scheme == "sips"
}

// targets locates req's next hop (RFC 3263 §4) for a sender that prefers
// transport, keeping the request on TLS if it must be, and out of UDP if it is
// too large (RFC 3261 §18.1.1).
func (e *Endpoint) targets(ctx context.Context, req *sip.Request, transport string) ([]Target, error) {
	secure := secureRequest(req)
	if secure {
		transport = transportTLS
	}
	ts, err := resolveWith(ctx, e.cfg.Resolver, nextHop(req), transport, e.tlsOut != nil)
	if err != nil {
		return nil, err
	}
	if secure {
		var tlsOnly []Target
		for _, t := range ts {
			if t.Transport == transportTLS {
				tlsOnly = append(tlsOnly, t)
			}
		}
		if len(tlsOnly) == 0 {
			next := nextHop(req)
			return nil, fmt.Errorf("%w: %s must go over TLS (sips:) and has no TLS server", ErrNoRoute, next.String())
		}
		ts = tlsOnly
	}
	return sized(ts, len(req.String())), nil
}

// aim puts req on target t: the transport and port in our Via, the Contact's
// transport (RFC 3261 §18.1.1: a change of transport changes the Via), the
// destination, and, over TLS, a verified connection in sipgo's pool. Over UDP
// the request leaves from the listening socket (Laddr), so that its source is
// the address in Via; over TCP and TLS sipgo reuses the pooled connection to
// the target or (TCP) dials one.
func (e *Endpoint) aim(ctx context.Context, req *sip.Request, t Target) error {
	if via := req.Via(); via != nil {
		via.Transport = t.Transport
		via.Port = e.port(t.Transport)
	}
	e.fixContact(req, t.Transport)
	req.SetTransport(t.Transport)
	req.SetDestination(t.Addr)
	switch t.Transport {
	case transportUDP:
		req.Laddr = sip.Addr{IP: e.ip, Port: e.udpPort}
	case transportTLS:
		req.Laddr = sip.Addr{}
		if e.tlsOut == nil {
			return fmt.Errorf("%w: %s needs TLS and no TLS is configured", ErrNoRoute, t)
		}
		return e.tlsOut.connect(ctx, t)
	default:
		req.Laddr = sip.Addr{}
	}
	return nil
}

// start sends req in a new client transaction to the first of its next hop's
// targets that takes it (RFC 3263 §4.3): when a target cannot be reached (a
// refused connection, a failed TLS handshake) the request goes to the next one
// with a new branch, as a new transaction. A target that takes the request but
// never answers is not left (UDP cannot tell); the transaction times out.
func (e *Endpoint) start(ctx context.Context, req *sip.Request, transport string) (sip.ClientTransaction, error) {
	ts, err := e.targets(ctx, req, transport)
	if err != nil {
		return nil, err
	}
	var errs []error
	for i, t := range ts {
		if i > 0 {
			req.Via().Params.Add("branch", sip.RFC3261BranchMagicCookie+"-"+randToken(10))
		}
		if err := e.aim(ctx, req, t); err != nil {
			errs = append(errs, err)
			e.log.Debug("target failed, trying the next", "method", req.Method, "target", t.String(), "error", err)
			continue
		}
		tx, err := e.ua.TransactionLayer().Request(ctx, req)
		if err == nil {
			return tx, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", t, err))
		e.log.Debug("target failed, trying the next", "method", req.Method, "target", t.String(), "error", err)
	}
	return nil, errors.Join(errs...)
}

// write sends req without a transaction (the ACK of a 2xx, RFC 3261
// §13.2.2.4) to the first target that takes it.
func (e *Endpoint) write(ctx context.Context, req *sip.Request, transport string) error {
	ts, err := e.targets(ctx, req, transport)
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range ts {
		if err := e.aim(ctx, req, t); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := e.ua.TransportLayer().WriteMsg(req); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t, err))
			continue
		}
		return nil
	}
	return errors.Join(errs...)
}

// fixContact makes the Contact this endpoint put in req name the listener of
// transport, so that in-dialog requests come back the way this one went
// (RFC 3261 §8.1.1.8; sips: when the request is secure).
func (e *Endpoint) fixContact(req *sip.Request, transport string) {
	h := req.GetHeader("Contact")
	if h == nil {
		return
	}
	v := h.Value()
	open, end := strings.IndexByte(v, '<'), strings.IndexByte(v, '>')
	if open != 0 || end < 0 {
		return
	}
	var u sip.Uri
	if err := sip.ParseUri(v[1:end], &u); err != nil || u.Host != uriHost(e.cfg.Advertise) {
		return // not one of ours
	}
	c := e.contactURI(u.User, transport, secureRequest(req))
	nv := "<" + c.String() + ">" + v[end+1:]
	req.ReplaceHeader(sip.NewHeader("Contact", nv))
}
