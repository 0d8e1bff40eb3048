package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// checkProfile has `go tool pprof` read a profile written by berth.
func checkProfile(t *testing.T, path, kind string) {
	t.Helper()
	out, err := exec.Command("go", "tool", "pprof", "-raw", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PeriodType: "+kind) {
		t.Errorf("go tool pprof -raw %s: %v\n%.400s", path, err, out)
	}
}

// TestE2EAgentHTTPEndpointAndProfiles: `berth agent --http` answers
// /health and /metrics while it runs a container, and writes its CPU and
// heap profiles when SIGTERM stops it; `berth execute --cpuprofile` does
// too.
func TestE2EAgentHTTPEndpointAndProfiles(t *testing.T) {
	h := newHost(t)
	addr, web := freeAddr(t), freeAddr(t)
	cpu, mem := filepath.Join(h.root, "agent.cpu"), filepath.Join(h.root, "agent.mem")
	cmd := exec.Command(berthBin, "agent", "--work_dir="+h.work, "--runtime_dir="+h.runtime, "--listen="+addr, "--plaintext_loopback",
		"--http="+web, "--cpuprofile="+cpu, "--memprofile="+mem)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
		}
	})
	var health struct {
		AgentID string `json:"agent_id"`
	}
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + web + "/health")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if err := json.Unmarshal(body, &health); err != nil || health.AgentID == "" {
					t.Fatalf("/health: %v %s", err, body)
				}
				break
			}
		}
		if i > 1000 {
			t.Fatalf("the agent's /health never answered 200:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	out, errOut, code := h.execute(t, "--agent="+addr, "--plaintext_loopback", "--", "/bin/true")
	if code != 0 {
		t.Fatalf("execute through the agent: exit %d %s %s", code, out, errOut)
	}
	resp, err := http.Get("http://" + web + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `berth_launches_total{outcome="ok"} 1`) {
		t.Errorf("/metrics after one launch:\n%s", body)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("the agent on SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the agent did not stop on SIGTERM:\n%s", logs.String())
	}
	checkProfile(t, cpu, "cpu nanoseconds")
	checkProfile(t, mem, "space bytes")

	execCPU := filepath.Join(h.root, "execute.cpu")
	if _, errOut, code := h.execute(t, "--cpuprofile="+execCPU, "--", "/bin/true"); code != 0 {
		t.Fatalf("execute --cpuprofile: exit %d %s", code, errOut)
	}
	checkProfile(t, execCPU, "cpu nanoseconds")
}

// TestE2EAgentHTTPRefusesNonLoopback: --http on a wildcard address is
// refused without --http_allow_remote, before anything starts.
func TestE2EAgentHTTPRefusesNonLoopback(t *testing.T) {
	h := newHost(t)
	out, err := exec.Command(berthBin, "agent", "--work_dir="+h.work, "--runtime_dir="+h.runtime, "--listen="+freeAddr(t),
		"--plaintext_loopback", "--http=0.0.0.0:0").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 || !strings.Contains(string(out), "http_allow_remote") {
		t.Fatalf("berth agent --http=0.0.0.0:0 = %v\n%s; want a refusal naming --http_allow_remote", err, out)
	}
}
