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
	"github.com/icholy/digest"
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
	if e.cfg.Proxy == "" && !hostIsIP(ruri) && e.cfg.Resolver == nil {
		return fmt.Errorf("%w: registrar %s", ErrNoRoute, registrar)
	}
	secs := int(math.Ceil(expires.Seconds()))

	e.mu.Lock()
	key := ruri.String() + "|" + aor
	reg := e.regs[key]
	if reg == nil {
		reg = &registration{callID: randToken(16) + "@" + uriHost(e.cfg.Advertise)}
		e.regs[key] = reg
	}
	reg.cseq++
	callID, cseq := reg.callID, reg.cseq
	e.mu.Unlock()

	user := aorURI.User
	if user == "" {
		user = e.contactUser()
	}
	build := func(cseq uint32) *sip.Request {
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
		req.AppendHeader(sip.NewHeader("Contact", e.contactValue(user, e.cfg.Transport, false)+";expires="+strconv.Itoa(secs)))
		req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(secs)))
		req.SetBody(nil)
		e.setTransport(req, via, e.cfg.Transport)
		return req
	}

	if !e.enter() {
		return ErrClosed
	}
	defer e.work.Done()
	req := build(cseq)
	// A challenge is answered with the next CSeq in the same Call-ID
	// (RFC 3261 §22.2, §10.2.4); a second one is answered again only when it
	// says the nonce went stale (RFC 7616 §3.3) — else the password is wrong.
	for tries := 0; ; tries++ {
		res, err := e.registerOnce(ctx, registrar, req)
		if err != nil {
			return err
		}
		if res.IsSuccess() {
			return nil
		}
		if (res.StatusCode == 401 || res.StatusCode == 407) && tries < 3 && (tries == 0 || staleChallenge(res)) {
			e.mu.Lock()
			reg.cseq++
			next := reg.cseq
			e.mu.Unlock()
			retry := build(next)
			if e.authorize(retry, res) {
				req = retry
				continue
			}
		}
		return &StatusError{Method: "REGISTER", Status: res.StatusCode, Reason: res.Reason}
	}
}

// staleChallenge reports whether a 401/407 says only the nonce was stale.
func staleChallenge(res *sip.Response) bool {
	for _, name := range []string{"WWW-Authenticate", "Proxy-Authenticate"} {
		for _, h := range res.GetHeaders(name) {
			if ch, err := digest.ParseChallenge(h.Value()); err == nil && ch.Stale {
				return true
			}
		}
	}
	return false
}

// registerOnce sends one REGISTER and waits for its final response.
func (e *Endpoint) registerOnce(ctx context.Context, registrar string, req *sip.Request) (*sip.Response, error) {
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	tx, err := e.start(cctx, req, e.cfg.Transport)
	if err != nil {
		return nil, fmt.Errorf("%w: REGISTER %s: %w", ErrTransport, registrar, err)
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			return res, nil
		case <-tx.Done():
			return nil, fmt.Errorf("%w: REGISTER %s: %w", ErrTransport, registrar, tx.Err())
		case <-ctx.Done():
			return nil, fmt.Errorf("REGISTER %s: %w", registrar, ctx.Err())
		case <-e.ctx.Done():
			return nil, ErrClosed
		}
	}
}

