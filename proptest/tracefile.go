package proptest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/cpmlink/cpmlink/proptest/seqdiag"
)

// jsonRecord is the NDJSON trace format the runtime writes (runtime.Record): the file
// format is the interface, so that proptest never imports the runtime.
type jsonRecord struct {
	Time   time.Time      `json:"t"`
	Node   string         `json:"node"`
	Role   string         `json:"role"`
	Dir    string         `json:"dir"`
	Type   string         `json:"type"`
	Leg    string         `json:"leg"`
	Hop    string         `json:"hop"`
	Dialog string         `json:"dialog"`
	SIP    string         `json:"sip"`
	MSRP   string         `json:"msrp"`
	Fields map[string]any `json:"fields"`
}

// Trace is a real run's trace, read from NDJSON.
type Trace struct {
	Records []TraceRecord
	// Chunks is the number of chunks the message had (the most any machine was told of).
	Chunks int
	raw    []jsonRecord
}

// ReadTrace reads an NDJSON trace and orders it by time.
func ReadTrace(r io.Reader) (*Trace, error) {
	var raw []jsonRecord
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		if len(strings.TrimSpace(sc.Text())) == 0 {
			continue
		}
		var j jsonRecord
		if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
			return nil, fmt.Errorf("proptest: trace line %d: %w", line, err)
		}
		raw = append(raw, j)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sort.SliceStable(raw, func(i, j int) bool { return raw[i].Time.Before(raw[j].Time) })
	t := &Trace{raw: raw}
	for _, j := range raw {
		r := TraceRecord{Node: j.Node, Dir: j.Dir, Type: j.Type, Leg: j.Leg, Dialog: j.Dialog}
		if c, ok := j.Fields["Chunk"].(float64); ok {
			r.Chunk = int(c)
		}
		r.Last, _ = j.Fields["Last"].(bool)
		r.Member, _ = j.Fields["Member"].(string)
		if s, ok := j.Fields["Status"].(float64); ok {
			r.Status = int(s)
		}
		if j.Dir == "in" && j.Type == "SendReceived" && r.Chunk > t.Chunks {
			t.Chunks = r.Chunk
		}
		if j.Dir == "in" || j.Dir == "out" && j.Type == "SendInvite" {
			t.Records = append(t.Records, r)
		}
	}
	return t, nil
}

// Diagram draws what happened: each event a machine took as an arrow from the other end
// of its dialog, link openings dashed from the opener. Of the chunks of each link, the
// first and the last are drawn, and a dotted row says how many went between; on the
// CF's and PF-Bs' links, which carry one member's copy each, the member is named.
func (t *Trace) Diagram(cfg Config, title string) *seqdiag.Diagram {
	ends := map[string][]string{}
	member := map[string]string{}
	for _, j := range t.raw {
		if j.Dialog == "" {
			continue
		}
		e := ends[j.Dialog]
		found := false
		for _, n := range e {
			found = found || n == j.Node
		}
		if !found {
			ends[j.Dialog] = append(e, j.Node)
		}
		// The INVITE of hop3 names the member's address of record; hop4's names its
		// contact, whose user part is the same.
		if tg, ok := j.Fields["Target"].(string); ok && j.Type == "InviteReceived" && (j.Hop == "hop3" || j.Hop == "hop4") {
			member[j.Dialog] = userOf(tg)
		}
	}
	other := func(j jsonRecord) string {
		for _, n := range ends[j.Dialog] {
			if n != j.Node {
				return n
			}
		}
		return j.Node
	}
	forMember := func(j jsonRecord) string {
		// On hop4 the arrow's end names the member already.
		if m := member[j.Dialog]; m != "" && j.Hop != "hop4" {
			return " for " + m
		}
		return ""
	}
	// seen counts the chunks each end received on each dialog.
	seen := map[[2]string]int{}
	var steps []Step
	for _, j := range t.raw {
		switch {
		case j.Dir == "in" && j.SIP != "":
			steps = append(steps, Step{From: other(j), To: j.Node, Label: sipName(j.SIP)})
		case j.Dir == "out" && (j.Type == "OpenLink" || j.Type == "ReuseLink"):
			label := j.Hop + ": open link"
			if j.Type == "ReuseLink" {
				label = j.Hop + ": reuse connection"
			}
			steps = append(steps, Step{From: j.Node, To: other(j), Label: label + forMember(j), Link: true})
		case j.Dir == "in" && j.Type == "SendReceived":
			c, _ := j.Fields["Chunk"].(float64)
			last, _ := j.Fields["Last"].(bool)
			k := [2]string{j.Dialog, j.Node}
			seen[k]++
			from, to, who := other(j), j.Node, forMember(j)
			switch {
			case last && c == 1:
				steps = append(steps, Step{From: from, To: to, Label: "SEND the only chunk" + who, Media: true})
			case last:
				if n := seen[k] - 2; n > 0 {
					steps = append(steps, Step{From: from, To: to, Label: fmt.Sprintf("… %d chunks%s …", n, who), Elided: true})
				}
				steps = append(steps, Step{From: from, To: to, Label: fmt.Sprintf("SEND last chunk (%d)%s", int(c), who), Media: true})
			case c == 1:
				steps = append(steps, Step{From: from, To: to, Label: fmt.Sprintf("SEND chunk 1 of %d%s", t.Chunks, who), Media: true})
			}
		case j.Dir == "in" && j.Type == "ReportReceived":
			m, _ := j.Fields["Member"].(string)
			o, _ := j.Fields["Outcome"].(string)
			steps = append(steps, Step{From: other(j), To: j.Node, Label: "REPORT " + userOf(m) + " " + o, Media: true})
		}
	}
	return cfg.Diagram(title, steps)
}

// userOf shortens a SIP URI to its user part (sip:m3@b1.example to m3), which names a
// member in a label that must fit between two lifelines.
func userOf(uri string) string {
	u := strings.TrimPrefix(strings.TrimPrefix(uri, "sips:"), "sip:")
	if i := strings.IndexByte(u, '@'); i > 0 {
		return u[:i]
	}
	return uri
}

func sipName(s string) string {
	if s == "200" {
		return "200 OK"
	}
	return s
}
