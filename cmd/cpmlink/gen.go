package main

import (
	"io"
	"os"

	"github.com/cpmlink/cpmlink/gen"
	"github.com/cpmlink/cpmlink/model"
)

func init() {
	register("gen", "compile a spec into role machines (Go source)", runGen)
}

func runGen(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("gen", stderr)
	specPath := fs.String("spec", "", "spec `file` (default: the embedded spec)")
	out := fs.String("out", ".", "`directory` to write the generated files to")
	pkg := fs.String("package", "fsm", "package `name` of the generated files")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	s := model.Default()
	cmd := "cpmlink gen"
	if *specPath != "" {
		var err error
		if s, err = model.Load(*specPath); err != nil {
			return fail(stderr, "%v", err)
		}
		cmd += " --spec " + *specPath
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fail(stderr, "%v", err)
	}
	if err := gen.WriteDir(s, gen.Options{Package: *pkg, Command: cmd}, *out); err != nil {
		return fail(stderr, "%v", err)
	}
	for _, name := range gen.FileNames(s) {
		io.WriteString(stdout, *out+"/"+name+"\n")
	}
	return 0
}
