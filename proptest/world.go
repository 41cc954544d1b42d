package proptest

import (
	"fmt"
	"hash/fnv"
	"strconv"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
)

// Config describes one simulated group send.
type Config struct {
	Variant fsm.Variant
	// Members is the group size; members are spread round-robin over PFBs terminating PFs.
	Members int
	PFBs    int
	// Chunks is the number of MSRP chunks the message is cut into (at least 1).
	Chunks int
	// Faults, by member index, injects failures (rapid chooses them).
	Faults map[int]Fault
	// Timers lets guard timers fire when nothing else can happen, which models time-outs
	// longer than any message delay.
	Timers bool
	// FaultBudget is how many fault steps a run may take (faults.go): a guard timer that
	// fires while messages are in flight, a duplicated SIP message, a refused connection,
	// a link reset with frames in flight, a host gone on any hop, the network cut between
	// a member and its PF-B or, while the message is not whole there, on any hop. 0: none,
	// the runs of a fault-free search.
	FaultBudget int
	// Hostile probes every state for the input only a broken peer sends (hostile.go): each
	// role must refuse each such input the wire allows in that state.
	Hostile bool
	// ForeignOffers has Run feed, after every step, each INVITE in flight on a negotiated
	// hop to a copy of its receiver as the offers that fix the offerer's role, which a
	// foreign offerer makes and ours never do (foreign.go). Hostile does so in the explorer.
	ForeignOffers bool
	// Group is what the CF finds for the group the sender writes to: the group
	// (core.GroupOK, the default), no such group (core.GroupUnknown) or a group the sender
	// may not write to (core.GroupForbidden). The sender must then be refused with 404 or
	// 403 and no member invited (checkGroupRefused).
	Group core.GroupStatus
	// plant, when set (by tests only), wraps each role instance: a bug planted in the code
	// the spec generates, where the spec cannot express it (a reject cell that ignores).
	plant func(fsm.RoleKind, fsm.Role) fsm.Role
	// codeVariant, when set (by tests only), is the variant the roles run while the
	// checkers hold them to Variant: a table the generated code disobeys.
	codeVariant *fsm.Variant
	// SenderSetup is the a=setup the transmitter client uses on a negotiated hop1, and
	// MemberSetups those of the members on hop4 (member m takes MemberSetups[m mod len];
	// empty: actpass). They stand for standard clients that fix their role (RFC 6135).
	SenderSetup  core.SetupChoice
	MemberSetups []core.SetupChoice
	// Sender is how the transmitter ends its session: cpmlink's own client waits for every
	// outcome; a foreign one asks for no success REPORT and hangs up (closing its
	// connection, or only with BYE) as soon as its last SEND has its 200.
	Sender core.Sender
}

// MemberSetup is the a=setup choice of member m.
func (c Config) MemberSetup(m int) core.SetupChoice {
	if len(c.MemberSetups) == 0 {
		return core.ChooseActpass
	}
	return c.MemberSetups[m%len(c.MemberSetups)]
}

// SetupRotations returns the configuration once per a=setup choice of the transmitter,
// the members taking the choices in turn after it (member m of rotation k takes choice
// k+1+m): every client choice is met on hop1 and, with one member or more, on hop4, in
// len(core.SetupChoices) runs rather than one per combination.
func SetupRotations(c Config) []Config {
	n := len(core.SetupChoices)
	out := make([]Config, 0, n)
	for k := 0; k < n; k++ {
		x := c
		x.SenderSetup = core.SetupChoices[k]
		x.MemberSetups = make([]core.SetupChoice, n)
		for m := range x.MemberSetups {
			x.MemberSetups[m] = core.SetupChoices[(k+1+m)%n]
		}
		out = append(out, x)
	}
	return out
}

// SetupLabel names a configuration's client a=setup choices, for reports.
func (c Config) SetupLabel() string {
	s := "clientA " + c.SenderSetup.String() + ", members"
	for m := 0; m < c.Members; m++ {
		s += " " + c.MemberSetup(m).String()
	}
	return s
}

// FaultKind is a failure injected for one member.
type FaultKind uint8

// Fault kinds.
const (
	NoFault FaultKind = iota
	// Decline: the member answers the INVITE with Status (486, 480, 603 ...).
	Decline
	// Silent: the member never answers; a guard timer must end the wait.
	Silent
	// RefuseHop3 / RefuseHop4: opening the member's hop3 / hop4 link fails.
	RefuseHop3
	RefuseHop4
	// BreakHop4: the member's hop4 link breaks after After frames crossed it.
	BreakHop4
	// HangUp: the member answers, then hangs up (BYE, RFC 3261 §15) at any moment once
	// its dialog is confirmed (ChooseHangUp), until its dialog ends otherwise.
	HangUp
)

func (k FaultKind) String() string {
	return [...]string{"none", "decline", "silent", "refuse-hop3", "refuse-hop4", "break-hop4", "hang-up"}[k]
}

