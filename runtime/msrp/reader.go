package msrp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Limits bound what a Reader accepts from a peer. Every limit is enforced
// before memory is committed: nothing is allocated in proportion to a length
// the peer merely claims (MSRP declares no body length at all; only the
// end-line ends a body, RFC 4975 §7.1).
type Limits struct {
	// MaxHeaderBytes bounds the start-line plus header section. A request
	// over it is answered 413 when its start-line, To-Path and From-Path lie
	// within the limit (RFC 4975 §9 puts the paths first), and otherwise
	// closes the connection. Default 16 KiB.
	MaxHeaderBytes int
	// MaxHeaders bounds the number of header fields; a request with more is
	// answered 413. Default 64.
	MaxHeaders int
	// MaxChunkBody bounds one SEND body; a longer one is skipped and answered
	// 413 (RFC 4975 §7.1.1: the receiver asks the sender to stop that
	// message). Default 1 MiB.
	MaxChunkBody int
	// MaxOtherBody bounds the body of any request but SEND. RFC 4975 §7.1
	// says such bodies MUST NOT exceed 10240 bytes; that is the default.
	MaxOtherBody int
}

// DefaultLimits returns the default limits.
func DefaultLimits() Limits {
	return Limits{MaxHeaderBytes: 16 << 10, MaxHeaders: 64, MaxChunkBody: 1 << 20, MaxOtherBody: 10240}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.MaxHeaders <= 0 {
		l.MaxHeaders = d.MaxHeaders
	}
	if l.MaxChunkBody <= 0 {
		l.MaxChunkBody = d.MaxChunkBody
	}
	if l.MaxOtherBody <= 0 {
		l.MaxOtherBody = d.MaxOtherBody
	}
	return l
}

// FrameError describes a frame the Reader could not accept. When Fatal is
// false the Reader skipped the whole frame up to its end-line and is ready for
// the next one; the frame fields it could parse (TID, paths) are left in the
// Frame so that a request can be answered with Status. When Fatal is true the
// frame boundaries are lost and the connection must be closed.
type FrameError struct {
	TID     string
	Method  string // request method, "" for a response or when unknown
	Status  int    // MSRP status to answer a request with (400, 413, ...)
	Fatal   bool
	Err     error
	Request bool // the frame was a request (answerable)
}

func (e *FrameError) Error() string {
	if e.Fatal {
		return fmt.Sprintf("msrp: frame %q: %v (framing lost)", e.TID, e.Err)
	}
	return fmt.Sprintf("msrp: frame %q: %v (answer %03d)", e.TID, e.Err, e.Status)
}

func (e *FrameError) Unwrap() error { return e.Err }

// Reader parses MSRP frames from a byte stream: frames split across reads
// and several frames in one read are both fine. It is not safe for concurrent
// use.
type Reader struct {
	br  *bufio.Reader
	lim Limits
	// paths keeps the last To-Path and From-Path parsed: every chunk of a message, and
	// every response on a connection, repeats them byte for byte, and parsing them was
	// a third of a relay's allocations per chunk (docs/performance.md).
	paths pathCache

	// The paths of a request whose header section was over the limit, for
	// its 413 (set by blockTooLarge).
	bigTo, bigFrom Path
}

// minReadBuffer is the smallest bufio buffer a Reader uses; the header section
// is parsed in place, so the buffer must hold MaxHeaderBytes.
const minReadBuffer = 64 << 10

// NewReader returns a Reader over r. A *bufio.Reader of sufficient size is
// used as is.
func NewReader(r io.Reader, lim Limits) *Reader {
	lim = lim.withDefaults()
	size := max(minReadBuffer, lim.MaxHeaderBytes+64)
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < size {
		br = bufio.NewReaderSize(r, size)
	}
	return &Reader{br: br, lim: lim}
}

// Buffered returns how many bytes are buffered but not yet parsed: zero
// means the next ReadFrame will block on the underlying reader.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// Reset makes the Reader read from r, keeping its buffer.
func (r *Reader) Reset(src io.Reader) { r.br.Reset(src) }

