package msrp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// TestMalformedKeepsConnection feeds bad frames on a connection whose session
// is bound, each followed by a good SEND: every bad request gets its status,
// the good one still gets 200, and the message still arrives (bad input loses
// nothing and the connection survives unless framing is lost).
func TestMalformedKeepsConnection(t *testing.T) {
	ctx := testCtx(t)
	b := newTestEndpoint(t, Config{Limits: Limits{MaxChunkBody: 4096}})
	var got bytes.Buffer
	ws := NewWriterSink(&got, 0)
	to := b.uri("bbbb").String()
	from := "msrp://127.0.0.1:9/pppp;tcp"
	other := "msrp://127.0.0.1:9/qqqq;tcp"
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("bbbb"), Accept: func(*IncomingMessage) (Sink, error) { return ws, nil }})
	// A second session on the same connection must be unaffected.
	var got2 bytes.Buffer
	ws2 := NewWriterSink(&got2, 0)
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("cccc"), Accept: func(*IncomingMessage) (Sink, error) { return ws2, nil }})
	peer := dialRaw(t, b.addr)
	peer.send(rawSEND("bind0001", to, from, "m0000000", "1-0/0", "", '$'))
	peer.send(rawSEND("bind0002", b.uri("cccc").String(), other, "m0000000", "1-0/0", "", '$'))
	for _, tid := range []string{"bind0001", "bind0002"} {
		if f := peer.next(); f.Status != 200 || f.TID != tid {
			t.Fatalf("bind %s: %d %s", tid, f.Status, f.TID)
		}
	}
	bad := []struct {
		name, frame string
		status      int
	}{
		{"byte-range end before start", rawSEND("bad00001", to, from, "m0000009", "5-1/10", "xx", '$'), 400},
		{"huge total", rawSEND("bad00002", to, from, "m0000009", "1-2/99999999999999999999999", "xx", '$'), 400},
		{"unknown method", "MSRP bad00003 FROB\r\nTo-Path: " + to + "\r\nFrom-Path: " + from + "\r\n-------bad00003$\r\n", 501},
		{"AUTH to an endpoint", "MSRP bad00004 AUTH\r\nTo-Path: " + to + "\r\nFrom-Path: " + from + "\r\n-------bad00004$\r\n", 501},
		{"NICKNAME", "MSRP bad00005 NICKNAME\r\nTo-Path: " + to + "\r\nFrom-Path: " + from + "\r\n-------bad00005$\r\n", 501},
		{"chunk over MaxChunkBody", rawSEND("bad00006", to, from, "m0000008", "1-*/*", strings.Repeat("x", 5000), '+'), 413},
		{"late chunk of the refused message", rawSEND("bad00007", to, from, "m0000008", "5001-5002/*", "yy", '$'), 413},
		{"LF-only", strings.ReplaceAll(rawSEND("bad00008", to, from, "m0000009", "1-2/2", "xx", '$'), "\r\n", "\n"), 400},
		{"unknown session", rawSEND("bad00009", b.uri("nosuch").String(), from, "m0000009", "1-2/2", "xx", '$'), 481},
		{"To-Path with more hops", rawSEND("bad00010", to+" msrp://10.0.0.1:1/x;tcp", from, "m0000009", "1-2/2", "xx", '$'), 403},
		{"end-line id mismatch", "MSRP bad00011 SEND\r\nTo-Path: " + to + "\r\nFrom-Path: " + from + "\r\nMessage-ID: m0000009\r\n-------bad00012$\r\n", 400},
		{"missing Message-ID", "MSRP bad00013 SEND\r\nTo-Path: " + to + "\r\nFrom-Path: " + from + "\r\n-------bad00013$\r\n", 400},
	}
	for i, tc := range bad {
		peer.send(tc.frame)
		f := peer.next()
		if f.Status != tc.status {
			t.Fatalf("%s: answered %d, want %d", tc.name, f.Status, tc.status)
		}
		if f.ToPath.String() != strings.Fields(fromOf(tc.frame))[0] {
			t.Fatalf("%s: response To-Path %s", tc.name, f.ToPath)
		}
		// The good chunk after each bad frame, for the second session.
		part := string(rune('a' + i))
		tid := "good" + strings.Repeat(part, 4)
		rng := fmt.Sprintf("%d-%d/%d", i+1, i+1, len(bad))
		peer.send(rawSEND(tid, b.uri("cccc").String(), other, "m0000002", rng, part, '+'))
		if f := peer.next(); f.Status != 200 || f.TID != tid {
			t.Fatalf("good chunk after %s: %d %s", tc.name, f.Status, f.TID)
		}
	}
	// Finish both messages; the first session's message is untouched by
	// everything above.
	peer.send(rawSEND("fin00001", to, from, "m0000001", "1-5/5", "hello", '$'))
	peer.send(rawSEND("fin00002", b.uri("cccc").String(), other, "m0000002", "13-12/12", "", '$'))
	for range 2 {
		if f := peer.next(); f.Status != 200 {
			t.Fatalf("finish: %d", f.Status)
		}
	}
	select {
	case <-ws.Done():
	case <-ctx.Done():
		t.Fatal("first message never completed")
	}
	select {
	case <-ws2.Done():
	case <-ctx.Done():
		t.Fatal("second message never completed")
	}
	if got.String() != "hello" || got2.String() != "abcdefghijkl" {
		t.Fatalf("got %q and %q", got.String(), got2.String())
	}
}

