package core

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
)

// Event is an input to a role. Generated event types implement it.
type Event interface {
	// EventLeg is the leg the event arrives on ("" for a session event).
	EventLeg() LegID
	// Kind names the event type.
	Kind() string
}

// Action is an output of a role. Generated action types implement it, and so does Refuse.
type Action interface {
	// ActionLeg is the leg the action acts on ("" for a session action).
	ActionLeg() LegID
	// Kind names the action type.
	Kind() string
}

// Refuse is emitted when an input meets a reject cell: the peer broke the protocol. The
// driver answers a request with Status (481 for a dialog it does not know, 400 otherwise)
// and drops a response. The checkers treat it as a violation by the sender.
type Refuse struct {
	Leg     LegID
	Machine string
	Event   string
	State   string
	Reason  string
}

// ActionLeg implements Action.
func (r Refuse) ActionLeg() LegID { return r.Leg }

// Kind implements Action.
func (Refuse) Kind() string { return "Refuse" }

// Party says whether a side's role is the active party of the side's link.
type Party uint8

// Parties. A side is undecided while a negotiated a=setup has not settled it.
const (
	PartyUndecided Party = iota
	PartyActive
	PartyPassive
)

// Layout tells the engine which machines run in each column of a side.
type Layout struct {
	Columns []string
	Up      []*MachineDef
	Down    []*MachineDef
	// Link is the column of the MSRP link machine; its terminal states mean "not live".
	Link int
}

// Side is one role's end of one hop.
type Side struct {
	Leg LegID
	Up  bool
	// Hop is the index of the hop in the spec.
	Hop int
	// Member is the group member a CF down side serves ("" elsewhere).
	Member string
	// Last marks the last down side of a session.
	Last bool
	// M are the side's machines, by column; Had are the events each has taken (bit per
	// machine event), so that triggers can ask "did this ever happen".
	M   []*Machine
	Had []uint32
	// Peer is what the side learned from SDP it received; PeerKnown says it did.
	Peer      SDP
	PeerKnown bool
	Party     Party
	// Rx counts chunks received on an up side; Tx counts chunks relayed on a down side.
	Rx, Tx   int
	Outcome  Outcome
	Reported bool
	// Conn is the connection the link uses; Reused says it was shared with another link.
	Conn   ConnID
	Reused bool

	// enc is the side's encoding as last snapshot or restored.
	enc []byte
}

// Live reports whether the side's link is listening, opening or up.
func (sd *Side) Live(link int) bool { return !sd.M[link].Terminal() }

// Session is one call through a role: its up side (if any) and its down sides.
type Session struct {
	// Key is the leg that created the session.
	Key     LegID
	Up      *Side
	Downs   []*Side
	Target  string
	From    string
	Members []string
	Group   GroupStatus
	Flags   uint64
	// Total is the index of the last chunk, once it arrived (0 before).
	Total int
	// Results is the transmitter's per-member table.
	Results Results

	// enc is the session header's encoding as last snapshot or restored.
	enc []byte
}

// Engine holds a role instance's sessions and carries out the generic parts of a step.
// Generated role types embed one and add the spec's rules and reactions.
type Engine struct {
	Cfg      Config
	layout   *Layout
	sessions map[LegID]*Session
	order    []LegID
	legs     map[LegID]*Side
	owner    map[LegID]*Session
	nextKey  int
	out      []Action
	errs     []error
	// repeats counts, per entry of errs, the identical failures recorded after it: a
	// reaction that keeps failing until the step gives up fails the same way each round.
	repeats []int
	// spare holds sides of sessions a Restore dropped, by up (1) and down (0), for AddSide
	// to reuse: the explorer restores states with and without a session millions of times,
	// and building a side's machines anew is most of what creating one costs.
	spare [2][]*Side
}

// maxSpare bounds the sides kept for reuse, per kind.
const maxSpare = 64

