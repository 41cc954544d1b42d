package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

func init() {
	register("version", "print the module version and the VCS revision it was built from", runVersion)
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", stderr)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return fail(stderr, "version: this binary carries no build information")
	}
	fmt.Fprintln(stdout, versionLine(bi))
	return 0
}

// versionLine says what a binary was built from, from the build information the Go
// toolchain stamps in it: the module version (a tag, a pseudo-version, or "(devel)" for
// a build of a work tree), the VCS revision and whether the tree had uncommitted changes
// (`go build` records both unless -buildvcs=false), and the Go version.
//
//	cpmlink v1.2.0 (revision 9cd98f1c2b3a, 2026-12-05T03:00:00Z) go1.26.0
//	cpmlink (devel) (revision 9cd98f1c2b3a, modified) go1.26.0
func versionLine(bi *debug.BuildInfo) string {
	version := bi.Main.Version
	if version == "" {
		version = "(unknown)" // go test binaries, and go run of a file
	}
	var rev, at string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	vcs := "no VCS revision recorded"
	if rev != "" {
		vcs = "revision " + rev[:min(len(rev), 12)]
		if at != "" {
			vcs += ", " + at
		}
		if modified {
			vcs += ", modified"
		}
	}
	return fmt.Sprintf("cpmlink %s (%s) %s", version, vcs, bi.GoVersion)
}
