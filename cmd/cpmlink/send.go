package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/runtime"
	"github.com/cpmlink/cpmlink/runtime/deploy"
	"github.com/cpmlink/cpmlink/runtime/msrp"
	"github.com/cpmlink/cpmlink/runtime/sipx"
)

func init() {
	register("send", "send a file to a group as a large-message-mode CPM message from a client of a deployment", runSend)
}

// teardownTimeout bounds the wait for the session to end (BYE) after the outcome is known.
const teardownTimeout = 10 * time.Second

func runSend(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("send", stderr)
	df := addDeployFlags(fs)
	from := fs.String("from", "", "the transmitter's `URI`: a client of the configuration registered with a pfa")
	to := fs.String("to", "", "a pre-defined group's `URI`")
	members := fs.String("members", "", "an ad-hoc group: comma-separated member `URIs`")
	file := fs.String("file", "", "the `path` of the payload, or - to read it from stdin")
	ctype := fs.String("type", "", "the payload's content `type` (default: from the file name, else application/octet-stream)")
	timeout := durationFlag(fs, "timeout", 5*time.Minute, "give up after this `long`, e.g. 90s or 5m")
	passwordFile := addPasswordFlag(fs)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if err := df.refused(); err != nil {
		return refusal(stderr, "send", err)
	}
	var list []string
	for _, m := range strings.Split(*members, ",") {
		if m = strings.TrimSpace(m); m != "" {
			list = append(list, m)
		}
	}
	switch {
	case *from == "":
		return refusal(stderr, "send", errors.New("--from URI is required: the transmitter, a client of the configuration registered with a pfa"))
	case (*to == "") == (len(list) == 0):
		return refusal(stderr, "send", errors.New("give either --to GROUP-URI or --members URI,... (an ad-hoc group), not both"))
	case *file == "":
		return refusal(stderr, "send", errors.New("--file PATH (or --file - for stdin) is required"))
	}
	if err := positive("timeout", *timeout); err != nil {
		return refusal(stderr, "send", err)
	}
	cfg, tr, log, closeTrace, err := df.open()
	if err != nil {
		return fail(stderr, "%v", err)
	}
	defer closeTrace()
	target := *to
	expected := list
	if len(list) > 0 {
		if target, err = cfg.AdHocTarget(); err != nil {
			return fail(stderr, "send: %v", err)
		}
	} else if ms, ok := cfg.GroupMembers(target); ok {
		expected = ms
	}

	path, size, sum, cleanup, err := payload(*file)
	if err != nil {
		return fail(stderr, "send: %v", err)
	}
	defer cleanup()
	password, err := clientPassword(cfg, *from, *passwordFile)
	if err != nil {
		return fail(stderr, "send: %v", err)
	}
	if *ctype == "" {
		*ctype = "application/octet-stream"
		if t := mime.TypeByExtension(filepath.Ext(*file)); t != "" && *file != "-" {
			*ctype = t
		}
	}

	sig, stopSignals := signalled()
	defer stopSignals()
	ctx, cancel := context.WithTimeout(sig, *timeout)
	defer cancel()
	life, endLife := context.WithCancel(context.Background())
	defer endLife()
	node, err := cfg.StartClient(life, *from, deploy.ClientOptions{Password: password, Trace: tr, Logger: log})
	if err != nil {
		return fail(stderr, "%v", err)
	}
	defer node.Close()
	pf, _ := cfg.ClientPF(*from)
	if node.Kind() != fsm.RoleClientA {
		return fail(stderr, "send: %s registers with %s, a PF-B: it receives (cpmlink recv --as %s)", *from, pf, *from)
	}
	// Nothing listening is said in a second or two, not after the REGISTER's deadline.
	if err := probeRegisterPath(ctx, cfg, *from, pf, *df.config); err != nil {
		return fail(stderr, "send: %v", err)
	}
	// Registered for as long as the send may take, as a client is while it sends.
	if err := registerClient(ctx, node, *timeout+time.Minute); err != nil {
		// The PF may have bound us although its answer never arrived (lost, or refused by
		// the transport): the binding would outlive the send, and enough of them lock
		// the user out. A sender's binding ends with the send, whatever happened.
		unreg, cancelUnreg := context.WithTimeout(context.Background(), unregisterTimeout)
		defer cancelUnreg()
		if uerr := node.Register(unreg, 0); uerr != nil {
			fmt.Fprintf(stderr, "cpmlink: send: removing the registration: %v\n", uerr)
		}
		return fail(stderr, "send: %s registering with %s: %v", *from, pf, err)
	}

	msg := runtime.Message{
		Open:        func() (io.ReadCloser, error) { return os.Open(path) },
		Size:        size,
		ContentType: *ctype,
	}
	var bar *progressBar
	if isTerminal(stdout) {
		bar = &progressBar{w: stdout, total: size, start: time.Now()}
		msg.Progress = bar.update
	}
	start := time.Now()
	outcome, sendErr := node.Send(ctx, target, list, msg)
	took := time.Since(start)
	// From here on a second signal kills at once, instead of waiting for the teardown.
	stopSignals()
	if bar != nil {
		bar.finish()
	}

	// The outcome is known; the session ends with a BYE before the sockets close, so that
	// no hop is left waiting for its guard timer.
	down, cancelDown := context.WithTimeout(context.Background(), teardownTimeout)
	defer cancelDown()
	if err := node.WaitIdle(down); err != nil {
		fmt.Fprintf(stderr, "cpmlink: %v\n", err)
	}
	unreg, cancelUnreg := context.WithTimeout(context.Background(), unregisterTimeout)
	defer cancelUnreg()
	if err := node.Register(unreg, 0); err != nil {
		fmt.Fprintf(stderr, "cpmlink: send: removing the registration: %v\n", err)
	}

	if len(expected) == 0 {
		// A group the configuration does not define: report whom the transmitter heard of.
		for _, m := range outcome.Members {
			expected = append(expected, m.Member)
		}
	}
	delivered := printOutcome(stdout, expected, outcome)
	dest := target
	if len(list) > 0 {
		dest = fmt.Sprintf("%s (ad hoc, %d members)", target, len(list))
	}
	fmt.Fprintf(stdout, "sha256 %s  %d bytes  from %s to %s\n", sum, size, *from, dest)
	fmt.Fprintf(stdout, "%d of %d members delivered in %v\n", delivered, len(expected), took.Round(time.Millisecond))
	if sendErr != nil {
		fmt.Fprintf(stderr, "cpmlink: send: %v\n", sendErr)
	}
	if sendErr != nil || len(expected) == 0 || delivered < len(expected) {
		return 1
	}
	return 0
}

