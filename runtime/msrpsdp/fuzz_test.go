package msrpsdp

import (
	"errors"
	"reflect"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse. Invariants: nothing panics;
// every error is an *Error wrapping ErrInvalid with a known warn-code and a
// Warning-safe reason; and anything Parse accepts, Marshal writes again and
// Parse reads back to the same Media (so whatever an offer said, our answer
// or our next offer can say it too).
func FuzzParse(f *testing.F) {
	f.Add([]byte(designOffer))
	f.Add([]byte(offer(mline...)))
	f.Add([]byte(offer("m=message 40001 TCP/TLS/MSRP *", "a=path:msrps://r.example:2855/r;tcp msrps://[::1]:1/s;tcp", "a=accept-types:message/cpim *", "a=accept-wrapped-types:text/plain", "a=setup:actpass", "a=max-size:1")))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			var e *Error
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error wrapping ErrInvalid", err)
			}
			switch e.Code {
			case WarnIncompatibleAddress, WarnIncompatibleTransport, WarnMediaNotAvailable,
				WarnIncompatibleFormat, WarnAttributeNotUnderstood, WarnParameterNotUnderstood, WarnMiscellaneous:
			default:
				t.Fatalf("unknown warn-code %d", e.Code)
			}
			if r := warningSafe(e.Reason); r != "" {
				t.Fatalf("reason %q not Warning-safe: %s", e.Reason, r)
			}
			return
		}
		b, err := Marshal(m, 1, 1)
		if err != nil {
			t.Fatalf("parsed %#v but Marshal refuses it: %v\ninput %q", m, err, data)
		}
		again, err := Parse(b)
		if err != nil {
			t.Fatalf("Parse(Marshal(Parse(x))): %v\n%s", err, b)
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip changed the media:\n%#v\n%#v", m, again)
		}
	})
}
