package msrp

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Unknown marks a Byte-Range end or total written as "*".
const Unknown int64 = -1

// ByteRange is the value of a Byte-Range header, RFC 4975 §7.1.1 and §9:
// "start-end/total" with 1-based inclusive positions; end and total may be
// "*" (Unknown). The zero value is invalid; use DefaultByteRange for a SEND
// that has no Byte-Range header.
type ByteRange struct {
	Start int64 // first byte of the chunk, ≥ 1
	End   int64 // last byte of the chunk, or Unknown
	Total int64 // size of the whole message, or Unknown
}

// DefaultByteRange is what RFC 4975 §7.1.1 says a SEND without a Byte-Range
// header means: the whole message in one chunk of unknown size.
var DefaultByteRange = ByteRange{Start: 1, End: Unknown, Total: Unknown}

// ParseByteRange parses "start-end/total". Numbers are decimal and must fit in
// an int64 (at most 19 digits, no sign); every bound is checked so that no
// later arithmetic can go negative or wrap: start ≥ 1, end ≥ start-1 (an
// empty chunk), end ≤ total and start ≤ total+1 when they are known.
func ParseByteRange(s string) (ByteRange, error) {
	var r ByteRange
	dash := strings.IndexByte(s, '-')
	slash := strings.IndexByte(s, '/')
	if dash <= 0 || slash < dash {
		return r, fmt.Errorf("%w: %q", ErrInvalidByteRange, s)
	}
	var err error
	if r.Start, err = parseRangeNum(s[:dash], false); err != nil {
		return r, fmt.Errorf("%w: start in %q", ErrInvalidByteRange, s)
	}
	if r.End, err = parseRangeNum(s[dash+1:slash], true); err != nil {
		return r, fmt.Errorf("%w: end in %q", ErrInvalidByteRange, s)
	}
	if r.Total, err = parseRangeNum(s[slash+1:], true); err != nil {
		return r, fmt.Errorf("%w: total in %q", ErrInvalidByteRange, s)
	}
	if err := r.Validate(); err != nil {
		return ByteRange{}, fmt.Errorf("%w (%q)", err, s)
	}
	return r, nil
}

// Validate checks the invariants ParseByteRange promises.
func (r ByteRange) Validate() error {
	if r.Start < 1 {
		return fmt.Errorf("%w: start %d < 1", ErrInvalidByteRange, r.Start)
	}
	if r.End != Unknown && r.End < r.Start-1 {
		return fmt.Errorf("%w: end %d before start %d", ErrInvalidByteRange, r.End, r.Start)
	}
	if r.End < Unknown || r.Total < Unknown {
		return fmt.Errorf("%w: negative bound", ErrInvalidByteRange)
	}
	if r.Total != Unknown {
		if r.End != Unknown && r.End > r.Total {
			return fmt.Errorf("%w: end %d beyond total %d", ErrInvalidByteRange, r.End, r.Total)
		}
		if r.Start > r.Total+1 {
			return fmt.Errorf("%w: start %d beyond total %d", ErrInvalidByteRange, r.Start, r.Total)
		}
	}
	return nil
}

func parseRangeNum(s string, star bool) (int64, error) {
	if star && s == "*" {
		return Unknown, nil
	}
	if s == "" || len(s) > 19 {
		return 0, ErrInvalidByteRange
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, ErrInvalidByteRange
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > math.MaxInt64-1 {
		// MaxInt64-1 keeps Total+1 in range for the Start check above.
		return 0, ErrInvalidByteRange
	}
	return n, nil
}

// String returns the wire form, with "*" for Unknown.
func (r ByteRange) String() string {
	return string(r.appendTo(make([]byte, 0, 40)))
}

func (r ByteRange) appendTo(b []byte) []byte {
	b = strconv.AppendInt(b, r.Start, 10)
	b = append(b, '-')
	if r.End == Unknown {
		b = append(b, '*')
	} else {
		b = strconv.AppendInt(b, r.End, 10)
	}
	b = append(b, '/')
	if r.Total == Unknown {
		b = append(b, '*')
	} else {
		b = strconv.AppendInt(b, r.Total, 10)
	}
	return b
}

// fits reports whether a chunk body of n bytes is consistent with r: it must
// not run past a known end, past a known total, or past the int64 range.
// A body shorter than a known end is allowed: RFC 4975 §7.1.1 lets a sender
// interrupt a chunk, and the end-line then tells the real length.
func (r ByteRange) fits(n int64) bool {
	if n < 0 || r.Start-1 > math.MaxInt64-n {
		return false
	}
	last := r.Start - 1 + n // last byte position covered, 0-based exclusive end
	if r.End != Unknown && last > r.End {
		return false
	}
	if r.Total != Unknown && last > r.Total {
		return false
	}
	return true
}