// ReadFrame reads the next frame into f, reusing f.Body's and f.Headers'
// capacity. It returns io.EOF at a clean end of stream, a *FrameError for a
// malformed frame, or the underlying read error.
func (r *Reader) ReadFrame(f *Frame) error {
	body, hdrs := f.Body[:0], f.Headers[:0]
	*f = Frame{Body: body, Headers: hdrs}

	block, end, err := r.headerBlock()
	if err != nil {
		if fe, ok := err.(*FrameError); ok && fe.TID != "" {
			// A header section over the limit: what blockTooLarge could read
			// of it names the transaction and, for a request, whom to answer.
			f.TID, f.Method, f.ToPath, f.FromPath = fe.TID, fe.Method, r.bigTo, r.bigFrom
		}
		return err
	}
	// block is one string: every header value below is a substring of it,
	// so the whole header section costs one allocation.
	ferr := r.parseHeader(f, block)
	if ferr != nil && ferr.TID == "" {
		return ferr // no transaction id: nothing to resynchronise on
	}
	switch {
	case ferr != nil:
		// Skip to this transaction's end-line wherever the header section
		// stopped making sense; the end-line search is lenient about LF-only
		// line ends so that a badly formatted frame is still skipped whole.
		r.discardBytes(len(block))
		if end == endLineNext {
			// The block ended on the end-line itself: already consumed above.
			return ferr
		}
		if err := r.resync(ferr.TID, true); err != nil {
			return r.lost(ferr.TID, err)
		}
		return ferr
	case end == endLineNext:
		r.discardBytes(len(block))
		return nil
	}
	// A body follows the blank line.
	r.discardBytes(len(block))
	f.hasBody = true
	limit := r.lim.MaxOtherBody
	if f.Method == MethodSEND {
		limit = r.lim.MaxChunkBody
	}
	n, flag, err := r.readBody(f, limit)
	if err != nil {
		return r.lost(f.TID, err)
	}
	f.Flag = flag
	if n > int64(limit) {
		return &FrameError{TID: f.TID, Method: f.Method, Request: f.Method != "", Status: StatusTooLarge,
			Err: fmt.Errorf("%w: body over %d bytes", ErrTooLarge, limit)}
	}
	if e := checkBody(f); e != nil {
		return &FrameError{TID: f.TID, Method: f.Method, Request: f.Method != "", Status: StatusBadRequest, Err: e}
	}
	return nil
}

func (r *Reader) lost(tid string, err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return &FrameError{TID: tid, Fatal: true, Err: fmt.Errorf("%w: %w", ErrFramingLost, err)}
}

// checkBody applies the rules that need the body: RFC 4975 §7.1 (a body needs
// a Content-Type, responses have none) and §7.1.1 (the body must fit the
// Byte-Range).
func checkBody(f *Frame) error {
	if f.Method == "" {
		return fmt.Errorf("%w: response with a body", ErrMalformed)
	}
	if f.ContentType == "" {
		return fmt.Errorf("%w: body without Content-Type", ErrMalformed)
	}
	if f.ByteRange.Start != 0 && !f.ByteRange.fits(int64(len(f.Body))) {
		return fmt.Errorf("%w: %d body bytes do not fit %s", ErrInvalidByteRange, len(f.Body), f.ByteRange)
	}
	return nil
}

// How a header block ended.
const (
	endBlank    = iota // blank line: a body follows
	endLineNext        // the block includes the end-line of a bodiless frame
)

// headerBlock peeks at the start-line and headers up to the blank line or the
// end-line, without consuming them. It returns them as a string that still
// includes the final blank line or end-line.
func (r *Reader) headerBlock() (string, int, error) {
	n := 0  // bytes of the block scanned so far
	ls := 0 // start of the line being scanned
	for {
		if n > r.lim.MaxHeaderBytes {
			return r.blockTooLarge(n)
		}
		win, err := r.br.Peek(r.br.Buffered())
		if len(win) <= n {
			// Need more bytes: ask for one more than we have.
			if n >= r.lim.MaxHeaderBytes {
				return r.blockTooLarge(n)
			}
			win, err = r.br.Peek(n + 1)
			if len(win) <= n {
				if errors.Is(err, io.EOF) && n == 0 {
					return "", 0, io.EOF
				}
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				if errors.Is(err, bufio.ErrBufferFull) {
					return r.blockTooLarge(n)
				}
				return "", 0, err
			}
		}
		if len(win) > r.lim.MaxHeaderBytes+1 {
			win = win[:r.lim.MaxHeaderBytes+1]
		}
		for n < len(win) {
			nl := bytes.IndexByte(win[n:], '\n')
			if nl < 0 {
				n = len(win)
				break
			}
			n += nl + 1
			if n > r.lim.MaxHeaderBytes {
				return r.blockTooLarge(n)
			}
			line := win[ls:n]
			first := ls == 0
			ls = n
			if first {
				continue // start-line
			}
			if len(line) == 1 || len(line) == 2 && line[0] == '\r' {
				return string(win[:n]), endBlank, nil
			}
			if bytes.HasPrefix(line, []byte(endLineDashes)) {
				return string(win[:n]), endLineNext, nil
			}
		}
	}
}