// NewEngine returns an engine with no sessions.
func NewEngine(cfg Config, layout *Layout) Engine {
	return Engine{Cfg: cfg, layout: layout, sessions: map[LegID]*Session{}, legs: map[LegID]*Side{}, owner: map[LegID]*Session{}}
}

// Begin starts a step.
func (e *Engine) Begin() {
	e.out = nil
	e.errs = e.errs[:0]
	e.repeats = e.repeats[:0]
}

// End finishes a step and returns what it produced. On error the actions are returned for
// diagnosis only: a driver must not carry them out.
func (e *Engine) End() ([]Action, error) {
	for i, n := range e.repeats {
		switch {
		case n == 1:
			e.errs[i] = fmt.Errorf("%w (once more)", e.errs[i])
		case n > 1:
			e.errs[i] = fmt.Errorf("%w (%d more times)", e.errs[i], n)
		}
	}
	return e.out, errors.Join(e.errs...)
}

// Errorf records a failure of the current step; one identical to a failure recorded
// already is counted there, so that the error says each failure once.
func (e *Engine) Errorf(format string, args ...any) {
	err := fmt.Errorf(format, args...)
	for i, x := range e.errs {
		if x.Error() == err.Error() {
			e.repeats[i]++
			return
		}
	}
	e.errs = append(e.errs, err)
	e.repeats = append(e.repeats, 0)
}

// Lookup returns the session and side of a leg.
func (e *Engine) Lookup(leg LegID) (*Session, *Side) {
	sd := e.legs[leg]
	if sd == nil {
		return nil, nil
	}
	return e.owner[leg], sd
}

// NewKey names a new session of a role that starts sessions itself.
func (e *Engine) NewKey() LegID {
	e.nextKey++
	return LegID(e.Cfg.Name + "-" + strconv.Itoa(e.nextKey))
}

// NewSession creates a session under key.
func (e *Engine) NewSession(key LegID) *Session {
	s := &Session{Key: key}
	e.sessions[key] = s
	i := sort.Search(len(e.order), func(i int) bool { return e.order[i] >= key })
	e.order = append(e.order, "")
	copy(e.order[i+1:], e.order[i:])
	e.order[i] = key
	return s
}

// DownLeg names the i-th down leg of a session: derived from the session key, so that the
// same call gets the same names however events interleave.
func DownLeg(key LegID, i int) LegID { return LegID(string(key) + "/" + strconv.Itoa(i)) }

