package msrp

import (
	"errors"
	"math"
	"testing"
)

func TestParseByteRange(t *testing.T) {
	tests := []struct {
		in   string
		want ByteRange
		err  bool
	}{
		{in: "1-2048/5120", want: ByteRange{1, 2048, 5120}},
		{in: "1-*/*", want: ByteRange{1, Unknown, Unknown}},
		{in: "2049-*/5120", want: ByteRange{2049, Unknown, 5120}},
		{in: "1-0/0", want: ByteRange{1, 0, 0}},                                               // empty message
		{in: "11-10/*", want: ByteRange{11, 10, Unknown}},                                     // empty chunk (abort)
		{in: "9223372036854775806-*/*", want: ByteRange{math.MaxInt64 - 1, Unknown, Unknown}}, // at the edge
		{in: "0-10/10", err: true},
		{in: "5-3/10", err: true},
		{in: "1-11/10", err: true},
		{in: "12-*/10", err: true},
		{in: "1-*", err: true},
		{in: "*-1/1", err: true},
		{in: "1-1/-1", err: true},
		{in: "-1-1/1", err: true},
		{in: "1-2/99999999999999999999999", err: true}, // huge total: overflow
		{in: "9223372036854775807-*/*", err: true},     // Total+1 would wrap
		{in: "1-+5/10", err: true},
		{in: "1- 5/10", err: true},
		{in: "", err: true},
		{in: "1-2/3/4", err: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseByteRange(tc.in)
			if tc.err {
				if !errors.Is(err, ErrInvalidByteRange) {
					t.Fatalf("error = %v, want ErrInvalidByteRange", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("= %v, %v; want %v", got, err, tc.want)
			}
			if got.String() != tc.in {
				t.Fatalf("String = %q", got.String())
			}
		})
	}
}

func TestByteRangeFits(t *testing.T) {
	tests := []struct {
		r    ByteRange
		n    int64
		want bool
	}{
		{ByteRange{1, 10, 10}, 10, true},
		{ByteRange{1, 10, 10}, 11, false},
		{ByteRange{1, 10, 10}, 4, true}, // interrupted chunk
		{ByteRange{1, Unknown, 5}, 6, false},
		{ByteRange{1, Unknown, Unknown}, 1 << 40, true},
		{ByteRange{math.MaxInt64 - 1, Unknown, Unknown}, 3, false}, // would wrap
		{ByteRange{math.MaxInt64 - 1, Unknown, Unknown}, 2, true},
	}
	for _, tc := range tests {
		if got := tc.r.fits(tc.n); got != tc.want {
			t.Errorf("%v.fits(%d) = %v, want %v", tc.r, tc.n, got, tc.want)
		}
	}
}

func FuzzParseByteRange(f *testing.F) {
	for _, s := range []string{"1-*/*", "1-2048/5120", "1-2/99999999999999999999999", "9223372036854775807-*/*", "11-10/*", "0-0/0"} {
		f.Add(s, int64(10))
	}
	f.Fuzz(func(t *testing.T, s string, n int64) {
		r, err := ParseByteRange(s)
		if err != nil {
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("parsed %q but Validate: %v", s, err)
		}
		r2, err := ParseByteRange(r.String())
		if err != nil || r2 != r {
			t.Fatalf("round trip %q -> %q: %v", s, r.String(), err)
		}
		if r.fits(n) {
			if n < 0 || r.Start-1+n < 0 {
				t.Fatalf("%v.fits(%d) true but arithmetic wraps", r, n)
			}
		}
	})
}
