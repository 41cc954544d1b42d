package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestStatusLine: on a terminal the line is redrawn in place and erased at the end; off a
// terminal (here, a buffer) nothing is written at all.
func TestStatusLine(t *testing.T) {
	t.Parallel()
	var off bytes.Buffer
	s := newStatusLine(&off)
	s.show("map: %d of %d", 1, 2)
	s.clear()
	if off.Len() != 0 {
		t.Errorf("off a terminal: %q", off.String())
	}
	var on bytes.Buffer
	s = &statusLine{w: &on, on: true}
	s.show("map: %d of %d", 1, 2)
	s.clear()
	if got, want := on.String(), "\rmap: 1 of 2\x1b[K\r\x1b[K"; got != want {
		t.Errorf("on a terminal: %q, want %q", got, want)
	}
	if strings.Contains(on.String(), "\n") {
		t.Error("the status line ended a line")
	}
}
