// Command mutrun runs the checkers of package proptest on the generated code it was built
// with, for one mutant of the spec: `cpmlink mutate` builds it once per mutant, with the
// mutant's generated files laid over package fsm (go build -overlay), and reads its
// verdict. It reads a proptest.MutantPlan as JSON on stdin and writes a
// proptest.MutantVerdict as JSON on stdout. It is not meant to be run by hand.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/proptest"
)

func main() {
	var plan proptest.MutantPlan
	if err := json.NewDecoder(os.Stdin).Decode(&plan); err != nil {
		fmt.Fprintf(os.Stderr, "mutrun: plan: %v\n", err)
		os.Exit(2)
	}
	// rapid takes its settings from the command line of a test binary: make this one.
	testing.Init()
	for k, v := range map[string]string{
		"rapid.checks": strconv.Itoa(max(plan.RapidChecks, 1)), "rapid.seed": strconv.FormatUint(plan.Seed, 10),
		"rapid.nofailfile": "true", "rapid.shrinktime": "2s",
	} {
		if err := flag.Set(k, v); err != nil {
			fmt.Fprintf(os.Stderr, "mutrun: %s: %v\n", k, err)
			os.Exit(2)
		}
	}
	flag.Parse()
	out := proptest.CheckMutant(fsm.Variants, plan)
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintf(os.Stderr, "mutrun: %v\n", err)
		os.Exit(2)
	}
}
