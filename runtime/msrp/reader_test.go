package msrp

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll parses every frame of a stream and returns the frames and the errors
// in order (nil for a good frame), stopping at EOF or a fatal error.
func readAll(t *testing.T, r io.Reader, lim Limits) ([]Frame, []error) {
	t.Helper()
	rd := NewReader(r, lim)
	var frames []Frame
	var errs []error
	for i := 0; i < 1000; i++ {
		var f Frame
		err := rd.ReadFrame(&f)
		if err == io.EOF {
			return frames, errs
		}
		f.Body = bytes.Clone(f.Body)
		frames = append(frames, f)
		errs = append(errs, err)
		var fe *FrameError
		if errors.As(err, &fe) && fe.Fatal || err != nil && !errors.As(err, &fe) {
			return frames, errs
		}
	}
	t.Fatal("runaway reader")
	return nil, nil
}

func TestReaderSplitAndCoalesced(t *testing.T) {
	// Several frames in one read and one frame across many reads must give
	// the same result (frames arrive off TCP in arbitrary pieces).
	var all string
	names := []string{"rfc4975 §4 SEND", "rfc4975 §4 response", "relay path, ext and MIME headers", "bodiless bind SEND", "empty body with content type"}
	for _, n := range names {
		all += canonicalFrames[n]
	}
	readers := map[string]func() io.Reader{
		"one read":  func() io.Reader { return strings.NewReader(all) },
		"one byte":  func() io.Reader { return iotest.OneByteReader(strings.NewReader(all)) },
		"half read": func() io.Reader { return iotest.HalfReader(strings.NewReader(all)) },
	}
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			frames, errs := readAll(t, mk(), Limits{})
			if len(frames) != len(names) {
				t.Fatalf("got %d frames, want %d (errs %v)", len(frames), len(names), errs)
			}
			for i, f := range frames {
				if errs[i] != nil {
					t.Fatalf("frame %d: %v", i, errs[i])
				}
				if got := string(f.Marshal()); got != canonicalFrames[names[i]] {
					t.Fatalf("frame %d:\n got %q\nwant %q", i, got, canonicalFrames[names[i]])
				}
			}
		})
	}
}

func TestReaderLargeBody(t *testing.T) {
	// A body much larger than the read buffer, full of near-miss end-lines,
	// crossing buffer boundaries at every offset.
	var body bytes.Buffer
	for body.Len() < 300<<10 {
		body.WriteString("\r\n-------tx0001X\r\n-------tx000\r\n-------tx0001")
		body.WriteString(strings.Repeat("z", body.Len()%97))
	}
	f := Frame{TID: "tx0001", Method: MethodSEND, ToPath: Path{MustParseURI("msrp://a:1/s;tcp")},
		FromPath: Path{MustParseURI("msrp://b:2/t;tcp")}, MessageID: "mid00001", ContentType: "application/octet-stream",
		Body: body.Bytes(), Flag: FlagEnd}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	wire := f.Marshal()
	for _, chunk := range []int{1 << 20, 4093, 61} {
		frames, errs := readAll(t, &chunkReader{b: wire, n: chunk}, Limits{})
		if len(frames) != 1 || errs[0] != nil {
			t.Fatalf("chunk %d: %d frames, %v", chunk, len(frames), errs)
		}
		if !bytes.Equal(frames[0].Body, body.Bytes()) {
			t.Fatalf("chunk %d: body differs (len %d vs %d)", chunk, len(frames[0].Body), body.Len())
		}
	}
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[k:]
	return k, nil
}

const goodSEND = "MSRP good0001 SEND\r\nTo-Path: msrp://h:1/s;tcp\r\nFrom-Path: msrp://h:2/t;tcp\r\nMessage-ID: m0000001\r\nByte-Range: 1-2/2\r\nContent-Type: text/plain\r\n\r\nok\r\n-------good0001$\r\n"

