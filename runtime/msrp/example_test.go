package msrp_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/cpmlink/cpmlink/runtime/msrp"
)

// Example sends one message from an active party to a passive one on
// loopback: the receiver serves an injected listener, the sender connects
// (binding the connection with a bodiless SEND) and streams the body from an
// io.Reader; the receiver reassembles it into a bytes.Buffer.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Passive side (e.g. the answerer): listen on loopback, port 0.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	bob := msrp.NewEndpoint(msrp.Config{})
	defer bob.Close()
	go func() { _ = bob.Serve(l) }()
	bobURI := msrp.MustParseURI(fmt.Sprintf("msrp://%s/bob123;tcp", l.Addr()))
	aliceURI := msrp.MustParseURI("msrp://127.0.0.1:40001/alice1;tcp")

	var got bytes.Buffer
	sink := msrp.NewWriterSink(&got, 0)
	_, err = bob.NewSession(msrp.SessionConfig{
		Local:  bobURI,
		Remote: msrp.Path{aliceURI}, // from the SDP offer's a=path
		Accept: func(m *msrp.IncomingMessage) (msrp.Sink, error) { return sink, nil },
	})
	if err != nil {
		panic(err)
	}

	// Active side (e.g. the offerer): connect to the a=path from the answer.
	alice := msrp.NewEndpoint(msrp.Config{})
	defer alice.Close()
	s, err := alice.NewSession(msrp.SessionConfig{
		Local:    aliceURI,
		Remote:   msrp.Path{bobURI},
		OnLinkUp: func(l msrp.Link) { fmt.Printf("link up: active=%v reused=%v\n", l.Active, l.Reused) },
	})
	if err != nil {
		panic(err)
	}
	if _, err := s.Connect(ctx); err != nil {
		panic(err)
	}
	res, err := s.Send(ctx, &msrp.Message{
		ContentType: "text/plain",
		Body:        strings.NewReader("Hello Bob, this message is chunked."),
		ChunkSize:   8, // tiny, to show chunking
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("delivered:", res.Delivered(), "bytes:", res.Bytes)
	select {
	case <-sink.Done():
	case <-ctx.Done():
		panic("message never completed")
	}
	fmt.Println("received:", got.String())
	// Output:
	// link up: active=true reused=false
	// delivered: true bytes: 35
	// received: Hello Bob, this message is chunked.
}

// ExampleRelay shows a B2BUA hop that fans one upstream message out to two
// downstream sessions (the CF); PF-A and PF-B are the same with one.
func ExampleRelay() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	serve := func() (*msrp.Endpoint, string) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		ep := msrp.NewEndpoint(msrp.Config{})
		go func() { _ = ep.Serve(l) }()
		return ep, l.Addr().String()
	}
	members, membersAddr := serve()
	defer members.Close()
	cf, cfAddr := serve()
	defer cf.Close()
	sender := msrp.NewEndpoint(msrp.Config{})
	defer sender.Close()

	relay := msrp.NewRelay(msrp.RelayConfig{
		OnDone: func(m *msrp.IncomingMessage, status int) { fmt.Println("relay done, status", status) },
	})
	var sinks []*msrp.WriterSink
	var bufs []*bytes.Buffer
	for _, id := range []string{"member1", "member2"} {
		buf := new(bytes.Buffer)
		sink := msrp.NewWriterSink(buf, 0)
		sinks, bufs = append(sinks, sink), append(bufs, buf)
		memberURI := msrp.MustParseURI("msrp://" + membersAddr + "/" + id + ";tcp")
		if _, err := members.NewSession(msrp.SessionConfig{Local: memberURI,
			Accept: func(*msrp.IncomingMessage) (msrp.Sink, error) { return sink, nil }}); err != nil {
			panic(err)
		}
		down, err := cf.NewSession(msrp.SessionConfig{Local: msrp.MustParseURI("msrp://" + cfAddr + "/to-" + id + ";tcp"),
			Remote: msrp.Path{memberURI}})
		if err != nil {
			panic(err)
		}
		if _, err := down.Connect(ctx); err != nil {
			panic(err)
		}
		relay.Add(down)
	}
	upURI := msrp.MustParseURI("msrp://" + cfAddr + "/upstream;tcp")
	if _, err := cf.NewSession(msrp.SessionConfig{Local: upURI, Accept: relay.Accept}); err != nil {
		panic(err)
	}
	s, err := sender.NewSession(msrp.SessionConfig{Local: msrp.MustParseURI("msrp://127.0.0.1:40001/pfa;tcp"), Remote: msrp.Path{upURI}})
	if err != nil {
		panic(err)
	}
	if _, err := s.Connect(ctx); err != nil {
		panic(err)
	}
	// Success-Report: the sender hears back only when both members have it.
	res, err := s.Send(ctx, &msrp.Message{ContentType: "message/cpim", Body: strings.NewReader("to the whole group"), SuccessReport: true})
	if err != nil {
		panic(err)
	}
	fmt.Println("sender: delivered", res.Delivered())
	for i, sink := range sinks {
		select {
		case <-sink.Done():
		case <-ctx.Done():
			panic("member never completed")
		}
		fmt.Printf("member%d got %q\n", i+1, bufs[i].String())
	}
	// Output:
	// relay done, status 200
	// sender: delivered true
	// member1 got "to the whole group"
	// member2 got "to the whole group"
}
