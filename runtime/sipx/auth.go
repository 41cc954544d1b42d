package sipx

import (
	"bufio"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// Digest algorithms sipx speaks (RFC 8760 §2.2: SHA-256 for SIP, MD5 kept for
// clients that know nothing else).
const (
	AlgSHA256 = "SHA-256"
	AlgMD5    = "MD5"
)

// defaultNonceTTL is how long a nonce is accepted. RFC 7616 §5.5 leaves it to
// the server; five minutes covers a REGISTER refresh and its retry, and a stale
// nonce costs a client one extra round trip (stale=true, no new password).
const defaultNonceTTL = 5 * time.Minute

// Credential is one user's secret in a realm (RFC 7616 §3.4.2: HA1 =
// H(username ":" realm ":" password)).
type Credential struct {
	Username string
	Realm    string
	// AOR is the address of record the user may register and send as; default
	// sip:Username@Realm.
	AOR string
	// Password, or the HA1 of each algorithm (lower-case hex). A user known by
	// one HA1 only can answer only challenges of that algorithm.
	Password  string
	HA1MD5    string
	HA1SHA256 string
}

func (c Credential) ha1(alg string) (string, bool) {
	switch strings.ToUpper(alg) {
	case "", AlgMD5:
		if c.HA1MD5 != "" {
			return c.HA1MD5, true
		}
		if c.Password != "" {
			return hexHash(md5.New(), c.Username+":"+c.Realm+":"+c.Password), true
		}
	case AlgSHA256:
		if c.HA1SHA256 != "" {
			return c.HA1SHA256, true
		}
		if c.Password != "" {
			return hexHash(sha256.New(), c.Username+":"+c.Realm+":"+c.Password), true
		}
	}
	return "", false
}

func hexHash(h interface {
	io.Writer
	Sum([]byte) []byte
}, s string) string {
	_, _ = io.WriteString(h, s)
	return hex.EncodeToString(h.Sum(nil))
}

// Credentials is a validated credentials store, read-only once built.
type Credentials struct {
	byUser map[[2]string]Credential // (username, realm)
}

// NewCredentials validates cs: username and realm set and without ':' or
// white space, a secret per entry (a password, or HA1s of the right length in
// hex, not both), an AOR that is a SIP URI with a user part, no (username,
// realm) twice.
func NewCredentials(cs []Credential) (*Credentials, error) {
	st := &Credentials{byUser: map[[2]string]Credential{}}
	for i, c := range cs {
		if err := st.add(c); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
	}
	return st, nil
}

func (st *Credentials) add(c Credential) error {
	for _, f := range []struct{ name, v string }{{"username", c.Username}, {"realm", c.Realm}} {
		if f.v == "" || strings.ContainsAny(f.v, ": \t\"") {
			return fmt.Errorf("%w: %s %q is empty or has ':', '\"' or white space", ErrConfig, f.name, f.v)
		}
	}
	if c.Password == "" && c.HA1MD5 == "" && c.HA1SHA256 == "" {
		return fmt.Errorf("%w: %s@%s has no password and no HA1", ErrConfig, c.Username, c.Realm)
	}
	if c.Password != "" && (c.HA1MD5 != "" || c.HA1SHA256 != "") {
		return fmt.Errorf("%w: %s@%s has both a password and an HA1", ErrConfig, c.Username, c.Realm)
	}
	for _, h := range []struct {
		alg, v string
		n      int
	}{{AlgMD5, c.HA1MD5, md5.Size}, {AlgSHA256, c.HA1SHA256, sha256.Size}} {
		if h.v == "" {
			continue
		}
		if b, err := hex.DecodeString(h.v); err != nil || len(b) != h.n {
			return fmt.Errorf("%w: %s@%s: %s HA1 is not %d hex digits", ErrConfig, c.Username, c.Realm, h.alg, 2*h.n)
		}
	}
	c.HA1MD5, c.HA1SHA256 = strings.ToLower(c.HA1MD5), strings.ToLower(c.HA1SHA256)
	if c.AOR == "" {
		c.AOR = "sip:" + c.Username + "@" + c.Realm
	}
	u, err := parseURI(c.AOR)
	if err != nil || u.User == "" {
		return fmt.Errorf("%w: %s@%s: AOR %q is not a SIP URI with a user", ErrConfig, c.Username, c.Realm, c.AOR)
	}
	c.AOR = aorKey(u)
	k := [2]string{c.Username, c.Realm}
	if _, dup := st.byUser[k]; dup {
		return fmt.Errorf("%w: %s@%s listed twice", ErrConfig, c.Username, c.Realm)
	}
	st.byUser[k] = c
	return nil
}

// Len is the number of users.
func (st *Credentials) Len() int { return len(st.byUser) }

// Permits says whether username has an entry in realm (known) and whether that entry
// may register and send as aor (its AOR, compared as the registrar compares them): what
// a deployment checks of each client before it serves its PF.
func (st *Credentials) Permits(username, realm, aor string) (known, ok bool) {
	c, known := st.lookup(username, realm)
	if !known {
		return false, false
	}
	u, err := parseURI(aor)
	return true, err == nil && aorKey(u) == c.AOR
}

func (st *Credentials) lookup(user, realm string) (Credential, bool) {
	c, ok := st.byUser[[2]string{user, realm}]
	return c, ok
}

// ParseCredentials reads a credentials file: one user per line,
//
//	<username> <realm> <secret>... [aor=<sip-uri>]
//
// where a secret is password=<text>, md5=<HA1 hex> or sha-256=<HA1 hex>
// (HA1 = H(username:realm:password), RFC 7616 §3.4.2, the form htdigest
// stores). Fields are separated by white space, so a password has none;
// blank lines and lines starting with '#' are skipped. Errors name the line.
func ParseCredentials(r io.Reader) (*Credentials, error) {
	st := &Credentials{byUser: map[[2]string]Credential{}}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			return nil, fmt.Errorf("%w: credentials line %d: want <username> <realm> <secret>", ErrConfig, n)
		}
		c := Credential{Username: f[0], Realm: f[1]}
		for _, kv := range f[2:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || v == "" {
				return nil, fmt.Errorf("%w: credentials line %d: %q is not key=value", ErrConfig, n, kv)
			}
			var dst *string
			switch strings.ToLower(k) {
			case "password":
				dst = &c.Password
			case "md5":
				dst = &c.HA1MD5
			case "sha-256", "sha256":
				dst = &c.HA1SHA256
			case "aor":
				dst = &c.AOR
			default:
				return nil, fmt.Errorf("%w: credentials line %d: unknown key %q (password, md5, sha-256, aor)", ErrConfig, n, k)
			}
			if *dst != "" {
				return nil, fmt.Errorf("%w: credentials line %d: %s given twice", ErrConfig, n, k)
			}
			*dst = v
		}
		if err := st.add(c); err != nil {
			return nil, fmt.Errorf("credentials line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: credentials: %w", ErrConfig, err)
	}
	return st, nil
}

