package deploy_test

import (
	"context"
	"errors"
	"go/build"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/runtime"
	"github.com/cpmlink/cpmlink/runtime/deploy"
	"github.com/cpmlink/cpmlink/runtime/sipx"
	"go.uber.org/goleak"
)

// roleProcessEnv makes the test binary a role process (see cfProcess).
const roleProcessEnv = "CPMLINK_DEPLOY_TEST_ROLE_PROCESS"

// TestMain fails the package when a test leaves a goroutine behind.
func TestMain(m *testing.M) {
	sipx.SetLibraryLogger(slog.New(slog.DiscardHandler))
	deploy.ServeRoleChild(roleProcessEnv)
	goleak.VerifyTestMain(m)
}

// cfProcess re-executes the test binary as a role process.
func cfProcess() *exec.Cmd { return deploy.RoleChild(roleProcessEnv) }

// TestRoleProcess: a group whose CF runs in a child process delivers to every member, and
// the child reports what it measured; a group without one says so.
func TestRoleProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v, _ := fsm.VariantByName("fig1")
	g, err := runtime.StartGroup(ctx, runtime.GroupConfig{Variant: v, Members: 2, PFBs: 1, StartCF: deploy.CFProcess(cfProcess)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.CF != nil || g.RemoteCF == nil {
		t.Fatalf("CF %v, RemoteCF %v: the CF should run in the child", g.CF, g.RemoteCF)
	}
	msg := strings.Repeat("cpmlink role process ", 5000)
	sendDelivered(t, ctx, g, msg, 1)
	stats, err := deploy.StopCF(g)
	if err != nil {
		t.Fatal(err)
	}
	if stats.PeakHeapBytes == 0 {
		t.Errorf("the child measured no heap: %+v", stats)
	}
	// Stopping is idempotent: the group's Close stops it again.
	if _, err := deploy.StopCF(g); err != nil {
		t.Errorf("second StopCF: %v", err)
	}

	local, err := runtime.StartGroup(ctx, runtime.GroupConfig{Variant: v, Members: 1, PFBs: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	if _, err := deploy.StopCF(local); !errors.Is(err, deploy.ErrNoCFProcess) {
		t.Errorf("StopCF of an in-process CF: %v", err)
	}
}

// TestImports: the deployment depends on the driver, never the other way round, and never
// on the checkers or the generator (doc.go).
func TestImports(t *testing.T) {
	const mod = "github.com/cpmlink/cpmlink/"
	forbidden := []string{mod + "proptest", mod + "gen", mod + "model"}
	seen := map[string]bool{}
	var walk func(path string, via []string)
	walk = func(path string, via []string) {
		if seen[path] || !strings.HasPrefix(path, mod) {
			return
		}
		seen[path] = true
		for _, f := range forbidden {
			if path == f || strings.HasPrefix(path, f+"/") {
				t.Errorf("runtime/deploy imports %s (via %s)", path, strings.Join(via, " -> "))
			}
		}
		p, err := build.Default.Import(path, ".", 0)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, imp := range p.Imports {
			walk(imp, append(via, path))
		}
	}
	walk(mod+"runtime/deploy", nil)
	if !seen[mod+"runtime"] {
		t.Error("runtime/deploy does not reach runtime: the walk is broken")
	}
}

// TestRoleProcessesGroup: a group whose PF-A, CF and PF-Bs each run in a child of their
// own (RoleProcesses) delivers to every member; each child is its own process, serves
// its /metrics, and reports when its last link came up, after the message was sent.
func TestRoleProcessesGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v, _ := fsm.VariantByName("fig1")
	var procs []*deploy.RoleProcess
	start := deploy.RoleProcesses(cfProcess, deploy.RoleRequest{MetricsListen: "127.0.0.1:0", LinkUps: true},
		func(p *deploy.RoleProcess) { procs = append(procs, p) })
	g, err := runtime.StartGroup(ctx, runtime.GroupConfig{Variant: v, Members: 3, PFBs: 2, StartPFA: start, StartCF: start, StartPFB: start})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.PFA != nil || g.CF != nil || len(g.PFBs) != 0 || g.RemotePFA == nil || g.RemoteCF == nil || len(g.RemotePFBs) != 2 {
		t.Fatalf("PFA %v CF %v PFBs %v: every server should run in a child", g.PFA, g.CF, g.PFBs)
	}
	var names []string
	pids := map[int]bool{os.Getpid(): true}
	for _, p := range procs {
		names = append(names, p.Name())
		if pids[p.Pid()] {
			t.Errorf("%s: pid %d is this process's or another child's", p.Name(), p.Pid())
		}
		pids[p.Pid()] = true
		if p.MetricsAddr() == "" {
			t.Errorf("%s serves no metrics", p.Name())
		}
	}
	if strings.Join(names, ",") != "pfa,cf,pfb1,pfb2" {
		t.Errorf("children %v", names)
	}
	sent := time.Now()
	msg := strings.Repeat("every server in a process of its own ", 3000)
	out, err := g.ClientA.Send(ctx, runtime.GroupURI, nil, runtime.Message{
		Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(msg)), nil }, Size: int64(len(msg)), ContentType: "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range g.Members {
		if o := out.Of(runtime.MemberURI(i, 2)); o != core.DeliveredOutcome() {
			t.Errorf("member %d: %v", i, o)
		}
	}
	if err := g.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		stats, err := p.Stop()
		if err != nil {
			t.Fatalf("%s: %v", p.Name(), err)
		}
		if stats.LastLinkUp.Before(sent) || stats.PeakHeapBytes == 0 {
			t.Errorf("%s: %+v: no link came up after the send at %v, or no heap measured", p.Name(), stats, sent)
		}
	}
	if err := g.RestartPFB(0); err == nil {
		t.Error("RestartPFB of a PF-B in a child: no error")
	}
}

