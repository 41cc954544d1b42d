package runtime_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/runtime"
	"github.com/cpmlink/cpmlink/runtime/sipx"
)

func fig1(t *testing.T) fsm.Variant {
	t.Helper()
	v, ok := fsm.VariantByName("fig1")
	if !ok {
		t.Fatal("no fig1 in the spec")
	}
	return v
}

// TestGroupRefusals: an unknown group gets 404 and a sender the group does not allow
// 403; the transmitter learns it as the outcome of every member.
func TestGroupRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		target  string
		senders []string
		status  int
	}{
		{"unknown group", "sip:nosuch@cf.example", nil, 404},
		{"sender not allowed", runtime.GroupURI, []string{"sip:boss@a.example"}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 30*time.Second)
			r := startGroup(t, ctx, runtime.GroupConfig{Variant: fig1(t), Members: 2, PFBs: 1, Senders: tc.senders, StoreDir: t.TempDir()})
			r.send(t, ctx, tc.target, nil, []byte("hello"))
			if got := r.outcome.Rest; got.Kind != core.Failed || got.Status != tc.status {
				t.Errorf("outcome %v, want failed %d", got, tc.status)
			}
			for _, m := range r.g.Members {
				if n := len(m.Received()); n != 0 {
					t.Errorf("%s stored %d messages", m.Name(), n)
				}
			}
		})
	}
}

// TestSendRejectsBadMessage: a message the transmitter cannot send is refused by Send
// with ErrBadMessage before any signalling, and the transmitter then sends a good one.
func TestSendRejectsBadMessage(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 30*time.Second)
	r := startGroup(t, ctx, runtime.GroupConfig{Variant: fig1(t), Members: 2, PFBs: 1, StoreDir: t.TempDir()})
	open := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("hello")), nil }
	for name, msg := range map[string]runtime.Message{
		"no Open":            {Size: 5, ContentType: "text/plain"},
		"negative size":      {Open: open, Size: -1, ContentType: "text/plain"},
		"not a media type":   {Open: open, Size: 5, ContentType: "plain text"},
		"header in the type": {Open: open, Size: 5, ContentType: "text/plain\r\nX-Evil: 1"},
	} {
		if _, err := r.g.ClientA.Send(ctx, runtime.GroupURI, nil, msg); !errors.Is(err, runtime.ErrBadMessage) {
			t.Errorf("%s: Send returned %v, want ErrBadMessage", name, err)
		}
	}
	if err := r.g.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(r.trace.Bytes()); n != 0 {
		t.Errorf("refused messages left %d bytes of trace: something was signalled", n)
	}
	msg := []byte("hello")
	r.send(t, ctx, runtime.GroupURI, nil, msg)
	r.checkDelivered(t, msg, nil)
}

// TestBadSDPGets488: an INVITE whose SDP cannot be read is answered 488 with a Warning
// saying why; the CF goes on serving the group.
func TestBadSDPGets488(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 30*time.Second)
	r := startGroup(t, ctx, runtime.GroupConfig{Variant: fig1(t), Members: 2, PFBs: 1, StoreDir: t.TempDir()})
	got := make(chan sipx.Response, 1)
	probe, err := sipx.Start(ctx, sipx.Config{Name: "probe", Host: "127.0.0.1", Identity: runtime.SenderURI},
		sipx.Handler{Response: func(_ string, resp sipx.Response) { got <- resp }})
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	for i, body := range []string{
		"v=0\r\nthis is not SDP\r\n",
		// Well-formed SDP without an MSRP media line.
		"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
	} {
		leg := "probe-" + string(rune('a'+i))
		if err := probe.Invite(leg, "sip:group@"+r.g.CF.SIPAddr(), "", []sipx.Part{{ContentType: "application/sdp", Body: []byte(body)}}, nil); err != nil {
			t.Fatal(err)
		}
		select {
		case resp := <-got:
			// RFC 3261 §20.43: 3xx warn-codes are about the session description.
			if resp.Status != 488 || !strings.HasPrefix(resp.Header("Warning"), "3") {
				t.Errorf("bad SDP %d: %d %s, Warning %q; want 488 with a Warning", i, resp.Status, resp.Reason, resp.Header("Warning"))
			}
		case <-ctx.Done():
			t.Fatal("no answer to the INVITE with a bad SDP")
		}
	}
	msg := payload(20<<10, 3)
	r.send(t, ctx, runtime.GroupURI, nil, msg)
	r.checkDelivered(t, msg, nil)
}

// TestMalformedMSRPGets400: a malformed SEND on a role's MSRP port gets 400, and the role
// goes on relaying.
func TestMalformedMSRPGets400(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 30*time.Second)
	r := startGroup(t, ctx, runtime.GroupConfig{Variant: fig1(t), Members: 2, PFBs: 1, StoreDir: t.TempDir()})
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", r.g.CF.MSRPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	// A SEND whose Byte-Range cannot be read (RFC 4975 §7.1.1: 400).
	send := "MSRP tx1234 SEND\r\nTo-Path: msrp://" + r.g.CF.MSRPAddr() + "/nosuch;tcp\r\nFrom-Path: msrp://127.0.0.1:9/probe;tcp\r\n" +
		"Message-ID: x\r\nByte-Range: 1-x/2\r\nContent-Type: text/plain\r\n\r\nhi\r\n-------tx1234$\r\n"
	if _, err := c.Write([]byte(send)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	if !strings.HasPrefix(line, "MSRP tx1234 400") {
		t.Errorf("answer %q, want MSRP tx1234 400", strings.TrimSpace(line))
	}
	msg := payload(20<<10, 4)
	r.send(t, ctx, runtime.GroupURI, nil, msg)
	r.checkDelivered(t, msg, nil)
}