// Fault is one injected failure.
type Fault struct {
	Kind   FaultKind
	Status int
	After  int
}

// Role indexes of the fixed roles; PF-Bs and members follow.
const (
	idxClientA = 0
	idxPFA     = 1
	idxCF      = 2
	firstPFB   = 3
)

// GroupURI is the pre-defined group the simulated sender writes to.
const GroupURI = "sip:group@cf.example"

// World is the simulated network: the role instances (the generated code), what is in
// flight between them, and what the checkers observed so far.
type World struct {
	cfg   Config
	roles []fsm.Role
	kinds []fsm.RoleKind
	names []string
	uris  []string
	// snaps caches each role's snapshot, so that restoring a state touches only the roles
	// that differ.
	snaps [][]byte
	net   network
	obs   observations
	// log, when non-nil, receives every step for traces.
	log *[]Step
	// legIdx numbers the legs: the ones a run is expected to set up first, then any other
	// in order of appearance. It is a dictionary, not state: it only grows.
	legIdx   map[core.LegID]int
	legNames []core.LegID
	// seq numbers what is sent, for the canonical schedule (not state).
	seq uint64
	// rename, when set, renames the strings saveNet writes (the symmetry reduction encodes
	// a permuted copy of the network through it; see canon.go).
	rename func(string) string
	// strs, when set, numbers the strings of the network's encoding (the explorer's
	// workers share one table).
	strs *localStrings
	// internAs, when set, numbers strings for saveNet instead of strs (the symmetry
	// reduction renames numbered strings through it).
	internAs func(string) uint64
	// order is the variant's order rules (nil: none), configuration, not state.
	order *orderCheck
	// legEnc, when set, holds the encodings of the legs of the state the explorer is
	// expanding, for saveNet (it is never set with rename or internAs).
	legEnc *legEncCache
	// takesKind caches, per role name and input kind, whether the role takes such input
	// at all (hostile.go). A dictionary, not state.
	takesKind map[string]bool
	// tap, when set, sees every event a machine takes and every action it returns.
	tap func(role int, ev fsm.Event, acts []fsm.Action)
	// guarded is the leg whose guard timer the step being taken answers ("" in any other
	// step): what the step sends is sent after the guard's time, 64*T1. Not state.
	guarded core.LegID
}

// NumRoles is the number of role instances of a configuration.
func (c Config) NumRoles() int { return firstPFB + c.PFBs + c.Members }

func (c Config) pfbOf(member int) int     { return firstPFB + member%c.PFBs }
func (c Config) memberIdx(member int) int { return firstPFB + c.PFBs + member }

// MemberURI is the SIP URI of member i.
func (c Config) MemberURI(i int) string {
	return fmt.Sprintf("sip:m%d@b%d.example", i+1, i%c.PFBs+1)
}

// NewWorld instantiates the generated roles for a configuration.
func NewWorld(cfg Config) (*World, error) {
	if cfg.Members < 1 || cfg.PFBs < 1 || cfg.Chunks < 1 {
		return nil, fmt.Errorf("proptest: need at least one member, PF-B and chunk: %+v", cfg)
	}
	if err := cfg.Variant.Check(); err != nil {
		return nil, err
	}
	n := cfg.NumRoles()
	w := &World{cfg: cfg, roles: make([]fsm.Role, n), names: make([]string, n), uris: make([]string, n), snaps: make([][]byte, n),
		legIdx: map[core.LegID]int{}}
	var members []string
	for i := 0; i < cfg.Members; i++ {
		members = append(members, cfg.MemberURI(i))
	}
	// roleAt answers from kinds once it is set; until then it derives the answer.
	kinds := make([]fsm.RoleKind, n)
	for i := 0; i < n; i++ {
		kind, name, uri := w.roleAt(i)
		kinds[i] = kind
		c := core.Config{Name: name, URI: uri, MSRPHost: name, MSRPPort: 2855, Secret: "sim"}
		if kind == fsm.RoleCF {
			switch cfg.Group {
			case core.GroupUnknown:
				c.Groups = map[string]core.Group{"sip:other@cf.example": {Members: members}}
			case core.GroupForbidden:
				c.Groups = map[string]core.Group{GroupURI: {Members: members, Senders: []string{"sip:someone-else@a.example"}}}
			default:
				c.Groups = map[string]core.Group{GroupURI: {Members: members}}
			}
		}
		if kind == fsm.RoleClientA {
			c.Setup = cfg.SenderSetup
			c.Sender = cfg.Sender
		}
		if kind == fsm.RoleClientB {
			c.Setup = cfg.MemberSetup(i - cfg.memberIdx(0))
			f := cfg.Faults[i-cfg.memberIdx(0)]
			switch f.Kind {
			case Decline:
				c.Answer = core.Answer{Mode: core.AnswerDecline, Status: f.Status}
			case Silent:
				c.Answer = core.Answer{Mode: core.AnswerSilent}
			}
		}
		code := cfg.Variant
		if cfg.codeVariant != nil {
			code = *cfg.codeVariant
		}
		w.roles[i] = fsm.New(kind, c, code)
		if cfg.plant != nil {
			w.roles[i] = cfg.plant(kind, w.roles[i])
		}
		w.names[i], w.uris[i] = name, uri
		w.snaps[i] = w.roles[i].Snapshot(nil)
	}
	w.kinds = kinds
	var err error
	if w.order, err = newOrderCheck(cfg.Variant); err != nil {
		return nil, err
	}
	w.obs.init(cfg)
	w.net.faultsLeft = cfg.FaultBudget
	for _, l := range []core.LegID{w.hopLeg(1), w.hopLeg(2)} {
		w.leg(l)
	}
	for m := 0; m < cfg.Members; m++ {
		w.leg(w.memberLeg(m, 3))
		w.leg(w.memberLeg(m, 4))
	}
	// The user hands the transmitter the message for the group (S101).
	if v := w.step(idxClientA, fsm.Start{Target: GroupURI}); v != nil {
		return nil, v
	}
	return w, nil
}