// LoadCredentials reads and validates a credentials file (ParseCredentials).
func LoadCredentials(path string) (*Credentials, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: credentials: %w", ErrConfig, err)
	}
	defer f.Close()
	return ParseCredentials(f)
}

// AuthConfig turns on digest authentication at an endpoint (RFC 3261 §22,
// with the RFC 7616 / RFC 8760 algorithms).
type AuthConfig struct {
	// Realm is the protection domain in every challenge (RFC 3261 §22.1:
	// usually the domain the endpoint serves). Required.
	Realm string
	// Credentials is the store users are checked against. Required.
	Credentials *Credentials
	// Invites challenges every dialog-creating INVITE with 407 and
	// Proxy-Authenticate (RFC 3261 §22.3), as the client-facing originating
	// PF does; without it only REGISTER is challenged (401, §22.2).
	Invites bool
	// NonceTTL is how long a nonce stays good; an older one gets a new
	// challenge with stale=true (RFC 7616 §3.3). Default 5 minutes.
	NonceTTL time.Duration
	// Algorithms are offered in this order, one challenge each, preferred
	// first (RFC 8760 §2.4). Default SHA-256, MD5.
	Algorithms []string
}

func (c *AuthConfig) normalize() error {
	if c.Realm == "" || strings.ContainsAny(c.Realm, "\"\\") {
		return fmt.Errorf("%w: Auth.Realm %q", ErrConfig, c.Realm)
	}
	if c.Credentials == nil {
		return fmt.Errorf("%w: Auth.Credentials is required", ErrConfig)
	}
	if c.NonceTTL <= 0 {
		c.NonceTTL = defaultNonceTTL
	}
	if len(c.Algorithms) == 0 {
		c.Algorithms = []string{AlgSHA256, AlgMD5}
	}
	for i, a := range c.Algorithms {
		switch strings.ToUpper(a) {
		case AlgSHA256, AlgMD5:
			c.Algorithms[i] = strings.ToUpper(a)
		default:
			return fmt.Errorf("%w: Auth.Algorithms: %q (want SHA-256 or MD5)", ErrConfig, a)
		}
	}
	return nil
}

