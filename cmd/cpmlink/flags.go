package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cpmlink/cpmlink/runtime/deploy"
)

// Every refusal of a flag's value reads the same way: the flag, the value, and what is
// accepted, so that an operator can fix the command line without opening the docs:
//
//	--timeout: "5" is not a duration: use a unit, e.g. 5s or 2m
//
// The flag package formats a value that fails to parse as `invalid value "5" for flag
// -timeout: ...`, followed by every flag of the command; parse rewrites that into the form
// above and points at -h instead.

// refuse formats a refusal of a flag's value; why says what is wrong and what is accepted.
func refuse(flagName, value, why string) string {
	return fmt.Sprintf("--%s: %q %s", flagName, value, why)
}

// newFlags returns a flag set that reports errors to stderr and never exits. Its usage
// hides the deprecated aliases (see alias).
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("cpmlink "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s [flags]\n\n", fs.Name())
		shown := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
		shown.SetOutput(fs.Output())
		fs.VisitAll(func(f *flag.Flag) {
			if strings.HasPrefix(f.Usage, deprecated) {
				return
			}
			shown.Var(f.Value, f.Name, f.Usage)
			shown.Lookup(f.Name).DefValue = f.DefValue
		})
		shown.PrintDefaults()
		fmt.Fprintln(fs.Output(), "\nFlags take one dash or two; docs/cli.md lists each concept's name in flags, YAML and JSON.")
	}
	return fs
}

// deprecated starts the usage of a hidden alias.
const deprecated = "deprecated: "

// alias registers old as a hidden, deprecated spelling of the flag now, sharing its value.
func alias(fs *flag.FlagSet, old, now string) {
	fs.Var(fs.Lookup(now).Value, old, deprecated+"use --"+now)
}

var (
	flagInvalid = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-(\S+): (.*)$`)
	flagUnknown = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	flagNeeds   = regexp.MustCompile(`^flag needs an argument: -+(.*)$`)
)

// parse parses flags and reports whether to go on; the status is 0 for -h, 2 otherwise.
func parse(fs *flag.FlagSet, args []string) (int, bool) {
	out := fs.Output()
	// The flag package prints its error and the whole usage; only -h wants the usage.
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	err := fs.Parse(args)
	fs.SetOutput(out)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			out.Write(buf.Bytes())
			return 0, false
		}
		fmt.Fprintf(out, "%s: %s\nRun '%s -h' for its flags.\n", fs.Name(), flagMessage(err), fs.Name())
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(out, "%s: unexpected arguments: %s (every value is given with a flag)\n", fs.Name(), strings.Join(fs.Args(), " "))
		return 2, false
	}
	fs.Visit(func(f *flag.Flag) {
		if strings.HasPrefix(f.Usage, deprecated) {
			fmt.Fprintf(out, "%s: --%s is deprecated: %s\n", fs.Name(), f.Name, strings.TrimPrefix(f.Usage, deprecated))
		}
	})
	return 0, true
}

// flagMessage rewrites the flag package's errors in the form refuse gives.
func flagMessage(err error) string {
	msg := err.Error()
	if g := flagInvalid.FindStringSubmatch(msg); g != nil {
		why := g[3]
		if why == "parse error" {
			why = "is not true or false"
		}
		return refuse(g[2], g[1], why)
	}
	if g := flagUnknown.FindStringSubmatch(msg); g != nil {
		return "--" + g[1] + ": no such flag"
	}
	if g := flagNeeds.FindStringSubmatch(msg); g != nil {
		return "--" + g[1] + ": needs a value"
	}
	return msg
}

// durationValue is a flag holding a duration; a bare number is refused, since a unit is
// what tells 5 seconds from 5 minutes.
type durationValue time.Duration

func durationFlag(fs *flag.FlagSet, name string, def time.Duration, usage string) *time.Duration {
	d := def
	fs.Var((*durationValue)(&d), name, usage)
	return &d
}

func (d *durationValue) String() string { return time.Duration(*d).String() }

func (d *durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("is not a duration: use a unit, e.g. 5s or 2m")
	}
	*d = durationValue(v)
	return nil
}

// intValue is a flag holding a whole number.
type intValue int

func intFlag(fs *flag.FlagSet, name string, def int, usage string) *int {
	n := def
	fs.Var((*intValue)(&n), name, usage)
	return &n
}

func (n *intValue) String() string { return strconv.Itoa(int(*n)) }

func (n *intValue) Set(s string) error {
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return errors.New("is not a whole number, e.g. 5")
	}
	*n = intValue(v)
	return nil
}

// sizeValue is a flag holding a size in bytes (deploy.ParseSize).
type sizeValue int64

func sizeFlag(fs *flag.FlagSet, name string, def string, usage string) *int64 {
	n, err := deploy.ParseSize(def)
	if err != nil {
		panic(fmt.Sprintf("cpmlink: default of --%s: %v", name, err)) // a broken default is a bug
	}
	fs.Var((*sizeValue)(&n), name, usage+" ("+sizeForms+")")
	return &n
}

// sizeForms is how a size may be written, for usages.
const sizeForms = "bytes, or with a unit: kB, MB, GB = 1000, 1000², 1000³; KiB, MiB, GiB = 1024, 1024², 1024³"

func (n *sizeValue) String() string { return deploy.FormatSize(int64(*n)) }

func (n *sizeValue) Set(s string) error {
	v, err := deploy.ParseSize(s)
	if err != nil {
		return errors.New("is not a size: " + deploy.SizeForms)
	}
	*n = sizeValue(v)
	return nil
}

// atLeast refuses a number below least, naming the flag.
func atLeast(flagName string, n, least int, what string) error {
	if n < least {
		return errors.New(refuse(flagName, strconv.Itoa(n), fmt.Sprintf("is too small: %s", what)))
	}
	return nil
}

// oneOf refuses a value that is not among the accepted ones, listing them.
func oneOf(flagName, value string, accepted ...string) error {
	for _, a := range accepted {
		if value == a {
			return nil
		}
	}
	return errors.New(refuse(flagName, value, "is not one of "+strings.Join(accepted, ", ")))
}

// refusal reports a refused command line and returns the status for it, 2, as for a flag
// that does not parse.
func refusal(stderr io.Writer, command string, err error) int {
	fmt.Fprintf(stderr, "cpmlink %s: %v\nRun 'cpmlink %s -h' for its flags.\n", command, err, command)
	return 2
}

// inRange refuses a number outside [least, most].
func inRange(flagName string, n, least, most int, what string) error {
	if n < least || n > most {
		return errors.New(refuse(flagName, strconv.Itoa(n), "is out of range: "+what))
	}
	return nil
}

// sizeRange refuses a size outside [least, most].
func sizeRange(flagName string, n, least, most int64, what string) error {
	if n < least || n > most {
		return errors.New(refuse(flagName, deploy.FormatSize(n), "is out of range: "+what))
	}
	return nil
}

// positive refuses a duration that is not.
func positive(flagName string, d time.Duration) error {
	if d <= 0 {
		return errors.New(refuse(flagName, d.String(), "is not positive: give a duration with a unit, e.g. 5s or 2m"))
	}
	return nil
}
