package reslist

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func checkErr(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnsupported) {
		t.Fatalf("error %v wraps no sentinel", err)
	}
	if !strings.HasPrefix(err.Error(), "reslist: ") || len(err.Error()) > 600 {
		t.Fatalf("error %q: no package prefix or too long", err)
	}
}

// FuzzParse feeds arbitrary bytes to Parse. Invariants: nothing panics;
// errors wrap a sentinel; and anything Parse accepts, Marshal writes again
// as a document Parse reads to the same URIs, all distinct members.
func FuzzParse(f *testing.F) {
	f.Add([]byte(rfc5366List))
	f.Add(Marshal([]string{"sip:a@a", "sips:b@b;x?y=z&w"}))
	f.Add([]byte(`<rl:resource-lists xmlns:rl="urn:ietf:params:xml:ns:resource-lists"><rl:list><rl:list><rl:entry uri="sip:a@a"><rl:display-name>A</rl:display-name></rl:entry></rl:list></rl:list></rl:resource-lists>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		uris, err := Parse(data)
		if err != nil {
			checkErr(t, err)
			return
		}
		if len(uris) == 0 || len(uris) > MaxEntries {
			t.Fatalf("%d URIs accepted", len(uris))
		}
		keys := map[string]bool{}
		for _, u := range uris {
			if err := checkURI(u); err != nil {
				t.Fatalf("accepted URI %q fails checkURI: %v", u, err)
			}
			if keys[uriKey(u)] {
				t.Fatalf("duplicate member %q returned", u)
			}
			keys[uriKey(u)] = true
		}
		again, err := Parse(Marshal(uris))
		if err != nil {
			t.Fatalf("Parse(Marshal(Parse(x))): %v", err)
		}
		if !reflect.DeepEqual(again, uris) {
			t.Fatalf("round trip: %q became %q", uris, again)
		}
	})
}

// FuzzParseMultipart feeds an arbitrary Content-Type and body to
// ParseMultipart. Invariants: nothing panics; errors wrap a sentinel; and
// anything it accepts, MarshalMultipart writes again as a body it parses to
// the same parts.
func FuzzParseMultipart(f *testing.F) {
	f.Add(rfc5366ContentType, []byte(rfc5366Body))
	f.Add("multipart/mixed; boundary=b", []byte("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		parts, err := ParseMultipart(contentType, body)
		if err != nil {
			checkErr(t, err)
			return
		}
		if len(parts) == 0 || len(parts) > MaxParts {
			t.Fatalf("%d parts accepted", len(parts))
		}
		ct, wire, err := MarshalMultipart(parts)
		if err != nil {
			t.Fatalf("MarshalMultipart refuses what ParseMultipart returned: %v\n%q", err, parts)
		}
		again, err := ParseMultipart(ct, wire)
		if err != nil {
			t.Fatalf("re-parse: %v\n%q", err, wire)
		}
		if len(again) != len(parts) {
			t.Fatalf("%d parts became %d", len(parts), len(again))
		}
		for i := range parts {
			if again[i].ContentType != parts[i].ContentType || again[i].Disposition != parts[i].Disposition || !bytes.Equal(again[i].Body, parts[i].Body) {
				t.Fatalf("part %d changed: %q became %q", i, parts[i], again[i])
			}
		}
	})
}
