package sipx

import (
	"context"
	"fmt"
	"math"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// defaultExpires is the registration interval a registrar applies when the
// REGISTER names none (RFC 3261 §10.2.1.1 suggests 3600 s).
const defaultExpires = 3600

// registration is the client side of one (registrar, AOR) pair: the same
// Call-ID and an increasing CSeq on every refresh (RFC 3261 §10.2.4).
type registration struct {
	callID string
	cseq   uint32
}

// binding is one Contact bound to an address of record (RFC 3261 §10.3).
type binding struct {
	contact string
	expires time.Time
	updated time.Time
}

// Register binds aor to this endpoint's Contact at registrar for expires
// (rounded up to whole seconds; 0 removes the binding) and waits for the
// final response: nil on 2xx, a *StatusError (errors.Is ErrRejected)
// otherwise. registrar is a SIP URI ("sip:pfb.example") or host:port; the
// REGISTER goes through Config.Proxy when one is set (RFC 3261 §10.2).
func (e *Endpoint) Register(ctx context.Context, registrar, aor string, expires time.Duration) error {
	if expires < 0 {
		return fmt.Errorf("%w: negative expires %v", ErrConfig, expires)
	}
	if !strings.Contains(registrar, "sip:") && !strings.Contains(registrar, "sips:") {
		registrar = "sip:" + registrar
	}
	ruri, err := parseURI(registrar)
	if err != nil {
		return err
	}
	ruri.User = "" // RFC 3261 §10.2: no userinfo in a REGISTER's Request-URI
	aorURI, err := parseURI(aor)
	if err != nil {
		return err
	}
	if e.cfg.Proxy == "" && !hostIsIP(ruri) {
		return fmt.Errorf("%w: registrar %s", ErrNoRoute, registrar)
	}
	secs := int(math.Ceil(expires.Seconds()))

	e.mu.Lock()
	key := ruri.String() + "|" + aor
	reg := e.regs[key]
	if reg == nil {
		reg = &registration{callID: randToken(16) + "@" + uriHost(e.cfg.Host)}
		e.regs[key] = reg
	}
	reg.cseq++
	callID, cseq := reg.callID, reg.cseq
	e.mu.Unlock()

	req := sip.NewRequest(sip.REGISTER, ruri)
	via := e.newVia(e.cfg.Transport)
	req.AppendHeader(via)
	e.appendOutboundRoute(req)
	maxf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&maxf)
	fromH := &sip.FromHeader{Address: bareURI(aorURI), Params: sip.NewParams()}
	fromH.Params.Add("tag", randToken(8))
	req.AppendHeader(fromH)
	req.AppendHeader(&sip.ToHeader{Address: bareURI(aorURI), Params: sip.NewParams()})
	cid := sip.CallIDHeader(callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: sip.REGISTER})
	user := aorURI.User
	if user == "" {
		user = e.contactUser()
	}
	req.AppendHeader(sip.NewHeader("Contact", e.contactValue(user, e.cfg.Transport)+";expires="+strconv.Itoa(secs)))
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(secs)))
	req.SetBody(nil)
	e.setTransport(req, via, e.cfg.Transport)

	if !e.enter() {
		return ErrClosed
	}
	defer e.work.Done()
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	tx, err := e.ua.TransactionLayer().Request(cctx, req)
	if err != nil {
		return fmt.Errorf("%w: REGISTER %s: %w", ErrTransport, registrar, err)
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			if res.IsSuccess() {
				return nil
			}
			return &StatusError{Method: "REGISTER", Status: res.StatusCode, Reason: res.Reason}
		case <-tx.Done():
			return fmt.Errorf("%w: REGISTER %s: %w", ErrTransport, registrar, tx.Err())
		case <-ctx.Done():
			return fmt.Errorf("REGISTER %s: %w", registrar, ctx.Err())
		case <-e.ctx.Done():
			return ErrClosed
		}
	}
}

