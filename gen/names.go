package gen

import (
	"sort"
	"strings"
	"unicode"
)

// initialisms are spelled in capitals in Go names, after the Go style guide.
var initialisms = map[string]string{
	"ok": "OK", "cf": "CF", "pf": "PF", "pfa": "PFA", "pfb": "PFB", "sip": "SIP", "sdp": "SDP",
	"uri": "URI", "uas": "UAS", "uac": "UAC", "id": "ID", "msrp": "MSRP", "tcp": "TCP",
}

// exported turns a spec name (kebab-case, or already CamelCase) into an exported Go name:
// "cf-answer" -> "CFAnswer", "first-member-ok" -> "FirstMemberOK", "recv-200" -> "Recv200".
func exported(name string) string {
	var b strings.Builder
	for _, part := range strings.FieldsFunc(name, func(r rune) bool { return r == '-' || r == '_' || r == '.' || r == ' ' }) {
		if up, ok := initialisms[strings.ToLower(part)]; ok {
			b.WriteString(up)
			continue
		}
		r := []rune(part)
		r[0] = unicode.ToUpper(r[0])
		b.WriteString(string(r))
	}
	return b.String()
}

// unexported is exported with a lower-case first letter (or initialism).
func unexported(name string) string {
	e := exported(name)
	var caps []string
	for _, U := range initialisms {
		caps = append(caps, U)
	}
	// Longest first, so that "PFA..." is not read as "PF" + "A...".
	sort.Slice(caps, func(i, j int) bool {
		return len(caps[i]) > len(caps[j]) || len(caps[i]) == len(caps[j]) && caps[i] < caps[j]
	})
	for _, U := range caps {
		if strings.HasPrefix(e, U) && (len(e) == len(U) || unicode.IsUpper(rune(e[len(U)]))) {
			return strings.ToLower(U) + e[len(U):]
		}
	}
	r := []rune(e)
	r[0] = unicode.ToLower(r[0])
	return string(r)
}
