package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthrt/berth/fixtures/images"
	"github.com/berthrt/berth/process/builtin"
)

// gcRounds returns the image GC rounds an agent's JSON log reports, each as
// the list of images it removed.
func gcRounds(t *testing.T, h *host) [][]string {
	t.Helper()
	data, err := os.ReadFile(h.agentLog())
	if err != nil {
		t.Fatal(err)
	}
	var rounds [][]string
	for _, line := range bytes.Split(data, []byte("\n")) {
		var rec struct {
			Msg    string   `json:"msg"`
			Images []string `json:"images"`
		}
		if json.Unmarshal(line, &rec) == nil && rec.Msg == "image gc: pruned" {
			rounds = append(rounds, rec.Images)
		}
	}
	return rounds
}

// waitGCRound waits for a GC round after the first after ones and returns it.
func waitGCRound(t *testing.T, h *host, after int) []string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if r := gcRounds(t, h); len(r) > after {
			return r[after]
		}
		time.Sleep(20 * time.Millisecond)
	}
	logs, _ := os.ReadFile(h.agentLog())
	t.Fatalf("no image GC round after %d:\n%s", after, logs)
	return nil
}

// storedImages lists the references `berth image ls` shows.
func storedImages(t *testing.T, h *host) []string {
	t.Helper()
	out, err := exec.Command(berthBin, "image", "ls", "--work_dir="+h.work).CombinedOutput()
	if err != nil {
		t.Fatalf("berth image ls: %v\n%s", err, out)
	}
	var refs []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 0 {
			refs = append(refs, f[0])
		}
	}
	return refs
}

