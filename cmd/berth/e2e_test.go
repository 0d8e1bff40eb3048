package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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
	// berth-init beside berth, as installed: the agent runs it.
	out, err := exec.Command("go", "build", "-o", dir+"/", ".", "../berth-init").CombinedOutput()
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
	js, err := exec.Command(berthBin, "image", "inspect", "localhost/berth/default:latest", "--work_dir="+h.work).Output()
	var inspected []struct {
		Reference, Source string
		LayerIDs          []string
	}
	if err != nil || json.Unmarshal(js, &inspected) != nil || len(inspected) != 1 || inspected[0].Source != "builtin" || len(inspected[0].LayerIDs) != 2 {
		t.Errorf("berth image inspect: %v\n%s", err, js)
	}
	if out, err := exec.Command(berthBin, "image", "inspect", "no/such:image", "--work_dir="+h.work).CombinedOutput(); err == nil || !strings.Contains(string(out), "no/such:image") {
		t.Errorf("berth image inspect of an unknown image = %v, %q; want an error naming it", err, out)
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
		{"aufs without kernel support", []string{"--backend=aufs", "--command=true"}, 125, []string{"aufs", "/proc/filesystems"}},
		{"bind with a multi-layer image", []string{"--backend=bind", "--command=true"}, 125, []string{"bind", "single-layer"}},
		{"unknown backend", []string{"--backend=zfs", "--command=true"}, 125, []string{"zfs", "overlay"}},
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

// TestE2EExecuteForwardsSignals: SIGTERM to `berth execute` reaches the
// container's command, and berth exits with its status; nothing is left.
func TestE2EExecuteForwardsSignals(t *testing.T) {
	h := newHost(t)
	if _, errOut, code := h.execute(t, "--command=true"); code != 0 {
		t.Fatalf("built-in image: exit %d: %s", code, errOut)
	}
	cmd := exec.Command(berthBin, "execute", "--work_dir="+h.work, "--runtime_dir="+h.runtime, "--name=sig",
		`--command=trap 'echo got TERM; exit 9' TERM; echo ready; while :; do sleep 0.05; done`)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := filepath.Join(h.work, "sandboxes", "sig", "stdout")
	for i := 0; ; i++ {
		if b, _ := os.ReadFile(ready); strings.Contains(string(b), "ready") {
			break
		}
		if i > 3000 {
			_ = cmd.Process.Kill()
			t.Fatalf("the container never became ready; stderr:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 9 || !strings.Contains(stdout.String(), "got TERM") {
		t.Fatalf("berth execute = %v, output %q, stderr:\n%s; want exit 9 after the trap ran", err, stdout.String(), stderr.String())
	}
}

// startAgent runs `berth agent` with args on a free loopback port until the
// test ends or stop is called; stop kills it with SIGKILL, as a crash would.
// Its logs are appended to h.agentLog().
func (h *host) startAgent(t *testing.T, addr string, args ...string) (stop func()) {
	t.Helper()
	cmd := exec.Command(berthBin, append([]string{"agent", "--work_dir=" + h.work, "--runtime_dir=" + h.runtime, "--listen=" + addr, "--plaintext_loopback"}, args...)...)
	logFile, err := os.OpenFile(h.agentLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop = func() {
		_ = cmd.Process.Kill()
		<-done
	}
	t.Cleanup(stop)
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
			break
		}
		if i > 500 {
			logs, _ := os.ReadFile(h.agentLog())
			t.Fatalf("the agent never listened on %s:\n%s", addr, logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Clients wait for an agent that listens but is still starting.
	return stop
}

// agentLog is where startAgent's agents log.
func (h *host) agentLog() string { return filepath.Join(h.root, "agent.log") }

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestE2EAgentCrashKeepsContainers: an agent killed with SIGKILL leaves its
// container running; the next agent recovers it, and the client that
// launched it still gets its exit code.
func TestE2EAgentCrashKeepsContainers(t *testing.T) {
	h := newHost(t)
	addr := freeAddr(t)
	stop := h.startAgent(t, addr)
	remote := []string{"--agent=" + addr, "--plaintext_loopback"}
	client, stdout, stderr := startRunning(t, remote, "survivor", "--command=sleep 4; echo done; exit 4")
	stop()
	h.startAgent(t, addr)
	out, err := exec.Command(berthBin, append([]string{"ps"}, remote...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "survivor") {
		t.Errorf("berth ps after the restart: %v\n%s", err, out)
	}
	err = client.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 4 || !strings.Contains(stdout.String(), "done") {
		t.Fatalf("client = %v, output %q; stderr:\n%s; want exit 4", err, stdout.String(), stderr.String())
	}
}

// TestE2EAgentSurvivesBadInput: garbage on the agent's port, an HTTP/2
// preface followed by junk, and requests about unknown containers each get
// an error; the agent keeps serving and a container still runs after.
func TestE2EAgentSurvivesBadInput(t *testing.T) {
	h := newHost(t)
	addr := freeAddr(t)
	h.startAgent(t, addr)
	remote := []string{"--agent=" + addr, "--plaintext_loopback"}
	for _, junk := range [][]byte{
		bytes.Repeat([]byte{0xff, 0x00, 0x13}, 4096),
		append([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), bytes.Repeat([]byte{0x00, 0x00, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01}, 64)...),
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(junk)
		_ = c.Close()
	}
	for _, cmd := range [][]string{{"wait", "no-such-container"}, {"kill", "no-such-container"}, {"destroy", "no-such-container"}} {
		out, err := exec.Command(berthBin, append(cmd, remote...)...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || !strings.Contains(string(out), "no-such-container") {
			t.Errorf("berth %s of an unknown container = %v, %q; want an error naming it", cmd[0], err, out)
		}
	}
	out, errOut, code := h.execute(t, append([]string{"--command=echo still serving"}, remote...)...)
	if code != 0 || out != "still serving\n" {
		t.Fatalf("after bad input: exit %d, %q; stderr:\n%s", code, out, errOut)
	}
}

// TestE2EClientsWhileAgentStarts: clients started while an agent starts
// either find nobody listening or are answered; none fails on the agent's
// actors not existing yet (they are spawned after the listener opens).
func TestE2EClientsWhileAgentStarts(t *testing.T) {
	h := newHost(t)
	addr := freeAddr(t)
	remote := []string{"--agent=" + addr, "--plaintext_loopback"}
	results := make(chan string, 64)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				out, err := exec.Command(berthBin, append([]string{"ps"}, remote...)...).CombinedOutput()
				switch {
				case err == nil:
					results <- "answered"
				case strings.Contains(string(out), "no berth agent at"):
					results <- "nobody"
				default:
					results <- fmt.Sprintf("failed: %v: %s", err, out)
				}
			}
		}()
	}
	h.startAgent(t, addr)
	answered := 0
	for answered < 8 {
		r := <-results
		if strings.HasPrefix(r, "failed") {
			t.Error(r)
		}
		if r == "answered" {
			answered++
		}
	}
	close(stop)
	go func() { wg.Wait(); close(results) }()
	for r := range results {
		if strings.HasPrefix(r, "failed") {
			t.Error(r)
		}
	}
}
