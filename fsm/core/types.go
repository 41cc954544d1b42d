package core

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Errors a Step may return. They wrap the detail with %w.
var (
	// ErrNoCell: an event or an action met a machine state that has no cell for it. This
	// is a gap in the spec; the checkers report it as a completeness violation.
	ErrNoCell = errors.New("fsm: no cell")
	// ErrUnknownLeg: an event names a leg the role does not know (SIP 481).
	ErrUnknownLeg = errors.New("fsm: unknown leg")
	// ErrUnsettled: the reactions kept firing; a reaction does not falsify its own guard.
	ErrUnsettled = errors.New("fsm: reactions did not settle")
)

// LegID names one hop instance: one SIP dialog and its MSRP link. Leg ids are chosen by
// the role that sends the leg's INVITE and derived from the upstream leg ("A1/0/2"), so
// they are deterministic; the runtime maps them to Call-IDs.
type LegID string

// ConnID names one connection a role opened: the leg whose link opened it. Naming it
// after the leg rather than a counter keeps it independent of the order links open in,
// so that the explorer does not count orders that differ only in numbering.
type ConnID string

// Setup is the RFC 6135 a=setup attribute.
type Setup uint8

// Setup values. SetupNone means the attribute is absent (preset initiative).
const (
	SetupNone Setup = iota
	SetupActpass
	SetupActive
	SetupPassive
)

func (s Setup) String() string {
	switch s {
	case SetupActpass:
		return "actpass"
	case SetupActive:
		return "active"
	case SetupPassive:
		return "passive"
	}
	return ""
}

// ParseSetup reads an a=setup value; the empty string is SetupNone.
func ParseSetup(v string) (Setup, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "":
		return SetupNone, nil
	case "actpass":
		return SetupActpass, nil
	case "active":
		return SetupActive, nil
	case "passive":
		return SetupPassive, nil
	}
	return SetupNone, fmt.Errorf("fsm: a=setup: unknown value %q", v)
}

// SetupChoice is what a client puts in a=setup on a negotiated hop: the policy by which
// it negotiates who opens the link (RFC 6135, RFC 4145 §4.1).
type SetupChoice uint8

// Setup choices.
const (
	// ChooseActpass leaves the choice: an offer carries actpass; an answer to actpass
	// follows the variant's link-initiative rule, an answer to a fixed role complements it.
	ChooseActpass SetupChoice = iota
	// ChooseActive and ChoosePassive fix the client's role: an offer carries it, and the
	// client keeps it; an answer to actpass takes it.
	ChooseActive
	ChoosePassive
	// ChooseNone sends no a=setup, as a plain RFC 4975 client: the offerer connects (RFC
	// 4975 §5.4), whatever the other side says.
	ChooseNone
)

// SetupChoices are the choices in order, for enumeration.
var SetupChoices = []SetupChoice{ChooseActpass, ChooseActive, ChoosePassive, ChooseNone}

func (c SetupChoice) String() string {
	switch c {
	case ChooseActive:
		return "active"
	case ChoosePassive:
		return "passive"
	case ChooseNone:
		return "none"
	}
	return "actpass"
}

// ParseSetupChoice reads a choice by its name (actpass, active, passive, none; "" is actpass).
func ParseSetupChoice(v string) (SetupChoice, error) {
	for _, c := range SetupChoices {
		if v == c.String() {
			return c, nil
		}
	}
	if v == "" {
		return ChooseActpass, nil
	}
	return ChooseActpass, fmt.Errorf("fsm: setup choice: unknown value %q (actpass, active, passive, none)", v)
}

// SDP is the MSRP media description one party puts in an offer or answer: where to reach
// it (c= and the m= port), its MSRP URI (a=path) and, when initiative is negotiated, its
// a=setup. These are the patent's "MSRP connection parameters".
type SDP struct {
	Host  string
	Port  int
	Path  string
	Setup Setup
	TLS   bool
}

// IsZero reports whether no parameters were ever learned.
func (p SDP) IsZero() bool { return p.Host == "" && p.Port == 0 && p.Path == "" }

// Addr is host:port, the key by which connections are reused.
func (p SDP) Addr() string { return net.JoinHostPort(p.Host, strconv.Itoa(p.Port)) }

func (p SDP) String() string {
	if p.IsZero() {
		return "(none)"
	}
	s := p.Path
	if p.Setup != SetupNone {
		s += " setup:" + p.Setup.String()
	}
	return s
}

// OutcomeKind is what happened to the message at one member.
type OutcomeKind uint8

// Outcome kinds.
const (
	OutcomeNone OutcomeKind = iota
	Delivered
	Failed
)

// Outcome is a member's final result. Status is the SIP or MSRP status that caused a
// failure (486 Busy Here, 408 timeout, 481 ...), or 200 when delivered.
type Outcome struct {
	Kind   OutcomeKind
	Status int
}

// Final reports whether the outcome is known.
func (o Outcome) Final() bool { return o.Kind != OutcomeNone }

func (o Outcome) String() string {
	switch o.Kind {
	case Delivered:
		return "delivered"
	case Failed:
		return fmt.Sprintf("failed %d", o.Status)
	}
	return "none"
}