// printOutcome prints each member's outcome and returns how many got the message.
func printOutcome(w io.Writer, members []string, o runtime.Outcome) int {
	width := len("(every member)")
	for _, m := range members {
		width = max(width, len(m))
	}
	fmt.Fprintf(w, "%-*s  %s\n", width, "member", "outcome")
	delivered := 0
	for _, m := range members {
		oc := o.Of(m)
		var text string
		switch oc.Kind {
		case core.Delivered:
			delivered++
			text = "delivered"
		case core.Failed:
			text = "failed (" + statusText(oc.Status) + ")"
		default:
			text = "unknown (no outcome came back)"
		}
		fmt.Fprintf(w, "%-*s  %s\n", width, m, text)
	}
	if len(members) == 0 && o.Rest.Final() {
		fmt.Fprintf(w, "%-*s  failed (%s)\n", width, "(every member)", statusText(o.Rest.Status))
	}
	return delivered
}

// statusText names a failure's status. It is MSRP's when a link failed and SIP's when a
// leg was refused; the runtime's REPORTs read it in that order too.
func statusText(code int) string {
	text := msrp.StatusText(code)
	if text == "" {
		text = sipx.ReasonPhrase(code)
	}
	return fmt.Sprintf("%d %s", code, text)
}

// payload returns a file holding the payload, its size and its SHA-256. Standard input is
// spooled to a temporary file first: the size must be known before the first byte goes
// out, since it is in the CPIM Content-Length and in every MSRP chunk's Byte-Range total
// (RFC 4975 §7.1.1), which the receivers rely on to know when they have it all.
func payload(name string) (path string, size int64, sum string, cleanup func(), err error) {
	cleanup = func() {}
	h := sha256.New()
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return "", 0, "", nil, err
		}
		defer f.Close()
		if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
			return "", 0, "", nil, fmt.Errorf("%s is not a regular file", name)
		}
		n, err := io.Copy(h, f)
		if err != nil {
			return "", 0, "", nil, err
		}
		return name, n, hex.EncodeToString(h.Sum(nil)), cleanup, nil
	}
	f, err := os.CreateTemp("", "cpmlink-send-*")
	if err != nil {
		return "", 0, "", nil, err
	}
	cleanup = func() { os.Remove(f.Name()) }
	n, err := io.Copy(io.MultiWriter(f, h), os.Stdin)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		cleanup()
		return "", 0, "", nil, fmt.Errorf("reading stdin: %w", err)
	}
	return f.Name(), n, hex.EncodeToString(h.Sum(nil)), cleanup, nil
}

// isTerminal reports whether w is a terminal (a character device), where a progress bar
// belongs; into a pipe or a file it would only be noise.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressBar draws the payload bytes read so far on one terminal line. update is called
// from the sending goroutine, finish from the caller's.
type progressBar struct {
	w     io.Writer
	total int64
	start time.Time

	mu    sync.Mutex
	sent  int64
	drawn time.Time
}

func (p *progressBar) update(sent int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent = sent
	// Ten frames a second are enough for the eye and cheap for a fast link.
	if now := time.Now(); now.Sub(p.drawn) >= 100*time.Millisecond || sent == p.total {
		p.drawn = now
		p.draw()
	}
}

func (p *progressBar) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw()
	fmt.Fprintln(p.w)
}

func (p *progressBar) draw() {
	const width = 30
	frac := 1.0
	if p.total > 0 {
		frac = float64(p.sent) / float64(p.total)
	}
	filled := int(frac * width)
	rate := float64(p.sent) / max(time.Since(p.start).Seconds(), 1e-3)
	// \r returns to the start of the line, ESC [K clears what a longer frame left.
	fmt.Fprintf(p.w, "\r[%s%s] %3.0f%% %s / %s %s/s\x1b[K", strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
		frac*100, humanBytes(float64(p.sent)), humanBytes(float64(p.total)), humanBytes(rate))
}

func humanBytes(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f %s", n, units[i])
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}
