package msrp

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
)

// Method names of RFC 4975 §7 and RFC 4976 §5 (AUTH). NICKNAME is RFC 7701.
const (
	MethodSEND     = "SEND"
	MethodREPORT   = "REPORT"
	MethodAUTH     = "AUTH"
	MethodNICKNAME = "NICKNAME"
)

// Continuation flags of the end-line, RFC 4975 §7.1.1.
const (
	FlagEnd       byte = '$' // last chunk of the message
	FlagMore      byte = '+' // more chunks follow
	FlagAbort     byte = '#' // the sender abandoned the message
	endLineDashes      = "-------"
)

// Report is the value of a Success-Report or Failure-Report header. The zero
// value means the header is absent, which RFC 4975 §7.1.1 reads as "no" for
// Success-Report and "yes" for Failure-Report.
type Report uint8

// Report values.
const (
	ReportAbsent Report = iota
	ReportYes
	ReportNo
	ReportPartial // Failure-Report only: negative responses and reports only
)

func (r Report) String() string {
	switch r {
	case ReportYes:
		return "yes"
	case ReportNo:
		return "no"
	case ReportPartial:
		return "partial"
	}
	return ""
}

// ReportStatus is the value of the Status header of a REPORT, RFC 4975 §7.1.2:
// "namespace code [reason]"; namespace 000 is the only one defined.
type ReportStatus struct {
	Namespace int
	Code      int
	Reason    string
}

func (s ReportStatus) String() string {
	b := make([]byte, 0, 16+len(s.Reason))
	return string(s.appendTo(b))
}

func (s ReportStatus) appendTo(b []byte) []byte {
	b = append3(b, s.Namespace)
	b = append(b, ' ')
	b = append3(b, s.Code)
	if s.Reason != "" {
		b = append(b, ' ')
		b = append(b, s.Reason...)
	}
	return b
}

func append3(b []byte, n int) []byte {
	return append(b, byte('0'+n/100%10), byte('0'+n/10%10), byte('0'+n%10))
}

// Field is one header field kept as text: extension and MIME headers that
// this package does not interpret but must forward unchanged (RFC 4975 §7.1).
type Field struct {
	Name  string
	Value string
}

// Frame is one MSRP request or response (RFC 4975 §7, §9). A request has a
// Method; a response has Method "" and a Status.
//
// The serializer writes headers in this order: To-Path, From-Path,
// Message-ID, Byte-Range, Failure-Report, Success-Report, Status, the other
// headers in Headers order, Content-Type — To-Path and From-Path first and
// Content-Type last as RFC 4975 §9 and Kamailio require. A frame parsed from
// that order serializes back to the same bytes.
type Frame struct {
	TID     string // transaction id
	Method  string // request method, "" for a response
	Status  int    // response status code (responses only)
	Comment string // response comment, may be empty

	ToPath   Path
	FromPath Path

	MessageID     string
	ByteRange     ByteRange     // Start == 0 when the header is absent
	SuccessReport Report        // ReportAbsent means "no"
	FailureReport Report        // ReportAbsent means "yes"
	ReportStatus  *ReportStatus // REPORT's Status header, nil when absent
	ContentType   string        // "" when the frame has no body
	Headers       []Field       // every other header, in wire order

	Body []byte // chunk content; empty when there is none
	Flag byte   // end-line flag: FlagEnd, FlagMore or FlagAbort

	// hasBody records a blank line after the headers: a request may carry a
	// Content-Type and an empty body, which differs on the wire from no body.
	hasBody bool
	// endLineFree is set by the Reader when the body holds no CRLF followed by
	// seven dashes, hence no end-line of any transaction id (RFC 4975 §7.1):
	// a relay forwards such a body under its own id without searching it.
	endLineFree bool
}

// IsRequest reports whether f is a request.
func (f *Frame) IsRequest() bool { return f.Method != "" }

