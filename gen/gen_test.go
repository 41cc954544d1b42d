package gen

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cpmlink/cpmlink/model"
)

var update = flag.Bool("update", false, "rewrite the golden files of the generator tests")

func generateTiny(t *testing.T, pkg string) map[string][]byte {
	t.Helper()
	s, err := model.Load("testdata/tiny/spec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files, err := Generate(s, Options{Package: pkg, Command: "fsmgen -spec testdata/tiny/spec.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestGolden compares the code generated from the tiny spec with golden files; run with
// -update to rewrite them, and read the diff.
func TestGolden(t *testing.T) {
	files := generateTiny(t, "tiny")
	dir := filepath.Join("testdata", "tiny", "golden")
	if *update {
		os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(dir, name+".golden"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	golden, _ := filepath.Glob(filepath.Join(dir, "*.golden"))
	if len(golden) != len(files) {
		t.Errorf("%d golden files for %d generated files", len(golden), len(files))
	}
	for name, b := range files {
		want, err := os.ReadFile(filepath.Join(dir, name+".golden"))
		if err != nil {
			t.Errorf("%s: %v (run go test ./gen -update)", name, err)
			continue
		}
		if !bytes.Equal(b, want) {
			t.Errorf("%s differs from its golden file (run go test ./gen -update and read the diff)", name)
		}
	}
}

// TestFSMIsCurrent: the committed package fsm is exactly what the generator makes of the
// embedded spec, as `go generate ./...` would write it.
func TestFSMIsCurrent(t *testing.T) {
	s, err := model.Load("../model/cpmlink.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files, err := Generate(s, Options{Package: "fsm", Command: "fsmgen -spec ../model/cpmlink.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	on, _ := filepath.Glob("../fsm/*_gen.go")
	var names []string
	for _, p := range on {
		names = append(names, filepath.Base(p))
	}
	if got, want := strings.Join(names, " "), strings.Join(FileNames(s), " "); got != want {
		t.Errorf("fsm holds generated files %s, the spec generates %s", got, want)
	}
	for name, b := range files {
		have, err := os.ReadFile(filepath.Join("..", "fsm", name))
		if err != nil || !bytes.Equal(have, b) {
			t.Errorf("fsm/%s is stale: run go generate ./...", name)
		}
	}
}

// goEnv runs the go tool offline, so that a test never reaches the network.
func goCmd(t *testing.T, dir string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
	return cmd
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// tinyMain drives the tiny spec's generated roles over a FIFO network and checks that the
// callee stores all three chunks in order; it prints "ok" for every variant that works.
const tinyMain = `package main

import (
	"fmt"
	"os"

	"example.com/tinyrun/tiny"
)

type msg struct {
	to tiny.Role
	ev tiny.Event
}

func main() {
	for _, v := range tiny.Variants {
		caller := tiny.NewCaller(tiny.Config{Name: "a", MSRPHost: "a", MSRPPort: 1, Secret: "s"}, v)
		callee := tiny.NewCallee(tiny.Config{Name: "b", MSRPHost: "b", MSRPPort: 2, Secret: "s"}, v)
		peer := map[tiny.Role]tiny.Role{caller: callee, callee: caller}
		queue := []msg{{caller, tiny.Start{Target: "sip:b"}}}
		var got []int
		for n := 0; len(queue) > 0; n++ {
			if n > 1000 {
				fmt.Println(v.Name, "does not settle")
				os.Exit(1)
			}
			m := queue[0]
			queue = queue[1:]
			acts, err := m.to.Step(m.ev)
			if err != nil {
				fmt.Println(v.Name, err)
				os.Exit(1)
			}
			other := peer[m.to]
			for _, a := range acts {
				switch a := a.(type) {
				case tiny.SendInvite:
					queue = append(queue, msg{other, tiny.InviteReceived{Leg: a.Leg, Target: a.Target, Offer: a.Offer}})
				case tiny.SendOK:
					queue = append(queue, msg{other, tiny.OKReceived{Leg: a.Leg, Answer: a.Answer}})
				case tiny.SendAck:
					queue = append(queue, msg{other, tiny.AckReceived{Leg: a.Leg}})
				case tiny.OpenLink:
					queue = append(queue, msg{m.to, tiny.LinkUp{Leg: a.Leg, Conn: a.Conn}}, msg{other, tiny.LinkUp{Leg: a.Leg, Conn: a.Conn}})
				case tiny.SendMessage:
					for k := 1; k <= 3; k++ {
						queue = append(queue, msg{other, tiny.SendReceived{Leg: a.Leg, Chunk: k, Last: k == 3}})
					}
				case tiny.Deliver:
					got = append(got, a.Chunk)
				}
			}
		}
		if fmt.Sprint(got) != "[1 2 3]" {
			fmt.Println(v.Name, "delivered", got)
			os.Exit(1)
		}
		fmt.Println("ok", v.Name)
	}
}
`

// TestTinyEndToEnd generates the tiny spec into a package of a new module, compiles it with
// a driver and runs it.
func TestTinyEndToEnd(t *testing.T) {
	dir := t.TempDir()
	files := generateTiny(t, "tiny")
	if err := os.MkdirAll(filepath.Join(dir, "tiny"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, "tiny", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root := repoRoot(t)
	gomod := "module example.com/tinyrun\n\ngo 1.26\n\nrequire github.com/cpmlink/cpmlink v0.0.0\n\nreplace github.com/cpmlink/cpmlink => " + root + "\n"
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"go.mod": []byte(gomod), "go.sum": sum, "main.go": []byte(tinyMain)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := goCmd(t, dir, "mod", "tidy").CombinedOutput(); err != nil {
		t.Fatalf("go mod tidy: %v\n%s", err, out)
	}
	out, err := goCmd(t, dir, "run", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go run: %v\n%s", err, out)
	}
	if got := strings.Count(string(out), "ok "); got != 3 {
		t.Fatalf("want 3 variants ok, got:\n%s", out)
	}
}

// copyTree copies the source files of the repository (no .git, no outputs) to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if info.IsDir() {
			switch info.Name() {
			case ".git", "cpmlink-demo", "rapid":
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestNewTriggerIsASpecEdit adds a kind of trigger to a copy of the repository by editing
// the spec alone, regenerates, and explores a variant that uses it.
func TestNewTriggerIsASpecEdit(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, repoRoot(t), dir)
	specPath := filepath.Join(dir, "model", "cpmlink.yaml")
	b, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	spec := string(b)
	edits := []struct{ old, new string }{
		{"  - name: ok-sent\n", "  - name: ack-sent\n    doc: On acknowledging the 200 OK from downstream.\n    offerer: \"this had send-ack\"\n    answerer: \"any(down: down had send-ack)\"\n  - name: ok-sent\n"},
		{"{name: send-received}, {name: ok-sent}]", "{name: send-received}, {name: ack-sent}, {name: ok-sent}]"},
		{"variants:\n  - name: fig1\n", "variants:\n  - {name: on-ack-sent, base: fig1, set: {trigger: {hop1: ack-sent, hop3: ack-sent}}}\n  - name: fig1\n"},
	}
	for _, e := range edits {
		if !strings.Contains(spec, e.old) {
			t.Fatalf("the spec no longer contains %q", e.old)
		}
		spec = strings.Replace(spec, e.old, e.new, 1)
	}
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := goCmd(t, dir, "generate", "./fsm/").CombinedOutput(); err != nil {
		t.Fatalf("go generate: %v\n%s", err, out)
	}
	gen, err := os.ReadFile(filepath.Join(dir, "fsm", "variant_gen.go"))
	if err != nil || !bytes.Contains(gen, []byte("TriggerAckSent")) {
		t.Fatalf("the regenerated code has no TriggerAckSent (err %v)", err)
	}
	out, err := goCmd(t, dir, "run", "./cmd/cpmlink", "explore", "--variant", "on-ack-sent", "--members", "2", "--pfbs", "2", "--json").CombinedOutput()
	if err != nil {
		t.Fatalf("explore: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `"result":"ok"`) {
		t.Fatalf("the new trigger's variant did not explore clean:\n%s", out)
	}
}

func TestFileNamesAreSorted(t *testing.T) {
	names := FileNames(model.Default())
	if !sort.StringsAreSorted(names) {
		t.Errorf("FileNames not sorted: %v", names)
	}
}
