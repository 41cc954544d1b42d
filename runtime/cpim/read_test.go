package cpim

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestReadDesign(t *testing.T) {
	h, payload, err := Read(strings.NewReader(designWire + "hello"))
	if err != nil {
		t.Fatal(err)
	}
	equalHeader(t, h, designHeader())
	b, err := io.ReadAll(payload)
	if err != nil || string(b) != "hello" {
		t.Fatalf("payload %q, %v", b, err)
	}
}

// rfc3862Example is the example of RFC 3862 §6 (with its outer MIME headers,
// which MSRP carries in its own Content-Type, left out).
const rfc3862Example = "From: MR SANDERS <im:piglet@100akerwood.com>\r\n" +
	"To: Depressed Donkey <im:eeyore@100akerwood.com>\r\n" +
	"DateTime: 2000-12-13T13:40:00-08:00\r\n" +
	"Subject: the weather will be fine today\r\n" +
	"Subject:;lang=fr beau temps prevu pour aujourd'hui\r\n" +
	"NS: MyFeatures <mid:MessageFeatures@id.foo.com>\r\n" +
	"Require: MyFeatures.VitalMessageOption\r\n" +
	"MyFeatures.VitalMessageOption: Confirmation-requested\r\n" +
	"MyFeatures.WackyMessageOption: Use-silly-font\r\n" +
	"\r\n" +
	"Content-type: text/xml; charset=utf-8\r\n" +
	"Content-ID: <1234567890@foo.com>\r\n" +
	"\r\n" +
	"<body>\r\n" +
	"Here is the text of my message.\r\n" +
	"</body>\r\n"

// rfc5438Example is an IMDN-requesting message as in RFC 5438 §8.
const rfc5438Example = "From: Alice <im:alice@example.com>\r\n" +
	"To: Bob <im:bob@example.com>\r\n" +
	"NS: imdn <urn:ietf:params:imdn>\r\n" +
	"imdn.Message-ID: 34jk324j\r\n" +
	"DateTime: 2006-04-04T12:16:49-05:00\r\n" +
	"imdn.Disposition-Notification: positive-delivery, negative-delivery\r\n" +
	"\r\n" +
	"Content-type: text/plain\r\n" +
	"Content-length: 12\r\n" +
	"\r\n" +
	"Hello World\n"

func TestReadRFCExamples(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Header
		payload string
	}{
		{"RFC 3862 §6", rfc3862Example, Header{
			From:     "MR SANDERS <im:piglet@100akerwood.com>",
			To:       "Depressed Donkey <im:eeyore@100akerwood.com>",
			DateTime: time.Date(2000, 12, 13, 13, 40, 0, 0, time.FixedZone("", -8*3600)),
			NS:       []string{"MyFeatures <mid:MessageFeatures@id.foo.com>"},
			Extra: []Field{
				{"Subject", "the weather will be fine today"},
				{"Subject", ";lang=fr beau temps prevu pour aujourd'hui"},
				{"Require", "MyFeatures.VitalMessageOption"},
				{"MyFeatures.VitalMessageOption", "Confirmation-requested"},
				{"MyFeatures.WackyMessageOption", "Use-silly-font"},
			},
			ContentType:    "text/xml; charset=utf-8",
			ContentLength:  NoContentLength,
			ContentHeaders: []Field{{"Content-ID", "<1234567890@foo.com>"}},
		}, "<body>\r\nHere is the text of my message.\r\n</body>\r\n"},
		{"RFC 5438 IMDN request", rfc5438Example, Header{
			From:          "Alice <im:alice@example.com>",
			To:            "Bob <im:bob@example.com>",
			DateTime:      time.Date(2006, 4, 4, 12, 16, 49, 0, time.FixedZone("", -5*3600)),
			NS:            []string{"imdn <urn:ietf:params:imdn>"},
			Extra:         []Field{{"imdn.Message-ID", "34jk324j"}, {"imdn.Disposition-Notification", "positive-delivery, negative-delivery"}},
			ContentType:   "text/plain",
			ContentLength: 12,
		}, "Hello World\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, payload, err := Read(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			equalHeader(t, h, tc.want)
			b, err := io.ReadAll(payload)
			if err != nil || string(b) != tc.payload {
				t.Fatalf("payload %q, %v; want %q", b, err, tc.payload)
			}
			// Re-wrapping what we read gives the same header and payload back.
			h2, p2, err := Read(Wrap(h, strings.NewReader(tc.payload)))
			if err != nil {
				t.Fatal(err)
			}
			equalHeader(t, h2, h)
			if b2, _ := io.ReadAll(p2); string(b2) != tc.payload {
				t.Fatalf("re-wrapped payload %q", b2)
			}
		})
	}
}

