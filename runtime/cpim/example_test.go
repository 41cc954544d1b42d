package cpim_test

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cpmlink/cpmlink/runtime/cpim"
)

// ClientA wraps its message; a ClientB unwraps it. Neither holds the payload
// in memory: Wrap and Read stream it.
func Example() {
	payload := "a very large message"
	h := cpim.Header{
		From:          "<sip:alice@a.example>",
		To:            "<sip:friends@cf.example>",
		DateTime:      time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
		NS:            []string{"imdn <urn:ietf:params:imdn>"},
		Extra:         []cpim.Field{{Name: "imdn.Message-ID", Value: "34jk324j"}},
		ContentType:   "application/octet-stream",
		ContentLength: int64(len(payload)),
	}
	body := cpim.Wrap(h, strings.NewReader(payload)) // the MSRP message body
	size := cpim.WrappedSize(h, int64(len(payload))) // its Byte-Range total
	fmt.Println("MSRP message of", size, "bytes, Content-Type: message/cpim")

	got, rest, err := cpim.Read(body)
	if err != nil {
		panic(err)
	}
	b, err := io.ReadAll(rest)
	if err != nil {
		panic(err)
	}
	fmt.Printf("from %s: %q (%s)\n", got.From, b, got.ContentType)
	// Output:
	// MSRP message of 235 bytes, Content-Type: message/cpim
	// from <sip:alice@a.example>: "a very large message" (application/octet-stream)
}