// authVerdict is what checking a request's credentials found.
type authVerdict int

const (
	authOK      authVerdict = iota
	authMissing             // no credentials for our realm: challenge
	authWrong               // unknown user, wrong response, unsupported algorithm: challenge
	authStale               // right response, but an expired or replayed nonce: stale=true
	authBad                 // unparseable credentials: 400
)

// authenticator issues nonces and checks digest responses. Nonces are
// stateless (a timestamp and its HMAC under a per-process secret), so a
// challenge costs no memory; only nonces that have been used are remembered,
// with their highest nonce-count, until they expire (RFC 7616 §3.3: "nc"
// lets the server detect replays).
type authenticator struct {
	cfg    AuthConfig
	secret []byte
	now    func() time.Time

	mu   sync.Mutex
	used map[string]uint32 // nonce NUL username -> highest nc seen
	last time.Time         // last sweep of used
}

func newAuthenticator(cfg AuthConfig, now func() time.Time) *authenticator {
	s := make([]byte, 32)
	_, _ = rand.Read(s)
	return &authenticator{cfg: cfg, secret: s, now: now, used: map[string]uint32{}}
}

func (a *authenticator) mac(ts []byte) []byte {
	m := hmac.New(sha256.New, a.secret)
	m.Write(ts)
	m.Write([]byte(a.cfg.Realm))
	return m.Sum(nil)[:16]
}

func (a *authenticator) nonce() string {
	b := make([]byte, 8, 24)
	binary.BigEndian.PutUint64(b, uint64(a.now().UnixNano()))
	return base64.RawURLEncoding.EncodeToString(append(b, a.mac(b)...))
}

// fresh reports whether nonce is ours and younger than NonceTTL.
func (a *authenticator) fresh(nonce string) bool {
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != 24 || !hmac.Equal(b[8:], a.mac(b[:8])) {
		return false
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])))
	age := a.now().Sub(issued)
	return age >= 0 && age <= a.cfg.NonceTTL
}

// challenges are the WWW-Authenticate / Proxy-Authenticate values: one per
// algorithm, preferred first, all with the same nonce (RFC 8760 §2.4).
func (a *authenticator) challenges(stale bool) []string {
	n := a.nonce()
	out := make([]string, 0, len(a.cfg.Algorithms))
	for _, alg := range a.cfg.Algorithms {
		c := digest.Challenge{Realm: a.cfg.Realm, Nonce: n, Algorithm: alg, QOP: []string{"auth"}, Stale: stale}
		out = append(out, c.String())
	}
	return out
}

