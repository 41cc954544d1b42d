// Command cpmlink generates, checks and runs the multi-hop MSRP media link of US 8,688,848
// B2 for sending a large-message-mode CPM message to a group.
//
//	cpmlink demo      run every role on loopback and send a message to a group
//	cpmlink bench     measure set-up and delivery times and the CF's peak heap
//	cpmlink serve     run the SIP/IP core and server roles of a deployment
//	cpmlink send      send a file to a group of a deployment
//	cpmlink recv      register a member of a deployment and store what it receives
//	cpmlink explore   check variants exhaustively for small groups
//	cpmlink diagram   draw the canonical message sequence of a variant
//	cpmlink map       classify every combination of knob values (docs/variant-map.md)
//	cpmlink docs      regenerate docs/variants.md
//	cpmlink gen       compile a spec into role machines
//	cpmlink version   print the module version and the VCS revision it was built from
//
// Run `cpmlink COMMAND -h` for a command's flags.
package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"

	"github.com/cpmlink/cpmlink/runtime/sipx"
)

// command is one subcommand. run returns the process exit status.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{}

func register(name, summary string, run func(args []string, stdout, stderr io.Writer) int) {
	commands[name] = command{summary, run}
}

func main() {
	// sipgo logs connection bookkeeping process-wide; cpmlink reports what matters itself.
	sipx.SetLibraryLogger(slog.New(slog.DiscardHandler))
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		args = []string{"version"}
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "cpmlink: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	stop := startProfiles(args[0])
	defer stop()
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: cpmlink COMMAND [flags]")
	fmt.Fprintln(w)
	var names []string
	for n, c := range commands {
		if c.summary != "" { // commands without a summary are internal
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'cpmlink COMMAND -h' for a command's flags; docs/cli.md lists them all.")
}

func fail(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "cpmlink: "+format+"\n", args...)
	return 1
}
