package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berthrt/berth/actors/actortest"
)

// startDockerRegistry runs Debian's docker-registry (distribution) on a
// free loopback port with its storage in a temporary directory and returns
// its HOST:PORT; the registry is killed and its storage removed at the end
// of the test.
func startDockerRegistry(t *testing.T) string {
	t.Helper()
	bin := actortest.RequiresTool(t, "docker-registry", "apt-get install docker-registry")
	dir, err := os.MkdirTemp("", "berth-test-registry-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	addr := freeAddr(t)
	cfg := fmt.Sprintf(`version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: %s}, delete: {enabled: true}}
http: {addr: %s}
`, filepath.Join(dir, "data"), addr)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	logFile, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logFile.Close()
	})
	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(15 * time.Second); ; {
		resp, err := client.Get("http://" + addr + "/v2/")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("docker-registry did not come up on %s: %v\n%s", addr, err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// skopeoRun runs skopeo and returns its stdout.
func skopeoRun(t *testing.T, skopeo string, args ...string) string {
	t.Helper()
	out, err := exec.Command(skopeo, args...).Output()
	if err != nil {
		var stderr []byte
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

func TestE2ERegistryPull(t *testing.T) {
	skopeo := actortest.RequiresTool(t, "skopeo", "apt-get install skopeo")
	reg := startDockerRegistry(t)

	// Build the built-in image's layout and push it, gzip and zstd.
	src := newHost(t)
	if _, errOut, code := src.execute(t, "--command=true"); code != 0 {
		t.Fatalf("built-in image: exit %d: %s", code, errOut)
	}
	layout := "oci:" + filepath.Join(src.work, "store", "docker", "builtin") + ":latest"
	skopeoRun(t, skopeo, "copy", "--dest-tls-verify=false", layout, "docker://"+reg+"/berth/test:v1")
	skopeoRun(t, skopeo, "copy", "--dest-tls-verify=false", "--dest-compress-format", "zstd", layout, "docker://"+reg+"/berth/zstd:v1")
	var inspect struct{ Digest string }
	if err := json.Unmarshal([]byte(skopeoRun(t, skopeo, "inspect", "--tls-verify=false", "docker://"+reg+"/berth/test:v1")), &inspect); err != nil || inspect.Digest == "" {
		t.Fatalf("skopeo inspect: %v %+v", err, inspect)
	}

	h := newHost(t)
	flag := "--docker_registry=" + reg
	out, errOut, code := h.execute(t, flag, "--image="+reg+"/berth/test:v1", "--command=echo pulled")
	if code != 0 || out != "pulled\n" {
		t.Fatalf("by tag: exit %d, output %q; stderr:\n%s", code, out, errOut)
	}
	out, errOut, code = h.execute(t, flag, "--image="+reg+"/berth/test@"+inspect.Digest, "--command=echo by digest")
	if code != 0 || out != "by digest\n" {
		t.Errorf("by digest: exit %d, output %q; stderr:\n%s", code, out, errOut)
	}
	out, errOut, code = h.execute(t, flag, "--image="+reg+"/berth/zstd:v1", "--command=echo zstd")
	if code != 0 || out != "zstd\n" {
		t.Errorf("zstd: exit %d, output %q; stderr:\n%s", code, out, errOut)
	}
	_, errOut, code = h.execute(t, flag, "--image="+reg+"/berth/test:nope", "--command=true")
	if code != 125 || !strings.Contains(errOut, reg+"/berth/test:nope") {
		t.Errorf("unknown tag: exit %d (want 125); stderr:\n%s", code, errOut)
	}

	// A multi-arch index: the built-in image for this machine beside a
	// random foreign one.
	pushIndex(t, reg+"/berth/test:v1", reg+"/berth/multi:v1")
	out, errOut, code = h.execute(t, flag, "--image="+reg+"/berth/multi:v1", "--command=echo multi")
	if code != 0 || out != "multi\n" {
		t.Errorf("multi-arch index: exit %d, output %q; stderr:\n%s", code, out, errOut)
	}

	// berth image pull into another fresh work dir prints the reference
	// and the digest, and the image is listed.
	fresh := newHost(t)
	pull, err := exec.Command(berthBin, "image", "pull", "--work_dir="+fresh.work, flag, reg+"/berth/test:v1").CombinedOutput()
	if err != nil || !strings.Contains(string(pull), reg+"/berth/test:v1 "+inspect.Digest) {
		t.Errorf("berth image pull: %v\n%s", err, pull)
	}
	ls, err := exec.Command(berthBin, "image", "ls", "--work_dir="+fresh.work).CombinedOutput()
	if err != nil || !strings.Contains(string(ls), reg+"/berth/test:v1") || !strings.Contains(string(ls), "registry") {
		t.Errorf("berth image ls: %v\n%s", err, ls)
	}
	if out, err := exec.Command(berthBin, "image", "pull", "--work_dir="+fresh.work, flag, reg+"/berth/none:v1").CombinedOutput(); err == nil || !strings.Contains(string(out), reg+"/berth/none:v1") {
		t.Errorf("berth image pull of an unknown repository: %v\n%s", err, out)
	}
}

// pushIndex pushes to dst an image index of the image src for
// linux/runtime.GOARCH and a random image for another architecture.
func pushIndex(t *testing.T, src, dst string) {
	t.Helper()
	srcRef, err := name.ParseReference(src)
	if err != nil {
		t.Fatal(err)
	}
	native, err := remote.Image(srcRef)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: foreign, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: other}}},
		mutate.IndexAddendum{Add: native, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}},
	)
	dstRef, err := name.ParseReference(dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(dstRef, idx); err != nil {
		t.Fatal(err)
	}
}