// AddSide creates a side with machines in their initial states and registers its leg.
func (e *Engine) AddSide(s *Session, up bool, leg LegID, hop int, member string) *Side {
	defs := e.layout.Down
	if up {
		defs = e.layout.Up
	}
	var sd *Side
	if k := b2i(up); len(e.spare[k]) > 0 {
		sd = e.spare[k][len(e.spare[k])-1]
		e.spare[k] = e.spare[k][:len(e.spare[k])-1]
		*sd = Side{M: sd.M, Had: sd.Had, enc: sd.enc[:0]}
		for i, m := range sd.M {
			m.Reset()
			sd.Had[i] = 0
		}
	} else {
		sd = &Side{M: make([]*Machine, len(defs)), Had: make([]uint32, len(defs))}
		for i, d := range defs {
			sd.M[i] = d.New()
		}
	}
	sd.Leg, sd.Up, sd.Hop, sd.Member = leg, up, hop, member
	if up {
		s.Up = sd
	} else {
		s.Downs = append(s.Downs, sd)
	}
	e.legs[leg] = sd
	e.owner[leg] = s
	return sd
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Sessions returns the sessions ordered by key.
func (e *Engine) Sessions() []*Session {
	out := make([]*Session, len(e.order))
	for i, k := range e.order {
		out[i] = e.sessions[k]
	}
	return out
}

// Fire feeds an input's machine event to one machine of a side. It returns the state the
// machine was in and whether the rules for the event should run: they run for a
// transition, not for an ignore. A reject emits Refuse; a missing cell is an error.
func (e *Engine) Fire(sd *Side, col int, ev uint8) (from uint8, run bool) {
	m := sd.M[col]
	from = m.State()
	c, err := m.Fire(ev)
	switch {
	case err != nil:
		e.Errorf("%w (leg %s)", err, sd.Leg)
	case c.Kind == CellTo:
		sd.Had[col] |= 1 << ev
		return from, true
	case c.Kind == CellReject:
		e.out = append(e.out, Refuse{Leg: sd.Leg, Machine: m.def.Name, Event: m.def.Events[ev], State: m.def.States[from], Reason: c.Reason})
	}
	return from, false
}

// Send emits an action that fires a machine event of its side. An ignore cell suppresses
// the action (for example a REPORT on a link that already failed). A missing cell is an
// error, but the action is still returned so that the checkers can show what the role
// tried to put on the wire.
func (e *Engine) Send(sd *Side, col int, ev uint8, a Action) bool {
	m := sd.M[col]
	c, err := m.Fire(ev)
	switch {
	case err != nil:
		e.Errorf("%w (leg %s, action %s)", err, sd.Leg, a.Kind())
	case c.Kind == CellIgnore:
		return false
	case c.Kind == CellReject:
		e.Errorf("%w: %s on leg %s: %s", ErrNoCell, a.Kind(), sd.Leg, c.Reason)
	default:
		sd.Had[col] |= 1 << ev
	}
	e.out = append(e.out, a)
	return true
}

// Emit emits an action that fires no machine event.
func (e *Engine) Emit(a Action) { e.out = append(e.out, a) }

// OwnSDP returns the parameters this instance offers (offer) or answers with on a side.
// When the spec has the side announce its a=setup (RFC 6135 §4.1, RFC 4145 §4.1), an offer
// carries actpass, or the role a client configured (Config.Setup), and an answer the
// side's settled party: active or passive. Otherwise the SDP has no a=setup.
func (e *Engine) OwnSDP(sd *Side, announce bool) SDP {
	setup := SetupNone
	if announce {
		switch {
		case !sd.Up && e.Cfg.Setup == ChooseActive:
			setup = SetupActive
		case !sd.Up && e.Cfg.Setup == ChoosePassive:
			setup = SetupPassive
		case !sd.Up:
			setup = SetupActpass
		case sd.Party == PartyActive:
			setup = SetupActive
		default:
			setup = SetupPassive
		}
	}
	kind := "down"
	if sd.Up {
		kind = "up"
	}
	return e.Cfg.OwnSDP(sd.Leg, kind, setup)
}

// Learn stores the peer's parameters, with its a=setup, from SDP the side received. Who
// is active on a negotiated hop is the spec's to settle (the party statement).
func (e *Engine) Learn(sd *Side, p SDP) {
	sd.Peer, sd.PeerKnown = p, true
}

// PresetParty is the party a side's end of its hop takes by the variant's opener knob:
// the figure's link-initiative rule.
func PresetParty(sd *Side, answererOpens bool) Party {
	if sd.Up == answererOpens {
		return PartyActive
	}
	return PartyPassive
}

// Open chooses the connection for a link this side opens: with reuse, a live connection
// this instance opened to the same host and port ("an existing link with matching host,
// port and/or URI"); otherwise a new one.
func (e *Engine) Open(sd *Side, reuse bool) (ConnID, bool) {
	if reuse {
		addr := sd.Peer.Addr()
		for _, k := range e.order {
			s := e.sessions[k]
			for _, o := range sideList(s) {
				if o != sd && o.Conn != "" && o.Party == PartyActive && o.Live(e.layout.Link) && o.Peer.Addr() == addr {
					sd.Conn, sd.Reused = o.Conn, true
					return o.Conn, true
				}
			}
		}
	}
	sd.Conn, sd.Reused = ConnID(sd.Leg), false
	return sd.Conn, false
}

func sideList(s *Session) []*Side {
	if s.Up == nil {
		return s.Downs
	}
	return append([]*Side{s.Up}, s.Downs...)
}

// SetOutcome sets a side's outcome unless it is already final: the first outcome wins.
func SetOutcome(sd *Side, o Outcome) {
	if !sd.Outcome.Final() {
		sd.Outcome = o
	}
}

// BestDownStatus is the status to reject upstream with when every down side failed.
func BestDownStatus(s *Session) int {
	var st []int
	for _, d := range s.Downs {
		if d.Outcome.Kind == Failed {
			st = append(st, d.Outcome.Status)
		}
	}
	return BestStatus(st)
}

// DownOutcomes lists the final outcomes of a session's member sides.
func DownOutcomes(s *Session) []MemberOutcome {
	var out []MemberOutcome
	for _, d := range s.Downs {
		if d.Member != "" && d.Outcome.Final() {
			out = append(out, MemberOutcome{Member: d.Member, Outcome: d.Outcome})
		}
	}
	return out
}

// Terminal reports whether every session is over: every machine of every side is in a
// terminal state.
func (e *Engine) Terminal() bool {
	for _, k := range e.order {
		for _, sd := range sideList(e.sessions[k]) {
			for _, m := range sd.M {
				if !m.Terminal() {
					return false
				}
			}
		}
	}
	return true
}

// Over reports whether every machine of the session is terminal: nothing it receives
// can make it act again.
func (s *Session) Over() bool {
	for _, sd := range sideList(s) {
		for _, m := range sd.M {
			if !m.Terminal() {
				return false
			}
		}
	}
	return true
}

// Forget drops a session that is over, with its legs: afterwards an event on one of
// them is an error, as for a leg the engine never saw. It keeps, and reports false for,
// a session that is not over or a key that names none. The machines never call it: it
// is for a driver that runs for months and must not hold every session it ever had
// (the explorer keeps them all, to check them at the end).
func (e *Engine) Forget(key LegID) bool {
	s := e.sessions[key]
	if s == nil || !s.Over() {
		return false
	}
	for _, sd := range sideList(s) {
		delete(e.legs, sd.Leg)
		delete(e.owner, sd.Leg)
	}
	delete(e.sessions, key)
	if i := slices.Index(e.order, key); i >= 0 {
		e.order = slices.Delete(e.order, i, i+1)
	}
	return true
}

// Snapshot appends the engine's state to dst in a canonical encoding: the sessions in key
// order, each a header and its sides, each length-prefixed. It also remembers each part's
// bytes, so that Restore can skip the parts that did not change.
func (e *Engine) Snapshot(dst []byte) []byte {
	enc := Enc{B: dst}
	enc.I(e.nextKey)
	enc.U(uint64(len(e.order)))
	var part Enc
	for _, k := range e.order {
		s := e.sessions[k]
		part.B = part.B[:0]
		encodeSession(&part, s)
		s.enc = append(s.enc[:0], part.B...)
		enc.U(uint64(len(part.B)))
		enc.B = append(enc.B, part.B...)
		for _, sd := range sideList(s) {
			part.B = part.B[:0]
			encodeSide(&part, sd)
			sd.enc = append(sd.enc[:0], part.B...)
			enc.U(uint64(len(part.B)))
			enc.B = append(enc.B, part.B...)
		}
	}
	return enc.B
}

// EncodeSessions encodes sessions as Snapshot does, with nextKey, but through enc: with
// enc.Rename set, every string renamed, sessions ordered by renamed key, down sides by
// renamed leg, and each side's Last mark left out (it only says which member is last in
// the group list, which renaming members does not change). The explorer uses it to hash a
// state as it would be with interchangeable members swapped. With no Rename it writes
// exactly what Snapshot writes, which lets a caller check it sees all of a role's state.
func EncodeSessions(enc *Enc, nextKey int, sessions []*Session) {
	enc.I(nextKey)
	enc.U(uint64(len(sessions)))
	rn := enc.Rename
	if rn != nil {
		sessions = append([]*Session(nil), sessions...)
		sort.Slice(sessions, func(i, j int) bool { return rn(string(sessions[i].Key)) < rn(string(sessions[j].Key)) })
	}
	part := Enc{Rename: rn}
	for _, s := range sessions {
		part.B = part.B[:0]
		encodeSession(&part, s)
		enc.U(uint64(len(part.B)))
		enc.B = append(enc.B, part.B...)
		sides := sideList(s)
		if rn != nil {
			sides = append([]*Side(nil), sides...)
			downs := sides
			if s.Up != nil {
				downs = sides[1:]
			}
			sort.Slice(downs, func(i, j int) bool { return rn(string(downs[i].Leg)) < rn(string(downs[j].Leg)) })
		}
		for _, sd := range sides {
			part.B = part.B[:0]
			if rn != nil && sd.Last {
				c := *sd
				c.Last = false
				encodeSide(&part, &c)
			} else {
				encodeSide(&part, sd)
			}
			enc.U(uint64(len(part.B)))
			enc.B = append(enc.B, part.B...)
		}
	}
}

// NextKey reads the session counter a snapshot starts with.
func NextKey(snap []byte) int {
	d := Dec{B: snap}
	return d.I()
}

func encodeSession(enc *Enc, s *Session) {
	enc.S(string(s.Key))
	enc.S(s.Target)
	enc.S(s.From)
	enc.Strings(s.Members)
	enc.U(uint64(s.Group))
	enc.U(s.Flags)
	enc.I(s.Total)
	enc.Results(&s.Results)
	enc.Bool(s.Up != nil)
	enc.U(uint64(len(s.Downs)))
}

func encodeSide(enc *Enc, sd *Side) {
	enc.S(string(sd.Leg))
	enc.I(sd.Hop)
	enc.S(sd.Member)
	enc.Bool(sd.Last)
	for i, m := range sd.M {
		enc.U(uint64(m.State()))
		enc.U(uint64(sd.Had[i]))
	}
	enc.SDP(sd.Peer)
	enc.Bool(sd.PeerKnown)
	enc.U(uint64(sd.Party))
	enc.I(sd.Rx)
	enc.I(sd.Tx)
	enc.Outcome(sd.Outcome)
	enc.Bool(sd.Reported)
	enc.S(string(sd.Conn))
	enc.Bool(sd.Reused)
}

// part reads one length-prefixed part of a snapshot.
func (d *Dec) part() []byte {
	n := d.U()
	if n > uint64(len(d.B)) {
		d.fail()
		return nil
	}
	p := d.B[:n]
	d.B = d.B[n:]
	return p
}

// Restore replaces the engine's state with a snapshot. Sessions and sides whose bytes
// equal what the engine last encoded or decoded are kept as they are, and machines are
// reused, so that the explorer can restore at every step.
func (e *Engine) Restore(b []byte) error {
	d := Dec{B: b}
	e.nextKey = d.I()
	n := d.U()
	keep := make(map[LegID]bool, n)
	e.order = e.order[:0]
	for i := uint64(0); i < n && d.Err == nil; i++ {
		hdr := d.part()
		hd := Dec{B: hdr}
		key := LegID(hd.S())
		s := e.sessions[key]
		if s == nil {
			s = &Session{Key: key}
			e.sessions[key] = s
		}
		keep[key] = true
		e.order = append(e.order, key)
		var hasUp bool
		var downs uint64
		if bytes.Equal(s.enc, hdr) {
			hasUp, downs = s.Up != nil, uint64(len(s.Downs))
		} else {
			s.Target, s.From, s.Members = hd.S(), hd.S(), hd.Strings()
			s.Group, s.Flags, s.Total = GroupStatus(hd.U()), hd.U(), hd.I()
			s.Results = hd.Results()
			hasUp, downs = hd.Bool(), hd.U()
			if hd.Err != nil || len(hd.B) != 0 || downs > uint64(len(d.B)) {
				return ErrSnapshot
			}
			s.enc = append(s.enc[:0], hdr...)
		}
		count := downs
		if hasUp {
			count++
		}
		s.Up = nil
		s.Downs = s.Downs[:0]
		for j := uint64(0); j < count && d.Err == nil; j++ {
			sb := d.part()
			sdd := Dec{B: sb}
			leg := LegID(sdd.S())
			up := hasUp && j == 0
			sd := e.legs[leg]
			if sd == nil || sd.Up != up {
				defs := e.layout.Down
				if up {
					defs = e.layout.Up
				}
				if k := b2i(up); len(e.spare[k]) > 0 {
					// Every field but Leg and Up is decoded below: enc is cleared so that
					// the side cannot pass for unchanged.
					sd = e.spare[k][len(e.spare[k])-1]
					e.spare[k] = e.spare[k][:len(e.spare[k])-1]
					sd.Leg, sd.Up, sd.enc = leg, up, sd.enc[:0]
				} else {
					sd = &Side{Leg: leg, Up: up, M: make([]*Machine, len(defs)), Had: make([]uint32, len(defs))}
					for c, def := range defs {
						sd.M[c] = def.New()
					}
				}
				e.legs[leg] = sd
			}
			e.owner[leg] = s
			if up {
				s.Up = sd
			} else {
				s.Downs = append(s.Downs, sd)
			}
			if bytes.Equal(sd.enc, sb) {
				continue
			}
			sd.Hop, sd.Member, sd.Last = sdd.I(), sdd.S(), sdd.Bool()
			for c, m := range sd.M {
				st := sdd.U()
				if st >= uint64(len(m.def.States)) {
					return ErrSnapshot
				}
				m.Set(uint8(st))
				sd.Had[c] = uint32(sdd.U())
			}
			sd.Peer, sd.PeerKnown, sd.Party = sdd.SDP(), sdd.Bool(), Party(sdd.U())
			sd.Rx, sd.Tx, sd.Outcome, sd.Reported = sdd.I(), sdd.I(), sdd.Outcome(), sdd.Bool()
			sd.Conn, sd.Reused = ConnID(sdd.S()), sdd.Bool()
			if sdd.Err != nil || len(sdd.B) != 0 {
				return ErrSnapshot
			}
			sd.enc = append(sd.enc[:0], sb...)
		}
	}
	if d.Err == nil && len(d.B) != 0 {
		d.Err = ErrSnapshot
	}
	for key, s := range e.sessions {
		if keep[key] {
			continue
		}
		for _, sd := range sideList(s) {
			delete(e.legs, sd.Leg)
			delete(e.owner, sd.Leg)
			if k := b2i(sd.Up); len(e.spare[k]) < maxSpare {
				e.spare[k] = append(e.spare[k], sd)
			}
		}
		delete(e.sessions, key)
	}
	return d.Err
}

// Target is where a down side's INVITE goes: its member, or the session's target.
func Target(s *Session, sd *Side) string {
	if sd.Member != "" {
		return sd.Member
	}
	return s.Target
}

// MembersFor is the ad-hoc member list a down side's INVITE carries on: the session's list,
// except on the CF's per-member legs, which each serve one member.
func MembersFor(s *Session, sd *Side) []string {
	if sd.Member != "" {
		return nil
	}
	return s.Members
}

// From is the identity a session's INVITEs carry: the original sender's, which the
// B2BUAs pass on, or the instance's own when it starts the session.
func From(cfg *Config, s *Session) string {
	if s.From != "" {
		return s.From
	}
	return cfg.URI
}
