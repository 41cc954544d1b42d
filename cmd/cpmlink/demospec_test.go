package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemoSpec: demo takes --spec like explore and diagram. A spec that only adds variants
// (extends: default) compiles to the generated code, so its variants run on sockets; a
// spec with rules of its own does not, and is refused with the reason.
func TestDemoSpec(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	spec := filepath.Join(dir, "extra.yaml")
	if err := os.WriteFile(spec, []byte(`name: extra
extends: default
doc: One variant more, for demo --spec.
variants:
  - name: fig3-again
    doc: FIG. 3 under a name of this file's.
    base: fig3
`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := cli(t, "demo", "--spec", spec, "--variant", "fig3-again", "--members", "1", "--pfbs", "1",
		"--size", "20kB", "--chunk-size", "8KiB", "--out", filepath.Join(dir, "out"), "--json")
	var res demoJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 {
		t.Fatalf("exit %d, %v\n%s%s", code, err, out, stderr)
	}
	if res.Variant != "fig3-again" || res.Bytes != 20_000 || res.Delivered != 1 || !strings.HasPrefix(res.Validation, "ok") {
		t.Errorf("variant %q, %d bytes, %d delivered, validation %q", res.Variant, res.Bytes, res.Delivered, res.Validation)
	}
	// A spec of other rules would run other machines than the generated ones.
	code, _, stderr = cli(t, "demo", "--spec", "../../gen/testdata/tiny/spec.yaml", "--out", filepath.Join(dir, "tiny"))
	if code != 1 || !strings.Contains(stderr, "demo: --spec: ") || !strings.Contains(stderr, "compiles to other code than package fsm") {
		t.Errorf("a spec with rules of its own: exit %d\n%s", code, stderr)
	}
	// Its variants are listed when the name is wrong.
	code, _, stderr = cli(t, "demo", "--spec", spec, "--variant", "fig9")
	if code != 2 || !strings.Contains(stderr, `--variant: "fig9" is not a variant of the spec: fig3-again`) {
		t.Errorf("unknown variant of a spec file: exit %d\n%s", code, stderr)
	}
}
