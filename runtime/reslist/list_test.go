package reslist

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestMarshal(t *testing.T) {
	got := string(Marshal([]string{"sip:bob@b.example", "sips:carol@c.example;transport=tcp?subject=a&b=<c>"}))
	want := `<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">
  <list>
    <entry uri="sip:bob@b.example"/>
    <entry uri="sips:carol@c.example;transport=tcp?subject=a&amp;b=&lt;c&gt;"/>
  </list>
</resource-lists>
`
	if got != want {
		t.Fatalf("Marshal:\n%s\nwant\n%s", got, want)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, uris := range [][]string{
		{"sip:bob@b.example"},
		rfc5366URIs,
		{"sips:alice@[2001:db8::1]:5061;transport=tls", "sip:b.example", "sip:x@y?h=a&i='q'"},
	} {
		got, err := Parse(Marshal(uris))
		if err != nil {
			t.Fatalf("Parse(Marshal(%q)): %v", uris, err)
		}
		if !reflect.DeepEqual(got, uris) {
			t.Fatalf("round trip: %q became %q", uris, got)
		}
	}
}

func TestParseRFC5366Example(t *testing.T) {
	got, err := Parse([]byte(rfc5366List))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, rfc5366URIs) {
		t.Fatalf("got %q\nwant %q", got, rfc5366URIs)
	}
}

