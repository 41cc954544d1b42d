package reslist_test

import (
	"fmt"

	"github.com/cpmlink/cpmlink/runtime/reslist"
)

// ClientA invites an ad-hoc group: the INVITE body carries the SDP and the
// member list (RFC 5366 §4); the CF takes them apart again.
func Example() {
	sdp := []byte("v=0\r\n...")
	ct, body, err := reslist.MarshalMultipart([]reslist.Part{
		{ContentType: "application/sdp", Body: sdp},
		{ContentType: reslist.ContentType, Disposition: reslist.Disposition,
			Body: reslist.Marshal([]string{"sip:bob@b.example", "sip:carol@c.example"})},
	})
	if err != nil {
		panic(err)
	}

	// At the CF:
	parts, err := reslist.ParseMultipart(ct, body)
	if err != nil {
		panic(err) // answer 400
	}
	for _, p := range parts {
		switch p.MediaType() {
		case "application/sdp":
			fmt.Printf("SDP, %d bytes\n", len(p.Body))
		case reslist.ContentType:
			members, err := reslist.Parse(p.Body)
			if err != nil {
				panic(err) // answer 400 (or 403 for reslist.ErrUnsupported)
			}
			fmt.Println(p.Disposition, members)
		}
	}
	// Output:
	// SDP, 8 bytes
	// recipient-list [sip:bob@b.example sip:carol@c.example]
}