// check verifies the credentials of req in the header named hdr
// (Authorization or Proxy-Authorization) for our realm.
func (a *authenticator) check(req *sip.Request, hdr string) (Credential, authVerdict) {
	var cred *digest.Credentials
	for _, h := range req.GetHeaders(hdr) {
		c, err := digest.ParseCredentials(h.Value())
		if err != nil {
			return Credential{}, authBad
		}
		if c.Realm == a.cfg.Realm {
			cred = c
			break
		}
	}
	if cred == nil {
		return Credential{}, authMissing
	}
	// RFC 7616 §3.4: qop=auth needs cnonce and nc; sipx offers nothing else.
	if cred.Username == "" || cred.Nonce == "" || cred.Response == "" || cred.URI == "" ||
		cred.QOP != "auth" || cred.Cnonce == "" || cred.Nc <= 0 {
		return Credential{}, authBad
	}
	alg := strings.ToUpper(cred.Algorithm)
	if alg == "" {
		alg = AlgMD5 // RFC 7616 §3.3: absent means MD5
	}
	offered := false
	for _, x := range a.cfg.Algorithms {
		offered = offered || x == alg
	}
	user, ok := a.cfg.Credentials.lookup(cred.Username, cred.Realm)
	if !offered || !ok {
		return Credential{}, authWrong
	}
	ha1, ok := user.ha1(alg)
	if !ok {
		return Credential{}, authWrong
	}
	// RFC 3261 §22.4 / RFC 7616 §3.4.6: the digest-uri names the request.
	if u, err := parseURI(cred.URI); err != nil || aorKey(u) != aorKey(req.Recipient) {
		return Credential{}, authBad
	}
	want, err := digest.Digest(&digest.Challenge{Realm: cred.Realm, Nonce: cred.Nonce, Algorithm: cred.Algorithm, QOP: []string{"auth"}},
		digest.Options{Method: string(req.Method), URI: cred.URI, Count: cred.Nc, Username: cred.Username, A1: ha1, Cnonce: cred.Cnonce})
	if err != nil || subtle.ConstantTimeCompare([]byte(want.Response), []byte(strings.ToLower(cred.Response))) != 1 {
		return Credential{}, authWrong
	}
	// The response is right: whatever is wrong now is the nonce, and the
	// client may retry with a new one without asking its user (stale=true).
	if !a.fresh(cred.Nonce) {
		return Credential{}, authStale
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if now := a.now(); now.Sub(a.last) > a.cfg.NonceTTL {
		a.last = now
		for k := range a.used {
			if n, _, _ := strings.Cut(k, "\x00"); !a.fresh(n) {
				delete(a.used, k)
			}
		}
	}
	// nc counts the requests one client made with the nonce (RFC 7616
	// §3.4); several users may answer the same challenge text.
	key := cred.Nonce + "\x00" + cred.Username
	if uint32(cred.Nc) <= a.used[key] {
		return Credential{}, authStale // a replayed nonce-count
	}
	a.used[key] = uint32(cred.Nc)
	return user, authOK
}

// authorize adds our answer to the challenge of a 401 or 407 to req
// (RFC 3261 §22.2, §22.3): the first challenge for an algorithm we know, in
// the server's order of preference (RFC 8760 §2.4). False if there is none,
// or no credentials are configured.
func (e *Endpoint) authorize(req *sip.Request, res *sip.Response) bool {
	if e.cfg.AuthUser == "" {
		return false
	}
	chHdr, crHdr := "WWW-Authenticate", "Authorization"
	if res.StatusCode == 407 {
		chHdr, crHdr = "Proxy-Authenticate", "Proxy-Authorization"
	}
	for _, h := range res.GetHeaders(chHdr) {
		ch, err := digest.ParseChallenge(h.Value())
		if err != nil {
			continue
		}
		switch strings.ToUpper(ch.Algorithm) {
		case "", AlgMD5, AlgSHA256:
		default:
			continue
		}
		if len(ch.QOP) > 0 && !ch.SupportsQOP("auth") {
			continue
		}
		if len(ch.QOP) > 0 {
			ch.QOP = []string{"auth"}
		}
		cred, err := digest.Digest(ch, digest.Options{Method: string(req.Method), URI: req.Recipient.String(),
			Username: e.cfg.AuthUser, Password: e.cfg.AuthPassword, Count: 1})
		if err != nil {
			continue
		}
		req.RemoveHeader(crHdr)
		req.AppendHeader(sip.NewHeader(crHdr, cred.String()))
		return true
	}
	return false
}
