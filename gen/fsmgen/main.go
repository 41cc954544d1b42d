// Command fsmgen compiles a cpmlink spec into the Go source of package fsm. It is what
// `go generate ./...` runs; `cpmlink gen` does the same for users' own specs.
//
// It imports only model and gen, never fsm, so that it builds even when the generated code
// it is about to replace is stale.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/cpmlink/cpmlink/gen"
	"github.com/cpmlink/cpmlink/model"
)

func main() {
	spec := flag.String("spec", "", "spec file (default: the embedded model/cpmlink.yaml)")
	out := flag.String("out", ".", "directory to write the generated files to")
	pkg := flag.String("package", "fsm", "package name of the generated files")
	flag.Parse()
	if err := run(*spec, *out, *pkg); err != nil {
		fmt.Fprintln(os.Stderr, "fsmgen:", err)
		os.Exit(1)
	}
}

func run(specPath, out, pkg string) error {
	s, cmd := (*model.Spec)(nil), "fsmgen"
	var err error
	if specPath == "" {
		s = model.Default()
	} else {
		s, err = model.Load(specPath)
		if err != nil {
			return err
		}
		cmd = "fsmgen -spec " + specPath
	}
	return gen.WriteDir(s, gen.Options{Package: pkg, Command: cmd}, out)
}
