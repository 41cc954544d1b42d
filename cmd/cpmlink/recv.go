package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/runtime"
	"github.com/cpmlink/cpmlink/runtime/deploy"
)

func init() {
	register("recv", "run a receiving client of a deployment: register and store what arrives", runRecv)
}

// registerTimeout bounds one REGISTER transaction, so that a PF that is not up is
// reported instead of waited for (UDP retransmissions alone would take 32 s).
const registerTimeout = 10 * time.Second

// unregisterTimeout bounds removing the registration on the way out.
const unregisterTimeout = 3 * time.Second

func runRecv(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("recv", stderr)
	df := addDeployFlags(fs)
	as := fs.String("as", "", "the receiver's `URI`: a client of the configuration registered with a pfb")
	dir := fs.String("dir", "", "`directory` to store received messages in (created if missing)")
	count := intFlag(fs, "count", 0, "exit after `N` messages (0: run until SIGINT or SIGTERM)")
	expires := durationFlag(fs, "expires", 10*time.Minute, "registration `lifetime`, e.g. 10m; it is renewed at half of it")
	grace := durationFlag(fs, "grace", 10*time.Second, "on SIGINT or SIGTERM, how `long` a message in flight may take to arrive, e.g. 10s")
	passwordFile := addPasswordFlag(fs)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if err := df.refused(); err != nil {
		return refusal(stderr, "recv", err)
	}
	switch {
	case *as == "":
		return refusal(stderr, "recv", errors.New("--as URI is required: the receiver, a client of the configuration registered with a pfb"))
	case *dir == "":
		return refusal(stderr, "recv", errors.New("--dir DIR is required: where the messages are stored (created if missing)"))
	}
	if err := errors.Join(atLeast("count", *count, 0, "0 (run until stopped) or more"), positive("grace", *grace)); err != nil {
		return refusal(stderr, "recv", err)
	}
	if *expires < 2*time.Second {
		return refusal(stderr, "recv", errors.New(refuse("expires", expires.String(), "is too short: at least 2s, since it is renewed at half of it")))
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return fail(stderr, "%v", err)
	}
	cfg, tr, log, closeTrace, err := df.open()
	if err != nil {
		return fail(stderr, "%v", err)
	}
	defer closeTrace()
	pf, _ := cfg.ClientPF(*as)
	password, err := clientPassword(cfg, *as, *passwordFile)
	if err != nil {
		return fail(stderr, "recv: %v", err)
	}

	sig, stopSignals := signalled()
	defer stopSignals()
	life, endLife := context.WithCancel(context.Background())
	defer endLife()
	node, err := cfg.StartClient(life, *as, deploy.ClientOptions{StoreDir: *dir, Password: password, Trace: tr, Logger: log})
	if err != nil {
		return fail(stderr, "%v", err)
	}
	if node.Kind() != fsm.RoleClientB {
		node.Close()
		return fail(stderr, "recv: %s registers with %s, a PF-A: it transmits (cpmlink send --from %s)", *as, pf, *as)
	}
	if err := probeRegisterPath(sig, cfg, *as, pf, *df.config); err != nil {
		node.Close()
		return fail(stderr, "recv: %v", err)
	}
	if err := registerClient(sig, node, *expires); err != nil {
		node.Close()
		return fail(stderr, "recv: %s registering with %s: %v", *as, pf, err)
	}
	fmt.Fprintf(stdout, "registered %s with %s for %v (sip %s %s %s); storing in %s\n", *as, pf, *expires, node.SIPAddr(), cfg.MSRPScheme(), node.MSRPAddr(), *dir)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		refresh(sig, node, *expires, &lockedWriter{w: stderr})
	}()

	seen := 0
	report := func(rs []runtime.Received) {
		for _, r := range rs[seen:] {
			seen++
			fmt.Fprintf(stdout, "message %d: file=%s bytes=%d sha256=%s from=%s\n", seen, r.File, r.Bytes, r.SHA256, strings.Trim(r.From, "<>"))
		}
	}
	for *count == 0 || seen < *count {
		rs, err := node.WaitReceived(sig, seen)
		report(rs)
		if err != nil {
			break
		}
	}
	stopSignals()
	wg.Wait()

	code := 0
	if *count > 0 && seen < *count {
		fmt.Fprintf(stderr, "cpmlink: recv: stopped after %d of %d messages\n", seen, *count)
		code = 1
	}
	// A message may be on its way: let it arrive (or fail) before the sockets close.
	drain, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := node.WaitIdle(drain); err != nil {
		fmt.Fprintf(stderr, "cpmlink: %v; closing anyway\n", err)
	}
	report(node.Received())
	// Short: at shutdown the PF may be gone already.
	unreg, cancel2 := context.WithTimeout(context.Background(), unregisterTimeout)
	defer cancel2()
	if err := node.Register(unreg, 0); err != nil {
		fmt.Fprintf(stderr, "cpmlink: recv: removing the registration: %v\n", err)
	}
	if err := node.Close(); err != nil {
		return fail(stderr, "closing: %v", err)
	}
	fmt.Fprintf(stdout, "stopped after %s\n", plural(seen, "message"))
	return code
}

// registerClient registers a client for expires, bounded by registerTimeout and ctx.
func registerClient(ctx context.Context, n *runtime.Node, expires time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, registerTimeout)
	defer cancel()
	return n.Register(ctx, expires)
}

// refresh renews a registration at half its lifetime until ctx ends; a failed renewal is
// reported on stderr (the member is about to become unreachable) and retried sooner, while
// the binding still holds.
func refresh(ctx context.Context, n *runtime.Node, expires time.Duration, stderr io.Writer) {
	wait := expires / 2
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = expires / 2
		if err := registerClient(ctx, n, expires); err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintf(stderr, "cpmlink: recv: renewing the registration of %s: %v\n", n.Name(), err)
			wait = expires / 8
		}
	}
}

// lockedWriter serializes writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