// blockTooLarge is a header section that never ends within the limit. A
// request is answered 413 (RFC 4975 §7.3, §10: the limit is the receiver's
// to set), which needs its transaction id and both paths: RFC 4975 §9 puts
// To-Path and From-Path first, so they are read from the part of the section
// within the limit, and the rest of the frame is skipped by its transaction
// id. A request that cannot be answered so (start-line or paths unreadable
// within the limit) loses framing and the connection is closed: nothing is
// allocated from what the peer claims, and nothing waits for an end-line
// that may never come. An over-long response is skipped (responses are never
// answered, RFC 4975 §7.2).
func (r *Reader) blockTooLarge(n int) (string, int, error) {
	r.bigTo, r.bigFrom = nil, nil
	tooLarge := fmt.Errorf("%w: header section over %d bytes", ErrTooLarge, r.lim.MaxHeaderBytes)
	win, _ := r.br.Peek(min(r.br.Buffered(), n))
	line, rest, _ := bytes.Cut(win, []byte("\n"))
	tid, method, ok := startLineID(string(line))
	if !ok {
		return "", 0, &FrameError{Fatal: true, Err: fmt.Errorf("%w: %w", ErrFramingLost, tooLarge)}
	}
	if method != "" {
		r.bigTo, r.bigFrom = leadingPaths(rest)
		if r.bigTo == nil || r.bigFrom == nil {
			return "", 0, &FrameError{TID: tid, Method: method, Fatal: true,
				Err: fmt.Errorf("%w: %w: no To-Path and From-Path within the limit", ErrFramingLost, tooLarge)}
		}
	}
	r.discardBytes(len(line))
	if err := r.resync(tid, false); err != nil {
		return "", 0, r.lost(tid, err)
	}
	status := StatusTooLarge
	if method == "" {
		status = 0
	}
	return "", 0, &FrameError{TID: tid, Method: method, Request: method != "", Status: status, Err: tooLarge}
}

// leadingPaths parses the To-Path and From-Path lines that open a header
// section (RFC 4975 §9 puts them first, in that order), or returns nil for
// any it cannot read whole from b.
func leadingPaths(b []byte) (to, from Path) {
	for i, name := range []string{"To-Path", "From-Path"} {
		line, rest, ok := bytes.Cut(b, []byte("\n"))
		if !ok {
			return to, from
		}
		b = rest
		k, v, ok := strings.Cut(strings.TrimSuffix(string(line), "\r"), ":")
		if !ok || !equalFoldASCII(k, name) {
			return to, from
		}
		p, err := ParsePath(strings.TrimLeft(v, " \t"))
		if err != nil {
			return to, from
		}
		if i == 0 {
			to = p
		} else {
			from = p
		}
	}
	return to, from
}

// startLineID extracts the transaction id and method from a start-line, or
// reports that it cannot be trusted.
func startLineID(s string) (tid, method string, ok bool) {
	s = strings.TrimSuffix(s, "\r")
	rest, found := strings.CutPrefix(s, "MSRP ")
	if !found {
		return "", "", false
	}
	tid, rest, found = strings.Cut(rest, " ")
	if !found || !validIdent(tid) {
		return "", "", false
	}
	if len(rest) >= 3 && isDigit(rest[0]) {
		return tid, "", true
	}
	return tid, rest, isMethod(rest)
}

func (r *Reader) discardBytes(n int) {
	if n > 0 {
		_, _ = r.br.Discard(n) // the bytes were peeked, so Discard cannot fail
	}
}