func TestReaderMalformed(t *testing.T) {
	// Each bad frame is followed by a good one: a non-fatal error must leave
	// the reader in step so the good frame still parses (the connection and
	// other sessions keep working).
	hdr := "To-Path: msrp://h:1/s;tcp\r\nFrom-Path: msrp://h:2/t;tcp\r\n"
	tests := []struct {
		name   string
		in     string
		status int
		fatal  bool
		is     error
	}{
		{name: "byte-range end before start", in: "MSRP bad00001 SEND\r\n" + hdr + "Message-ID: m1\r\nByte-Range: 5-1/10\r\nContent-Type: a/b\r\n\r\nxx\r\n-------bad00001$\r\n", status: 400, is: ErrMalformed},
		{name: "byte-range huge total", in: "MSRP bad00001 SEND\r\n" + hdr + "Message-ID: m0000001\r\nByte-Range: 1-2/99999999999999999999999\r\nContent-Type: a/b\r\n\r\nxx\r\n-------bad00001$\r\n", status: 400, is: ErrInvalidByteRange},
		{name: "body beyond byte-range", in: "MSRP bad00001 SEND\r\n" + hdr + "Message-ID: m0000001\r\nByte-Range: 1-1/1\r\nContent-Type: a/b\r\n\r\nxx\r\n-------bad00001$\r\n", status: 400, is: ErrInvalidByteRange},
		{name: "end-line id mismatch (bodiless)", in: "MSRP bad00001 SEND\r\n" + hdr + "Message-ID: m0000001\r\n-------bad00002$\r\n", status: 400, is: ErrMalformed},
		{name: "bad flag", in: "MSRP bad00001 SEND\r\n" + hdr + "Message-ID: m0000001\r\n-------bad00001!\r\n", status: 400, is: ErrMalformed},
		{name: "LF-only line ends", in: strings.ReplaceAll("MSRP bad00001 SEND\n"+"To-Path: msrp://h:1/s;tcp\nFrom-Path: msrp://h:2/t;tcp\nMessage-ID: m0000001\nContent-Type: a/b\n\nxx\n-------bad00001$\n", "\r", ""), status: 400, is: ErrMalformed},
		{name: "LF-only bodiless", in: "MSRP bad00001 SEND\nTo-Path: msrp://h:1/s;tcp\nFrom-Path: msrp://h:2/t;tcp\nMessage-ID: m0000001\n-------bad00001$\n", status: 400, is: ErrMalformed},
		{name: "From-Path first", in: "MSRP bad00001 SEND\r\nFrom-Path: msrp://h:2/t;tcp\r\nTo-Path: msrp://h:1/s;tcp\r\nMessage-ID: m0000001\r\n-------bad00001$\r\n", status: 400, is: ErrMalformed},
		{name: "missing Message-ID", in: "MSRP bad00001 SEND\r\n" + hdr + "-------bad00001$\r\n", status: 400, is: ErrMalformed},
		{name: "body without Content-Type", in: "MSRP bad00001 SEND\r\n" + hdr + "Message-ID: m0000001\r\n\r\nxx\r\n-------bad00001$\r\n", status: 400, is: ErrMalformed},
		{name: "Content-Type not last", in: "MSRP bad00001 SEND\r\n" + hdr + "Message-ID: m0000001\r\nContent-Type: a/b\r\nX-A: b\r\n\r\nxx\r\n-------bad00001$\r\n", status: 400, is: ErrMalformed},
		{name: "duplicate Message-ID", in: "MSRP bad00001 SEND\r\n" + hdr + "Message-ID: m0000001\r\nMessage-ID: m0000002\r\n-------bad00001$\r\n", status: 400, is: ErrMalformed},
		{name: "bad URI", in: "MSRP bad00001 SEND\r\nTo-Path: http://x\r\nFrom-Path: msrp://h:2/t;tcp\r\nMessage-ID: m0000001\r\n-------bad00001$\r\n", status: 400, is: ErrInvalidURI},
		{name: "REPORT without Status", in: "MSRP bad00001 REPORT\r\n" + hdr + "Message-ID: m0000001\r\n-------bad00001$\r\n", status: 400, is: ErrMalformed},
		{name: "odd status code 2000", in: "MSRP bad00001 2000 OK\r\n" + hdr + "-------bad00001$\r\n", status: 0, is: ErrMalformed},
		{name: "odd status code 20x", in: "MSRP bad00001 20x\r\n" + hdr + "-------bad00001$\r\n", status: 0, is: ErrMalformed},
		{name: "response with body", in: "MSRP bad00001 200 OK\r\n" + hdr + "Content-Type: a/b\r\n\r\nxx\r\n-------bad00001$\r\n", status: 400, is: ErrMalformed},
		{name: "non-SEND body over 10240", in: "MSRP bad00001 NICKNAME\r\n" + hdr + "Content-Type: a/b\r\n\r\n" + strings.Repeat("n", 10241) + "\r\n-------bad00001$\r\n", status: 413, is: ErrTooLarge},
		{name: "too many headers", in: "MSRP bad00001 SEND\r\n" + hdr + "Message-ID: m0000001\r\n" + strings.Repeat("X-A: b\r\n", 70) + "-------bad00001$\r\n", status: 413, is: ErrTooLarge},
		{name: "header section too large", in: "MSRP bad00001 SEND\r\n" + hdr + "Message-ID: m0000001\r\nX-Big: " + strings.Repeat("b", 20000) + "\r\n-------bad00001$\r\n", status: 413, is: ErrTooLarge},
		{name: "header section too large, response", in: "MSRP bad00001 200 OK\r\n" + hdr + "X-Big: " + strings.Repeat("b", 20000) + "\r\n-------bad00001$\r\n", status: 0, is: ErrTooLarge},
		{name: "To-Path over the header limit", in: "MSRP bad00001 SEND\r\nTo-Path: msrp://h:1/" + strings.Repeat("s", 20000) + ";tcp\r\nFrom-Path: msrp://h:2/t;tcp\r\n-------bad00001$\r\n", fatal: true, is: ErrTooLarge},
		{name: "control character in value", in: "MSRP bad00001 SEND\r\n" + hdr + "Message-ID: m0000001\r\nX-A: a\x00b\r\n-------bad00001$\r\n", status: 400, is: ErrMalformed},
		{name: "lower-case method", in: "MSRP bad00001 send\r\n" + hdr + "-------bad00001$\r\n", fatal: true, is: ErrFramingLost},
		{name: "garbage", in: "GET / HTTP/1.1\r\n\r\n", fatal: true, is: ErrFramingLost},
		{name: "short tid", in: "MSRP abc SEND\r\n" + hdr + "-------abc$\r\n", fatal: true, is: ErrFramingLost},
		{name: "frame without end-line", in: "MSRP bad00001 SEND\r\n" + hdr + "Message-ID: m0000001\r\nContent-Type: a/b\r\n\r\nnever ends", fatal: true, is: ErrFramingLost},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			frames, errs := readAll(t, strings.NewReader(tc.in+goodSEND), Limits{})
			if len(errs) == 0 {
				t.Fatal("no error")
			}
			var fe *FrameError
			if !errors.As(errs[0], &fe) {
				t.Fatalf("error %v is not a *FrameError", errs[0])
			}
			if !errors.Is(errs[0], tc.is) {
				t.Fatalf("error %v does not wrap %v", errs[0], tc.is)
			}
			if fe.Fatal != tc.fatal {
				t.Fatalf("fatal = %v, want %v (%v)", fe.Fatal, tc.fatal, fe)
			}
			if tc.fatal {
				return
			}
			if fe.Status != tc.status {
				t.Fatalf("status = %d, want %d (%v)", fe.Status, tc.status, fe)
			}
			if len(frames) != 2 || errs[1] != nil || frames[1].TID != "good0001" || string(frames[1].Body) != "ok" {
				t.Fatalf("reader out of step after the bad frame: %d frames, errs %v", len(frames), errs)
			}
		})
	}
}