// DeliveredOutcome is the outcome of a member that holds the whole message.
func DeliveredOutcome() Outcome { return Outcome{Kind: Delivered, Status: 200} }

// FailedOutcome is the outcome of a member that does not, with the status that says why.
func FailedOutcome(status int) Outcome { return Outcome{Kind: Failed, Status: status} }

// MemberOutcome is one member's outcome, as the transmitter learns it.
type MemberOutcome struct {
	Member  string
	Outcome Outcome
}

// GroupStatus is the result of resolving the target of an INVITE at the CF.
type GroupStatus uint8

// Group statuses.
const (
	GroupOK GroupStatus = iota
	GroupUnknown
	GroupForbidden
)

// AnswerMode is how a receiver answers an INVITE.
type AnswerMode uint8

// Answer modes.
const (
	AnswerAccept AnswerMode = iota
	AnswerDecline
	AnswerSilent
)

// Answer is a receiver's answering policy.
type Answer struct {
	Mode AnswerMode
	// Status is the final response a declining receiver sends (486 when zero).
	Status int
}

// DeclineStatus returns the status a declining receiver sends.
func (a Answer) DeclineStatus() int {
	if a.Status == 0 {
		return 486
	}
	return a.Status
}

// Sender is how a transmitter ends its session (the spec's policy.sender).
type Sender uint8

// Sender policies. SenderWaits is cpmlink's own client: it asks for success REPORTs
// (RFC 4975 §7.1.2) and hangs up once it knows every member's outcome. SenderCloses and
// SenderHangsUp are common foreign clients that ask for no success REPORT and hang up as
// soon as every SEND of the message has its 200: SenderCloses drops the MSRP connection
// and sends BYE, SenderHangsUp sends BYE. SenderBlind asks for nothing at all
// (Success-Report: no, Failure-Report: no: no 200 to its SENDs and no REPORT, RFC 4975
// §7.1.1, §7.1.2), so nothing tells it the message arrived: it hangs up when its guard
// timer runs out.
const (
	SenderWaits Sender = iota
	SenderCloses
	SenderHangsUp
	SenderBlind
)

// Senders lists every sender policy, in order.
var Senders = []Sender{SenderWaits, SenderCloses, SenderHangsUp, SenderBlind}

func (s Sender) String() string {
	switch s {
	case SenderCloses:
		return "closes"
	case SenderHangsUp:
		return "hangs-up"
	case SenderBlind:
		return "blind"
	}
	return "waits"
}

// ParseSender reads a sender policy name; the empty string is SenderWaits.
func ParseSender(v string) (Sender, error) {
	switch v {
	case "", "waits":
		return SenderWaits, nil
	case "closes":
		return SenderCloses, nil
	case "hangs-up":
		return SenderHangsUp, nil
	case "blind":
		return SenderBlind, nil
	}
	return SenderWaits, fmt.Errorf("fsm: unknown sender policy %q (waits, closes, hangs-up, blind)", v)
}

// Group is a pre-defined group at the CF.
type Group struct {
	Members []string
	// Senders may send to the group; empty means anyone may.
	Senders []string
}

// Config is one role instance's configuration.
type Config struct {
	// Name identifies the instance in traces and leg ids ("PFB1").
	Name string
	// URI is the instance's SIP identity: a client's address of record, a PF's or the
	// CF's service URI.
	URI string
	// MSRPHost and MSRPPort are where the instance accepts MSRP connections.
	MSRPHost string
	MSRPPort int
	// TLS selects msrps:// and TCP/TLS/MSRP.
	TLS bool
	// Secret seeds the MSRP session ids. The runtime passes a random one.
	Secret string
	// Groups are the CF's pre-defined groups, by group URI.
	Groups map[string]Group
	// Answer is a receiver's answering policy.
	Answer Answer
	// Setup is a client's a=setup on a negotiated hop (RFC 6135). A server leaves it at
	// ChooseActpass, the default: it can do either.
	Setup SetupChoice
	// Sender is a transmitter's policy for ending its session.
	Sender Sender
}

// Resolve returns the members a CF fans out to: the ad-hoc list when the INVITE carries
// one (RFC 5366), else the pre-defined group named by target.
func (c *Config) Resolve(target, from string, adhoc []string) ([]string, GroupStatus) {
	if len(adhoc) > 0 {
		return adhoc, GroupOK
	}
	g, ok := c.Groups[target]
	if !ok {
		return nil, GroupUnknown
	}
	if len(g.Senders) > 0 {
		allowed := false
		for _, s := range g.Senders {
			allowed = allowed || s == from
		}
		if !allowed {
			return nil, GroupForbidden
		}
	}
	return g.Members, GroupOK
}

// BestStatus picks the status to send upstream when every member failed, after RFC 3261
// §16.7: a 6xx wins; otherwise a 4xx other than 408, then a 5xx, then 408; 480 if none.
func BestStatus(statuses []int) int {
	best, rank := 480, 99
	for _, s := range statuses {
		r := 99
		switch {
		case s >= 600:
			r = 0
		case s >= 400 && s < 500 && s != 408:
			r = 1
		case s >= 500 && s < 600:
			r = 2
		case s == 408:
			r = 3
		}
		if r < rank || r == rank && s < best {
			best, rank = s, r
		}
	}
	return best
}