// parseHeader fills f from a header block. On failure it returns a
// FrameError with TID set when the start-line was readable.
func (r *Reader) parseHeader(f *Frame, block string) *FrameError {
	line, rest, _ := strings.Cut(block, "\n")
	tid, method, ok := startLineID(line)
	if !ok {
		return &FrameError{Fatal: true, Err: fmt.Errorf("%w: %w: start-line %.80q", ErrFramingLost, ErrMalformed, line)}
	}
	// Re-slice tid from block so it shares the block's memory.
	tid = line[5 : 5+len(tid)]
	f.TID = tid
	fail := func(status int, err error) *FrameError {
		return &FrameError{TID: tid, Method: f.Method, Request: f.Method != "", Status: status, Err: err}
	}
	// A line ended by LF alone breaks RFC 4975 §9, but we keep parsing so
	// that the paths needed to answer 400 are known.
	bareLF := !strings.HasSuffix(line, "\r")
	line = strings.TrimSuffix(line, "\r")
	after := line[5+len(tid)+1:]
	if method != "" {
		f.Method = after
	} else {
		code, comment, _ := strings.Cut(after, " ")
		if len(code) != 3 || !isDigit(code[0]) || !isDigit(code[1]) || !isDigit(code[2]) {
			return fail(0, fmt.Errorf("%w: status %q", ErrMalformed, code))
		}
		f.Status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
		f.Comment = comment
		if !utf8Text(comment) {
			return fail(0, fmt.Errorf("%w: response comment", ErrMalformed))
		}
	}
	count := 0
	for rest != "" {
		line, rest, _ = strings.Cut(rest, "\n")
		if !strings.HasSuffix(line, "\r") {
			bareLF = true
		}
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			break // blank line: body follows
		}
		if strings.HasPrefix(line, endLineDashes) {
			fl := line[len(endLineDashes):]
			if len(fl) != len(tid)+1 || fl[:len(tid)] != tid {
				return fail(StatusBadRequest, fmt.Errorf("%w: end-line %.80q does not match transaction %q", ErrMalformed, line, tid))
			}
			switch fl[len(tid)] {
			case FlagEnd, FlagMore, FlagAbort:
				f.Flag = fl[len(tid)]
			default:
				return fail(StatusBadRequest, fmt.Errorf("%w: end-line flag %q", ErrMalformed, fl[len(tid)]))
			}
			if f.ContentType != "" {
				return fail(StatusBadRequest, fmt.Errorf("%w: Content-Type without a body", ErrMalformed))
			}
			break
		}
		count++
		if count > r.lim.MaxHeaders {
			// A header section over a limit is 413, like one over
			// MaxHeaderBytes (blockTooLarge).
			return fail(StatusTooLarge, fmt.Errorf("%w: more than %d headers", ErrTooLarge, r.lim.MaxHeaders))
		}
		if f.ContentType != "" {
			return fail(StatusBadRequest, fmt.Errorf("%w: header after Content-Type", ErrMalformed))
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" || !isToken(name) {
			return fail(StatusBadRequest, fmt.Errorf("%w: header line %.80q", ErrMalformed, line))
		}
		value = strings.TrimLeft(value, " \t")
		if err := setHeader(f, count, name, value, &r.paths); err != nil {
			return fail(StatusBadRequest, err)
		}
	}
	if len(f.ToPath) == 0 || len(f.FromPath) == 0 {
		return fail(StatusBadRequest, fmt.Errorf("%w: missing To-Path or From-Path", ErrMalformed))
	}
	if bareLF {
		return fail(StatusBadRequest, fmt.Errorf("%w: line ended by LF alone", ErrMalformed))
	}
	if f.Method == "" {
		return nil
	}
	if f.Method == MethodSEND || f.Method == MethodREPORT {
		if f.MessageID == "" {
			return fail(StatusBadRequest, fmt.Errorf("%w: %s without Message-ID", ErrMalformed, f.Method))
		}
	}
	if f.Method == MethodREPORT && f.ReportStatus == nil {
		return fail(StatusBadRequest, fmt.Errorf("%w: REPORT without Status", ErrMalformed))
	}
	return nil
}