// storedLayers lists the layer ids in the docker store's cache.
func storedLayers(t *testing.T, h *host) map[string]bool {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(h.work, "store", "docker", "layers"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range ents {
		out[e.Name()] = true
	}
	return out
}

// TestE2EImageGC: an agent whose store's disk is over the GC threshold
// prunes the images no container uses, round after round, and never the
// image, nor the layers, of a running container; once that container is
// gone, its image goes too. Containers launched meanwhile are unharmed.
func TestE2EImageGC(t *testing.T) {
	h := newHost(t)
	if _, errOut, code := h.execute(t, "--command=true"); code != 0 {
		t.Fatalf("built-in image: exit %d: %s", code, errOut)
	}
	layout := filepath.Join(h.root, "small")
	if _, err := images.OCILayout(layout, "v1", images.Small("", "gc-victim")); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(berthBin, "image", "pull", "--work_dir="+h.work, "oci:"+layout+":v1").CombinedOutput(); err != nil {
		t.Fatalf("berth image pull: %v\n%s", err, out)
	}
	before := storedImages(t, h)
	if len(before) != 2 {
		t.Fatalf("images before the GC: %q, want the built-in one and the small one", before)
	}
	layersBefore := map[string]bool{}
	for id := range storedLayers(t, h) {
		layersBefore[id] = true
	}

	// Any used disk is over this threshold: every round prunes.
	addr := freeAddr(t)
	h.startAgent(t, addr, "--image_gc_threshold=0.000001", "--image_gc_interval=100ms", "--log_format=json")
	remote := []string{"--agent=" + addr, "--plaintext_loopback"}
	t.Cleanup(func() {
		// On failure the container may still run: destroy it before the
		// agent is killed.
		_ = exec.Command(berthBin, append([]string{"destroy", "busy"}, remote...)...).Run()
	})
	client := exec.Command(berthBin, append([]string{"execute", "--name=busy", "--command=echo started; sleep 2; ls /bin/busybox"}, remote...)...)
	var stdout, stderr bytes.Buffer
	client.Stdout, client.Stderr = &stdout, &stderr
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	running := 0
	for i := 0; ; i++ {
		out, _ := exec.Command(berthBin, append([]string{"ps"}, remote...)...).CombinedOutput()
		if strings.Contains(string(out), "busy") && strings.Contains(string(out), "RUNNING") {
			running = len(gcRounds(t, h))
			break
		}
		if i > 1500 {
			_ = client.Process.Kill()
			t.Fatalf("the container never ran:\n%s\n%s", out, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A round that starts while the container runs keeps its image.
	waitGCRound(t, h, running+1)
	during := storedImages(t, h)
	if len(during) != 1 || during[0] != builtin.Reference {
		t.Errorf("images while the container runs: %q, want only %s", during, builtin.Reference)
	}
	layers := storedLayers(t, h)
	for _, id := range listLayerIDs(t, h, builtin.Reference) {
		if !layers[id] {
			t.Errorf("layer %s of the running container's image was pruned", id)
		}
	}
	if len(layers) >= len(layersBefore) {
		t.Errorf("the small image's layer survived the GC: %d layers before, %d after", len(layersBefore), len(layers))
	}
	err := client.Wait()
	if err != nil || !strings.Contains(stdout.String(), "started\n/bin/busybox") {
		t.Fatalf("the container: %v, output %q, stderr:\n%s", err, stdout.String(), stderr.String())
	}
	// Once the container is gone, its image goes at the next round.
	done := len(gcRounds(t, h))
	waitGCRound(t, h, done+1)
	if after := storedImages(t, h); len(after) != 0 {
		t.Errorf("images after the container ended: %q, want none", after)
	}
	if layers := storedLayers(t, h); len(layers) != 0 {
		t.Errorf("layers after the container ended: %v, want none", layers)
	}
	// The agent keeps serving: the built-in image is built again.
	out, err := exec.Command(berthBin, append([]string{"execute", "--command=echo again"}, remote...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "again") {
		t.Errorf("a container after the GC: %v\n%s", err, out)
	}
}

// listLayerIDs returns the layer ids `berth image inspect` shows for ref.
func listLayerIDs(t *testing.T, h *host, ref string) []string {
	t.Helper()
	out, err := exec.Command(berthBin, "image", "inspect", ref, "--work_dir="+h.work).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("berth image inspect %s: %v\n%s", ref, err, ee.Stderr)
	}
	var imgs []struct {
		LayerIDs []string `json:"LayerIDs"`
	}
	if err := json.Unmarshal(out, &imgs); err != nil {
		t.Fatalf("berth image inspect %s: %v\n%s", ref, err, out)
	}
	if len(imgs) != 1 || len(imgs[0].LayerIDs) == 0 {
		t.Fatalf("berth image inspect %s: %s", ref, out)
	}
	return imgs[0].LayerIDs
}

// TestE2EImageCommandsThroughAgent: with an agent holding the work dir,
// berth image pull, rm and prune --agent ask it; a prune there keeps the
// image of a running container.
func TestE2EImageCommandsThroughAgent(t *testing.T) {
	h := newHost(t)
	layout := filepath.Join(h.root, "small")
	if _, err := images.OCILayout(layout, "v1", images.Small("", "via-agent")); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	h.startAgent(t, addr)
	remote := []string{"--agent=" + addr, "--plaintext_loopback"}
	berth := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(berthBin, append(args, remote...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// The pull's progress comes back from the agent.
	// stdout only: stderr may say the agent is still starting.
	pull, err := exec.Command(berthBin, append([]string{"image", "pull", "--output=json", "oci:" + layout + ":v1"}, remote...)...).Output()
	if err != nil {
		t.Fatalf("berth image pull --output=json: %v", err)
	}
	out := string(pull)
	phases := map[string]bool{}
	result := false
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev struct{ Type, Phase, Digest string }
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("pull --output=json through the agent: %q: %v\n%s", line, err, out)
		}
		phases[ev.Phase] = phases[ev.Phase] || ev.Type == "progress"
		result = result || ev.Type == "result" && strings.HasPrefix(ev.Digest, "sha256:")
	}
	if !result || !phases["done"] {
		t.Errorf("pull through the agent: progress %v, result %v:\n%s", phases, result, out)
	}
	if refs := storedImages(t, h); len(refs) != 1 {
		t.Fatalf("after the pull: %q", refs)
	}
	client := exec.Command(berthBin, append([]string{"execute", "--name=holder", "--command=sleep 3"}, remote...)...)
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Wait() })
	for i := 0; !strings.Contains(berth("ps"), "RUNNING"); i++ {
		if i > 1500 {
			t.Fatal("the container never ran")
		}
		time.Sleep(20 * time.Millisecond)
	}
	out = berth("image", "prune")
	if !strings.Contains(out, "removed 1 images") || strings.Contains(out, builtin.Reference) {
		t.Errorf("prune while the built-in image is in use: %s", out)
	}
	if refs := storedImages(t, h); len(refs) != 1 || refs[0] != builtin.Reference {
		t.Errorf("after the prune: %q, want %s", refs, builtin.Reference)
	}
	if err := client.Wait(); err != nil {
		t.Errorf("the container: %v", err)
	}
	if out := berth("image", "rm", builtin.Reference); !strings.Contains(out, "removed "+builtin.Reference) {
		t.Errorf("rm: %s", out)
	}
	if refs := storedImages(t, h); len(refs) != 0 {
		t.Errorf("after rm: %q", refs)
	}
}

// TestE2ESandboxGC: an agent removes the sandbox of a finished container
// after --gc_delay, never the sandbox of one still running.
func TestE2ESandboxGC(t *testing.T) {
	h := newHost(t)
	addr := freeAddr(t)
	h.startAgent(t, addr, "--gc_delay=1s", "--disk_watch_interval=100ms")
	remote := []string{"--agent=" + addr, "--plaintext_loopback"}
	if out, err := exec.Command(berthBin, append([]string{"execute", "--name=kept", "--keep_sandbox", "--command=echo kept"}, remote...)...).CombinedOutput(); err != nil {
		t.Fatalf("berth execute: %v\n%s", err, out)
	}
	kept := filepath.Join(h.work, "sandboxes", "kept")
	if b, err := os.ReadFile(filepath.Join(kept, "stdout")); err != nil || string(b) != "kept\n" {
		t.Fatalf("the kept sandbox: %q, %v", b, err)
	}
	live := exec.Command(berthBin, append([]string{"execute", "--name=live", "--command=sleep 4; echo done"}, remote...)...)
	var out bytes.Buffer
	live.Stdout = &out
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exec.Command(berthBin, append([]string{"destroy", "live"}, remote...)...).Run() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(kept); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(h.agentLog())
			t.Fatalf("the finished container's sandbox was never removed:\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The running container's sandbox, older than the delay by now, stays.
	time.Sleep(1500 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(h.work, "sandboxes", "live")); err != nil {
		t.Errorf("the running container's sandbox: %v", err)
	}
	if err := live.Wait(); err != nil || out.String() != "done\n" {
		t.Errorf("the running container: %v, output %q", err, out.String())
	}
}
