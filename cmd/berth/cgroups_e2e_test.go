package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	// Without --isolation, --mem brings the isolator that enforces it;
	// with an --isolation that lacks it, --mem is refused.
	_, errOut, code = h.execute(t, rootFlag, "--mem=32MiB", "--command=head -c 100000000 /dev/zero | tail; echo survived")
	if code == 0 || !strings.Contains(errOut, "Memory limit exceeded") {
		t.Errorf("--mem without --isolation: exit %d, stderr:\n%s\nwant the limit enforced", code, errOut)
	}
	if _, errOut, code := h.execute(t, "--isolation=filesystem/linux,docker/runtime", "--mem=32MiB", "--command=true"); code != 2 || !strings.Contains(errOut, "cgroups/mem") {
		t.Errorf("--mem with an isolation that lacks cgroups/mem: exit %d, stderr:\n%s\nwant 2 naming the isolator", code, errOut)
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

// TestE2EAgentRecoversCgroups: after an agent crash, the next agent keeps
// the cgroups of the container it recovers and watches its memory limit
// again (its later OOM kill ends it with the limitation), and destroys a
// cgroup below the root that no container owns.
func TestE2EAgentRecoversCgroups(t *testing.T) {
	h := newHost(t)
	rootFlag, cpu := cgroupsRoot(t)
	addr := freeAddr(t)
	stop := h.startAgent(t, addr, cgroupsIsolation, rootFlag)
	remote := []string{"--agent=" + addr, "--plaintext_loopback"}
	client, _, stderr := startRunning(t, remote, "oomlater", "--mem=32MiB",
		"--command=while [ ! -e /tmp/go ]; do sleep 0.05; done; head -c 100000000 /dev/zero | tail")
	// A cgroup below the root that no container owns (as a crash between
	// a destroy's kill and its rmdir would leave).
	if err := cpu.Create("stale"); err != nil {
		t.Fatal(err)
	}
	if names, _ := cpu.List(); !slices.Equal(names, []string{"oomlater", "stale"}) {
		t.Errorf("cgroups before the restart: %v, want [oomlater stale]", names)
	}
	stop()
	h.startAgent(t, addr, cgroupsIsolation, rootFlag)
	// berth ps answers once the agent has recovered.
	if out, err := exec.Command(berthBin, append([]string{"ps"}, remote...)...).CombinedOutput(); err != nil || !strings.Contains(string(out), "oomlater") {
		t.Fatalf("berth ps after the restart: %v\n%s", err, out)
	}
	if names, _ := cpu.List(); !slices.Equal(names, []string{"oomlater"}) {
		t.Errorf("cgroups after the recovery: %v, want [oomlater]", names)
	}
	// Now the recovered container allocates beyond its limit.
	pids, err := cpu.Procs("oomlater")
	if err != nil || len(pids) == 0 {
		t.Fatalf("the container's processes: %v, %v", pids, err)
	}
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/root/tmp/go", pids[0]), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err = client.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 || !strings.Contains(stderr.String(), "Memory limit exceeded") {
		t.Fatalf("client = %v; stderr:\n%s\nwant a non-zero exit and the memory limitation", err, stderr.String())
	}
}

// startRunning starts `berth execute --name=name args...` against the agent
// of remote, and returns once `berth ps` lists the container RUNNING.
func startRunning(t *testing.T, remote []string, name string, args ...string) (client *exec.Cmd, stdout, stderr *bytes.Buffer) {
	t.Helper()
	client = exec.Command(berthBin, append(append([]string{"execute", "--name=" + name}, args...), remote...)...)
	stdout, stderr = &bytes.Buffer{}, &bytes.Buffer{}
	client.Stdout, client.Stderr = stdout, stderr
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		out, _ := exec.Command(berthBin, append([]string{"ps"}, remote...)...).CombinedOutput()
		if strings.Contains(string(out), name) && strings.Contains(string(out), "RUNNING") {
			return client, stdout, stderr
		}
		if i > 1500 {
			t.Fatalf("the container never ran:\n%s\n%s", out, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