func fromOf(frame string) string {
	i := strings.Index(frame, "From-Path: ")
	j := strings.Index(frame[i:], "\n")
	return strings.TrimSpace(frame[i+len("From-Path: ") : i+j])
}

func TestFramingLostClosesConnection(t *testing.T) {
	b := newTestEndpoint(t, Config{})
	peer := dialRaw(t, b.addr)
	peer.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	var f Frame
	if err := peer.rd.ReadFrame(&f); !errors.Is(err, io.EOF) {
		t.Fatalf("after garbage: %v, want the connection closed", err)
	}
}

func TestReportGetsNoResponse(t *testing.T) {
	// RFC 4975 §7.1.2: REPORT requests are never answered. A SEND after it
	// gets its 200 as the very next frame.
	b := newTestEndpoint(t, Config{})
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("bbbb")})
	peer := dialRaw(t, b.addr)
	to, from := b.uri("bbbb").String(), "msrp://127.0.0.1:9/p;tcp"
	peer.send(rawSEND("bind0001", to, from, "m0000000", "1-0/0", "", '$'))
	peer.send("MSRP rep00001 REPORT\r\nTo-Path: " + to + "\r\nFrom-Path: " + from + "\r\nMessage-ID: m0000001\r\nByte-Range: 1-5/5\r\nStatus: 000 200 OK\r\n-------rep00001$\r\n")
	peer.send(rawSEND("after001", to, from, "m0000000", "1-0/0", "", '$'))
	for _, tid := range []string{"bind0001", "after001"} {
		if f := peer.next(); f.TID != tid {
			t.Fatalf("got response %s, want %s", f.TID, tid)
		}
	}
}

func TestFailureReportPolicy(t *testing.T) {
	// RFC 4975 §7.1.1: Failure-Report "no" suppresses every response,
	// "partial" suppresses 200 only. No hold for the unknown session: its
	// 481 comes at once, in order.
	b := newTestEndpoint(t, Config{UnknownSessionHold: -1})
	mustSession(t, b.Endpoint, SessionConfig{Local: b.uri("bbbb"), Accept: func(*IncomingMessage) (Sink, error) {
		return NewWriterSink(io.Discard, 0), nil
	}})
	peer := dialRaw(t, b.addr)
	to, from := b.uri("bbbb").String(), "msrp://127.0.0.1:9/p;tcp"
	peer.send(rawSEND("fr000001", to, from, "m0000001", "1-2/2", "ok", '$', "Failure-Report: no"))
	peer.send(rawSEND("fr000002", to, from, "m0000002", "1-2/2", "ok", '$', "Failure-Report: partial"))
	peer.send(rawSEND("fr000003", b.uri("nosuch").String(), from, "m0000003", "1-2/2", "ok", '$', "Failure-Report: partial"))
	peer.send(rawSEND("fr000004", to, from, "m0000004", "1-2/2", "ok", '$'))
	for _, want := range []struct {
		tid    string
		status int
	}{{"fr000003", 481}, {"fr000004", 200}} {
		if f := peer.next(); f.TID != want.tid || f.Status != want.status {
			t.Fatalf("got %s %d, want %s %d", f.TID, f.Status, want.tid, want.status)
		}
	}
}
