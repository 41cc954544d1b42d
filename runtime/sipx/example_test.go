package sipx_test

import (
	"context"
	"fmt"
	"time"

	"github.com/cpmlink/cpmlink/runtime/sipx"
)

// Example sets up the embedded SIP/IP core and two endpoints, and runs one
// dialog: INVITE, 200, ACK, BYE. A real driver posts each callback to its
// mailbox instead of to channels.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	core, _ := sipx.StartProxy(ctx, sipx.ProxyConfig{Host: "127.0.0.1"})
	defer core.Close()

	invites := make(chan string, 1)
	acks, byes := make(chan string, 1), make(chan string, 1)
	bob, _ := sipx.Start(ctx, sipx.Config{Host: "127.0.0.1", Identity: "sip:bob@b.example", Proxy: core.UDPAddr()},
		sipx.Handler{
			Invite: func(leg string, in sipx.IncomingInvite) { invites <- leg },
			Ack:    func(leg string) { acks <- leg },
			Bye:    func(leg string) { byes <- leg },
		})
	defer bob.Close()
	_ = core.SetRoute("b.example", bob.UDPAddr())

	answers := make(chan sipx.Response, 1)
	alice, _ := sipx.Start(ctx, sipx.Config{Host: "127.0.0.1", Identity: "sip:alice@a.example", Proxy: core.UDPAddr()},
		sipx.Handler{Response: func(leg string, r sipx.Response) { answers <- r }})
	defer alice.Close()

	offer := []sipx.Part{{ContentType: "application/sdp", Body: []byte("v=0\r\n")}}
	if err := alice.Invite("hop1", "sip:bob@b.example", "", offer, []sipx.Header{{Name: "Contribution-ID", Value: "c1"}}); err != nil {
		fmt.Println(err)
		return
	}
	leg := <-invites
	_ = bob.Answer(leg, []sipx.Part{{ContentType: "application/sdp", Body: []byte("v=0\r\n")}}, nil)
	r := <-answers
	fmt.Println("alice got", r.Status, r.Reason)
	_ = alice.Ack("hop1")
	fmt.Println("bob got the ACK on", <-acks)
	_ = alice.Bye("hop1")
	fmt.Println("bob got the BYE on", <-byes)
	// Output:
	// alice got 200 OK
	// bob got the ACK on in:1
	// bob got the BYE on in:1
}
