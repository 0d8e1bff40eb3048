package launcher_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthrt/berth/actors/actortest"
	"github.com/berthrt/berth/actors/isolator/filesystem"
	"github.com/berthrt/berth/actors/launcher"
	"github.com/berthrt/berth/fixtures/rootfs"
	isolatorv1 "github.com/berthrt/berth/messages/isolator/v1"
	launcherv1 "github.com/berthrt/berth/messages/launcher/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/errdefs"
	"github.com/berthrt/berth/process/launch"
)

func TestMain(m *testing.M) {
	if launch.IsInit() {
		launch.Main()
	}
	os.Exit(m.Run())
}

// world is a launcher with a busybox rootfs and a sandbox, all under one
// berth-test temp dir.
type world struct {
	l       *launcher.Linux
	root    string
	rootfs  string
	sandbox string
	runtime string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	actortest.RequiresRoot(t)
	actortest.RequiresTool(t, rootfs.BusyboxPath, "busybox-static")
	dir, err := os.MkdirTemp("", "berth-test-launcher-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	w := &world{root: dir, rootfs: filepath.Join(dir, "rootfs"), sandbox: filepath.Join(dir, "sandbox"), runtime: filepath.Join(dir, "run")}
	if err := rootfs.Busybox(w.rootfs); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{w.sandbox, w.runtime} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w.l = w.newLauncher(t)
	return w
}

func (w *world) newLauncher(t *testing.T) *launcher.Linux {
	l, err := launcher.NewLinux(launcher.LinuxOptions{RuntimeRoot: w.runtime, Logger: actortest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// spec is what the filesystem/linux and namespaces isolators would give.
func (w *world) spec(t *testing.T, id string, args ...string) *launcherv1.LaunchSpec {
	t.Helper()
	fs, err := filesystem.NewLinux("")
	if err != nil {
		t.Fatal(err)
	}
	info, err := fs.Prepare(context.Background(), &typesv1.ContainerID{Value: id}, &typesv1.ContainerConfig{Directory: w.sandbox, Rootfs: w.rootfs})
	if err != nil {
		t.Fatal(err)
	}
	return &launcherv1.LaunchSpec{
		ContainerId: id, Rootfs: w.rootfs, Mounts: info.GetMounts(), MaskedPaths: info.GetMaskedPaths(),
		ReadonlyPaths: info.GetReadonlyPaths(), Devices: info.GetDevices(), Hostname: id, Args: args,
		Env:        []string{"PATH=/bin"},
		RuntimeDir: filepath.Join(w.runtime, "containers", id),
		Namespaces: []isolatorv1.Namespace{isolatorv1.Namespace_NAMESPACE_MOUNT, isolatorv1.Namespace_NAMESPACE_PID, isolatorv1.Namespace_NAMESPACE_UTS, isolatorv1.Namespace_NAMESPACE_IPC},
	}
}

func (w *world) io(id string) launcher.IO {
	return launcher.IO{StdoutPath: filepath.Join(w.sandbox, id+".out"), StderrPath: filepath.Join(w.sandbox, id+".err")}
}

func (w *world) output(t *testing.T, id string) string {
	b, err := os.ReadFile(filepath.Join(w.sandbox, id+".out"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// run forks, releases and waits for a command.
func (w *world) run(t *testing.T, id string, args ...string) launcher.ExitStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := w.l.Fork(ctx, id, w.spec(t, id, args...), w.io(id)); err != nil {
		t.Fatalf("fork: %v", err)
	}
	if err := w.l.Exec(ctx, id); err != nil {
		t.Fatalf("exec: %v", err)
	}
	st, err := w.l.Wait(ctx, id)
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	return st
}

// assertNoMounts checks that nothing is mounted below the test's dir.
func (w *world) assertNoMounts(t *testing.T) {
	t.Helper()
	for _, m := range actortest.MountsBelow(t, w.root) {
		t.Errorf("left mounted: %s", m)
	}
}

func TestRootLaunchRunsInItsOwnNamespacesAndRootfs(t *testing.T) {
	w := newWorld(t)
	st := w.run(t, "c1", "sh", "-c", `set -- /proc/[0-9]*; echo procs=$#; echo host=$(hostname); tr '\0' ' ' </proc/1/cmdline; echo; ls /; readlink /proc/self/ns/mnt; cat /proc/kcore | wc -c; echo c2 2>&1 >/proc/sys/kernel/hostname; grep CapBnd /proc/self/status; true`)
	if !st.Known || !st.WaitStatus.Exited() || st.WaitStatus.ExitStatus() != 0 {
		t.Fatalf("status = %+v, want exit 0; output:\n%s", st, w.output(t, "c1"))
	}
	out := w.output(t, "c1")
	hostMnt, _ := os.Readlink("/proc/self/ns/mnt")
	// /proc shows the container's processes only: the init and the shell
	// (which expands the glob itself).
	for _, want := range []string{"procs=2\n", "host=c1\n", "init c1 " + filepath.Join(w.runtime, "containers", "c1"), "\nbin\ndev\netc\n", "\n0\n", "Read-only file system", "CapBnd:\t00000000a80425fb"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, hostMnt) {
		t.Errorf("the container shares the host's mount namespace %s", hostMnt)
	}
	w.assertNoMounts(t)
}

func TestRootLaunchExitCodeAndSignal(t *testing.T) {
	w := newWorld(t)
	if st := w.run(t, "exit42", "sh", "-c", "exit 42"); !st.Known || st.WaitStatus.ExitStatus() != 42 {
		t.Errorf("status = %+v, want exit 42", st)
	}
	if st := w.run(t, "killed", "sh", "-c", "kill -USR1 $$"); !st.Known || !st.WaitStatus.Signaled() || st.WaitStatus.Signal() != syscall.SIGUSR1 {
		t.Errorf("status = %+v, want killed by SIGUSR1", st)
	}
}

func TestRootLaunchCommandNotFound(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, err := w.l.Fork(ctx, "nf", w.spec(t, "nf", "no-such-command"), w.io("nf")); err != nil {
		t.Fatal(err)
	}
	err := w.l.Exec(ctx, "nf")
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "no-such-command") {
		t.Fatalf("exec = %v, want not found naming the command", err)
	}
	if _, err := w.l.Destroy(ctx, "nf"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.l.Fork(ctx, "dir", w.spec(t, "dir", "/etc"), w.io("dir")); err != nil {
		t.Fatal(err)
	}
	if err := w.l.Exec(ctx, "dir"); !errors.Is(err, errdefs.ErrPermissionDenied) {
		t.Fatalf("exec of a directory = %v, want permission denied", err)
	}
	if _, err := w.l.Destroy(ctx, "dir"); err != nil {
		t.Fatal(err)
	}
	w.assertNoMounts(t)
}

func TestRootLaunchSetupFailure(t *testing.T) {
	w := newWorld(t)
	spec := w.spec(t, "bad", "true")
	spec.Rootfs = filepath.Join(w.root, "missing")
	_, err := w.l.Fork(context.Background(), "bad", spec, w.io("bad"))
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("fork = %v, want an error naming the missing rootfs", err)
	}
	if _, err := w.l.Wait(context.Background(), "bad"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("wait after a failed fork = %v, want not found", err)
	}
	w.assertNoMounts(t)
}

func TestRootLaunchDestroyKillsEverything(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	p, err := w.l.Fork(ctx, "d", w.spec(t, "d", "sh", "-c", "sleep 1000 & sleep 1000"), w.io("d"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.l.Exec(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	waited := make(chan launcher.ExitStatus, 1)
	go func() {
		st, _ := w.l.Wait(ctx, "d")
		waited <- st
	}()
	if existed, err := w.l.Destroy(ctx, "d"); err != nil || !existed {
		t.Fatalf("destroy = %v, %v", existed, err)
	}
	st := <-waited
	if !st.WaitStatus.Signaled() || st.WaitStatus.Signal() != syscall.SIGKILL {
		t.Errorf("status = %+v, want killed by SIGKILL", st)
	}
	if err := syscall.Kill(p.Pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("init %d still exists: %v", p.Pid, err)
	}
	if existed, err := w.l.Destroy(ctx, "unknown"); err != nil || existed {
		t.Errorf("destroy of an unknown container = %v, %v; want false, nil", existed, err)
	}
	w.assertNoMounts(t)
}

func TestRootLaunchSignalIsForwarded(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, err := w.l.Fork(ctx, "s", w.spec(t, "s", "sh", "-c", `trap 'exit 7' TERM; echo ready; while :; do sleep 0.05; done`), w.io("s")); err != nil {
		t.Fatal(err)
	}
	if err := w.l.Exec(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(w.output(t, "s"), "ready") {
		time.Sleep(10 * time.Millisecond)
	}
	if err := w.l.Signal(ctx, "s", syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	st, err := w.l.Wait(ctx, "s")
	if err != nil || st.WaitStatus.ExitStatus() != 7 {
		t.Fatalf("wait = %+v, %v; want exit 7", st, err)
	}
}

func TestRootLaunchRecover(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	p, err := w.l.Fork(ctx, "r", w.spec(t, "r", "sleep", "1000"), w.io("r"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.l.Exec(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	orphan, err := w.l.Fork(ctx, "o", w.spec(t, "o", "sleep", "1000"), w.io("o"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.l.Exec(ctx, "o"); err != nil {
		t.Fatal(err)
	}
	// A restarted agent: a new launcher that knows "r" (and a stale pid
	// reused by something else), and not "o".
	l2 := w.newLauncher(t)
	known := []launcher.Known{
		{ID: "r", Process: launcher.Process{Pid: p.Pid, StartTime: p.StartTime}, RuntimeDir: filepath.Join(w.runtime, "containers", "r")},
		{ID: "stale", Process: launcher.Process{Pid: os.Getpid(), StartTime: 1}, RuntimeDir: filepath.Join(w.runtime, "containers", "stale")},
	}
	alive, orphans, err := l2.Recover(ctx, known)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(alive, ",") != "r" || strings.Join(orphans, ",") != "o" {
		t.Fatalf("recover = alive %v, orphans %v; want [r], [o]", alive, orphans)
	}
	if err := l2.Signal(ctx, "r", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if st, err := l2.Wait(ctx, "r"); err != nil || st.Known {
		t.Errorf("wait of a recovered init killed before its command exited = %+v, %v; want unknown status", st, err)
	}
	if existed, err := l2.Destroy(ctx, "o"); err != nil || !existed {
		t.Fatalf("destroy orphan = %v, %v", existed, err)
	}
	if err := syscall.Kill(orphan.Pid, 0); !errors.Is(err, syscall.ESRCH) {
		// The first launcher is still its parent and reaps it.
		if st, _ := w.l.Wait(ctx, "o"); !st.WaitStatus.Signaled() {
			t.Errorf("orphan %d survived destroy", orphan.Pid)
		}
	}
	if st, err := l2.Wait(ctx, "stale"); err != nil || st.Known {
		t.Errorf("wait of a stale container = %+v, %v; want no status", st, err)
	}
}

func TestRootLaunchRecoveredExitStatus(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	p, err := w.l.Fork(ctx, "x", w.spec(t, "x", "sh", "-c", "sleep 0.3; exit 5"), w.io("x"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.l.Exec(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	l2 := w.newLauncher(t)
	if _, _, err := l2.Recover(ctx, []launcher.Known{{ID: "x", Process: launcher.Process{Pid: p.Pid, StartTime: p.StartTime}, RuntimeDir: filepath.Join(w.runtime, "containers", "x")}}); err != nil {
		t.Fatal(err)
	}
	st, err := l2.Wait(ctx, "x")
	if err != nil || !st.Known || st.WaitStatus.ExitStatus() != 5 {
		t.Fatalf("wait = %+v, %v; want exit 5 from the status file", st, err)
	}
}

// TestRootLaunchWaitFunc: callbacks registered before the exit all get the
// status from the reaper; an unknown container gets not found at once.
func TestRootLaunchWaitFunc(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := w.l.Fork(ctx, "wf", w.spec(t, "wf", "sh", "-c", "exit 7"), w.io("wf")); err != nil {
		t.Fatalf("fork: %v", err)
	}
	type result struct {
		st  launcher.ExitStatus
		err error
	}
	got := make(chan result, 2)
	for i := 0; i < 2; i++ {
		w.l.WaitFunc("wf", func(st launcher.ExitStatus, err error) { got <- result{st, err} })
	}
	if err := w.l.Exec(ctx, "wf"); err != nil {
		t.Fatalf("exec: %v", err)
	}
	for i := 0; i < 2; i++ {
		select {
		case r := <-got:
			if r.err != nil || !r.st.Known || r.st.WaitStatus.ExitStatus() != 7 {
				t.Errorf("waiter %d: %+v, %v; want exit 7", i, r.st, r.err)
			}
		case <-ctx.Done():
			t.Fatal("a WaitFunc callback never ran")
		}
	}
	w.l.WaitFunc("no-such", func(_ launcher.ExitStatus, err error) { got <- result{err: err} })
	if r := <-got; !errors.Is(r.err, errdefs.ErrNotFound) {
		t.Errorf("WaitFunc of an unknown container: %v; want not found", r.err)
	}
	w.assertNoMounts(t)
}

// TestRootLaunchSignalBeforeRelease: from READY on the init catches every
// signal: one that arrives before the command is released ends the init,
// and the command never runs. (The init is pid 1 of its pid namespace: a
// signal it has no handler for would be ignored.)
func TestRootLaunchSignalBeforeRelease(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := w.l.Fork(ctx, "early", w.spec(t, "early", "sh", "-c", "echo ran"), w.io("early")); err != nil {
		t.Fatal(err)
	}
	if err := w.l.Signal(ctx, "early", syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	st, err := w.l.Wait(ctx, "early")
	if err != nil {
		t.Fatalf("wait: %v (the init ignored SIGTERM before its release)", err)
	}
	if !st.Known || (st.WaitStatus.Exited() && st.WaitStatus.ExitStatus() == 0) {
		t.Errorf("status %+v: the init should have ended on the signal", st)
	}
	if out := w.output(t, "early"); strings.Contains(out, "ran") {
		t.Errorf("the command ran: %q", out)
	}
	w.assertNoMounts(t)
}
