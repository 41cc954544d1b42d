package msrp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// FuzzReadFrame feeds arbitrary bytes to the streaming parser. Invariants:
// nothing panics; every accepted frame respects the limits, validates, and
// serializes to bytes that parse back to the same frame (so anything we
// accept we can forward); a non-fatal error always names the transaction so
// the request can be answered; the reader always makes progress.
func FuzzReadFrame(f *testing.F) {
	for _, s := range canonicalFrames {
		f.Add([]byte(s))
	}
	f.Add([]byte(goodSEND + goodSEND))
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxHeaderBytes: 2048, MaxHeaders: 16, MaxChunkBody: 4096, MaxOtherBody: 1024}
		rd := NewReader(bytes.NewReader(data), lim)
		for i := 0; i <= len(data); i++ { // each frame consumes at least one byte
			var fr Frame
			err := rd.ReadFrame(&fr)
			if err == io.EOF {
				return
			}
			var fe *FrameError
			if errors.As(err, &fe) {
				if fe.Fatal {
					return
				}
				if fe.TID == "" {
					t.Fatalf("non-fatal error without transaction id: %v", err)
				}
				if fe.Request && fe.Status == 0 {
					t.Fatalf("request error without status: %v", err)
				}
				continue
			}
			if err != nil {
				return // io.ErrUnexpectedEOF and the like
			}
			limit := lim.MaxOtherBody
			if fr.Method == MethodSEND {
				limit = lim.MaxChunkBody
			}
			if len(fr.Body) > limit {
				t.Fatalf("body of %d bytes accepted over limit %d", len(fr.Body), limit)
			}
			if err := fr.Validate(); err != nil {
				t.Fatalf("accepted frame does not validate: %v\n%q", err, data)
			}
			wire := fr.Marshal()
			var again Frame
			if err := NewReader(bytes.NewReader(wire), lim).ReadFrame(&again); err != nil {
				t.Fatalf("re-parse of %q: %v", wire, err)
			}
			if w2 := again.Marshal(); !bytes.Equal(w2, wire) {
				t.Fatalf("serialization not stable:\n%q\n%q", wire, w2)
			}
		}
		t.Fatal("reader made no progress")
	})
}

// pipeListener hands an Endpoint one in-memory connection.
type pipeListener struct {
	c    chan net.Conn
	done chan struct{}
	once sync.Once
}

func newPipeListener(c net.Conn) *pipeListener {
	l := &pipeListener{c: make(chan net.Conn, 1), done: make(chan struct{})}
	l.c <- c
	return l
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.c:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2855} }

const fuzzLocal = "msrp://127.0.0.1:2855/fuzzsess;tcp"

// FuzzEndpoint feeds arbitrary bytes to a live Endpoint with one session, on
// an in-memory connection. Invariants: nothing panics or deadlocks; every
// byte the endpoint writes back is a well-formed MSRP frame (responses and
// REPORTs we generate must always parse); Close returns with the endpoint's
// goroutines ended.
func FuzzEndpoint(f *testing.F) {
	from := "msrp://127.0.0.1:9/peer;tcp"
	for _, s := range []string{
		rawSEND("fz000001", fuzzLocal, from, "m0000001", "1-0/0", "", '$'),
		rawSEND("fz000002", fuzzLocal, from, "m0000002", "1-5/10", "hello", '+') + rawSEND("fz000003", fuzzLocal, from, "m0000002", "6-10/10", "world", '$', "Success-Report: yes"),
		rawSEND("fz000004", fuzzLocal, from, "m0000003", "4-6/6", "def", '$') + rawSEND("fz000005", fuzzLocal, from, "m0000003", "1-3/6", "abc", '+'),
		rawSEND("fz000006", fuzzLocal, from, "m0000004", "1-3/9", "abc", '+') + rawSEND("fz000007", fuzzLocal, from, "m0000004", "4-3/9", "", '#'),
		rawSEND("fz000008", "msrp://127.0.0.1:2855/other;tcp", from, "m0000005", "1-1/1", "x", '$'),
		"MSRP fz000009 AUTH\r\nTo-Path: " + fuzzLocal + "\r\nFrom-Path: " + from + "\r\n-------fz000009$\r\n",
		"MSRP fz000010 REPORT\r\nTo-Path: " + fuzzLocal + "\r\nFrom-Path: " + from + "\r\nMessage-ID: m0000001\r\nStatus: 000 200 OK\r\n-------fz000010$\r\n",
		strings.ReplaceAll(rawSEND("fz000011", fuzzLocal, from, "m0000006", "1-2/2", "ok", '$'), "\r\n", "\n"),
		rawSEND("fz000012", fuzzLocal, from, "m0000007", "1-2/99999999999999999999999", "ok", '$'),
		"GET / HTTP/1.0\r\n\r\n",
		// A message ended by a bodiless '$' (the sink gets an empty last chunk).
		rawSEND("fz000013", fuzzLocal, from, "m0000008", "1-3/*", "abc", '+') + rawSEND("fz000014", fuzzLocal, from, "m0000008", "4-3/3", "", '$'),
		// Issue 11 probes: a forged From-Path after binding, a type the
		// session does not accept, a header section over the limit, a frame
		// for a session that does not exist (held, then 481).
		rawSEND("fz000015", fuzzLocal, from, "m0000009", "1-0/0", "", '$') + rawSEND("fz000016", fuzzLocal, "msrp://127.0.0.1:9/evil;tcp", "m0000009", "1-2/2", "ok", '$'),
		strings.Replace(rawSEND("fz000017", fuzzLocal, from, "m0000010", "1-2/2", "ok", '$'), "text/plain", "image/png", 1),
		rawSEND("fz000018", fuzzLocal, from, "m0000011", "1-2/2", "ok", '$', "X-Big: "+strings.Repeat("b", 3000)),
		rawSEND("fz000019", "msrp://127.0.0.1:2855/ghost;tcp", from, "m0000012", "1-2/2", "ok", '$') + rawSEND("fz000020", fuzzLocal, from, "m0000013", "1-2/2", "ok", '$'),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// A short hold exercises the holder without slowing the fuzzer.
		ep := NewEndpoint(Config{UnknownSessionHold: time.Millisecond, Limits: Limits{MaxChunkBody: 4096, MaxHeaderBytes: 2048, MaxHeaders: 16}})
		if _, err := ep.NewSession(SessionConfig{Local: MustParseURI(fuzzLocal),
			AcceptTypes: []string{"text/plain", "message/cpim"}, AcceptWrappedTypes: []string{"text/*"},
			Accept: func(*IncomingMessage) (Sink, error) { return NewWriterSink(io.Discard, 1024), nil }}); err != nil {
			t.Fatal(err)
		}
		client, server := net.Pipe()
		served := make(chan error, 1)
		go func() { served <- ep.Serve(newPipeListener(server)) }()
		replies := make(chan error, 1)
		go func() {
			rd := NewReader(client, Limits{})
			for {
				var fr Frame
				err := rd.ReadFrame(&fr)
				var fe *FrameError
				if errors.As(err, &fe) {
					replies <- fmt.Errorf("endpoint wrote a malformed frame: %w", err)
					return
				}
				if err != nil {
					replies <- nil // the pipe closed
					return
				}
			}
		}()
		_ = client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = client.Write(data) // fails early if the endpoint closed on lost framing
		_ = ep.Close()
		_ = client.Close()
		if err := <-replies; err != nil {
			t.Fatal(err)
		}
		if err := <-served; err != nil && !errors.Is(err, ErrClosed) {
			t.Fatalf("Serve: %v", err)
		}
	})
}
