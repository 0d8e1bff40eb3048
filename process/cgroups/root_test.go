package cgroups

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// helperEnv makes the test binary a helper process: "sleep" waits for its
// stdin to close; "alloc:N" reads a byte from stdin, then allocates and
// touches N bytes and waits for stdin to close.
const helperEnv = "BERTH_CGROUPS_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		helper(mode)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func helper(mode string) {
	if n, ok := strings.CutPrefix(mode, "alloc:"); ok {
		size, _ := strconv.Atoi(n)
		var b [1]byte
		_, _ = os.Stdin.Read(b[:])
		mem := make([]byte, size)
		for i := 0; i < len(mem); i += 4096 {
			mem[i] = 1
		}
		fmt.Println("allocated", len(mem))
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// startHelper starts the test binary as a helper; its stdin is returned.
func startHelper(t *testing.T, mode string) (*exec.Cmd, io.WriteCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = in.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd, in
}

func inCI() bool { return os.Getenv("CI") == "true" }

// requireRoot skips unless root (fails under CI=true).
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if inCI() {
		t.Fatal("this test needs root; CI runs as root")
	}
	t.Skip("this test needs root: run as root, e.g. sudo -E go test ./process/cgroups")
}

// testRoot is a fresh cgroups root named for the tests.
func testRoot(t *testing.T) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "berth-test-" + hex.EncodeToString(b[:])
}

// cleanManager destroys whatever m holds at the end of the test, even when
// it failed, and checks that the root is gone.
func cleanManager(t *testing.T, m *Manager) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := m.Purge(ctx, nil); err != nil {
			t.Error(err)
		}
		if err := m.RemoveRoot(); err != nil {
			t.Error(err)
		}
		for _, d := range m.dirs {
			if _, err := os.Stat(d); err == nil {
				t.Errorf("left behind: %s", d)
			}
		}
	})
}