// isMember says whether role instance i is a member (a ClientB).
func (w *World) isMember(i int) bool { return i >= firstPFB+w.cfg.PFBs }

func (w *World) roleAt(i int) (fsm.RoleKind, string, string) {
	// The checkers ask on every step: once the world is built, the answer is its tables.
	if i < len(w.kinds) {
		return w.kinds[i], w.names[i], w.uris[i]
	}
	switch {
	case i == idxClientA:
		return fsm.RoleClientA, "clientA", "sip:alice@a.example"
	case i == idxPFA:
		return fsm.RolePFA, "pfa", "sip:pf@a.example"
	case i == idxCF:
		return fsm.RoleCF, "cf", "sip:cf@cf.example"
	case i < firstPFB+w.cfg.PFBs:
		k := i - firstPFB + 1
		return fsm.RolePFB, "pfb" + strconv.Itoa(k), fmt.Sprintf("sip:pf@b%d.example", k)
	}
	m := i - w.cfg.memberIdx(0)
	return fsm.RoleClientB, "m" + strconv.Itoa(m+1), w.cfg.MemberURI(m)
}

// Name returns the instance name of role i.
func (w *World) Name(i int) string { return w.names[i] }

// Role returns role instance i.
func (w *World) Role(i int) fsm.Role { return w.roles[i] }

// Config returns the world's configuration.
func (w *World) Config() Config { return w.cfg }

// route says which role an INVITE from role from, to target, reaches: the SIP/IP core's
// routing table (originating PF by the sender, the CF by the group, terminating PF by the
// member's domain, the member by its registration).
func (w *World) route(from int, target string) (int, bool) {
	kind, _, _ := w.roleAt(from)
	switch kind {
	case fsm.RoleClientA:
		return idxPFA, true
	case fsm.RolePFA:
		return idxCF, true
	case fsm.RoleCF, fsm.RolePFB:
		for m := 0; m < w.cfg.Members; m++ {
			if w.cfg.MemberURI(m) == target {
				if kind == fsm.RoleCF {
					return w.cfg.pfbOf(m), true
				}
				return w.cfg.memberIdx(m), true
			}
		}
	}
	return 0, false
}

// byHost finds the role whose MSRP host is h.
func (w *World) byHost(h string) (int, bool) {
	for i, n := range w.names {
		if n == h {
			return i, true
		}
	}
	return 0, false
}

// memberOf returns the member index of a ClientB role index, or -1.
func (w *World) memberOf(i int) int {
	if m := i - w.cfg.memberIdx(0); m >= 0 && m < w.cfg.Members {
		return m
	}
	return -1
}

// legNo returns the number of a leg, adding it to the dictionary if new.
func (w *World) legNo(l core.LegID) int {
	i, ok := w.legIdx[l]
	if !ok {
		i = len(w.legNames)
		w.legIdx[l] = i
		w.legNames = append(w.legNames, l)
	}
	return i
}

// leg returns the state of a leg, creating it.
func (w *World) leg(l core.LegID) *legState {
	i := w.legNo(l)
	for len(w.net.legs) <= i {
		w.net.legs = append(w.net.legs, legState{ends: [2]int{-1, -1}, opener: -1})
	}
	return &w.net.legs[i]
}

// dialog returns the state of a leg an INVITE set up, or nil.
func (w *World) dialog(l core.LegID) *legState {
	i, ok := w.legIdx[l]
	if !ok || i >= len(w.net.legs) || w.net.legs[i].ends[0] < 0 {
		return nil
	}
	return &w.net.legs[i]
}

// chunkSum is the checksum the transmitter gives chunk k; a member must receive exactly
// these sums, in order, for the message to be byte-exact.
func chunkSum(k int) uint32 {
	h := fnv.New32a()
	fmt.Fprintf(h, "chunk-%d", k)
	return h.Sum32()
}
