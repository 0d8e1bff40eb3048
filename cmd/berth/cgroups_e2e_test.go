package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthrt/berth/process/cgroups"
	"github.com/berthrt/berth/process/cgroups/cgroupstest"
)

// cgroupsIsolation is the default isolation plus both cgroups isolators.
const cgroupsIsolation = "--isolation=filesystem/linux,docker/runtime,cgroups/cpu,cgroups/mem,namespaces/pid,namespaces/ipc,namespaces/uts"

// cgroupsRoot returns the --cgroups_root flag of a fresh test root and its
// cpu Manager; cgroupstest checks and removes the root at the end.
func cgroupsRoot(t *testing.T) (string, *cgroups.Manager) {
	t.Helper()
	root, cpu, _ := cgroupstest.Root(t, "e2e")
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
