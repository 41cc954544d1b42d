package msrp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// reportCatcher collects REPORTs seen by OnReport, cloned (the frame is only
// valid during the callback).
func reportCatcher() (func(*Frame), chan *Frame) {
	ch := make(chan *Frame, 8)
	return func(f *Frame) { ch <- f.Clone() }, ch
}

func TestDetachedReportsFailureReport(t *testing.T) {
	// The runtime sends one REPORT per group member (RFC 4975 §7.1.2 with
	// extension headers, §9). A member's failure must reach the sender's
	// OnReport with its headers but, with detached reports, must not fail
	// the sender's message, which the other members may still receive.
	for _, tc := range []struct {
		name     string
		detached bool
		want     int
	}{
		{"detached: the Result is the hop's", true, StatusOK},
		{"attached: a failure REPORT fails the message", false, StatusUnsupportedMedia},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			a := newTestEndpoint(t, Config{})
			b := newTestEndpoint(t, Config{})
			first := make(chan IncomingMessage, 1)
			rec := newRecordSink(0)
			sb := mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("recv"), DetachedReports: true,
				Accept: func(m *IncomingMessage) (Sink, error) { first <- *m; return rec, nil }})
			onReport, reports := reportCatcher()
			sa := mustSession(t, a.Endpoint, SessionConfig{Local: a.uri("send"), Remote: Path{b.uri("recv")},
				DetachedReports: tc.detached, OnReport: onReport})
			if _, err := sa.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			out, err := sa.BeginMessage(OutgoingHeader{ContentType: "message/cpim", Total: 6, SuccessReport: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := out.WriteChunk(ctx, 1, []byte("abc"), false); err != nil {
				t.Fatal(err)
			}
			var im IncomingMessage
			select {
			case im = <-first:
			case <-ctx.Done():
				t.Fatal("message never started")
			}
			member := []Field{{"X-Cpmlink-Member", "sip:bob@example.com"}, {"X-Cpmlink-Of", "3"}}
			if err := sb.SendReport(ctx, nil, im.MessageID, ByteRange{1, 6, 6}, StatusUnsupportedMedia, "member refused", member); err != nil {
				t.Fatal(err)
			}
			var f *Frame
			select {
			case f = <-reports:
			case <-ctx.Done():
				t.Fatal("REPORT never reached OnReport")
			}
			if f.MessageID != out.ID() || f.ReportStatus == nil || *f.ReportStatus != (ReportStatus{0, 415, "member refused"}) ||
				f.ByteRange != (ByteRange{1, 6, 6}) {
				t.Fatalf("REPORT %+v %+v", f, f.ReportStatus)
			}
			if v, _ := f.Header("X-Cpmlink-Member"); v != "sip:bob@example.com" {
				t.Fatalf("member header %q in %v", v, f.Headers)
			}
			if v, _ := f.Header("x-cpmlink-of"); v != "3" {
				t.Fatalf("of header %q", v)
			}
			werr := out.WriteChunk(ctx, 4, []byte("def"), true)
			res := out.Wait(ctx)
			if res.Status != tc.want || res.Delivered() != (tc.want == StatusOK) {
				t.Fatalf("Wait = %+v; want %d", res, tc.want)
			}
			if tc.detached {
				if werr != nil {
					t.Fatal(werr)
				}
				waitClosed(t, ctx, rec.done)
			} else if StatusOf(werr) != StatusUnsupportedMedia {
				t.Fatalf("last WriteChunk after the failure REPORT = %v", werr)
			}
		})
	}
}

func TestDetachedReportsNoAutomaticReport(t *testing.T) {
	// A receiver with detached reports sends no success REPORT of its own.
	// The check is deterministic: an automatic REPORT is written before the
	// last chunk's 200, so once Send has that 200 the REPORT would have been
	// handled already.
	for _, tc := range []struct {
		name        string
		detachedB   bool
		wantReports int
	}{
		{"detached receiver: none", true, 0},
		{"attached receiver: the success REPORT", false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			a := newTestEndpoint(t, Config{})
			b := newTestEndpoint(t, Config{})
			ws := NewWriterSink(&bytes.Buffer{}, 0)
			mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("recv"), DetachedReports: tc.detachedB,
				Accept: func(*IncomingMessage) (Sink, error) { return ws, nil }})
			onReport, reports := reportCatcher()
			// The sender detaches its reports so that Send returns on the
			// 200s instead of waiting for a REPORT that may never come.
			sa := mustSession(t, a.Endpoint, SessionConfig{Local: a.uri("send"), Remote: Path{b.uri("recv")},
				DetachedReports: true, OnReport: onReport})
			if _, err := sa.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := sa.Send(ctx, &Message{ContentType: "text/plain", Body: bytes.NewReader(randBytes(5000, 3)),
				Size: 5000, SuccessReport: true}); err != nil {
				t.Fatal(err)
			}
			waitClosed(t, ctx, ws.Done())
			if n := len(reports); n != tc.wantReports {
				t.Fatalf("%d REPORTs, want %d", n, tc.wantReports)
			}
		})
	}
}

