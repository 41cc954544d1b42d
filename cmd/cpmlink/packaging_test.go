package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The packaging lives beside the command it packages (packaging/), since the top level of
// the repository holds only the project's packages; the image is built from the root.
const packaging = "packaging"

// TestSystemdUnits: systemd-analyze verify finds nothing to say about the units: no
// unknown key, no value it cannot parse, no command it cannot run. ExecStart's binary is
// replaced by this test's own executable, since verify checks that it exists.
func TestSystemdUnits(t *testing.T) {
	t.Parallel()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (apt-get install systemd); the units are not verified")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for template, instance := range map[string]string{"cpmlink@.service": "cpmlink@cf.service", "cpmlink-recv@.service": "cpmlink-recv@bob.service"} {
		b, err := os.ReadFile(filepath.Join(packaging, template))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte("ExecStart=/usr/local/bin/cpmlink ")) {
			t.Fatalf("%s: ExecStart does not run /usr/local/bin/cpmlink", template)
		}
		unit := bytes.ReplaceAll(b, []byte("/usr/local/bin/cpmlink"), []byte(self))
		// verify loads a template through one of its instances.
		if err := os.WriteFile(filepath.Join(dir, instance), unit, 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, analyze, "verify", "--man=no", filepath.Join(dir, instance)).CombinedOutput()
		cancel()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", template, err, out)
		}
		checkHardening(t, template, string(b))
	}
}

// checkHardening: the units run without privileges and with the sandbox options set.
func checkHardening(t *testing.T, name, unit string) {
	t.Helper()
	for _, want := range []string{"DynamicUser=yes", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n", "ProtectSystem=strict",
		"ProtectHome=yes", "PrivateTmp=yes", "RestrictAddressFamilies=", "SystemCallFilter=@system-service", "MemoryDenyWriteExecute=yes"} {
		if !strings.Contains(unit, want) {
			t.Errorf("%s lacks %q", name, strings.TrimSpace(want))
		}
	}
	if name == "cpmlink@.service" && !strings.Contains(unit, "serve --config /etc/cpmlink/cpmlink.yaml --role %i") {
		t.Errorf("%s does not run serve --config ... --role %%i", name)
	}
}

// TestDockerfileShape checks what can be checked without a Docker engine: a build stage
// and a run stage, a static build of ./cmd/cpmlink, a non-root user, the binary as the
// entry point and serve --config as the default command, and files copied from the
// context that exist.
func TestDockerfileShape(t *testing.T) {
	t.Parallel()
	f, err := os.Open(filepath.Join(packaging, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	cont := ""
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasSuffix(l, `\`) {
			cont += strings.TrimSuffix(l, `\`) + " "
			continue
		}
		lines = append(lines, cont+l)
		cont = ""
	}
	from := regexp.MustCompile(`^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$`)
	var stages []string // the name (or image) of each stage
	user, entry, cmd, built := map[int]string{}, "", "", false
	for _, l := range lines {
		word, rest, _ := strings.Cut(l, " ")
		switch strings.ToUpper(word) {
		case "FROM":
			g := from.FindStringSubmatch(l)
			if g == nil {
				t.Fatalf("unreadable FROM: %s", l)
			}
			stages = append(stages, g[1]+" "+g[2])
		case "RUN":
			if strings.Contains(rest, "CGO_ENABLED=0") && strings.Contains(rest, "go build") && strings.Contains(rest, "./cmd/cpmlink") {
				built = len(stages) == 1
			}
		case "USER":
			user[len(stages)-1] = rest
		case "ENTRYPOINT":
			entry = rest
		case "CMD":
			cmd = rest
		case "COPY":
			fields := strings.Fields(rest)
			if strings.HasPrefix(fields[0], "--from=") {
				if fields[0] != "--from=build" {
					t.Errorf("COPY from another stage than build: %s", l)
				}
				continue
			}
			for _, src := range fields[:len(fields)-1] {
				if strings.HasPrefix(src, "--") || src == "." {
					continue
				}
				if _, err := os.Stat(filepath.Join("..", "..", src)); err != nil {
					t.Errorf("COPY of %s, which the repository does not hold: %v", src, err)
				}
			}
		}
	}
	if len(stages) != 2 || !strings.HasSuffix(stages[0], " build") {
		t.Errorf("stages %q, want two, the first named build", stages)
	}
	if !built {
		t.Error("the build stage does not build ./cmd/cpmlink with CGO_ENABLED=0")
	}
	if u := user[len(stages)-1]; u == "" || u == "root" || strings.HasPrefix(u, "0") {
		t.Errorf("the image runs as %q, want a non-root user", u)
	}
	if entry != `["/usr/local/bin/cpmlink"]` || cmd != `["serve", "--config", "/etc/cpmlink/cpmlink.yaml"]` {
		t.Errorf("ENTRYPOINT %s CMD %s", entry, cmd)
	}
}