// HasBody reports whether the frame carries a body section (possibly empty).
func (f *Frame) HasBody() bool { return f.hasBody || len(f.Body) > 0 || f.ContentType != "" }

// Range returns the Byte-Range, or DefaultByteRange when the header is absent.
func (f *Frame) Range() ByteRange {
	if f.ByteRange.Start == 0 {
		return DefaultByteRange
	}
	return f.ByteRange
}

// Header returns the value of the first header in Headers named name
// (case-insensitively), and whether it was found.
func (f *Frame) Header(name string) (string, bool) {
	for _, h := range f.Headers {
		if equalFoldASCII(h.Name, name) {
			return h.Value, true
		}
	}
	return "", false
}

// Clone returns a deep copy of f that stays valid after the reader reuses f
// (frames handed to callbacks such as SessionConfig.OnReport are only valid
// during the call): paths, headers, the REPORT status and the body are
// copied. Strings are immutable and shared.
func (f *Frame) Clone() *Frame {
	c := *f
	c.ToPath = append(Path(nil), f.ToPath...)
	c.FromPath = append(Path(nil), f.FromPath...)
	c.Headers = append([]Field(nil), f.Headers...)
	if f.ReportStatus != nil {
		st := *f.ReportStatus
		c.ReportStatus = &st
	}
	if f.Body != nil {
		c.Body = append([]byte(nil), f.Body...)
	}
	return &c
}

// AppendHeader appends the start-line and header section of f to b, including
// the blank line that precedes a body. The body and end-line are not included:
// see AppendTrailer. Splitting them lets a sender write header, body and
// trailer with one writev without copying the body.
func (f *Frame) AppendHeader(b []byte) []byte {
	b = append(b, "MSRP "...)
	b = append(b, f.TID...)
	b = append(b, ' ')
	if f.Method != "" {
		b = append(b, f.Method...)
	} else {
		b = append3(b, f.Status)
		if f.Comment != "" {
			b = append(b, ' ')
			b = append(b, f.Comment...)
		}
	}
	b = append(b, "\r\nTo-Path: "...)
	b = appendPath(b, f.ToPath)
	b = append(b, "\r\nFrom-Path: "...)
	b = appendPath(b, f.FromPath)
	b = append(b, "\r\n"...)
	if f.MessageID != "" {
		b = append(b, "Message-ID: "...)
		b = append(b, f.MessageID...)
		b = append(b, "\r\n"...)
	}
	if f.ByteRange.Start != 0 {
		b = append(b, "Byte-Range: "...)
		b = f.ByteRange.appendTo(b)
		b = append(b, "\r\n"...)
	}
	if f.FailureReport != ReportAbsent {
		b = append(b, "Failure-Report: "...)
		b = append(b, f.FailureReport.String()...)
		b = append(b, "\r\n"...)
	}
	if f.SuccessReport != ReportAbsent {
		b = append(b, "Success-Report: "...)
		b = append(b, f.SuccessReport.String()...)
		b = append(b, "\r\n"...)
	}
	if f.ReportStatus != nil {
		b = append(b, "Status: "...)
		b = f.ReportStatus.appendTo(b)
		b = append(b, "\r\n"...)
	}
	for _, h := range f.Headers {
		b = append(b, h.Name...)
		b = append(b, ": "...)
		b = append(b, h.Value...)
		b = append(b, "\r\n"...)
	}
	if f.HasBody() {
		if f.ContentType != "" {
			b = append(b, "Content-Type: "...)
			b = append(b, f.ContentType...)
			b = append(b, "\r\n"...)
		}
		b = append(b, "\r\n"...)
	}
	return b
}

// AppendTrailer appends what follows the body: the CRLF that ends a body (when
// there is one) and the end-line "-------" tid flag CRLF.
func (f *Frame) AppendTrailer(b []byte) []byte {
	if f.HasBody() {
		b = append(b, "\r\n"...)
	}
	flag := f.Flag
	if flag == 0 {
		flag = FlagEnd
	}
	return appendEndLine(b, f.TID, flag)
}

