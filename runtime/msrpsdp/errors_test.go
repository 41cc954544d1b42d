package msrpsdp

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// warningSafe returns why s cannot go into a Warning header's quoted-string
// unescaped (RFC 3261 §20.43, §25.1), or "".
func warningSafe(s string) string {
	if len(s) > 400 {
		return "longer than 400 bytes"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return fmt.Sprintf("byte %#x at %d", c, i)
		}
	}
	return ""
}

func TestErrorWarning(t *testing.T) {
	_, err := Parse([]byte(offer(mline[0], mline[2])))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want *Error, got %v", err)
	}
	if got, want := e.Warning("cf.example"), `306 cf.example "a=path missing (RFC 4975 8.2)"`; got != want {
		t.Fatalf("Warning = %s, want %s", got, want)
	}
	if !strings.HasPrefix(err.Error(), "msrpsdp: ") {
		t.Fatalf("Error() = %q lacks the package prefix", err.Error())
	}
}

func TestReasonQuotesHostileValues(t *testing.T) {
	hostile := "\"\\\x01\xff'" + strings.Repeat("x", 200)
	e := invalid(WarnMiscellaneous, "value "+q(hostile)+" and \"raw\" \\ \n")
	if r := warningSafe(e.Reason); r != "" {
		t.Fatalf("reason %q not Warning-safe: %s", e.Reason, r)
	}
	if !strings.Contains(e.Reason, "'%22%5c%01%ff%27xxx") {
		t.Fatalf("offending bytes not shown as %%XX: %q", e.Reason)
	}
	if !strings.Contains(e.Reason, "'...") || len(e.Reason) > 120 {
		t.Fatalf("long value not truncated: %q", e.Reason)
	}
}

func TestRejectedWrapsBoth(t *testing.T) {
	_, err := Parse([]byte(offer("m=message 0 TCP/MSRP *")))
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, ErrRejected) {
		t.Fatalf("port 0: %v; want both ErrInvalid and ErrRejected", err)
	}
	_, err = Parse([]byte(offer(mline[0])))
	if errors.Is(err, ErrRejected) {
		t.Fatalf("missing path reported as rejected: %v", err)
	}
}
