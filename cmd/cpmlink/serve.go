package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/cpmlink/cpmlink/runtime"
	"github.com/cpmlink/cpmlink/runtime/deploy"
)

func init() {
	register("serve", "run the SIP/IP core and server roles of a deployment (docs/deploy.md)", runServe)
}

// defaultConfig is the deployment file serve, send and recv read when --config is not
// given: the one in the working directory, as docs/deploy.md sets it up.
const defaultConfig = "cpmlink.yaml"

// deployFlags are the flags serve, send and recv share.
type deployFlags struct {
	config, trace, log, logFormat *string
	fs                            *flag.FlagSet
}

func addDeployFlags(fs *flag.FlagSet) deployFlags {
	return deployFlags{
		fs:     fs,
		config: fs.String("config", defaultConfig, "deployment `file` (docs/deploy.yaml is an example)"),
		trace:  fs.String("trace", "", "write this process's trace as NDJSON to `file`"),
		// Quiet by default: what an operator needs is on stdout, and the SIP library logs
		// routine events (a client's connection reset as its process exits) as errors.
		log:       fs.String("log", "off", "log `level` on stderr: debug, info (one record per finished session), warn, error or off; info when --log-format is given"),
		logFormat: fs.String("log-format", "text", "log `format` on stderr: text (key=value) or json (one object a line); giving it turns the log on at info"),
	}
}

// refused checks the flags' values before anything is opened; nil when they are good.
func (f deployFlags) refused() error {
	return errors.Join(oneOf("log", *f.log, "debug", "info", "warn", "error", "off"), oneOf("log-format", *f.logFormat, "text", "json"))
}

// level is the log level: --log, or info when only --log-format was given (an operator
// who asks for a format wants the records: docs/operations.md).
func (f deployFlags) level() string {
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if set["log-format"] && !set["log"] {
		return "info"
	}
	return *f.log
}

// open loads the configuration and opens the trace and the logger; done closes the trace.
func (f deployFlags) open() (cfg *deploy.ServeConfig, tr *runtime.Tracer, log *slog.Logger, done func(), err error) {
	log, err = newLogger(f.level(), *f.logFormat, os.Stderr)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	cfg, err = deploy.LoadServeConfig(*f.config)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil, nil, fmt.Errorf("--config: no deployment file %q: give one with --config FILE (without the flag it is ./%s); "+
			"docs/deploy.yaml is an example and docs/deploy.md describes every key", *f.config, defaultConfig)
	}
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

func newLogger(level, format string, w io.Writer) (*slog.Logger, error) {
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
		return nil, errors.New(refuse("log", level, "is not a log level: debug, info, warn, error or off"))
	}
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
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
	grace := durationFlag(fs, "grace", 10*time.Second, "on SIGINT or SIGTERM, how `long` sessions in flight may take to end, e.g. 10s")
	metricsListen := fs.String("metrics-listen", "", "serve /metrics, /healthz and /readyz on this `IP:port` (port 0: a free one); default the metrics-listen of the configuration's instances, if any")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if err := errors.Join(df.refused(), positive("grace", *grace)); err != nil {
		return refusal(stderr, "serve", err)
	}
	if *metricsListen != "" {
		if err := deploy.CheckListen(*metricsListen); err != nil {
			return refusal(stderr, "serve", errors.New(refuse("metrics-listen", *metricsListen, "is not an IP:port to listen on, e.g. 127.0.0.1:9464 or 0.0.0.0:9464")))
		}
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
	// The operator's endpoints listen before the roles, so that /readyz says 503 until
	// every role listens.
	opsAddr := *metricsListen
	if opsAddr == "" {
		if opsAddr, err = cfg.MetricsListen(only); err != nil {
			return fail(stderr, "%v", err)
		}
	}
	var ops *deploy.Ops
	opts := deploy.ServeOptions{Trace: tr, Logger: log}
	if opsAddr != "" {
		ln, err := net.Listen("tcp", opsAddr)
		if err != nil {
			return fail(stderr, "metrics-listen: %v", err)
		}
		ops = deploy.StartOps(ln)
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = ops.Close(ctx)
		}()
		opts.Metrics = ops.Metrics()
		fmt.Fprintf(stdout, "metrics on http://%s/metrics (health /healthz, readiness /readyz)\n", ops.Addr())
	}
	served, err := deploy.Serve(life, cfg, only, opts)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	for _, in := range served.Instances() {
		fmt.Fprintln(stdout, describeInstance(in))
	}
	if ops != nil {
		ops.Ready()
	}
	fmt.Fprintf(stdout, "ready: %s of %s (variant %s); SIGINT or SIGTERM stops\n", plural(len(served.Instances()), "instance"), *df.config, cfg.Variant)

	<-sig.Done()
	stopSignals()
	if ops != nil {
		ops.Drain()
	}
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
func describeInstance(in deploy.Instance) string {
	if in.Role == "core" {
		var routes []string
		for d, a := range in.Routes {
			routes = append(routes, d+"="+a)
		}
		sort.Strings(routes)
		tlsAt := ""
		if in.SIPTLS != "" {
			tlsAt = " sip-tls " + in.SIPTLS
		}
		return fmt.Sprintf("started core (SIP/IP core) sip %s%s routes %s", in.SIP, tlsAt, strings.Join(routes, " "))
	}
	scheme := "msrp"
	if in.TLS {
		scheme = "msrps"
	}
	line := fmt.Sprintf("started %s (%s %s) sip %s %s %s", in.Name, in.Role, in.URI, in.SIP, scheme, in.MSRP)
	if in.SIPTLS != "" {
		line += " sip-tls " + in.SIPTLS
	}
	return line
}

// plural says "1 instance", "2 instances".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