// onRegister is the registrar (RFC 3261 §10.3): it authenticates the request
// when Config.Auth is set (steps 3-4), binds, refreshes and removes the
// Contacts of the To AOR within the per-AOR cap, keeps the location store in
// step, and answers 200 with the bindings now in force (step 8).
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
	// The AOR must be a SIP or SIPS URI (RFC 3261 §10.2, §10.3; RFC 4475
	// §3.3.4 expects 400 for To: isbn:...).
	if sc := strings.ToLower(to.Address.Scheme); sc != "sip" && sc != "sips" {
		e.respond(tx, req, 400, "Address Of Record Must Be A SIP URI", nil)
		return
	}
	aor := aorKey(to.Address)
	if e.auth != nil {
		user, v := e.auth.check(req, "Authorization")
		switch v {
		case authOK:
		case authBad:
			e.respond(tx, req, 400, "Bad Authorization", nil)
			return
		default:
			var hdrs []sip.Header
			for _, c := range e.auth.challenges(v == authStale) {
				hdrs = append(hdrs, sip.NewHeader("WWW-Authenticate", c))
			}
			e.respond(tx, req, 401, "", hdrs)
			return
		}
		// §10.3 step 3: the authenticated user must be allowed to change
		// this AOR's bindings; in cpmlink a user has exactly one AOR.
		if user.AOR != aor {
			e.respond(tx, req, 403, "Not Authorized For This Address Of Record", nil)
			return
		}
	}
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
	old := e.bindings[aor]
	bs := slices.Clone(old)
	if wildcard {
		bs = nil
	}
	mine := map[string]bool{} // contacts this request binds or refreshes
	added := false
	for _, ch := range changes {
		n := len(bs)
		bs = slices.DeleteFunc(bs, func(b binding) bool { return b.contact == ch.contact })
		if ch.secs > 0 {
			added = added || n == len(bs)
			mine[ch.contact] = true
			bs = append(bs, binding{contact: ch.contact, expires: now.Add(time.Duration(ch.secs) * time.Second), updated: now})
		}
	}
	bs = slices.DeleteFunc(bs, func(b binding) bool { return !b.expires.After(now) })
	// The cap (Config.MaxContacts), and over UDP the size of the 200 that
	// must list every binding: a response cannot move to TCP (§18.2.2 sends it
	// on the request's transport; only requests switch, §18.1.1), so the list
	// is kept to what 1300 bytes carry.
	udp := strings.EqualFold(req.Transport(), "UDP")
	over := func() bool {
		return e.cfg.MaxContacts > 0 && len(bs) > e.cfg.MaxContacts ||
			udp && len(e.registerOK(req, bs, now).String()) > udpMax
	}
	for over() {
		if added && !e.cfg.OverwriteContacts {
			e.mu.Unlock()
			e.respond(tx, req, 403, "Too Many Registered Contacts", nil)
			return
		}
		// Drop the binding refreshed longest ago that this request does not
		// name: over the cap in overwrite mode, or left over the cap by an
		// earlier configuration.
		oldest := -1
		for i, b := range bs {
			if !mine[b.contact] && (oldest < 0 || b.updated.Before(bs[oldest].updated)) {
				oldest = i
			}
		}
		if oldest < 0 {
			// The request alone is over the cap.
			e.mu.Unlock()
			e.respond(tx, req, 403, "Too Many Registered Contacts", nil)
			return
		}
		e.log.Info("registrar: binding dropped over the cap", "aor", aor, "contact", bs[oldest].contact)
		bs = slices.Delete(bs, oldest, oldest+1)
	}
	if len(bs) == 0 {
		delete(e.bindings, aor)
	} else {
		e.bindings[aor] = bs
	}
	res := e.registerOK(req, bs, now)
	var storeErr error
	if e.store != nil {
		// Taken before mu is released, so writes reach the file in the order
		// the bindings changed; the write itself does not hold up mu.
		e.storeMu.Lock()
		e.mu.Unlock()
		storeErr = e.store.put(aor, bs)
		e.storeMu.Unlock()
	} else {
		e.mu.Unlock()
	}
	if storeErr != nil {
		e.log.Error("registrar: location store write failed", "aor", aor, "error", storeErr)
		e.respond(tx, req, 500, "Location Store Failure", nil)
		return
	}
	if err := tx.Respond(res); err != nil {
		e.log.Debug("response not sent", "status", 200, "error", err)
	}
}

// registerOK is the registrar's 200: every binding in force with the seconds
// it has left (RFC 3261 §10.3 step 8).
func (e *Endpoint) registerOK(req *sip.Request, bs []binding, now time.Time) *sip.Response {
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	for _, b := range bs {
		left := int(math.Ceil(b.expires.Sub(now).Seconds()))
		res.AppendHeader(sip.NewHeader("Contact", "<"+b.contact+">;expires="+strconv.Itoa(left)))
	}
	return res
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
