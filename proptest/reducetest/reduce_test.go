package reducetest

import "testing"

// TestReductionKeepsVerdicts compares the plain and the reduced search (KeepsVerdicts) at
// one member over one PF-B with two chunks; widetest does so at two members.
func TestReductionKeepsVerdicts(t *testing.T) {
	KeepsVerdicts(t, "../testdata/broken.yaml", Size{Members: 1, PFBs: 1, Chunks: 2})
}
