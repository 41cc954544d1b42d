package msrpsdp_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cpmlink/cpmlink/runtime/msrpsdp"
)

// A PF answers ClientA's offer with its own MSRP parameters and the
// complementary direction and setup (RFC 4975 §8, RFC 6135).
func Example() {
	offer := []byte("v=0\r\n" +
		"o=- 2890844526 1 IN IP4 127.0.0.1\r\n" +
		"s=-\r\n" +
		"c=IN IP4 127.0.0.1\r\n" +
		"t=0 0\r\n" +
		"m=message 40001 TCP/MSRP *\r\n" +
		"a=path:msrp://127.0.0.1:40001/a1b2c3;tcp\r\n" +
		"a=accept-types:message/cpim\r\n" +
		"a=sendonly\r\n" +
		"a=setup:active\r\n")
	peer, err := msrpsdp.Parse(offer)
	if err != nil {
		var e *msrpsdp.Error
		if errors.As(err, &e) {
			fmt.Println("488, Warning:", e.Warning("pf-a.example"))
		}
		return
	}
	fmt.Println("peer path:", peer.Path, "setup:", peer.Setup)

	answer, err := msrpsdp.Marshal(msrpsdp.Media{
		Host:        "127.0.0.1",
		Port:        41002,
		Path:        []string{"msrp://127.0.0.1:41002/kjd8s9;tcp"},
		Setup:       msrpsdp.SetupPassive,
		Direction:   msrpsdp.RecvOnly,
		AcceptTypes: []string{"message/cpim"},
	}, 77, 1)
	if err != nil {
		panic(err)
	}
	fmt.Print(strings.ReplaceAll(string(answer), "\r\n", "\n")) // CRLF on the wire
	// Output:
	// peer path: [msrp://127.0.0.1:40001/a1b2c3;tcp] setup: active
	// v=0
	// o=- 77 1 IN IP4 127.0.0.1
	// s=-
	// c=IN IP4 127.0.0.1
	// t=0 0
	// m=message 41002 TCP/MSRP *
	// a=path:msrp://127.0.0.1:41002/kjd8s9;tcp
	// a=accept-types:message/cpim
	// a=recvonly
	// a=setup:passive
}

// A bad offer becomes a 488 with a Warning header naming the problem.
func ExampleError_Warning() {
	_, err := msrpsdp.Parse([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio 49170 RTP/AVP 0\r\n"))
	var e *msrpsdp.Error
	if errors.As(err, &e) {
		fmt.Println(e.Warning("cf.example"))
	}
	// Output:
	// 304 cf.example "media 'audio' not available, want message"
}