func TestReadTolerated(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		check func(*testing.T, Header)
	}{
		{"lower-case t and z in DateTime", strings.Replace(designWire, "2024-05-01T12:00:00Z", "2024-05-01t12:00:00z", 1),
			func(t *testing.T, h Header) {
				if !h.DateTime.Equal(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)) {
					t.Errorf("DateTime %v", h.DateTime)
				}
			}},
		{"no DateTime", strings.Replace(designWire, "DateTime: 2024-05-01T12:00:00Z\r\n", "", 1),
			func(t *testing.T, h Header) {
				if !h.DateTime.IsZero() {
					t.Errorf("DateTime %v, want zero", h.DateTime)
				}
			}},
		{"MIME names any case, values trimmed", strings.Replace(designWire, "Content-Type: application/octet-stream", "CONTENT-TYPE:\tapplication/octet-stream  ", 1),
			func(t *testing.T, h Header) {
				if h.ContentType != "application/octet-stream" {
					t.Errorf("ContentType %q", h.ContentType)
				}
			}},
		{"two To headers", strings.Replace(designWire, "To: <sip:friends@cf.example>\r\n", "To: <sip:b@b.example>\r\nTo: <sip:c@c.example>\r\n", 1),
			func(t *testing.T, h Header) {
				if h.To != "<sip:b@b.example>" || len(h.Extra) != 2 || h.Extra[0] != (Field{"To", "<sip:c@c.example>"}) {
					t.Errorf("To %q Extra %q", h.To, h.Extra)
				}
			}},
		{"header with empty value and no space", strings.Replace(designWire, "imdn.Message-ID: 34jk324j", "Subject:", 1),
			func(t *testing.T, h Header) {
				if h.Extra[0] != (Field{"Subject", ""}) {
					t.Errorf("Extra %q", h.Extra)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, _, err := Read(strings.NewReader(tc.in + "hello"))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, h)
		})
	}
}

func TestReadInvalid(t *testing.T) {
	r := func(old, new string) string { return strings.Replace(designWire, old, new, 1) }
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrInvalid},
		{"only CPIM block", "From: <a>\r\nTo: <b>\r\n\r\n", ErrInvalid},
		{"no blank line at all", "From: <a>\r\nTo: <b>\r\n", ErrInvalid},
		{"LF line ends", strings.ReplaceAll(designWire, "\r\n", "\n"), ErrInvalid},
		{"one LF line end", r("To: <sip:friends@cf.example>\r\n", "To: <sip:friends@cf.example>\n"), ErrInvalid},
		{"bare CR", r("34jk324j", "34jk\r324j"), ErrInvalid},
		{"folded CPIM header", r("imdn.Message-ID: 34jk324j\r\n", "imdn.Message-ID:\r\n 34jk324j\r\n"), ErrInvalid},
		{"folded MIME header", r("Content-Length: 5\r\n", "Content-Length:\r\n\t5\r\n"), ErrInvalid},
		{"no From", r("From: <sip:alice@a.example>\r\n", ""), ErrInvalid},
		{"no To", r("To: <sip:friends@cf.example>\r\n", ""), ErrInvalid},
		{"empty From", r("From: <sip:alice@a.example>", "From: "), ErrInvalid},
		{"two From", r("From: <sip:alice@a.example>\r\n", "From: <a>\r\nFrom: <b>\r\n"), ErrInvalid},
		{"lower-case from is not From", r("From:", "from:"), ErrInvalid},
		{"two DateTime", r("DateTime: 2024-05-01T12:00:00Z\r\n", "DateTime: 2024-05-01T12:00:00Z\r\nDateTime: 2024-05-01T12:00:00Z\r\n"), ErrInvalid},
		{"DateTime not RFC 3339", r("2024-05-01T12:00:00Z", "Wed, 01 May 2024 12:00:00 GMT"), ErrInvalid},
		{"DateTime without offset", r("2024-05-01T12:00:00Z", "2024-05-01T12:00:00"), ErrInvalid},
		{"DateTime hour 25", r("2024-05-01T12:00:00Z", "2024-05-01T25:00:00Z"), ErrInvalid},
		{"no colon", r("imdn.Message-ID: 34jk324j", "imdn.Message-ID 34jk324j"), ErrInvalid},
		{"no space after colon", r("imdn.Message-ID: 34jk324j", "imdn.Message-ID:34jk324j"), ErrInvalid},
		{"space in name", r("imdn.Message-ID", "imdn Message-ID"), ErrInvalid},
		{"empty name", r("imdn.Message-ID", ""), ErrInvalid},
		{"NUL in value", r("34jk324j", "34jk\x00324j"), ErrInvalid},
		{"no Content-Type", r("Content-Type: application/octet-stream\r\n", ""), ErrInvalid},
		{"two Content-Type", r("Content-Length: 5", "Content-Type: text/plain"), ErrInvalid},
		{"bad Content-Type", r("application/octet-stream", "octet-stream"), ErrInvalid},
		{"MIME line without colon", r("Content-Length: 5", "Content-Length 5"), ErrInvalid},
		{"negative Content-Length", r("Content-Length: 5", "Content-Length: -5"), ErrInvalid},
		{"huge Content-Length", r("Content-Length: 5", "Content-Length: 99999999999999999999"), ErrInvalid},
		{"hex Content-Length", r("Content-Length: 5", "Content-Length: 0x5"), ErrInvalid},
		{"empty Content-Length", r("Content-Length: 5", "Content-Length:"), ErrInvalid},
		{"two Content-Length", r("Content-Length: 5", "Content-Length: 5\r\ncontent-length: 5"), ErrInvalid},
		{"header line too long", "From: <" + strings.Repeat("a", MaxHeaderBytes) + ">\r\n", ErrTooLarge},
		{"too many header lines", strings.Repeat("Subject: x\r\n", MaxHeaderBytes/12+1), ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, p, err := Read(strings.NewReader(tc.in + "hello"))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Read = %+v, %v, %v; want %v", h, p, err, tc.want)
			}
			if p != nil {
				t.Fatal("payload reader returned with an error")
			}
			if !strings.HasPrefix(err.Error(), "cpim: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
}

