package main

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// statusLine shows how far a long command got on one line of a terminal, redrawn in
// place. Off a terminal (a pipe, a log file, a test) it shows nothing: lines that only
// say "still working" are noise in a log, and the result says the rest.
type statusLine struct {
	w  io.Writer
	on bool

	mu    sync.Mutex
	drawn time.Time
	shown bool
}

func newStatusLine(w io.Writer) *statusLine { return &statusLine{w: w, on: isTerminal(w)} }

// show redraws the line, at most ten times a second.
func (s *statusLine) show(format string, args ...any) {
	if !s.on {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if now := time.Now(); now.Sub(s.drawn) >= 100*time.Millisecond {
		s.drawn, s.shown = now, true
		// \r returns to the start of the line, ESC [K clears what a longer one left.
		fmt.Fprintf(s.w, "\r"+format+"\x1b[K", args...)
	}
}

// clear erases the line, before a result is printed or at the end.
func (s *statusLine) clear() {
	if !s.on {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shown {
		fmt.Fprint(s.w, "\r\x1b[K")
		s.shown = false
		s.drawn = time.Time{}
	}
}