// setHeader stores one header. Position is 1-based: RFC 4975 §9 puts To-Path
// first and From-Path second, and Kamailio's relay depends on it.
func setHeader(f *Frame, pos int, name, value string, paths *pathCache) error {
	dup := func() error { return fmt.Errorf("%w: duplicate %s", ErrMalformed, name) }
	switch {
	case equalFoldASCII(name, "To-Path"):
		if pos != 1 {
			return fmt.Errorf("%w: To-Path is not the first header", ErrMalformed)
		}
		p, err := paths.parse(0, value)
		if err != nil {
			return err
		}
		f.ToPath = p
	case equalFoldASCII(name, "From-Path"):
		if pos != 2 {
			return fmt.Errorf("%w: From-Path is not the second header", ErrMalformed)
		}
		p, err := paths.parse(1, value)
		if err != nil {
			return err
		}
		f.FromPath = p
	case pos <= 2:
		return fmt.Errorf("%w: %s before To-Path/From-Path", ErrMalformed, name)
	case equalFoldASCII(name, "Message-ID"):
		if f.MessageID != "" {
			return dup()
		}
		if !validIdent(value) {
			return fmt.Errorf("%w: Message-ID %.40q", ErrMalformed, value)
		}
		f.MessageID = value
	case equalFoldASCII(name, "Byte-Range"):
		if f.ByteRange.Start != 0 {
			return dup()
		}
		br, err := ParseByteRange(value)
		if err != nil {
			return err
		}
		f.ByteRange = br
	case equalFoldASCII(name, "Success-Report"):
		if f.SuccessReport != ReportAbsent {
			return dup()
		}
		switch value {
		case "yes":
			f.SuccessReport = ReportYes
		case "no":
			f.SuccessReport = ReportNo
		default:
			return fmt.Errorf("%w: Success-Report %.20q", ErrMalformed, value)
		}
	case equalFoldASCII(name, "Failure-Report"):
		if f.FailureReport != ReportAbsent {
			return dup()
		}
		switch value {
		case "yes":
			f.FailureReport = ReportYes
		case "no":
			f.FailureReport = ReportNo
		case "partial":
			f.FailureReport = ReportPartial
		default:
			return fmt.Errorf("%w: Failure-Report %.20q", ErrMalformed, value)
		}
	case equalFoldASCII(name, "Status"):
		if f.ReportStatus != nil {
			return dup()
		}
		st, err := parseReportStatus(value)
		if err != nil {
			return err
		}
		f.ReportStatus = &st
	case equalFoldASCII(name, "Content-Type"):
		if value == "" || !utf8Text(value) {
			return fmt.Errorf("%w: Content-Type %.40q", ErrMalformed, value)
		}
		f.ContentType = value
	default:
		if !utf8Text(value) {
			return fmt.Errorf("%w: value of %s", ErrMalformed, name)
		}
		f.Headers = append(f.Headers, Field{Name: name, Value: value})
	}
	return nil
}

func parseReportStatus(s string) (ReportStatus, error) {
	var st ReportStatus
	if len(s) < 7 || s[3] != ' ' || (len(s) > 7 && s[7] != ' ') {
		return st, fmt.Errorf("%w: Status %.40q", ErrMalformed, s)
	}
	ns, err1 := strconv.Atoi(s[:3])
	code, err2 := strconv.Atoi(s[4:7])
	if err1 != nil || err2 != nil || !isDigit(s[0]) || !isDigit(s[4]) || ns < 0 || code < 0 {
		return st, fmt.Errorf("%w: Status %.40q", ErrMalformed, s)
	}
	st.Namespace, st.Code = ns, code
	if len(s) > 8 {
		st.Reason = s[8:]
	}
	return st, nil
}

// endLinePrefix opens every end-line, whatever its transaction id (RFC 4975
// §7.1: CRLF and seven dashes).
var endLinePrefix = []byte("\r\n" + endLineDashes)

// readBody reads a body up to its end-line (RFC 4975 §7.1: CRLF, seven
// dashes, the transaction id, a flag, CRLF). It copies at most limit bytes
// into f.Body and discards the rest, returning the full body length. The
// buffered window is searched with bytes.Index and only the tail that could
// hold the start of a split end-line is kept for the next round, so each body
// byte is examined a bounded number of times.
//
// It searches for what opens any end-line (CRLF and the dashes), not only
// this transaction's, at the same cost: a body in which none occurs is marked
// (Frame.endLineFree), and a hop that forwards it under a new transaction id
// need not search it again (containsEndLine).
func (r *Reader) readBody(f *Frame, limit int) (int64, byte, error) {
	tid := f.TID
	need := len(endLinePrefix) + len(tid) + 3 // the whole end-line: prefix, tid, flag, CRLF
	free := true
	var total int64
	take := func(b []byte) {
		if room := limit - len(f.Body); room > 0 {
			f.Body = append(f.Body, b[:min(len(b), room)]...)
		}
		total += int64(len(b))
		r.discardBytes(len(b))
	}
	for {
		win, err := r.peekAtLeast(need)
		if err != nil {
			return total, 0, err
		}
		i := bytes.Index(win, endLinePrefix)
		switch {
		case i < 0:
			take(win[:len(win)-len(endLinePrefix)+1])
		case i+need > len(win):
			take(win[:i]) // i > 0: peekAtLeast guarantees need bytes
		default:
			rest := win[i+len(endLinePrefix):]
			if string(rest[:len(tid)]) == tid {
				flag := rest[len(tid)]
				if (flag == FlagEnd || flag == FlagMore || flag == FlagAbort) && rest[len(tid)+1] == '\r' && rest[len(tid)+2] == '\n' {
					take(win[:i])
					r.discardBytes(need)
					f.endLineFree = free
					return total, flag, nil
				}
			}
			free = false // body data that looks like the start of an end-line
			take(win[:i+1])
		}
	}
}