// onRegister is the registrar (RFC 3261 §10.3): it binds, refreshes and
// removes the Contacts of the To AOR and answers 200 with the bindings now in
// force. There is no authentication: cpmlink's registrars sit on loopback.
func (e *Endpoint) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	if !e.enter() {
		e.refuse(tx, req)
		return
	}
	defer e.work.Done()
	to := req.To()
	if to == nil {
		e.respond(tx, req, 400, "Missing To", nil)
		return
	}
	aor := aorKey(to.Address)
	def := defaultExpires
	if hs := req.GetHeaders("Expires"); len(hs) > 0 {
		v, err := strconv.Atoi(strings.TrimSpace(hs[0].Value()))
		if err != nil || v < 0 {
			e.respond(tx, req, 400, "Bad Expires", nil)
			return
		}
		def = v
	}
	type change struct {
		contact string
		secs    int
	}
	var changes []change
	wildcard := false
	for _, h := range req.GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			e.respond(tx, req, 400, "Bad Contact", nil)
			return
		}
		if c.Address.Wildcard {
			wildcard = true
			continue
		}
		secs := def
		if v, ok := c.Params.Get("expires"); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				e.respond(tx, req, 400, "Bad Contact expires", nil)
				return
			}
			secs = n
		}
		changes = append(changes, change{bareContact(c.Address), secs})
	}
	if wildcard && (def != 0 || len(changes) > 0) {
		// "*" is only allowed alone and with Expires: 0 (RFC 3261 §10.3 step 6).
		e.respond(tx, req, 400, "Invalid Wildcard", nil)
		return
	}

	e.mu.Lock()
	now := e.now()
	bs := e.bindings[aor]
	if wildcard {
		bs = nil
	}
	for _, ch := range changes {
		bs = slices.DeleteFunc(bs, func(b binding) bool { return b.contact == ch.contact })
		if ch.secs > 0 {
			bs = append(bs, binding{contact: ch.contact, expires: now.Add(time.Duration(ch.secs) * time.Second), updated: now})
		}
	}
	bs = slices.DeleteFunc(bs, func(b binding) bool { return !b.expires.After(now) })
	if len(bs) == 0 {
		delete(e.bindings, aor)
	} else {
		e.bindings[aor] = bs
	}
	var hdrs []sip.Header
	for _, b := range bs {
		left := int(math.Ceil(b.expires.Sub(now).Seconds()))
		hdrs = append(hdrs, sip.NewHeader("Contact", "<"+b.contact+">;expires="+strconv.Itoa(left)))
	}
	e.mu.Unlock()
	e.respond(tx, req, 200, "", hdrs)
}

// Lookup returns the Contact most recently bound to aor that has not
// expired (the registrar side; Config.Registrar must be set).
func (e *Endpoint) Lookup(aor string) (contact string, ok bool) {
	u, err := parseURI(aor)
	if err != nil {
		return "", false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	var live []binding
	for _, b := range e.bindings[aorKey(u)] {
		if b.expires.After(now) {
			live = append(live, b)
		}
	}
	if len(live) == 0 {
		return "", false
	}
	sort.SliceStable(live, func(i, j int) bool { return live[i].updated.After(live[j].updated) })
	return live[0].contact, true
}

// aorKey is the comparable form of an address of record: scheme, user and
// host:port, host case-folded (RFC 3261 §19.1.4 compares hosts without case).
func aorKey(u sip.Uri) string {
	scheme := u.Scheme
	if scheme == "" {
		scheme = "sip"
	}
	host := strings.ToLower(strings.Trim(u.Host, "[]"))
	if u.Port > 0 {
		host = net.JoinHostPort(host, strconv.Itoa(u.Port))
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if u.User != "" {
		return scheme + ":" + u.User + "@" + host
	}
	return scheme + ":" + host
}

// bareContact is a Contact URI as a request target: its URI parameters
// (transport) stay, its headers go.
func bareContact(u sip.Uri) string {
	c := *u.Clone()
	c.Headers = nil
	return c.String()
}