func TestParseValid(t *testing.T) {
	doc := func(inner string) string {
		return `<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">` + inner + `</resource-lists>`
	}
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"no XML declaration", doc(`<list><entry uri="sip:a@a"/></list>`), []string{"sip:a@a"}},
		{"prefixed namespace", `<rl:resource-lists xmlns:rl="urn:ietf:params:xml:ns:resource-lists"><rl:list><rl:entry uri="sip:a@a"/></rl:list></rl:resource-lists>`, []string{"sip:a@a"}},
		{"display names skipped", doc(`<list name="g"><display-name>Group</display-name><entry uri="sip:a@a"><display-name xml:lang="en">A &amp; co</display-name></entry></list>`), []string{"sip:a@a"}},
		{"nested lists flattened in order", doc(`<list><entry uri="sip:a@a"/><list><entry uri="sip:b@b"/><list><entry uri="sip:c@c"/></list></list><entry uri="sip:d@d"/></list>`),
			[]string{"sip:a@a", "sip:b@b", "sip:c@c", "sip:d@d"}},
		{"two top-level lists", doc(`<list><entry uri="sip:a@a"/></list><list><entry uri="sip:b@b"/></list>`), []string{"sip:a@a", "sip:b@b"}},
		{"duplicates dropped, first kept", doc(`<list><entry uri="sip:a@a.example"/><entry uri="SIP:a@A.Example"/><entry uri="sip:A@a.example"/><entry uri="sip:a@a.example"/></list>`),
			[]string{"sip:a@a.example", "sip:A@a.example"}},
		{"extension elements and attributes ignored", doc(`<list xmlns:x="urn:x"><x:foo><x:bar/><entry uri="sip:z@z"/></x:foo><entry uri="sip:a@a" x:y="1"/></list>`), []string{"sip:a@a"}},
		{"comments and processing instructions", `<?xml version="1.0"?><!-- hi -->` + doc(`<?pi x?><list><!-- c --><entry uri="sip:a@a"/></list>`) + "\n<!-- bye -->\n", []string{"sip:a@a"}},
		{"character references in the URI", doc(`<list><entry uri="sip:a&#64;a"/></list>`), []string{"sip:a@a"}},
		{"sips", doc(`<list><entry uri="sips:a@a"/></list>`), []string{"sips:a@a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	doc := func(inner string) string {
		return `<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">` + inner + `</resource-lists>`
	}
	list := func(inner string) string { return doc(`<list>` + inner + `</list>`) }
	entries := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, `<entry uri="sip:u%d@x"/>`, i)
		}
		return b.String()
	}
	nest := func(n int) string {
		return doc(strings.Repeat("<list>", n) + `<entry uri="sip:a@a"/>` + strings.Repeat("</list>", n))
	}
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrInvalid},
		{"not XML", "sip:a@a", ErrInvalid},
		{"wrong root", `<lists xmlns="urn:ietf:params:xml:ns:resource-lists"/>`, ErrInvalid},
		{"no namespace", `<resource-lists><list><entry uri="sip:a@a"/></list></resource-lists>`, ErrInvalid},
		{"wrong namespace", `<resource-lists xmlns="urn:x"><list><entry uri="sip:a@a"/></list></resource-lists>`, ErrInvalid},
		{"no entries", doc(`<list/>`), ErrInvalid},
		{"no lists", doc(``), ErrInvalid},
		{"entry outside list", doc(`<entry uri="sip:a@a"/>`), ErrInvalid},
		{"entry without uri", list(`<entry/>`), ErrInvalid},
		{"entry with namespaced uri only", list(`<entry xmlns:x="urn:x" x:uri="sip:a@a"/>`), ErrInvalid},
		{"tel URI", list(`<entry uri="tel:+15551234567"/>`), ErrInvalid},
		{"http URI", list(`<entry uri="http://a.example/"/>`), ErrInvalid},
		{"sip without host", list(`<entry uri="sip:bob@"/>`), ErrInvalid},
		{"URI with space", list(`<entry uri="sip:a b@a"/>`), ErrInvalid},
		{"URI with newline reference", list(`<entry uri="sip:a@a&#10;To: x"/>`), ErrInvalid},
		{"URI with angle bracket", list(`<entry uri="sip:a@a&gt;"/>`), ErrInvalid},
		{"URI too long", list(`<entry uri="sip:a@` + strings.Repeat("a", maxURILen) + `"/>`), ErrTooLarge},
		{"unknown element", list(`<member uri="sip:a@a"/>`), ErrInvalid},
		{"external", list(`<external anchor="http://xcap.example/lists/x"/><entry uri="sip:a@a"/>`), ErrUnsupported},
		{"entry-ref", list(`<entry-ref ref="users/sip:bill@example.com/index/~~/resource-lists/list%5b@name=%22list1%22%5d/entry%5b@uri=%22sip:petri@example.com%22%5d"/>`), ErrUnsupported},
		{"two roots", doc(`<list><entry uri="sip:a@a"/></list>`) + doc(`<list><entry uri="sip:b@b"/></list>`), ErrInvalid},
		{"text after root", doc(`<list><entry uri="sip:a@a"/></list>`) + "junk", ErrInvalid},
		{"unclosed", `<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list><entry uri="sip:a@a"/>`, ErrInvalid},
		{"mismatched tags", doc(`<list><entry uri="sip:a@a"></list></entry>`), ErrInvalid},
		{"ISO-8859-1 declared", `<?xml version="1.0" encoding="ISO-8859-1"?>` + list(`<entry uri="sip:a@a"/>`), ErrInvalid},
		{"invalid UTF-8", list(`<entry uri="sip:a@a"/><display-name>` + "\xff" + `</display-name>`), ErrInvalid},
		{"undeclared entity", list(`<entry uri="sip:&lol;@a"/>`), ErrInvalid},
		{"long entity name (error stays short)", list(`<entry uri="sip:&` + strings.Repeat("0", 5000) + `@a"/>`), ErrInvalid},
		{"billion laughs", `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>` + list(`<entry uri="sip:&lol3;@a"/>`), ErrInvalid},
		{"external entity (XXE)", `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>` + list(`<entry uri="sip:&x;@a"/>`), ErrInvalid},
		{"deep nesting", nest(maxDepth), ErrTooLarge},
		{"deep extension nesting", list(`<x:a xmlns:x="urn:x">` + strings.Repeat("<x:a>", maxDepth) + strings.Repeat("</x:a>", maxDepth) + `</x:a><entry uri="sip:a@a"/>`), ErrTooLarge},
		{"deep display-name nesting", list(`<entry uri="sip:a@a"><display-name>` + strings.Repeat("<b>", maxDepth) + strings.Repeat("</b>", maxDepth) + `</display-name></entry>`), ErrTooLarge},
		{"too many entries", list(entries(MaxEntries + 1)), ErrTooLarge},
		{"too many bytes", list(`<entry uri="sip:a@a"/>` + strings.Repeat(" ", MaxListBytes)), ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.in))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse = %q, %v; want %v", got, err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "reslist: ") || len(err.Error()) > 400 {
				t.Fatalf("error %q: no package prefix or too long", err)
			}
		})
	}
}

func TestParseAcceptsTheLimits(t *testing.T) {
	var b strings.Builder
	for i := range MaxEntries {
		fmt.Fprintf(&b, `<entry uri="sip:u%d@x"/>`, i)
	}
	in := `<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list>` + b.String() + `</list></resource-lists>`
	got, err := Parse([]byte(in))
	if err != nil || len(got) != MaxEntries {
		t.Fatalf("%d entries: got %d, %v", MaxEntries, len(got), err)
	}
	deep := `<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">` + strings.Repeat("<list>", maxDepth-2) +
		`<entry uri="sip:a@a"/>` + strings.Repeat("</list>", maxDepth-2) + `</resource-lists>`
	if _, err := Parse([]byte(deep)); err != nil {
		t.Fatalf("entry at depth %d: %v", maxDepth, err)
	}
}
