package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthrt/berth/actors/actortest"
	"github.com/berthrt/berth/process/cgroups"
)

// cgroupsIsolation is the default isolation plus both cgroups isolators.
const cgroupsIsolation = "--isolation=filesystem/linux,docker/runtime,cgroups/cpu,cgroups/mem,namespaces/pid,namespaces/ipc,namespaces/uts"

// cgroupsRoot returns a fresh --cgroups_root for the test and the Managers
// that look at it; at the end it checks that no container cgroup is left
// and removes the root, even when the test failed.
func cgroupsRoot(t *testing.T) (string, *cgroups.Manager) {
	t.Helper()
	l, err := cgroups.Detect()
	if err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	root := "berth-test-e2e-" + hex.EncodeToString(b[:])
	cpu, err := cgroups.NewManager(l, root, []string{cgroups.CPU})
	if err != nil {
		if actortest.InCI() {
			t.Fatal(err)
		}
		t.Skipf("this host cannot limit CPU through cgroups: %v", err)
	}
	mem, err := cgroups.NewManager(l, root, []string{cgroups.Memory})
	if err != nil {
		if actortest.InCI() {
			t.Fatal(err)
		}
		t.Skipf("this host cannot limit memory through cgroups: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, m := range []*cgroups.Manager{cpu, mem} {
			gone, err := m.Purge(ctx, nil)
			for _, n := range gone {
				t.Errorf("cgroup left behind: %v", m.Dirs(n))
			}
			if err != nil {
				t.Error(err)
			}
			if err := m.RemoveRoot(); err != nil {
				t.Error(err)
			}
		}
	})
	return "--cgroups_root=" + root, cpu
}

// TestE2EExecuteMemoryLimit: a command that allocates beyond --mem is
// killed, berth says why and exits non-zero; nothing is left.
func TestE2EExecuteMemoryLimit(t *testing.T) {
	h := newHost(t)
	rootFlag, _ := cgroupsRoot(t)
	_, errOut, code := h.execute(t, cgroupsIsolation, rootFlag, "--mem=32MiB",
		"--command=head -c 100000000 /dev/zero | tail; echo survived")
	if code == 0 || !strings.Contains(errOut, "Memory limit exceeded") || !strings.Contains(errOut, "32 MiB") {
		t.Errorf("exit %d, stderr:\n%s\nwant a non-zero exit and the memory limit named", code, errOut)
	}
	for _, flag := range []string{"--mem=lots", "--cpus=-1"} {
		name, _, _ := strings.Cut(flag, "=")
		if _, errOut, code := h.execute(t, cgroupsIsolation, rootFlag, flag, "--command=true"); code != 2 || !strings.Contains(errOut, name) {
			t.Errorf("%s: exit %d, stderr:\n%s\nwant 2 and the flag named", flag, code, errOut)
		}
	}
}

// TestE2EExecuteCgroupsWithinLimits: a container within its limits runs in
// its cgroups, with the CPU quota of --cpus written.
func TestE2EExecuteCgroupsWithinLimits(t *testing.T) {
	h := newHost(t)
	rootFlag, cpu := cgroupsRoot(t)
	root := strings.TrimPrefix(rootFlag, "--cgroups_root=")
	const name = "cglimits"
	cmd := exec.Command(berthBin, "execute", "--work_dir="+h.work, "--runtime_dir="+h.runtime, "--name="+name,
		cgroupsIsolation, rootFlag, "--cpus=0.5", "--mem=64MiB",
		"--command=cat /proc/self/cgroup; head -c 16000000 /dev/zero | tail | wc -c; sleep 1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// While it runs, its cgroup has the quota of half a CPU.
	quotaFile, want := "cpu.cfs_quota_us", "50000"
	if cpu.Version() == cgroups.V2 {
		quotaFile, want = "cpu.max", "50000 100000"
	}
	path := filepath.Join(cpu.Dirs(name)[0], quotaFile)
	var quota string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if b, err := os.ReadFile(path); err == nil {
			quota = strings.TrimSpace(string(b))
			break
		}
	}
	if quota != want {
		t.Errorf("%s = %q, want %q", path, quota, want)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("berth execute: %v; stderr:\n%s", err, stderr.String())
	}
	out := stdout.String()
	if !strings.Contains(out, "/"+root+"/"+name+"\n") || !strings.Contains(out, "16000000\n") {
		t.Errorf("output does not show the container in %s/%s or its 16 MB:\n%s", root, name, out)
	}
}
