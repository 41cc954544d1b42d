package runtime

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
)

// Record is one line of a trace (NDJSON): an event a role's machine took or an action it
// returned, with what the wire made of it. Records of one node are in the order its
// machine saw them; records of several nodes are ordered by time.
type Record struct {
	Time time.Time `json:"t"`
	// Node is the role instance ("pfb1"), Role its role (PFB).
	Node string `json:"node"`
	Role string `json:"role"`
	// Dir is "in" for an event the machine took, "out" for an action it returned, "note"
	// for something the driver observed (a connection reused by the MSRP pool, a bad SDP).
	Dir  string `json:"dir"`
	Type string `json:"type"`
	Leg  string `json:"leg,omitempty"`
	Hop  string `json:"hop,omitempty"`
	// Dialog is the SIP Call-ID of the leg: both ends of a hop record the same one.
	Dialog string `json:"dialog,omitempty"`
	// SIP is the method or status on the wire ("INVITE", "200", "ACK", "486").
	SIP string `json:"sip,omitempty"`
	// MSRP is what went over MSRP ("open", "reuse", "accept", "SEND", "REPORT").
	MSRP string `json:"msrp,omitempty"`
	// Fields are the event's or action's fields, as the machine sees them.
	Fields map[string]any `json:"fields,omitempty"`
	Note   string         `json:"note,omitempty"`
	Err    string         `json:"err,omitempty"`
}

// Tracer writes records as NDJSON; it is safe for concurrent use. A nil Tracer drops
// everything, so that tracing costs nothing when off.
type Tracer struct {
	// Summary leaves out the records of single chunks (SendReceived, RelayChunk,
	// Deliver), which a long message has thousands of: what is left says who opened
	// which link when, and how each member fared, but cannot be validated against the
	// spec. Set it before the tracer is used.
	Summary bool
	// Only, if not empty, keeps only the records of these types ("LinkUp"): a caller that
	// needs one kind of record (bench, which times the set-up by its last LinkUp) does not
	// pay, on every driver's goroutine, for building the others. Set it before the tracer
	// is used.
	Only []string

	mu   sync.Mutex
	w    io.Writer
	enc  *json.Encoder
	keep *[]Record
	now  func() time.Time
}

// NewTracer writes to w (nil: keep records only in memory when keep is set).
func NewTracer(w io.Writer, keep *[]Record) *Tracer {
	t := &Tracer{w: w, keep: keep, now: time.Now}
	if w != nil {
		t.enc = json.NewEncoder(w)
	}
	return t
}

// wants reports whether the tracer keeps records of type typ.
func (t *Tracer) wants(typ string) bool {
	if t == nil {
		return false
	}
	return len(t.Only) == 0 || slices.Contains(t.Only, typ)
}

func (t *Tracer) add(r Record) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.Time.IsZero() {
		r.Time = t.now()
	}
	if t.enc != nil {
		// A trace that cannot be written is not a reason to stop the protocol.
		_ = t.enc.Encode(r)
	}
	if t.keep != nil {
		*t.keep = append(*t.keep, r)
	}
}

// perChunk reports whether a record is about a single chunk.
func perChunk(v any) bool {
	switch v.(type) {
	case fsm.SendReceived, fsm.RelayChunk, fsm.Deliver:
		return true
	}
	return false
}

// fieldsOf lists the exported fields of an event or action, for the trace.
func fieldsOf(v any) map[string]any {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Struct {
		return nil
	}
	out := map[string]any{}
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Type().Field(i)
		if !f.IsExported() || f.Name == "Leg" {
			continue
		}
		val := rv.Field(i).Interface()
		switch x := val.(type) {
		case fsm.SDP:
			val = x.Path
			// The a=setup the SDP carried (RFC 6135), beside the path: "OfferSetup".
			if x.Setup != core.SetupNone {
				out[f.Name+"Setup"] = x.Setup.String()
			}
		case fsm.Outcome:
			val = x.String()
		}
		out[f.Name] = val
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// sipOf names what a SIP event or action is on the wire.
func sipOf(v any) string {
	switch x := v.(type) {
	case fsm.InviteReceived, fsm.SendInvite:
		return "INVITE"
	case fsm.OKReceived, fsm.SendOK:
		return "200"
	case fsm.AckReceived, fsm.SendAck:
		return "ACK"
	case fsm.CancelReceived, fsm.SendCancel:
		return "CANCEL"
	case fsm.ByeReceived, fsm.SendBye:
		return "BYE"
	case fsm.RejectReceived:
		return fmt.Sprint(x.Status)
	case fsm.SendReject:
		return fmt.Sprint(x.Status)
	}
	return ""
}

// msrpOf names what an MSRP event or action is on the wire.
func msrpOf(v any) string {
	switch x := v.(type) {
	case fsm.OpenLink:
		return "open"
	case fsm.ReuseLink:
		return "reuse"
	case fsm.AcceptLink:
		return "accept"
	case fsm.LinkUp:
		if x.Reused {
			return "up (reused)"
		}
		return "up"
	case fsm.LinkFailed:
		return "failed"
	case fsm.SendReceived, fsm.RelayChunk, fsm.SendMessage:
		return "SEND"
	case fsm.ReportReceived, fsm.SendReport, fsm.ReportStatus:
		return "REPORT"
	case fsm.MessageAcked:
		return "200 (every SEND)"
	case fsm.CloseLink:
		return "close"
	case fsm.AbortLink:
		return "abort"
	}
	return ""
}