func TestSendReportRefusesBadInput(t *testing.T) {
	// Nothing a caller passes can break a frame or inject a header line.
	ctx := testCtx(t)
	p := newPair(t, Config{}, Config{})
	if _, err := p.sa.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	br := ByteRange{1, 3, 3}
	for _, tc := range []struct {
		name    string
		id      string
		br      ByteRange
		code    int
		comment string
		hdrs    []Field
		want    error
	}{
		{"bad Message-ID", "a b", br, 200, "", nil, ErrMalformed},
		{"bad Byte-Range", "m0000001", ByteRange{5, 1, 3}, 200, "", nil, ErrInvalidByteRange},
		{"four-digit code", "m0000001", br, 1000, "", nil, ErrMalformed},
		{"comment with CRLF", "m0000001", br, 200, "ok\r\nX: y", nil, ErrMalformed},
		{"reserved header", "m0000001", br, 200, "", []Field{{"Status", "000 200 OK"}}, ErrMalformed},
		{"header name not a token", "m0000001", br, 200, "", []Field{{"X Y", "v"}}, ErrMalformed},
	} {
		if err := p.sa.SendReport(ctx, nil, tc.id, tc.br, tc.code, tc.comment, tc.hdrs); !errors.Is(err, tc.want) {
			t.Errorf("%s: SendReport = %v, want %v", tc.name, err, tc.want)
		}
	}
	closed := mustSession(t, p.a.Endpoint, SessionConfig{Local: p.a.uri("gone"), Remote: Path{p.b.uri("bbbb")}})
	_ = closed.Close()
	if err := closed.SendReport(ctx, nil, "m0000001", br, 200, "", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("SendReport on a closed session = %v", err)
	}
}

func TestFrameClone(t *testing.T) {
	f := &Frame{TID: "t0000001", Method: MethodREPORT, ToPath: Path{MustParseURI("msrp://h:1/s;tcp")},
		FromPath: Path{MustParseURI("msrp://h:2/t;tcp")}, MessageID: "m0000001",
		ReportStatus: &ReportStatus{0, 200, "OK"}, Headers: []Field{{"X-A", "1"}}, Body: []byte("xy")}
	c := f.Clone()
	f.Headers[0].Value, f.Body[0], f.ReportStatus.Code = "2", 'z', 500
	f.ToPath[0] = MustParseURI("msrp://other:3/u;tcp")
	if c.Headers[0].Value != "1" || string(c.Body) != "xy" || c.ReportStatus.Code != 200 || c.ToPath[0].Host != "h" {
		t.Fatalf("clone shares memory with the original: %+v", c)
	}
}

// reportingSink sends a REPORT from WriteChunk on the last chunk, as a state machine
// that takes the chunk and reports at once does; answer says whether it first answers
// the SEND with Chunk.Answer.
type reportingSink struct {
	s      *Session
	answer bool
	err    chan error
}

func (r *reportingSink) WriteChunk(c *Chunk) error {
	if c.Flag != FlagEnd {
		return nil
	}
	if r.answer {
		c.Answer()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.err <- r.s.SendReport(ctx, nil, c.MessageID, c.Range(), 486, "", nil)
	return nil
}

func (r *reportingSink) Close(error) error   { return nil }
func (r *reportingSink) SelfReporting() bool { return true }

func TestAnswerGoesAheadOfReport(t *testing.T) {
	// A sink that answers the last SEND early puts its 200 on the wire ahead of the
	// REPORT it sends on taking the chunk, although the reader has not written the
	// responses of that read yet: the peer's transaction layer has the whole message
	// before the REPORT about it (the order the spec's model of a link has). Without
	// Answer, the 200 follows WriteChunk and so the REPORT.
	for _, tc := range []struct {
		answer bool
		want   []string
	}{
		{true, []string{"200 ans00002", "REPORT"}},
		{false, []string{"REPORT", "200 ans00002"}},
	} {
		t.Run(fmt.Sprintf("answer=%v", tc.answer), func(t *testing.T) {
			b := newTestEndpoint(t, Config{})
			sink := &reportingSink{answer: tc.answer, err: make(chan error, 1)}
			sink.s = mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("bbbb"),
				Accept: func(*IncomingMessage) (Sink, error) { return sink, nil }})
			peer := dialRaw(t, b.addr)
			to, from := b.uri("bbbb").String(), "msrp://127.0.0.1:9/p;tcp"
			peer.send(rawSEND("ans00001", to, from, "m0000001", "1-3/6", "abc", '+') +
				rawSEND("ans00002", to, from, "m0000001", "4-6/6", "def", '$'))
			if f := peer.next(); f.Status != 200 || f.TID != "ans00001" {
				t.Fatalf("first frame: %s %d, want the 200 to ans00001", f.TID, f.Status)
			}
			var got []string
			for range 2 {
				f := peer.next()
				if f.Method == MethodREPORT {
					got = append(got, "REPORT")
				} else {
					got = append(got, fmt.Sprintf("%d %s", f.Status, f.TID))
				}
			}
			if err := <-sink.err; err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("after the first 200 the peer read %v, want %v", got, tc.want)
			}
		})
	}
}