func TestReaderChunkTooLarge(t *testing.T) {
	// A SEND body over MaxChunkBody is skipped whole (no allocation beyond
	// the limit) and answered 413; the next frame still parses.
	big := "MSRP big00001 SEND\r\nTo-Path: msrp://h:1/s;tcp\r\nFrom-Path: msrp://h:2/t;tcp\r\nMessage-ID: m0000001\r\nContent-Type: a/b\r\n\r\n" +
		strings.Repeat("B", 5000) + "\r\n-------big00001$\r\n"
	rd := NewReader(strings.NewReader(big+goodSEND), Limits{MaxChunkBody: 1000})
	var f Frame
	err := rd.ReadFrame(&f)
	var fe *FrameError
	if !errors.As(err, &fe) || fe.Status != StatusTooLarge || fe.Fatal || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v", err)
	}
	if len(f.Body) > 1000 || cap(f.Body) > 4096 {
		t.Fatalf("kept %d bytes (cap %d) of an over-limit body", len(f.Body), cap(f.Body))
	}
	if f.FromPath.String() != "msrp://h:2/t;tcp" {
		t.Fatal("paths needed for the 413 answer were lost")
	}
	if err := rd.ReadFrame(&f); err != nil || f.TID != "good0001" {
		t.Fatalf("next frame: %v %q", err, f.TID)
	}
}

