package agent_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthrt/berth/actors/agent"
	"github.com/berthrt/berth/actors/ask"
	agentv1 "github.com/berthrt/berth/messages/agent/v1"
	containerizerv1 "github.com/berthrt/berth/messages/containerizer/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/builtin"
	"github.com/berthrt/berth/process/cgroups"
	"github.com/berthrt/berth/process/cgroups/cgroupstest"
)

// TestAgentCgroupsUsageUpdateLimitation runs containers through a real agent
// with cgroups/cpu and cgroups/mem: usage reports the limit, the processes
// and CPU time; an update rewrites the limits; an OOM kill ends a container
// with a memory limitation; nothing is left below the cgroups root.
func TestAgentCgroupsUsageUpdateLimitation(t *testing.T) {
	root, cpu, _ := cgroupstest.Root(t, "agent")
	ag := startAgent(t, agent.Options{
		Isolation:   "filesystem/linux,docker/runtime,cgroups/cpu,cgroups/mem,namespaces/pid",
		CgroupsRoot: root,
	})
	ctx := context.Background()
	run := func(id string, mem uint64, argv ...string) *typesv1.ContainerID {
		t.Helper()
		cid := &typesv1.ContainerID{Value: id}
		config := &typesv1.ContainerConfig{
			Command: &typesv1.CommandInfo{Arguments: argv},
			ContainerInfo: &typesv1.ContainerInfo{
				Image: &typesv1.Image{Type: typesv1.Image_TYPE_DOCKER, Docker: &typesv1.Image_Docker{Name: builtin.Reference}, Cached: true},
			},
			Limits: &typesv1.Resources{Cpus: 0.5, MemBytes: mem},
		}
		if _, err := ask.Request[*agentv1.RunContainerResponse](ctx, ag.System.Root, ag.PID,
			&agentv1.RunContainerRequest{ContainerId: cid, Config: config}, 5*time.Minute); err != nil {
			t.Fatalf("run %s: %v", id, err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(ag.SandboxDir(id)) })
		return cid
	}
	wait := func(cid *typesv1.ContainerID) *typesv1.Termination {
		t.Helper()
		w, err := ask.Request[*containerizerv1.WaitContainerResponse](ctx, ag.System.Root, ag.Containerizer,
			&containerizerv1.WaitContainerRequest{ContainerId: cid}, time.Minute)
		if err != nil {
			t.Fatalf("wait %s: %v", cid.GetValue(), err)
		}
		return w.GetTermination()
	}

	busy := run("busy", 64<<20, "/bin/sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 30")
	var u *typesv1.ResourceStatistics
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		r, err := ask.Request[*containerizerv1.GetContainerUsageResponse](ctx, ag.System.Root, ag.Containerizer,
			&containerizerv1.GetContainerUsageRequest{ContainerId: busy}, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		// The kernel flushes memory statistics lazily: wait for both.
		if u = r.GetStatistics(); u.GetCpusUserTimeSecs()+u.GetCpusSystemTimeSecs() > 0 && u.GetMemRssBytes() > 0 {
			break
		}
	}
	if u.GetMemLimitBytes() != 64<<20 || u.GetProcesses() < 2 || u.GetMemRssBytes() == 0 || u.GetCpusUserTimeSecs()+u.GetCpusSystemTimeSecs() <= 0 {
		t.Errorf("usage %v: want the 64 MiB limit, the init and its command, some memory and CPU time", u)
	}
	if _, err := ask.Request[*containerizerv1.UpdateContainerResponse](ctx, ag.System.Root, ag.Containerizer,
		&containerizerv1.UpdateContainerRequest{ContainerId: busy, Limits: &typesv1.Resources{Cpus: 2, MemBytes: 128 << 20}}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	quotaFile, want := "cpu.cfs_quota_us", "200000"
	if cpu.Version() == cgroups.V2 {
		quotaFile, want = "cpu.max", "200000 100000"
	}
	if got, _ := os.ReadFile(filepath.Join(cpu.Dirs("busy")[0], quotaFile)); strings.TrimSpace(string(got)) != want {
		t.Errorf("%s after the update = %q, want %q", quotaFile, got, want)
	}
	r, err := ask.Request[*containerizerv1.GetContainerUsageResponse](ctx, ag.System.Root, ag.Containerizer,
		&containerizerv1.GetContainerUsageRequest{ContainerId: busy}, 10*time.Second)
	if err != nil || r.GetStatistics().GetMemLimitBytes() != 128<<20 {
		t.Errorf("usage after the update: %v, %v; want the 128 MiB limit", r, err)
	}
	if _, err := ask.Request[*containerizerv1.DestroyContainerResponse](ctx, ag.System.Root, ag.Containerizer,
		&containerizerv1.DestroyContainerRequest{ContainerId: busy}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if term := wait(busy); term.GetReason() != typesv1.Termination_REASON_DESTROYED {
		t.Errorf("destroyed container: %v", term)
	}

	oom := run("oom", 32<<20, "/bin/sh", "-c", "head -c 100000000 /dev/zero | tail")
	term := wait(oom)
	if term.GetReason() != typesv1.Termination_REASON_LIMITATION || len(term.GetLimitedResources()) != 1 || term.GetLimitedResources()[0] != "mem" ||
		!strings.HasPrefix(term.GetMessage(), "Memory limit exceeded") {
		t.Errorf("OOM-killed container: %v; want a mem limitation", term)
	}
	if names, _ := cpu.List(); len(names) > 0 {
		t.Errorf("cgroups of ended containers left: %v", names)
	}
}