func appendEndLine(b []byte, tid string, flag byte) []byte {
	b = append(b, endLineDashes...)
	b = append(b, tid...)
	return append(b, flag, '\r', '\n')
}

// Marshal returns the whole frame as bytes.
func (f *Frame) Marshal() []byte {
	b := f.AppendHeader(make([]byte, 0, 256+len(f.Body)))
	b = append(b, f.Body...)
	return f.AppendTrailer(b)
}

// Validate checks what the serializer relies on: a valid transaction id,
// non-empty paths, a three-digit status, and a body that cannot contain its
// own end-line (RFC 4975 §7.1: the sender must make sure of that).
func (f *Frame) Validate() error {
	if !validIdent(f.TID) {
		return fmt.Errorf("%w: transaction id %q", ErrMalformed, f.TID)
	}
	if len(f.ToPath) == 0 || len(f.FromPath) == 0 {
		return fmt.Errorf("%w: empty To-Path or From-Path", ErrMalformed)
	}
	if f.Method == "" && (f.Status < 0 || f.Status > 999) {
		return fmt.Errorf("%w: status %d", ErrMalformed, f.Status)
	}
	if f.ByteRange.Start != 0 {
		if err := f.ByteRange.Validate(); err != nil {
			return err
		}
	}
	if containsEndLine(f.Body, f.TID) {
		return fmt.Errorf("%w: body contains its own end-line", ErrMalformed)
	}
	return nil
}

// WriteFrame writes f to w: header, body and trailer in one writev when w is
// a *net.TCPConn.
func WriteFrame(w io.Writer, f *Frame) error {
	hdr := f.AppendHeader(make([]byte, 0, 256))
	tr := f.AppendTrailer(make([]byte, 0, 64))
	bufs := net.Buffers{hdr, f.Body, tr}
	_, err := bufs.WriteTo(w)
	return err
}

func appendPath(b []byte, p Path) []byte {
	for i, u := range p {
		if i > 0 {
			b = append(b, ' ')
		}
		b = appendURI(b, u)
	}
	return b
}

func appendURI(b []byte, u URI) []byte {
	b = append(b, u.Scheme...)
	b = append(b, "://"...)
	if u.User != "" {
		b = append(b, u.User...)
		b = append(b, '@')
	}
	if containsByte(u.Host, ':') {
		b = append(b, '[')
		b = append(b, u.Host...)
		b = append(b, ']')
	} else {
		b = append(b, u.Host...)
	}
	if u.Port != 0 {
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(u.Port), 10)
	}
	if u.SessionID != "" {
		b = append(b, '/')
		b = append(b, u.SessionID...)
	}
	b = append(b, ';')
	b = append(b, u.Transport...)
	for _, p := range u.Params {
		b = append(b, ';')
		b = append(b, p...)
	}
	return b
}

func containsByte(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x >= 'A' && x <= 'Z' {
			x += 'a' - 'A'
		}
		if y >= 'A' && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// containsEndLine reports whether body, followed on the wire by the CRLF that
// ends every body, contains an end-line for tid: the receiver would then cut
// the body short (RFC 4975 §7.1 makes avoiding this the sender's job).
func containsEndLine(body []byte, tid string) bool {
	var pat [9 + 32]byte
	p := append(append(pat[:0], "\r\n"+endLineDashes...), tid...)
	for off := 0; ; {
		i := bytes.Index(body[off:], p)
		if i < 0 {
			return false
		}
		j := off + i + len(p) // position of the flag
		at := func(k int) byte {
			switch {
			case k < len(body):
				return body[k]
			case k == len(body):
				return '\r'
			case k == len(body)+1:
				return '\n'
			}
			return 0
		}
		if f := at(j); (f == FlagEnd || f == FlagMore || f == FlagAbort) && at(j+1) == '\r' && at(j+2) == '\n' {
			return true
		}
		off += i + 1
	}
}