func TestReaderEOF(t *testing.T) {
	rd := NewReader(strings.NewReader(""), Limits{})
	var f Frame
	if err := rd.ReadFrame(&f); err != io.EOF {
		t.Fatalf("empty stream: %v", err)
	}
	rd = NewReader(strings.NewReader("MSRP abcd SEND\r\nTo-Pa"), Limits{})
	if err := rd.ReadFrame(&f); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated stream: %v", err)
	}
}

// TestReaderMarksEndLineFreeBodies checks the mark that lets a relay forward a body
// without searching it for its own new end-line (RFC 4975 §7.1): it is set only when
// the body holds no CRLF and seven dashes at all, also when such a run is split
// across reads or sits at the very end of the body.
func TestReaderMarksEndLineFreeBodies(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		free       bool
	}{
		{"plain", "hello world", true},
		{"dashes without CRLF", "a-------b", true},
		{"six dashes", "a\r\n------b", true},
		{"another id's end-line", "a\r\n-------zzzz$\r\nb", false},
		{"start of an end-line at the end", "ab\r\n-------", false},
		{"an end-line of this id's prefix but another flag", "a\r\n-------abcdX\r\nb", false},
	} {
		frame := "MSRP abcd SEND\r\nTo-Path: msrp://b.example.com:7654/jshA7we;tcp\r\n" +
			"From-Path: msrp://a.example.com:12763/kjhd37s2s20w2a;tcp\r\nMessage-ID: 87652491\r\n" +
			"Byte-Range: 1-*/*\r\nContent-Type: text/plain\r\n\r\n" + tc.body + "\r\n-------abcd$\r\n"
		for name, r := range map[string]io.Reader{"one read": strings.NewReader(frame), "one byte": iotest.OneByteReader(strings.NewReader(frame))} {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				var f Frame
				if err := NewReader(r, Limits{}).ReadFrame(&f); err != nil {
					t.Fatal(err)
				}
				if string(f.Body) != tc.body || f.endLineFree != tc.free {
					t.Fatalf("body %q endLineFree %v, want %q %v", f.Body, f.endLineFree, tc.body, tc.free)
				}
			})
		}
	}
}

// TestReaderPathsOwnedByEachFrame: the Reader reuses the To-Path and From-Path it parsed
// for a frame that repeats them, yet each frame gets paths of its own: a caller that
// changes one frame's path changes no later frame's.
func TestReaderPathsOwnedByEachFrame(t *testing.T) {
	one := canonicalFrames["rfc4975 §4 SEND"]
	rd := NewReader(strings.NewReader(one+one+one), Limits{})
	var first Frame
	if err := rd.ReadFrame(&first); err != nil {
		t.Fatal(err)
	}
	want := first.ToPath.String()
	first.ToPath[0] = MustParseURI("msrp://changed.example:1/x;tcp")
	for i := 0; i < 2; i++ {
		var f Frame
		if err := rd.ReadFrame(&f); err != nil {
			t.Fatal(err)
		}
		if got := f.ToPath.String(); got != want {
			t.Fatalf("frame %d: To-Path %s, want %s", i+2, got, want)
		}
		if string(f.Marshal()) != one {
			t.Fatalf("frame %d does not round-trip", i+2)
		}
	}
}
