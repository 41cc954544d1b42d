package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/cpmlink/cpmlink/runtime"
)

func init() {
	register("serve", "run the SIP/IP core and server roles of a deployment (docs/deploy.md)", runServe)
}

// defaultConfig is the deployment file serve, send and recv read when --config is not
// given: the one in the working directory, as docs/deploy.md sets it up.
const defaultConfig = "cpmlink.yaml"

// deployFlags are the flags serve, send and recv share.
type deployFlags struct {
	config, trace, log *string
}

func addDeployFlags(fs *flag.FlagSet) deployFlags {
	return deployFlags{
		config: fs.String("config", defaultConfig, "deployment `file` (docs/deploy.yaml is an example)"),
		trace:  fs.String("trace", "", "write this process's trace as NDJSON to `file`"),
		// Quiet by default: what an operator needs is on stdout, and the SIP library logs
		// routine events (a client's connection reset as its process exits) as errors.
		log: fs.String("log", "off", "log `level` on stderr: debug, info, warn, error or off"),
	}
}

// open loads the configuration and opens the trace and the logger; done closes the trace.
func (f deployFlags) open() (cfg *runtime.ServeConfig, tr *runtime.Tracer, log *slog.Logger, done func(), err error) {
	log, err = newLogger(*f.log)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	cfg, err = runtime.LoadServeConfig(*f.config)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	done = func() {}
	if *f.trace != "" {
		file, err := os.Create(*f.trace)
		if err != nil {
			return nil, nil, nil, nil, err
		}
		tr, done = runtime.NewTracer(file, nil), func() { file.Close() }
	}
	return cfg, tr, log, done, nil
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	switch level {
	case "off":
		return slog.New(slog.DiscardHandler), nil
	case "debug":
		l = slog.LevelDebug
	case "info":
		l = slog.LevelInfo
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		return nil, fmt.Errorf("--log %q: debug, info, warn, error or off", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// signalled returns a context that ends at the first SIGINT or SIGTERM. Its stop function
// gives the signals back to their default action, so that a second one kills at once.
func signalled() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("serve", stderr)
	df := addDeployFlags(fs)
	roles := fs.String("role", "", "comma-separated instance `names` to run (\"core\" is the SIP/IP core; default: the core and every role)")
	grace := fs.Duration("grace", 10*time.Second, "on SIGINT or SIGTERM, how long sessions in flight may take to end")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	var only []string
	for _, r := range strings.Split(*roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			only = append(only, r)
		}
	}
	cfg, tr, log, closeTrace, err := df.open()
	if err != nil {
		return fail(stderr, "%v", err)
	}
	defer closeTrace()

	sig, stopSignals := signalled()
	defer stopSignals()
	// The listeners live on a context of their own: the signal starts the drain, it does
	// not cut the sockets under the sessions being drained.
	life, endLife := context.WithCancel(context.Background())
	defer endLife()
	served, err := runtime.Serve(life, cfg, only, runtime.ServeOptions{Trace: tr, Logger: log})
	if err != nil {
		return fail(stderr, "%v", err)
	}
	for _, in := range served.Instances() {
		fmt.Fprintln(stdout, describeInstance(in))
	}
	fmt.Fprintf(stdout, "ready: %s of %s (variant %s); SIGINT or SIGTERM stops\n", plural(len(served.Instances()), "instance"), *df.config, cfg.Variant)

	<-sig.Done()
	stopSignals()
	fmt.Fprintf(stdout, "stopping: sessions in flight have %v to end\n", *grace)
	drain, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := served.WaitIdle(drain); err != nil {
		fmt.Fprintf(stderr, "cpmlink: %v; closing anyway\n", err)
	}
	if err := served.Close(); err != nil {
		return fail(stderr, "closing: %v", err)
	}
	fmt.Fprintln(stdout, "stopped")
	return 0
}

// describeInstance is the line serve prints for an instance it started.
func describeInstance(in runtime.Instance) string {
	if in.Role == "core" {
		var routes []string
		for d, a := range in.Routes {
			routes = append(routes, d+"="+a)
		}
		sort.Strings(routes)
		return fmt.Sprintf("started core (SIP/IP core) sip %s routes %s", in.SIP, strings.Join(routes, " "))
	}
	scheme := "msrp"
	if in.TLS {
		scheme = "msrps"
	}
	return fmt.Sprintf("started %s (%s %s) sip %s %s %s", in.Name, in.Role, in.URI, in.SIP, scheme, in.MSRP)
}

// plural says "1 instance", "2 instances".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
