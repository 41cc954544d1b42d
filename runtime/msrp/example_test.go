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

// holdSink hands every upstream chunk to the driver, retained beyond
// WriteChunk (zero-copy for big chunks), and then how the message ended.
type holdSink struct {
	chunks chan *msrp.RetainedChunk
	ended  chan error
}

func (h *holdSink) WriteChunk(c *msrp.Chunk) error { h.chunks <- c.Retain(); return nil }
func (h *holdSink) Close(err error) error          { h.ended <- err; return nil }

// ExampleOutgoing plays a relay hop the way cpmlink's runtime drives
// one from its state machines: chunks arriving upstream are held until the
// downstream link is up (here: until the whole message arrived), then
// forwarded one by one with WriteChunk, keeping the upstream's Message-ID,
// Byte-Ranges, flags and Content-Type; the downstream outcome goes back
// upstream as a REPORT the caller sends itself (DetachedReports).
func ExampleOutgoing() {
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
	bob, bobAddr := serve()
	defer bob.Close()
	relay, relayAddr := serve()
	defer relay.Close()
	alice := msrp.NewEndpoint(msrp.Config{})
	defer alice.Close()

	// The receiver.
	var got bytes.Buffer
	sink := msrp.NewWriterSink(&got, 0)
	arrived := make(chan msrp.IncomingMessage, 1)
	bobURI := msrp.MustParseURI("msrp://" + bobAddr + "/" + msrp.NewSessionID() + ";tcp")
	if _, err := bob.NewSession(msrp.SessionConfig{Local: bobURI, Accept: func(m *msrp.IncomingMessage) (msrp.Sink, error) {
		arrived <- *m
		return sink, nil
	}}); err != nil {
		panic(err)
	}

	// The relay: the upstream session hands chunks to the driver below; the
	// downstream session is not connected yet.
	hold := &holdSink{chunks: make(chan *msrp.RetainedChunk, 16), ended: make(chan error, 1)}
	started := make(chan msrp.IncomingMessage, 1)
	upURI := msrp.MustParseURI("msrp://" + relayAddr + "/" + msrp.NewSessionID() + ";tcp")
	up, err := relay.NewSession(msrp.SessionConfig{Local: upURI, DetachedReports: true,
		Accept: func(m *msrp.IncomingMessage) (msrp.Sink, error) { started <- *m; return hold, nil }})
	if err != nil {
		panic(err)
	}
	down, err := relay.NewSession(msrp.SessionConfig{
		Local: msrp.MustParseURI("msrp://" + relayAddr + "/" + msrp.NewSessionID() + ";tcp"), Remote: msrp.Path{bobURI}})
	if err != nil {
		panic(err)
	}

	// The sender asks for a success REPORT: it hears back only when the
	// relay reports bob's outcome.
	s, err := alice.NewSession(msrp.SessionConfig{Local: msrp.MustParseURI("msrp://127.0.0.1:40001/alice1;tcp"), Remote: msrp.Path{upURI}})
	if err != nil {
		panic(err)
	}
	if _, err := s.Connect(ctx); err != nil {
		panic(err)
	}
	sent := make(chan msrp.Result, 1)
	go func() {
		res, _ := s.Send(ctx, &msrp.Message{ID: "alice0001", ContentType: "text/plain", SuccessReport: true,
			Body: strings.NewReader("Hello group, held then relayed."), Size: 31, ChunkSize: 8})
		sent <- res
	}()

	// The driver: hold the chunks ("SendReceived"), bring the link up
	// ("OpenLink"), forward them ("RelayChunk"), report ("SendReport").
	var m msrp.IncomingMessage
	select {
	case m = <-started:
	case <-ctx.Done():
		panic("no message upstream")
	}
	var held []*msrp.RetainedChunk
	for ended := false; !ended; {
		select {
		case c := <-hold.chunks:
			held = append(held, c)
		case <-hold.ended:
			for len(hold.chunks) > 0 { // queued before Close, on the same goroutine
				held = append(held, <-hold.chunks)
			}
			ended = true
		case <-ctx.Done():
			panic("upstream message never ended")
		}
	}
	fmt.Println("relay: holding", len(held), "chunks")
	if _, err := down.Connect(ctx); err != nil {
		panic(err)
	}
	out, err := down.BeginMessage(msrp.OutgoingHeader{ID: m.MessageID, ContentType: m.ContentType, Total: m.Total,
		SuccessReport: m.SuccessReport, Headers: m.Headers})
	if err != nil {
		panic(err)
	}
	for _, c := range held {
		fmt.Println("relay: forwarding", c.Range)
		if err := out.WriteChunk(ctx, c.Range.Start, c.Body, c.Flag == msrp.FlagEnd); err != nil {
			panic(err)
		}
		c.Release()
	}
	res := out.Wait(ctx)
	fmt.Println("relay: downstream status", res.Status)
	if err := up.SendReport(ctx, m.FromPath, m.MessageID, msrp.ByteRange{Start: 1, End: m.Total, Total: m.Total},
		res.Status, "", []msrp.Field{{Name: "X-Member", Value: "bob"}}); err != nil {
		panic(err)
	}
	fmt.Println("alice: delivered", (<-sent).Delivered())
	bm := <-arrived // Accept ran before the first chunk was answered
	select {
	case <-sink.Done():
	case <-ctx.Done():
		panic("bob never got the whole message")
	}
	fmt.Printf("bob got %q as %s (%s, %d bytes)\n", got.String(), bm.MessageID, bm.ContentType, bm.Total)
	// Output:
	// relay: holding 4 chunks
	// relay: forwarding 1-8/31
	// relay: forwarding 9-16/31
	// relay: forwarding 17-24/31
	// relay: forwarding 25-31/31
	// relay: downstream status 200
	// alice: delivered true
	// bob got "Hello group, held then relayed." as alice0001 (text/plain, 31 bytes)
}
