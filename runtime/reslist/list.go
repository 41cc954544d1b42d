package reslist

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
)

// Names of the resource-list body (RFC 4826 §3.2, RFC 5366 §4, §9).
const (
	Namespace   = "urn:ietf:params:xml:ns:resource-lists"
	ContentType = "application/resource-lists+xml"
	// Disposition is the Content-Disposition of the list's part in an INVITE
	// (RFC 5366 §4).
	Disposition = "recipient-list"
)

// Bounds on what Parse reads. A group of 10000 members is already far more
// than a CF invites in one go; 1 MiB holds that many entries easily.
const (
	MaxListBytes = 1 << 20
	MaxEntries   = 10000
	// maxDepth bounds element nesting: resource-lists/list/list/.../entry.
	// RFC 4826 allows nested lists; 16 levels is generous for a recipient list.
	maxDepth = 16
)

// Marshal returns an application/resource-lists+xml document with one <list>
// holding an <entry uri="..."/> per URI, in order (RFC 4826 §3.2). It does
// not check the URIs: Parse refuses anything but sip:/sips: (see checkURI),
// so give it what Parse would return.
func Marshal(uris []string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<resource-lists xmlns="` + Namespace + `">` + "\n")
	b.WriteString("  <list>\n")
	for _, u := range uris {
		b.WriteString(`    <entry uri="`)
		// EscapeText escapes '"' as well, so the value is a safe attribute.
		_ = xml.EscapeText(&b, []byte(u)) // a bytes.Buffer never fails
		b.WriteString("\"/>\n")
	}
	b.WriteString("  </list>\n</resource-lists>\n")
	return b.Bytes()
}

// Parse returns the entry URIs of a resource list in document order,
// flattening nested <list>s, and drops repeated ones (same member per
// uriKey): a URI-list server must not invite one recipient twice (RFC 5366
// relies on RFC 5363's URI-list procedures for that).
//
// Parse refuses, with ErrInvalid: a document that is not well-formed UTF-8
// XML, any DOCTYPE or other <!...> directive (no DTD, hence no entity
// expansion: Go's decoder never expands custom entities, and an undeclared
// entity is a syntax error), a root other than resource-lists in the RFC 4826
// namespace, unknown elements of that namespace, entries without a
// sip:/sips: uri, and a list without entries. It refuses with ErrTooLarge more
// than MaxListBytes, MaxEntries entries or 16 levels of nesting, and with
// ErrUnsupported the <external> and <entry-ref> elements, which point at
// lists stored elsewhere (RFC 4826 §3.2). Elements and attributes of other
// namespaces are ignored, as RFC 4826's schema allows them (the copyControl
// attributes of RFC 5364 among them).
func Parse(b []byte) ([]string, error) {
	if len(b) > MaxListBytes {
		return nil, fmt.Errorf("%w: resource list of %d bytes, at most %d", ErrTooLarge, len(b), MaxListBytes)
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true // only the five predefined entities; no HTML autoclose
	// No CharsetReader: a declared encoding other than UTF-8 is an error.

	var (
		uris    []string
		seen    = map[string]bool{}
		entries int
		depth   int
		root    bool
	)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, xmlError(err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, fmt.Errorf("%w: XML directive <!%s> (no DTDs)", ErrInvalid, clip(string(t)))
		case xml.CharData:
			if depth == 0 && !isXMLSpace(t) {
				return nil, fmt.Errorf("%w: text outside the root element", ErrInvalid)
			}
		case xml.EndElement:
			depth--
		case xml.StartElement:
			depth++
			if depth > maxDepth {
				return nil, fmt.Errorf("%w: elements nested deeper than %d", ErrTooLarge, maxDepth)
			}
			if depth == 1 {
				if root {
					return nil, fmt.Errorf("%w: more than one root element", ErrInvalid)
				}
				if t.Name.Space != Namespace || t.Name.Local != "resource-lists" {
					return nil, fmt.Errorf("%w: root element {%s}%s, want {%s}resource-lists", ErrInvalid, clip(t.Name.Space), clip(t.Name.Local), Namespace)
				}
				root = true
				continue
			}
			if t.Name.Space != Namespace {
				// An extension element (RFC 4826 allows ##other): skip it
				// whole, under the same depth bound.
				if err := skip(d, depth); err != nil {
					return nil, err
				}
				depth--
				continue
			}
			switch t.Name.Local {
			case "list":
				// Directly under resource-lists or nested in a list.
			case "display-name":
				if err := skip(d, depth); err != nil {
					return nil, err
				}
				depth--
			case "entry":
				if depth == 2 {
					return nil, fmt.Errorf("%w: <entry> outside a <list>", ErrInvalid)
				}
				entries++
				if entries > MaxEntries {
					return nil, fmt.Errorf("%w: more than %d entries", ErrTooLarge, MaxEntries)
				}
				u, err := entryURI(t)
				if err != nil {
					return nil, err
				}
				if k := uriKey(u); !seen[k] {
					seen[k] = true
					uris = append(uris, u)
				}
				// An entry holds at most a display-name and extensions.
				if err := skip(d, depth); err != nil {
					return nil, err
				}
				depth--
			case "external", "entry-ref":
				return nil, fmt.Errorf("%w: <%s> refers to a list stored elsewhere", ErrUnsupported, t.Name.Local)
			default:
				return nil, fmt.Errorf("%w: unknown element <%s>", ErrInvalid, clip(t.Name.Local))
			}
		}
	}
	if !root {
		return nil, fmt.Errorf("%w: no resource-lists element", ErrInvalid)
	}
	if len(uris) == 0 {
		return nil, fmt.Errorf("%w: resource list has no entries", ErrInvalid)
	}
	return uris, nil
}

// skip consumes the rest of the element just started at depth, like
// xml.Decoder.Skip, but refuses nesting beyond maxDepth and directives.
func skip(d *xml.Decoder, depth int) error {
	start := depth
	for depth >= start {
		tok, err := d.Token()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return xmlError(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth > maxDepth {
				return fmt.Errorf("%w: elements nested deeper than %d", ErrTooLarge, maxDepth)
			}
		case xml.EndElement:
			depth--
		case xml.Directive:
			return fmt.Errorf("%w: XML directive <!%s> (no DTDs)", ErrInvalid, clip(string(t)))
		}
	}
	return nil
}

// entryURI returns an <entry>'s uri attribute, checked.
func entryURI(t xml.StartElement) (string, error) {
	var uri string
	found := false
	for _, a := range t.Attr {
		if a.Name.Space == "" && a.Name.Local == "uri" {
			if found {
				return "", fmt.Errorf("%w: <entry> with two uri attributes", ErrInvalid)
			}
			uri, found = a.Value, true
		}
	}
	if !found {
		return "", fmt.Errorf("%w: <entry> without uri", ErrInvalid)
	}
	if err := checkURI(uri); err != nil {
		return "", err
	}
	return uri, nil
}

// isXMLSpace reports whether b is all XML white space (the S production of
// XML 1.0 §2.3: SP, HTAB, CR, LF).
func isXMLSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// xmlError wraps an encoding/xml error, clipped (see clipErr).
func xmlError(err error) error { return fmt.Errorf("%w: XML: %s", ErrInvalid, clipErr(err)) }
