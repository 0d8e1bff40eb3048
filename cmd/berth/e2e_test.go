package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthrt/berth/actors/actortest"
	"github.com/berthrt/berth/fixtures/images"
)

// berthBin is the berth binary the end-to-end tests run, built once.
var berthBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "berth-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	berthBin = filepath.Join(dir, "berth")
	out, err := exec.Command("go", "build", "-o", berthBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build berth: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// host is a work dir and a runtime dir for one test's embedded agents.
type host struct {
	root, work, runtime string
}

func newHost(t *testing.T) *host {
	t.Helper()
	actortest.RequiresRoot(t)
	dir, err := os.MkdirTemp("", "berth-test-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	h := &host{root: dir, work: filepath.Join(dir, "work"), runtime: filepath.Join(dir, "run")}
	t.Cleanup(func() {
		h.assertClean(t)
		os.RemoveAll(dir)
	})
	return h
}

// execute runs `berth execute` with the host's dirs and returns stdout,
// stderr and the exit code.
func (h *host) execute(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	all := append([]string{"execute", "--work_dir=" + h.work, "--runtime-dir=" + h.runtime}, args...)
	cmd := exec.Command(berthBin, all...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("berth execute: %v", err)
	}
	return stdout.String(), stderr.String(), code
}

// assertClean checks that no container left anything: no mount below the
// test's dir, no rootfs, no sandbox, no runtime dir, no process.
func (h *host) assertClean(t *testing.T) {
	t.Helper()
	for _, m := range actortest.MountsBelow(t, h.root) {
		t.Errorf("left mounted: %s", m)
	}
	for _, d := range []string{
		filepath.Join(h.work, "provisioner", "containers"),
		filepath.Join(h.work, "sandboxes"),
		filepath.Join(h.runtime, "containers"),
	} {
		ents, err := os.ReadDir(d)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Error(err)
		}
		for _, e := range ents {
			t.Errorf("left behind: %s", filepath.Join(d, e.Name()))
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte(h.runtime)) {
			t.Errorf("process left running: %s: %q", p, b)
		}
	}
}

func TestE2EExecuteBuiltinImage(t *testing.T) {
	h := newHost(t)
	out, errOut, code := h.execute(t, "--name=hello1", `--command=echo hello from $(hostname); tr '\0' ' ' </proc/1/cmdline; echo; ls /; readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt`)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, errOut)
	}
	for _, want := range []string{"hello from hello1\n", " init hello1 ", "\nbin\n", "\ntmp\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, ns := range []string{"pid", "mnt"} {
		host, _ := os.Readlink("/proc/self/ns/" + ns)
		if strings.Contains(out, host) {
			t.Errorf("the container shares the host's %s namespace %s", ns, host)
		}
	}
	// The image is cached and listed.
	ls, err := exec.Command(berthBin, "image", "ls", "--work_dir="+h.work).CombinedOutput()
	if err != nil || !strings.Contains(string(ls), "localhost/berth/default") {
		t.Errorf("berth image ls: %v\n%s", err, ls)
	}
}

func TestE2EExecuteExitCodeEnvWorkdir(t *testing.T) {
	h := newHost(t)
	if _, errOut, code := h.execute(t, "--command=exit 3"); code != 3 {
		t.Errorf("exit %d, want 3; stderr:\n%s", code, errOut)
	}
	out, errOut, code := h.execute(t, "--env=GREETING=hi there", "--workdir=/tmp", "--command=echo $GREETING; pwd")
	if code != 0 || out != "hi there\n/tmp\n" {
		t.Errorf("exit %d, output %q, want \"hi there\\n/tmp\\n\"; stderr:\n%s", code, out, errOut)
	}
	out, errOut, code = h.execute(t, "--", "sh", "-c", "kill -TERM $$")
	if code != 128+15 {
		t.Errorf("killed by SIGTERM: exit %d, want 143; output %q, stderr:\n%s", code, out, errOut)
	}
}

func TestE2EExecuteBadInput(t *testing.T) {
	h := newHost(t)
	tests := []struct {
		name     string
		args     []string
		code     int
		mentions []string
	}{
		{"unknown image", []string{"--image=nosuch/image:1.0", "--command=true"}, 125, []string{"nosuch/image"}},
		{"missing tarball", []string{"--image=docker-archive:" + filepath.Join(h.root, "missing.tar"), "--command=true"}, 125, []string{"missing.tar"}},
		{"command not found", []string{"--", "no-such-command", "arg"}, 127, []string{"no-such-command"}},
		{"not executable", []string{"--", "/etc/passwd"}, 126, []string{"/etc/passwd"}},
		{"backend not yet", []string{"--backend=overlay", "--command=true"}, 125, []string{"overlay"}},
		{"malformed image config", []string{"--image=docker-archive:" + brokenArchive(t, h, images.MalformedConfig), "--command=true"}, 125, []string{"config"}},
		{"layer digest mismatch", []string{"--image=docker-archive:" + brokenArchive(t, h, images.DiffIDMismatch), "--command=true"}, 125, []string{"diff"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := h.execute(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, errOut)
			}
			for _, m := range tt.mentions {
				if !strings.Contains(errOut, m) {
					t.Errorf("stderr does not name %q:\n%s", m, errOut)
				}
			}
			h.assertClean(t)
		})
	}
}

// brokenArchive writes a `docker save` tarball broken as b.
func brokenArchive(t *testing.T, h *host, b images.Breakage) string {
	t.Helper()
	spec := images.Standard("berth/broken:latest")
	spec.Break = b
	path := filepath.Join(h.root, fmt.Sprintf("broken-%d.tar", b))
	if _, err := images.DockerArchive(path, spec, images.ArchiveModern); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestE2EExecuteArchiveAndLayout runs the built-in image again as a
// `docker save` tarball written by skopeo and as an OCI layout, with the
// image's config honoured and --env, --workdir and a user applied.
func TestE2EExecuteArchiveAndLayout(t *testing.T) {
	h := newHost(t)
	if _, errOut, code := h.execute(t, "--command=true"); code != 0 {
		t.Fatalf("built-in image: exit %d: %s", code, errOut)
	}
	layout := filepath.Join(h.work, "store", "docker", "builtin")
	out, errOut, code := h.execute(t, "--image=oci:"+layout+":latest", "--user=nobody", "--command=id -u; echo $PATH")
	if code != 0 || !strings.HasPrefix(out, "65534\n/usr/local/sbin:") {
		t.Errorf("oci layout: exit %d, output %q; stderr:\n%s", code, out, errOut)
	}
	skopeo := actortest.RequiresTool(t, "skopeo", "skopeo")
	tarball := filepath.Join(h.root, "default.tar")
	if b, err := exec.Command(skopeo, "copy", "oci:"+layout+":latest", "docker-archive:"+tarball+":berth/e2e:v1").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, b)
	}
	out, errOut, code = h.execute(t, "--image=docker-archive:"+tarball, "--env=X=from-env", "--workdir=/var", "--command=echo $X $(pwd)")
	if code != 0 || out != "from-env /var\n" {
		t.Errorf("docker archive: exit %d, output %q; stderr:\n%s", code, out, errOut)
	}
	// Now stored under its RepoTag.
	out, errOut, code = h.execute(t, "--image=berth/e2e:v1", "--", "cat", "/etc/passwd")
	if code != 0 || !strings.Contains(out, "root:") {
		t.Errorf("stored image by name: exit %d, output %q; stderr:\n%s", code, out, errOut)
	}
}
