package core

import (
	"crypto/sha256"
	"encoding/base32"
	"sort"
)

var sidEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// SessionID derives the MSRP session-id of one side from the instance's secret, so that a
// pure state machine can name its sessions. With a random secret (the runtime's), the id
// carries 80 bits an attacker cannot guess (RFC 4975 §14.1).
func SessionID(secret, instance string, leg LegID, side string) string {
	// The four fields NUL-separated, hashed without fmt: the explorer derives an id on
	// most of its steps.
	b := make([]byte, 0, len(secret)+len(instance)+len(leg)+len(side)+3)
	b = append(append(append(append(append(append(append(b, secret...), 0), instance...), 0), leg...), 0), side...)
	sum := sha256.Sum256(b)
	return sidEncoding.EncodeToString(sum[:10])
}

// OwnSDP returns the MSRP parameters a role instance puts in the SDP it sends for one side.
func (c *Config) OwnSDP(leg LegID, side string, setup Setup) SDP {
	scheme := "msrp"
	if c.TLS {
		scheme = "msrps"
	}
	p := SDP{Host: c.MSRPHost, Port: c.MSRPPort, Setup: setup, TLS: c.TLS}
	p.Path = scheme + "://" + p.Addr() + "/" + SessionID(c.Secret, c.Name, leg, side) + ";tcp"
	return p
}

// Results is the transmitter's view of the group: each member's outcome as REPORTs and
// final responses tell it, and a group-wide failure for members never heard of.
type Results struct {
	// Expect is the group size the CF announced (0 while unknown).
	Expect int
	// Members holds one entry per member, sorted by member.
	Members []MemberOutcome
	// Rest, when final, is the outcome of every member not in Members: the session
	// failed before their outcome arrived.
	Rest Outcome
}

// Record stores one member's outcome; it reports false when the member already had one.
func (r *Results) Record(member string, o Outcome, of int) bool {
	if of > r.Expect {
		r.Expect = of
	}
	i := sort.Search(len(r.Members), func(i int) bool { return r.Members[i].Member >= member })
	if i < len(r.Members) && r.Members[i].Member == member {
		return false
	}
	if r.Rest.Final() {
		return false
	}
	r.Members = append(r.Members, MemberOutcome{})
	copy(r.Members[i+1:], r.Members[i:])
	r.Members[i] = MemberOutcome{Member: member, Outcome: o}
	return true
}

// FailRest marks every member not yet heard of as failed; it reports false when that was
// already decided.
func (r *Results) FailRest(status int) bool {
	if r.Complete() {
		return false
	}
	r.Rest = FailedOutcome(status)
	return true
}

// Complete reports whether every member's outcome is known.
func (r *Results) Complete() bool {
	return r.Rest.Final() || r.Expect > 0 && len(r.Members) >= r.Expect
}

// Of returns the outcome the transmitter holds for a member.
func (r *Results) Of(member string) Outcome {
	for _, m := range r.Members {
		if m.Member == member {
			return m.Outcome
		}
	}
	return r.Rest
}
