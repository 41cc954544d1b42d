package model

// The built-in vocabulary: what a condition may read besides machine states and history,
// the types an event field may have and the sources an action field may be filled from.
// The generator implements each entry; docs/spec.md documents them.

// SideAttrs are the attributes of a side. Boolean ones have no values.
var SideAttrs = map[string][]string{
	// peer-known: the side learned the peer's MSRP parameters from SDP it received.
	"peer-known": nil,
	// pending: chunks received upstream are not yet relayed on this (down) side.
	"pending": nil,
	// reported: the side's outcome was sent upstream.
	"reported": nil,
	// waiting: the side's `waiting` condition holds; its guard timer should run.
	"waiting": nil,
	// last: this is the last down side (the last member of the group).
	"last": nil,
	// complete: the whole message crossed the side: its last chunk arrived (up side) or
	// was relayed (down side).
	"complete": nil,
	// setup: whether this role is the active party of the side's link.
	"setup": {"undecided", "active", "passive"},
	// negotiated: the side's hop negotiates who opens its link by SDP a=setup (the
	// hop's value of the knob initiative).
	"negotiated": nil,
	// peer-setup: the a=setup of the SDP the side received (none: absent).
	"peer-setup": {"none", "actpass", "active", "passive"},
	// overridden: the side's party is settled and differs from the one the variant's
	// opener knob names for this end (negotiation overrode the figure's preset).
	"overridden": nil,
	// outcome: the final outcome of the member behind the side.
	"outcome": {"none", "delivered", "failed"},
}

// SessionAttrs are the attributes of a session.
var SessionAttrs = map[string][]string{
	// complete: the transmitter knows the outcome of every member.
	"complete": nil,
	// group: whether the CF could resolve the target group and the sender may use it.
	"group": {"ok", "unknown", "forbidden"},
}

// PolicyAttrs are the configured behaviours of a role instance.
var PolicyAttrs = map[string][]string{
	// answer: how a receiver answers an INVITE.
	"answer": {"accept", "decline", "silent"},
	// setup: a client's a=setup on a negotiated hop (servers leave it at actpass).
	"setup": {"actpass", "active", "passive", "none"},
	// sender: how a transmitter ends its session. Ours waits for every member's outcome;
	// foreign clients often hang up as soon as every chunk has its 200 (closing the
	// connection and sending BYE, or only sending BYE), asking for no success REPORT; a
	// blind one asks for no response and no REPORT at all (Failure-Report: no) and hangs
	// up when its guard runs out.
	"sender": {"waits", "closes", "hangs-up", "blind"},
}

// FieldTypes are the types an event field may have.
var FieldTypes = map[string]bool{
	"uri": true, "uris": true, "sdp": true, "status": true, "outcome": true, "outcomes": true,
	"int": true, "bool": true, "conn": true,
}

// SourceReq says what an action field source needs from its statement or rule.
type SourceReq int

// What a source needs.
const (
	NeedsNothing SourceReq = iota
	NeedsStatus
	NeedsAbout
	NeedsEventChunk
)

// Sources are the sources an action field may be filled from, with their field type.
var Sources = map[string]struct {
	Type  string
	Needs SourceReq
}{
	"target":        {"uri", NeedsNothing},
	"from":          {"uri", NeedsNothing},
	"members":       {"uris", NeedsNothing},
	"own-sdp":       {"sdp", NeedsNothing},
	"peer-sdp":      {"sdp", NeedsNothing},
	"status":        {"status", NeedsStatus},
	"outcomes":      {"outcomes", NeedsNothing},
	"conn":          {"conn", NeedsNothing},
	"up-leg":        {"leg", NeedsNothing},
	"chunk-first":   {"int", NeedsNothing},
	"chunk-last":    {"int", NeedsNothing},
	"chunk-final":   {"bool", NeedsNothing},
	"event-chunk":   {"int", NeedsEventChunk},
	"event-last":    {"bool", NeedsEventChunk},
	"about-member":  {"uri", NeedsAbout},
	"about-outcome": {"outcome", NeedsAbout},
	"about-of":      {"int", NeedsAbout},
	"opens":         {"bool", NeedsNothing},
}