// TestCoreProcessGroup: a group whose SIP/IP core runs in a child of its own
// (CoreProcess), told its routes once the roles run, delivers to every member over UDP
// and over TCP; a role process that is not a core refuses routes, and a core refuses a
// route it cannot use, each with an error and still running.
func TestCoreProcessGroup(t *testing.T) {
	v, _ := fsm.VariantByName("fig1")
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var procs []*deploy.RoleProcess
			started := func(p *deploy.RoleProcess) { procs = append(procs, p) }
			g, err := runtime.StartGroup(ctx, runtime.GroupConfig{Variant: v, Members: 3, PFBs: 2, Transport: transport,
				StartCore: deploy.CoreProcess(cfProcess, deploy.RoleRequest{MetricsListen: "127.0.0.1:0"}, started),
				StartCF:   deploy.RoleProcesses(cfProcess, deploy.RoleRequest{}, started)})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			if len(procs) != 2 || procs[0].Name() != "core" || g.RemoteCore == nil || g.CoreAddr() != procs[0].SIPAddr() {
				t.Fatalf("children %v, core %v at %s: the core should run in the first child", procs, g.RemoteCore, g.CoreAddr())
			}
			if procs[0].MetricsAddr() == "" {
				t.Error("the core serves no metrics")
			}
			msg := strings.Repeat("through a core of its own ", 2000)
			sendDelivered(t, ctx, g, msg, 2)
			if err := procs[1].SetRoutes(map[string]string{"x.example": "127.0.0.1:5060"}); err == nil {
				t.Error("the CF's process took routes")
			}
			if err := procs[0].SetRoutes(map[string]string{"x.example": "no port"}); err == nil {
				t.Error("the core took a route with no port")
			}
			if _, err := procs[0].Stop(); err != nil {
				t.Errorf("core: %v", err)
			}
		})
	}
}

// sendDelivered sends msg to the group, requires every member (over pfbs PF-Bs) to be told
// delivered, and waits until the group is idle.
func sendDelivered(t *testing.T, ctx context.Context, g *runtime.Group, msg string, pfbs int) {
	t.Helper()
	out, err := g.ClientA.Send(ctx, runtime.GroupURI, nil, runtime.Message{
		Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(msg)), nil }, Size: int64(len(msg)), ContentType: "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range g.Members {
		if o := out.Of(runtime.MemberURI(i, pfbs)); o != core.DeliveredOutcome() {
			t.Errorf("member %d: %v", i, o)
		}
	}
	if err := g.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
}
