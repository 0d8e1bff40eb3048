package cgroups

import (
	"context"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	isolatorv1 "github.com/berthrt/berth/messages/isolator/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
	cg "github.com/berthrt/berth/process/cgroups"
	"github.com/berthrt/berth/process/cgroups/cgroupstest"
)

func TestLimits(t *testing.T) {
	for _, tt := range []struct {
		name             string
		resources, limit *typesv1.Resources
		want             cg.Limits
	}{
		{"nothing", nil, nil, cg.Limits{}},
		{"requests only: they are the limits", &typesv1.Resources{Cpus: 0.5, MemBytes: 64 << 20}, nil, cg.Limits{CPUShares: 512, CPUQuota: 0.5, MemoryBytes: 64 << 20}},
		{"limits only: the weight follows them", nil, &typesv1.Resources{Cpus: 2, MemBytes: 1 << 30}, cg.Limits{CPUShares: 2048, CPUQuota: 2, MemoryBytes: 1 << 30}},
		{"both: weight from the request, hard limits from the limits", &typesv1.Resources{Cpus: 1, MemBytes: 32 << 20}, &typesv1.Resources{Cpus: 4, MemBytes: 128 << 20}, cg.Limits{CPUShares: 1024, CPUQuota: 4, MemoryBytes: 128 << 20}},
	} {
		if got := Limits(tt.resources, tt.limit); got != tt.want {
			t.Errorf("%s: Limits = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestLimitationMessage(t *testing.T) {
	for _, tt := range []struct {
		kills, limit uint64
		want         string
	}{
		{1, 32 << 20, "Memory limit exceeded: the kernel's OOM killer killed 1 process of the container to keep it within its memory limit of 32 MiB (33554432 bytes)"},
		{2, 3 << 29, "killed 2 processes of the container to keep it within its memory limit of 1.5 GiB (1610612736 bytes)"},
		{1, 0, "within its memory limit"},
	} {
		if got := limitationMessage(tt.kills, tt.limit); !strings.Contains(got, tt.want) {
			t.Errorf("limitationMessage(%d, %d) = %q, want it to contain %q", tt.kills, tt.limit, got, tt.want)
		}
	}
}

// helperEnv makes the test binary allocate the given bytes once a byte
// arrives on stdin, then wait for stdin to close.
const helperEnv = "BERTH_CGROUPS_ISOLATOR_TEST_ALLOC"

func TestMain(m *testing.M) {
	if n := os.Getenv(helperEnv); n != "" {
		size, _ := strconv.Atoi(n)
		var b [1]byte
		_, _ = os.Stdin.Read(b[:])
		mem := make([]byte, size)
		for i := 0; i < len(mem); i += 4096 {
			mem[i] = 1
		}
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// isolators returns both isolators on this host below a fresh berth-test
// root, removed at the end of the test even when it failed.
func isolators(t *testing.T) (*CPU, *Mem) {
	t.Helper()
	root, _, _ := cgroupstest.Root(t, "iso")
	l, err := cg.Detect()
	if err != nil {
		t.Fatal(err)
	}
	cpu, err := NewCPU(l, root)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := NewMem(l, root)
	if err != nil {
		t.Fatal(err)
	}
	return cpu, mem
}

func TestIsolatorsLimitWatchCleanup(t *testing.T) {
	cpu, mem := isolators(t)
	ctx := context.Background()
	id := &typesv1.ContainerID{Value: "iso1"}
	config := &typesv1.ContainerConfig{Limits: &typesv1.Resources{Cpus: 0.5, MemBytes: 32 << 20}}
	for _, iso := range []interface {
		Prepare(context.Context, *typesv1.ContainerID, *typesv1.ContainerConfig) (*isolatorv1.ContainerLaunchInfo, error)
	}{cpu, mem} {
		if info, err := iso.Prepare(ctx, id, config); err != nil || info != nil {
			t.Fatalf("Prepare = %v, %v", info, err)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+strconv.Itoa(128<<20))
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Close(); _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for _, iso := range []interface {
		Isolate(context.Context, *typesv1.ContainerID, int) error
	}{cpu, mem} {
		if err := iso.Isolate(ctx, id, cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
	}
	if lim, err := cpu.Watch(ctx, id); lim != nil || err != nil {
		t.Errorf("cgroups/cpu Watch = %v, %v; want nothing at once", lim, err)
	}
	u, err := mem.Usage(ctx, id)
	if err != nil || u.GetMemLimitBytes() != 32<<20 || u.GetProcesses() != 1 {
		t.Errorf("cgroups/mem Usage = %v, %v; want limit 32 MiB, 1 process", u, err)
	}
	if _, err := cpu.Usage(ctx, id); err != nil {
		t.Errorf("cgroups/cpu Usage: %v", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	type watched struct {
		lim *typesv1.Limitation
		err error
	}
	got := make(chan watched, 1)
	go func() {
		lim, err := mem.Watch(wctx, id)
		got <- watched{lim, err}
	}()
	if _, err := in.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	w := <-got
	if w.err != nil || w.lim == nil || len(w.lim.GetResources()) != 1 || w.lim.GetResources()[0] != "mem" ||
		!strings.HasPrefix(w.lim.GetMessage(), "Memory limit exceeded") || !strings.Contains(w.lim.GetMessage(), "32 MiB") {
		t.Fatalf("Watch = %v, %v; want a mem limitation naming 32 MiB", w.lim, w.err)
	}
	// A Watch cancelled before it looked still reports a kill that
	// happened (the destroy of a command whose exit was seen first).
	cancelled, stop := context.WithCancel(ctx)
	stop()
	if lim, err := mem.Watch(cancelled, id); err != nil || lim == nil || lim.GetResources()[0] != "mem" {
		t.Errorf("cancelled Watch after an OOM kill = %v, %v; want the limitation", lim, err)
	}
	// Update writes new limits to a living container.
	if err := cpu.Update(ctx, id, nil, &typesv1.Resources{Cpus: 1}); err != nil {
		t.Error(err)
	}
	for _, iso := range []interface {
		Cleanup(context.Context, *typesv1.ContainerID) error
	}{mem, cpu, mem} {
		if err := iso.Cleanup(ctx, id); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	}
	for _, m := range []*cg.Manager{cpu.Manager(), mem.Manager()} {
		if m.Exists(id.GetValue()) {
			t.Errorf("cgroups of %s left after Cleanup: %v", id.GetValue(), m.Dirs(id.GetValue()))
		}
	}
	if err := cpu.Update(ctx, id, nil, &typesv1.Resources{Cpus: 1}); err == nil {
		t.Error("Update of a cleaned-up container: no error")
	}
	// A Watch of a container without a cgroup ends at once, without a limitation.
	if lim, err := mem.Watch(ctx, id); lim != nil || err != nil {
		t.Errorf("Watch after Cleanup = %v, %v", lim, err)
	}
}

func TestIsolatorsRecoverDestroysUnknown(t *testing.T) {
	cpu, mem := isolators(t)
	ctx := context.Background()
	for _, name := range []string{"known", "stale"} {
		for _, m := range []*cg.Manager{cpu.Manager(), mem.Manager()} {
			if err := m.Create(name); err != nil {
				t.Fatal(err)
			}
		}
	}
	known := []*isolatorv1.RecoveredContainer{{ContainerId: &typesv1.ContainerID{Value: "known"}}}
	for _, iso := range []interface {
		Recover(context.Context, []*isolatorv1.RecoveredContainer, []*typesv1.ContainerID) error
	}{cpu, mem} {
		if err := iso.Recover(ctx, known, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []*cg.Manager{cpu.Manager(), mem.Manager()} {
		if names, _ := m.List(); len(names) != 1 || names[0] != "known" {
			t.Errorf("after Recover: %v, want [known]", names)
		}
	}
	known0 := known[0].GetContainerId()
	if err := mem.Cleanup(ctx, known0); err != nil {
		t.Error(err)
	}
	if err := cpu.Cleanup(ctx, known0); err != nil {
		t.Error(err)
	}
}