// repeatReader repeats a pattern forever: a hostile peer that never ends its
// header block.
type repeatReader struct {
	prefix  []byte
	pattern []byte
	off     int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if len(r.prefix) > 0 {
		n := copy(p, r.prefix)
		r.prefix = r.prefix[n:]
		return n, nil
	}
	for i := range p {
		p[i] = r.pattern[r.off]
		r.off = (r.off + 1) % len(r.pattern)
	}
	return len(p), nil
}

func TestReadBoundsHostileHeaders(t *testing.T) {
	for _, tc := range []struct{ name, prefix, pattern string }{
		{"one endless line", "", "a"},
		{"endless CPIM headers", "", "Subject: x\r\n"},
		{"endless MIME headers", "From: <a>\r\nTo: <b>\r\n\r\n", "X-Y: z\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &countingReader{r: &repeatReader{prefix: []byte(tc.prefix), pattern: []byte(tc.pattern)}}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, _, err := Read(src)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("err = %v, want ErrTooLarge", err)
			}
			if src.n > MaxHeaderBytes+4096 {
				t.Errorf("read %d bytes from the stream, want at most %d", src.n, MaxHeaderBytes+4096)
			}
			// Lines plus strings plus bufio: well under 1 MiB whatever the stream.
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
				t.Errorf("allocated %d bytes refusing a hostile header", grew)
			}
		})
	}
}

// TestReadLargePayloadStreams wraps 64 MiB of pseudo-random bytes, reads it
// back, and checks that the payload is byte-exact (SHA-256) and that neither
// side held it in memory.
func TestReadLargePayloadStreams(t *testing.T) {
	const size = 64 << 20
	for _, withLength := range []bool{true, false} {
		name := "no Content-Length"
		if withLength {
			name = "Content-Length"
		}
		t.Run(name, func(t *testing.T) {
			h := designHeader()
			h.ContentLength = NoContentLength
			if withLength {
				h.ContentLength = size
			}
			want := sha256Of(t, io.LimitReader(newRandStream(7), size))

			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			wire := &countingReader{r: Wrap(h, io.LimitReader(newRandStream(7), size))}
			gotH, payload, err := Read(wire)
			if err != nil {
				t.Fatal(err)
			}
			got := sha256Of(t, payload)
			runtime.ReadMemStats(&after)

			equalHeader(t, gotH, h)
			if got != want {
				t.Fatalf("payload SHA-256 %x, want %x", got, want)
			}
			if wire.n != WrappedSize(h, size) {
				t.Fatalf("wire carried %d bytes, WrappedSize says %d", wire.n, WrappedSize(h, size))
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
				t.Errorf("allocated %d bytes for a %d-byte payload: something buffers it", grew, size)
			}
		})
	}
}

func TestReadPayloadLengthMismatch(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    string
		eof     bool
	}{
		{"exact", "hello", "hello", true},
		{"short", "hel", "hel", false},
		{"long", "hello!", "hello", false},
		{"empty", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, p, err := Read(strings.NewReader(designWire + tc.payload))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(p)
			if string(got) != tc.want {
				t.Errorf("payload %q, want %q", got, tc.want)
			}
			if tc.eof && err != nil {
				t.Fatalf("ReadAll: %v", err)
			}
			if !tc.eof && !errors.Is(err, ErrLength) {
				t.Fatalf("ReadAll error %v, want ErrLength", err)
			}
			if tc.name == "short" && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("short payload error %v does not wrap io.ErrUnexpectedEOF", err)
			}
		})
	}
}

func TestReadZeroLengthPayload(t *testing.T) {
	in := strings.Replace(designWire, "Content-Length: 5", "Content-Length: 0", 1)
	_, p, err := Read(bytes.NewReader([]byte(in)))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(p); err != nil || len(b) != 0 {
		t.Fatalf("ReadAll = %q, %v", b, err)
	}
}
