package runtime

import (
	"slices"
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/runtime/msrpsdp"
)

// TestSessionsAcceptWhatSDPOffers: the content types every MSRP session is told to
// enforce (offeredTypes, offeredWrapped; RFC 4975 §8.6) are exactly those the role's
// SDP advertises, so that a message the SDP allows is never refused and one it does
// not allow is refused with 415 instead of stored.
func TestSessionsAcceptWhatSDPOffers(t *testing.T) {
	part := sdpPart(fsm.SDP{Host: "127.0.0.1", Port: 40001, Path: "msrp://127.0.0.1:40001/a1b2c3;tcp"}, "recvonly")
	m, err := msrpsdp.Parse(part.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.AcceptTypes, offeredTypes) || !slices.Equal(m.AcceptWrappedTypes, offeredWrapped) {
		t.Errorf("SDP offers accept-types %v and accept-wrapped-types %v; sessions enforce %v and %v",
			m.AcceptTypes, m.AcceptWrappedTypes, offeredTypes, offeredWrapped)
	}
}
