package cpim

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// MaxHeaderBytes bounds the two header blocks together, blank lines
// included. Real CPIM headers take a few hundred bytes; past 16 KiB a stream
// is hostile or broken, and Read fails with ErrTooLarge rather than grow.
const MaxHeaderBytes = 16 << 10

// Read parses the header blocks of a message/cpim body from r and returns
// them with the payload: a reader positioned at the payload's first byte.
// Read consumes at most MaxHeaderBytes plus one bufio buffer (4 KiB) from r
// before returning; the payload is never read ahead further than that.
//
// When the MIME block has a Content-Length, the payload reader yields exactly
// that many bytes and then io.EOF, or fails with ErrLength if r ends early or
// holds more; without one it yields the rest of r.
//
// Read is strict (RFC 3862 §3): every line ends in CRLF; no line is folded
// (a header is one line); From and To are required, From, DateTime and
// Content-Type at most once; DateTime is RFC 3339; the MIME block needs a
// Content-Type. CPIM header names are case-sensitive (RFC 3862 §3.1), MIME
// header names are not (RFC 2045 §3).
func Read(r io.Reader) (Header, io.Reader, error) {
	h := Header{ContentLength: NoContentLength}
	br := bufio.NewReaderSize(r, 4096)
	lr := lineReader{r: br, budget: MaxHeaderBytes}

	var haveFrom, haveTo, haveDate bool
	for {
		line, err := lr.next()
		if err != nil {
			return Header{}, nil, err
		}
		if line == "" {
			break
		}
		name, value, err := splitCPIM(line)
		if err != nil {
			return Header{}, nil, err
		}
		switch name {
		case "From":
			if haveFrom {
				return Header{}, nil, fmt.Errorf("%w: more than one From", ErrInvalid)
			}
			haveFrom, h.From = true, value
		case "To":
			if haveTo {
				h.Extra = append(h.Extra, Field{name, value})
				continue
			}
			haveTo, h.To = true, value
		case "DateTime":
			if haveDate {
				return Header{}, nil, fmt.Errorf("%w: more than one DateTime", ErrInvalid)
			}
			t, err := parseDateTime(value)
			if err != nil {
				return Header{}, nil, err
			}
			haveDate, h.DateTime = true, t
		case "NS":
			h.NS = append(h.NS, value)
		default:
			h.Extra = append(h.Extra, Field{name, value})
		}
	}

	var haveType, haveLength bool
	for {
		line, err := lr.next()
		if err != nil {
			return Header{}, nil, err
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return Header{}, nil, fmt.Errorf("%w: MIME header line %q has no colon", ErrInvalid, clip(line))
		}
		value = trimOWS(value)
		switch {
		case strings.EqualFold(name, "Content-Type"):
			if haveType {
				return Header{}, nil, fmt.Errorf("%w: more than one Content-Type", ErrInvalid)
			}
			haveType, h.ContentType = true, value
		case strings.EqualFold(name, "Content-Length"):
			if haveLength {
				return Header{}, nil, fmt.Errorf("%w: more than one Content-Length", ErrInvalid)
			}
			// 18 digits always fit an int64; a larger claim is refused
			// rather than trusted.
			if value == "" || len(value) > 18 || strings.Trim(value, "0123456789") != "" {
				return Header{}, nil, fmt.Errorf("%w: Content-Length %q", ErrInvalid, clip(value))
			}
			h.ContentLength, _ = strconv.ParseInt(value, 10, 64)
			haveLength = true
		default:
			h.ContentHeaders = append(h.ContentHeaders, Field{name, value})
		}
	}
	if !haveType {
		return Header{}, nil, fmt.Errorf("%w: encapsulated object has no Content-Type", ErrInvalid)
	}
	// One check for everything else (required headers, names, values), the
	// same one Wrap applies: what Read returns, Wrap accepts.
	if err := h.Validate(); err != nil {
		return Header{}, nil, err
	}
	var payload io.Reader = br
	if h.ContentLength >= 0 {
		payload = &exactReader{r: br, left: h.ContentLength}
	}
	return h, payload, nil
}

// lineReader returns CRLF-terminated lines without their CRLF, charging each
// to a shared budget so that the header blocks together stay bounded.
type lineReader struct {
	r      *bufio.Reader
	budget int
}

func (l *lineReader) next() (string, error) {
	var line []byte
	for {
		frag, err := l.r.ReadSlice('\n')
		if len(frag) > l.budget {
			return "", fmt.Errorf("%w: more than %d bytes before the payload", ErrTooLarge, MaxHeaderBytes)
		}
		l.budget -= len(frag)
		line = append(line, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			return "", fmt.Errorf("%w: stream ends inside the header blocks: %w", ErrInvalid, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return "", err
		}
		break
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return "", fmt.Errorf("%w: header line not terminated by CRLF", ErrInvalid)
	}
	line = line[:len(line)-2]
	if i := bytes.IndexByte(line, '\r'); i >= 0 {
		return "", fmt.Errorf("%w: bare CR in header line", ErrInvalid)
	}
	if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
		// RFC 3862 §3.1: a header is one line; there is no folding. (RFC 5322
		// would allow it in the MIME block; CPIM implementations never fold,
		// and refusing it keeps one rule for both blocks.)
		return "", fmt.Errorf("%w: folded header line", ErrInvalid)
	}
	return string(line), nil
}

// splitCPIM splits "Name: value" or "Name:;param value" (RFC 3862 §3.1).
func splitCPIM(line string) (name, value string, err error) {
	name, value, ok := strings.Cut(line, ":")
	if !ok {
		return "", "", fmt.Errorf("%w: CPIM header line %q has no colon", ErrInvalid, clip(line))
	}
	if err := checkCPIMName(name); err != nil {
		return "", "", err
	}
	switch {
	case value == "" || value[0] == ';':
	case value[0] == ' ':
		value = value[1:]
	default:
		return "", "", fmt.Errorf("%w: no space after %q's colon", ErrInvalid, clip(name))
	}
	return name, value, nil
}

// parseDateTime parses an RFC 3339 date-time (RFC 3862 §5.4), where "T" and
// "Z" may be lower case (RFC 3339 §5.6 note).
func parseDateTime(v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.ToUpper(v))
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: DateTime %q is not RFC 3339", ErrInvalid, clip(v))
	}
	return t, nil
}
