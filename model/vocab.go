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
	// setup: whether this role is the active party of the side's link.
	"setup": {"undecided", "active", "passive"},
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
}
