package sipx

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportsStayLow enforces DESIGN.md §3 rule 5: the SIP adapter knows
// nothing about roles, so no non-test file may import another cpmlink package
// (fsm, model, proptest, runtime ...).
func TestImportsStayLow(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/cpmlink/") {
				t.Errorf("%s imports %s", f, path)
			}
		}
	}
}
