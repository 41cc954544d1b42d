package core

import (
	"crypto/sha256"
	"fmt"
	"testing"
)

// The session-id is the hash of the four fields joined by NUL, as it always was: ids
// must not change across builds (recorded traces name them).
func TestSessionIDOfNULJoinedFields(t *testing.T) {
	for _, c := range [][4]string{
		{"sim", "pfa", "clientA-1", "up"},
		{"", "", "", ""},
		{"s\x00", "x", "clientA-1/0/2", "down"},
	} {
		sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%s", c[0], c[1], c[2], c[3]))
		if got, want := SessionID(c[0], c[1], LegID(c[2]), c[3]), sidEncoding.EncodeToString(sum[:10]); got != want {
			t.Errorf("SessionID%q = %s, want %s", c, got, want)
		}
	}
}