// v1Manager is a Manager of the host's v1 hierarchies for controllers.
func v1Manager(t *testing.T, controllers ...string) *Manager {
	t.Helper()
	requireRoot(t)
	l, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	if l.Version != V1 {
		t.Skipf("the host drives cgroups through %s; the v1 tests need v1 hierarchies of cpu and memory", l.Version)
	}
	m, err := NewManager(l, testRoot(t), controllers)
	if err != nil {
		if inCI() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	cleanManager(t, m)
	return m
}

func readCgroupFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestV1CreateAttachLimitStatsDestroy(t *testing.T) {
	m := v1Manager(t, CPU, Memory)
	const id = "c1"
	if err := m.Create(id); err != nil {
		t.Fatal(err)
	}
	if err := m.Create(id); err != nil {
		t.Fatalf("a second Create: %v", err)
	}
	if err := m.SetLimits(id, Limits{CPUShares: 512, CPUQuota: 0.5, MemoryBytes: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	cpuDir := filepath.Join(m.ctlDir[CPU], id)
	memDir := filepath.Join(m.ctlDir[Memory], id)
	for file, want := range map[string]string{
		filepath.Join(cpuDir, "cpu.shares"):            "512",
		filepath.Join(cpuDir, "cpu.cfs_quota_us"):      "50000",
		filepath.Join(cpuDir, "cpu.cfs_period_us"):     "100000",
		filepath.Join(memDir, "memory.limit_in_bytes"): strconv.Itoa(64 << 20),
	} {
		if got := readCgroupFile(t, file); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	cmd, in := startHelper(t, "alloc:"+strconv.Itoa(16<<20))
	if err := m.Attach(id, cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	for _, d := range m.Dirs(id) {
		if procs := readCgroupFile(t, filepath.Join(d, "cgroup.procs")); procs != strconv.Itoa(cmd.Process.Pid) {
			t.Errorf("%s/cgroup.procs = %q, want the helper %d", d, procs, cmd.Process.Pid)
		}
	}
	if _, err := in.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	// The helper touches 16 MiB: the memory cgroup sees it.
	var s Stats
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		if s, err = m.Stats(id); err != nil {
			t.Fatal(err)
		}
		if s.MemoryRSS >= 16<<20 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s.MemoryRSS < 16<<20 || s.MemoryUsage < s.MemoryRSS || s.MemoryLimit != 64<<20 || s.Processes != 1 || s.OOMKills != 0 {
		t.Errorf("stats %+v: want rss >= 16 MiB, usage >= rss, limit 64 MiB, 1 process, no OOM kill", s)
	}
	names, err := m.List()
	if err != nil || !slices.Equal(names, []string{id}) {
		t.Errorf("List = %v, %v; want [%s]", names, err, id)
	}
	// Removing the limits (Update to nothing) writes "no limit".
	if err := m.SetLimits(id, Limits{}); err != nil {
		t.Fatal(err)
	}
	if got := readCgroupFile(t, filepath.Join(cpuDir, "cpu.cfs_quota_us")); got != "-1" {
		t.Errorf("quota after removing the limit = %s, want -1", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("the helper's end: %v, want killed", err)
	}
	for _, d := range m.Dirs(id) {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s still exists after Destroy (%v)", d, err)
		}
	}
	if err := m.Destroy(ctx, id); err != nil {
		t.Errorf("a second Destroy: %v", err)
	}
}

func TestV1OOMKillDetected(t *testing.T) {
	m := v1Manager(t, Memory)
	const id = "oom"
	if err := m.Create(id); err != nil {
		t.Fatal(err)
	}
	if err := m.SetLimits(id, Limits{MemoryBytes: 32 << 20}); err != nil {
		t.Fatal(err)
	}
	cmd, in := startHelper(t, "alloc:"+strconv.Itoa(128<<20))
	if err := m.Attach(id, cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan error, 1)
	go func() {
		n, err := m.WaitOOM(ctx, id)
		if err == nil && n == 0 {
			err = fmt.Errorf("WaitOOM returned no kill")
		}
		got <- err
	}()
	if _, err := in.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("the helper's end: %v, want killed by the OOM killer", err)
	}
	s, err := m.Stats(id)
	if err != nil || s.OOMKills == 0 {
		t.Errorf("stats after the OOM kill: %+v, %v", s, err)
	}
}

func TestWaitOOMEndsWithContext(t *testing.T) {
	m := v1Manager(t, Memory)
	if err := m.Create("idle"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := m.WaitOOM(ctx, "idle")
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !strings.Contains(fmt.Sprint(err), "canceled") {
			t.Errorf("WaitOOM after cancel: %v, want canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitOOM did not end with its context")
	}
	if _, err := m.WaitOOM(context.Background(), "missing"); err == nil {
		t.Error("WaitOOM of a missing cgroup: no error")
	}
}

// TestV2Mechanics drives the host's cgroup2 hierarchy without controllers
// (the unified mount of a hybrid host, or the v2 root): create, attach,
// kill every process, remove.
func TestV2Mechanics(t *testing.T) {
	requireRoot(t)
	l, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	if l.Unified == "" {
		t.Skip("no cgroup2 hierarchy is mounted on this host (a property of the host's boot, not an installable tool)")
	}
	m, err := NewManager(Layout{Version: V2, Unified: l.Unified, UnifiedControllers: l.UnifiedControllers}, testRoot(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	cleanManager(t, m)
	const id = "c2"
	if err := m.Create(id); err != nil {
		t.Fatal(err)
	}
	// The inotify watch WaitOOM puts on memory.events, here on
	// cgroup.events (no memory controller needed): the kernel notifies
	// when the cgroup becomes populated, and the read wakes on Go's poller.
	ev, err := watchFile(filepath.Join(m.Dirs(id)[0], "cgroup.events"))
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	a, _ := startHelper(t, "sleep")
	b, _ := startHelper(t, "sleep")
	for _, c := range []*exec.Cmd{a, b} {
		if err := m.Attach(id, c.Process.Pid); err != nil {
			t.Fatal(err)
		}
	}
	if err := ev.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := ev.Read(make([]byte, 4096)); err != nil {
		t.Errorf("no inotify event from cgroup.events when the cgroup became populated: %v", err)
	}
	if events := readCgroupFile(t, filepath.Join(m.Dirs(id)[0], "cgroup.events")); !strings.Contains(events, "populated 1") {
		t.Errorf("cgroup.events = %q, want populated 1", events)
	}
	procs, err := m.Procs(id)
	slices.Sort(procs)
	want := []int{a.Process.Pid, b.Process.Pid}
	slices.Sort(want)
	if err != nil || !slices.Equal(procs, want) {
		t.Fatalf("Procs = %v, %v; want %v", procs, err, want)
	}
	cg := readCgroupFile(t, fmt.Sprintf("/proc/%d/cgroup", a.Process.Pid))
	if !strings.Contains(cg, "0::/"+m.root+"/"+id) {
		t.Errorf("/proc/%d/cgroup does not show %s/%s:\n%s", a.Process.Pid, m.root, id, cg)
	}
	if _, err := os.Stat(filepath.Join(m.Dirs(id)[0], "cgroup.kill")); err != nil {
		t.Logf("this kernel has no cgroup.kill: Destroy signals the processes one by one")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*exec.Cmd{a, b} {
		if err := c.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Errorf("helper %d: %v, want killed", c.Process.Pid, err)
		}
	}
	if m.Exists(id) {
		t.Errorf("%s still exists", m.Dirs(id)[0])
	}
}
