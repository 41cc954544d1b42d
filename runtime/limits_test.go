package runtime_test

import (
	"bufio"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/runtime"
	"github.com/cpmlink/cpmlink/runtime/sipx"
)

// TestSessionLimit (issue 11 item 7): a role instance holds at most
// MSRPLimits.MaxSessions MSRP sessions. With three members behind three PF-Bs
// and a limit of 3, the CF (one upstream session plus one per member) can
// serve two members: the third member's link fails with 403, the sender learns
// it for that member alone, and the other two get the message byte-exact.
func TestSessionLimit(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, time.Minute)
	msg := payload(30<<10, 6)
	r := sendToGroup(t, ctx, runtime.GroupConfig{Variant: fig1(t), Members: 3, PFBs: 3, ChunkSize: 8 << 10,
		StoreDir: t.TempDir(), MSRPLimits: runtime.MSRPLimits{MaxSessions: 3}}, false, msg)
	delivered, refused := 0, 0
	for i, m := range r.g.Members {
		switch got := r.outcome.Of(r.members[i]); {
		case got.Kind == core.Delivered:
			delivered++
			if rec := m.Received(); len(rec) != 1 || rec[0].SHA256 != sum(msg) {
				t.Errorf("%s delivered but stored %v", r.members[i], rec)
			}
		case got.Kind == core.Failed && got.Status == 403:
			refused++
			if n := len(m.Received()); n != 0 {
				t.Errorf("%s refused but stored %d messages", r.members[i], n)
			}
		default:
			t.Errorf("%s: sender learned %v", r.members[i], got)
		}
	}
	if delivered != 2 || refused != 1 {
		t.Errorf("%d delivered and %d refused, want 2 and 1", delivered, refused)
	}
}

// TestForeignSenderRefusals (issue 11 item 4): a sender that is not cpmlink's (SIP from
// a probe UA, MSRP as raw bytes written here) offers message/cpim, as PF-A's SDP asks,
// and then sends a chunk of text/plain: PF-A answers 415 on the chunk itself (RFC 4975
// §8.6). A chunk with a forged From-Path on the session it bound gets 403 (§7.3). No
// member stores anything (not even an empty file), and the group then delivers a proper
// message.
func TestForeignSenderRefusals(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, time.Minute)
	r := startGroup(t, ctx, runtime.GroupConfig{Variant: fig1(t), Members: 2, PFBs: 1, StoreDir: t.TempDir(), Guard: 2 * time.Second})
	answers := make(chan sipx.Response, 4)
	probe, err := sipx.Start(ctx, sipx.Config{Name: "probe", Host: "127.0.0.1", Identity: runtime.SenderURI},
		sipx.Handler{Response: func(_ string, resp sipx.Response) { answers <- resp }})
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	// In fig1 the sender connects (RFC 4975 §5.4: the offerer), so this path is
	// never dialled; it only names us.
	ours := "msrp://127.0.0.1:9/probe5dk2j3h4g5;tcp"
	offer := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=message 9 TCP/MSRP *\r\n" +
		"a=path:" + ours + "\r\na=accept-types:message/cpim\r\na=accept-wrapped-types:*\r\na=sendonly\r\n"
	if err := probe.Invite("probe-1", runtime.GroupURI, "", []sipx.Part{{ContentType: "application/sdp", Body: []byte(offer)}},
		[]sipx.Header{{Name: "Accept-Contact", Value: "*;+g.oma.sip-im.large-message"},
			{Name: "Route", Value: "<sip:" + r.g.PFA.SIPAddr() + ";lr>"}}); err != nil {
		t.Fatal(err)
	}
	var ok sipx.Response
	select {
	case ok = <-answers:
	case <-ctx.Done():
		t.Fatal("no answer to the INVITE")
	}
	if ok.Status != 200 {
		t.Fatalf("INVITE answered %d %s", ok.Status, ok.Reason)
	}
	if err := probe.Ack("probe-1"); err != nil {
		t.Fatal(err)
	}
	var theirs string
	for _, p := range ok.Parts {
		for _, line := range strings.Split(string(p.Body), "\r\n") {
			if v, found := strings.CutPrefix(line, "a=path:"); found {
				theirs = v
			}
		}
	}
	hostport, _, _ := strings.Cut(strings.TrimPrefix(theirs, "msrp://"), "/")
	if theirs == "" || strings.Contains(theirs, " ") {
		t.Fatalf("PF-A's answer has a=path %q", theirs)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	br := bufio.NewReader(c)
	for _, tc := range []struct{ tid, from, ctype, body, want string }{
		// Binds the session (RFC 4975 §7.1.1), and is refused for its type.
		{"wrong0001", ours, "text/plain", "hello", "415"},
		// A forged sender on the bound session (RFC 4975 §7.3).
		{"forge0001", "msrp://127.0.0.1:9/mallory;tcp", "message/cpim",
			"From: <sip:m@x>\r\nTo: <sip:g@x>\r\n\r\nContent-Type: text/plain\r\n\r\nforged", "403"},
	} {
		send := "MSRP " + tc.tid + " SEND\r\nTo-Path: " + theirs + "\r\nFrom-Path: " + tc.from + "\r\nMessage-ID: msg" + tc.tid + "\r\n" +
			"Byte-Range: 1-" + strconv.Itoa(len(tc.body)) + "/" + strconv.Itoa(len(tc.body)) + "\r\nContent-Type: " + tc.ctype +
			"\r\n\r\n" + tc.body + "\r\n-------" + tc.tid + "$\r\n"
		if _, err := c.Write([]byte(send)); err != nil {
			t.Fatal(err)
		}
		// The response: start-line, paths, end-line (RFC 4975 §7.2).
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the answer: %v", err)
		}
		if want := "MSRP " + tc.tid + " " + tc.want; !strings.HasPrefix(line, want) {
			t.Fatalf("answer %q, want %s", strings.TrimSpace(line), want)
		}
		for !strings.HasPrefix(line, "-------"+tc.tid) {
			if line, err = br.ReadString('\n'); err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
		}
	}
	_ = probe.Bye("probe-1")
	if err := r.g.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	for _, m := range r.g.Members {
		if n := len(m.Received()); n != 0 {
			t.Errorf("%s stored %d messages from a refused chunk", m.Name(), n)
		}
	}
	msg := payload(20<<10, 7)
	r.send(t, ctx, runtime.GroupURI, nil, msg)
	r.checkDelivered(t, msg, nil)
}
