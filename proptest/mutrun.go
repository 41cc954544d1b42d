package proptest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/cpmlink/cpmlink/gen"
	"github.com/cpmlink/cpmlink/model"
)

// ErrStillborn reports a mutant that is no spec: the validator refuses it, or the code
// generated from it does not compile. It counts neither as killed nor as surviving.
var ErrStillborn = errors.New("proptest: stillborn mutant")

// ErrSameCode reports a mutant that compiles to the very code (and variant table) of the
// spec it was made from: equivalent by construction, and not run.
var ErrSameCode = errors.New("proptest: the mutant compiles to the spec's own code")

// MutantRunner checks mutants of the spec. Rules are compiled into package fsm, so a
// mutant needs its own code: the runner generates it, builds proptest/mutrun with the
// generated files laid over package fsm (go build -overlay, nothing in the source tree is
// written) and runs that binary with the plan. It needs the module's source and the go
// command; Root is the module's directory.
type MutantRunner struct {
	Root string
	// Dir holds the generated files and binaries (removed by Close).
	Dir string

	mu    sync.Mutex
	cache map[string]MutantVerdict
	base  string
}

// SetBase records the spec the mutants are made from: a mutant that compiles to its code
// is reported as ErrSameCode instead of being run.
func (r *MutantRunner) SetBase(src []byte) error {
	s, err := model.Parse("spec.yaml", src)
	if err != nil {
		return err
	}
	files, err := gen.Generate(s, gen.Options{Command: "cpmlink mutate"})
	if err != nil {
		return err
	}
	r.base = codeKey(files)
	return nil
}

// codeKey hashes generated files.
func codeKey(files map[string][]byte) string {
	h := sha256.New()
	for _, n := range sortedKeys(files) {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(files[n]))
		h.Write(files[n])
	}
	return hex.EncodeToString(h.Sum(nil))[:20]
}

func sortedKeys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// NewMutantRunner returns a runner for the module at root (the directory of go.mod).
func NewMutantRunner(root string) (*MutantRunner, error) {
	if _, err := os.Stat(filepath.Join(root, "proptest", "mutrun", "main.go")); err != nil {
		return nil, fmt.Errorf("proptest: mutants are built from the module's source: %w", err)
	}
	dir, err := os.MkdirTemp("", "cpmlink-mutate-")
	if err != nil {
		return nil, fmt.Errorf("proptest: %w", err)
	}
	return &MutantRunner{Root: root, Dir: dir, cache: map[string]MutantVerdict{}}, nil
}

// Close removes the runner's files.
func (r *MutantRunner) Close() error { return os.RemoveAll(r.Dir) }

// FindModuleRoot walks up from dir to the directory of cpmlink's go.mod.
func FindModuleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("proptest: %w", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module github.com/cpmlink/cpmlink\n")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("proptest: not inside the cpmlink module: mutants are built from its source")
		}
	}
}

// Check parses a mutant's source, builds the checker with its code and runs the plan.
// Mutants that compile to the same code share one verdict.
func (r *MutantRunner) Check(ctx context.Context, src []byte, plan MutantPlan) (MutantVerdict, error) {
	s, err := model.Parse("mutant.yaml", src)
	if err != nil {
		return MutantVerdict{}, fmt.Errorf("%w: %v", ErrStillborn, err)
	}
	files, err := gen.Generate(s, gen.Options{Command: "cpmlink mutate"})
	if err != nil {
		return MutantVerdict{}, fmt.Errorf("%w: %v", ErrStillborn, err)
	}
	if _, err := VariantsOf(s); err != nil && !strings.Contains(err.Error(), "fingerprint") {
		// A variant the generated code refuses (Variant.Check) is no spec either.
		return MutantVerdict{}, fmt.Errorf("%w: %v", ErrStillborn, err)
	}
	code := codeKey(files)
	if code == r.base {
		return MutantVerdict{}, ErrSameCode
	}
	names := sortedKeys(files)
	planJSON, _ := json.Marshal(plan)
	sum := sha256.Sum256(append([]byte(code), planJSON...))
	key := hex.EncodeToString(sum[:])[:20]
	r.mu.Lock()
	v, ok := r.cache[key]
	r.mu.Unlock()
	if ok {
		return v, nil
	}
	dir := filepath.Join(r.Dir, key)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return MutantVerdict{}, fmt.Errorf("proptest: %w", err)
	}
	defer os.RemoveAll(dir)
	overlay := map[string]string{}
	for _, n := range names {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, files[n], 0o644); err != nil {
			return MutantVerdict{}, fmt.Errorf("proptest: %w", err)
		}
		overlay[filepath.Join(r.Root, "fsm", n)] = p
	}
	// Generated files of the module that the mutant's code has no counterpart for go.
	old, _ := filepath.Glob(filepath.Join(r.Root, "fsm", "*_gen.go"))
	for _, p := range old {
		if _, ok := overlay[p]; !ok {
			overlay[p] = ""
		}
	}
	ov, _ := json.Marshal(map[string]any{"Replace": overlay})
	ovPath := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ovPath, ov, 0o644); err != nil {
		return MutantVerdict{}, fmt.Errorf("proptest: %w", err)
	}
	bin := filepath.Join(dir, "mutrun")
	build := exec.CommandContext(ctx, "go", "build", "-overlay", ovPath, "-o", bin, "./proptest/mutrun")
	build.Dir = r.Root
	if out, err := build.CombinedOutput(); err != nil {
		if ctx.Err() != nil {
			return MutantVerdict{}, fmt.Errorf("proptest: building the mutant: %w", ctx.Err())
		}
		return MutantVerdict{}, fmt.Errorf("%w: its generated code does not build: %s", ErrStillborn, headLines(string(out), 3))
	}
	run := exec.CommandContext(ctx, bin)
	run.Stdin = bytes.NewReader(planJSON)
	var stdout, stderr bytes.Buffer
	run.Stdout, run.Stderr = &stdout, &stderr
	err = run.Run()
	if ctx.Err() != nil {
		return MutantVerdict{}, fmt.Errorf("proptest: checking the mutant: %w", ctx.Err())
	}
	if err := json.Unmarshal(stdout.Bytes(), &v); err != nil || stdout.Len() == 0 {
		// The checkers crashed on the mutant's code: a test run would fail, so it is found.
		v = MutantVerdict{Killed: true, Checker: "crash", Property: "crash", Detail: headLines(stderr.String(), 3)}
		_ = err
	}
	r.mu.Lock()
	r.cache[key] = v
	r.mu.Unlock()
	return v, nil
}

func headLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, " | ")
}