// peekAtLeast returns everything buffered, reading more first when fewer than
// n bytes are buffered.
func (r *Reader) peekAtLeast(n int) ([]byte, error) {
	if r.br.Buffered() < n {
		if _, err := r.br.Peek(n); err != nil {
			return nil, err
		}
	}
	return r.br.Peek(r.br.Buffered())
}

// resync discards bytes up to and including the end-line of transaction tid.
// It accepts LF or CRLF line ends, since it is used exactly when a frame was
// found badly formatted. atLineStart says whether the reader stands at the
// start of a line (so an end-line may begin right here).
func (r *Reader) resync(tid string, atLineStart bool) error {
	pat := []byte("\n" + endLineDashes + tid)
	// Never wait for more bytes than the shortest end-line could still need:
	// the peer may be waiting for our answer after its final LF.
	if atLineStart {
		if done, err := r.endLineHere(pat[1:]); done || err != nil {
			return err
		}
	}
	for {
		win, err := r.peekAtLeast(len(pat) + 2)
		if err != nil {
			return err
		}
		i := bytes.Index(win, pat)
		switch {
		case i < 0:
			r.discardBytes(len(win) - len(pat) + 1)
		case i > 0:
			r.discardBytes(i) // bring the candidate to the front
		default:
			r.discardBytes(1) // the LF before the dashes
			if done, err := r.endLineHere(pat[1:]); done || err != nil {
				return err
			}
		}
	}
}

// endLineHere consumes an end-line ("-------" tid flag, LF or CRLF) if the
// reader stands at one, reading only as many bytes as that needs.
func (r *Reader) endLineHere(dashTID []byte) (bool, error) {
	win, err := r.peekAtLeast(len(dashTID) + 2)
	if err != nil {
		return false, err
	}
	if n := endLineAt(win, dashTID); n > 0 {
		r.discardBytes(n)
		return true, nil
	}
	// "-------tid$\r" and nothing more yet: the LF may still be coming.
	if len(win) == len(dashTID)+2 && bytes.HasPrefix(win, dashTID) && win[len(dashTID)+1] == '\r' {
		if win, err = r.peekAtLeast(len(dashTID) + 3); err != nil {
			return false, err
		}
		if n := endLineAt(win, dashTID); n > 0 {
			r.discardBytes(n)
			return true, nil
		}
	}
	return false, nil
}

// endLineAt returns the length of the end-line at the start of b ("-------"
// tid flag, then LF or CRLF), or 0.
func endLineAt(b, pat []byte) int {
	if !bytes.HasPrefix(b, pat) || len(b) < len(pat)+2 {
		return 0
	}
	switch b[len(pat)] {
	case FlagEnd, FlagMore, FlagAbort:
	default:
		return 0
	}
	rest := b[len(pat)+1:]
	if rest[0] == '\n' {
		return len(pat) + 2
	}
	if len(rest) >= 2 && rest[0] == '\r' && rest[1] == '\n' {
		return len(pat) + 3
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isMethod: other-method = 1*UPALPHA (RFC 4975 §9); 32 is our own bound.
func isMethod(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// isToken checks a header name: RFC 4975 hname = ALPHA *token-char.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlnumByte(c) || strings.IndexByte("-.!%*_+`'~", c) >= 0) {
			return false
		}
	}
	return s != "" && (s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z')
}

// utf8Text rejects control characters (other than tab) in header values and
// comments, so that nothing we forward can inject a line.
func utf8Text(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// pathCache remembers the last To-Path (0) and From-Path (1) a Reader parsed, by their
// exact text. Each frame gets a copy of its own, so that a caller may keep or change it.
type pathCache struct {
	raw  [2]string
	path [2]Path
}

func (c *pathCache) parse(i int, value string) (Path, error) {
	if c.path[i] == nil || c.raw[i] != value {
		p, err := ParsePath(value)
		if err != nil {
			return nil, err
		}
		c.raw[i], c.path[i] = value, p
	}
	return append(Path(nil), c.path[i]...), nil
}
