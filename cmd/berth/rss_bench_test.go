package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berthrt/berth/actors/actortest"
	"github.com/berthrt/berth/actors/agent"
	"github.com/berthrt/berth/actors/ask"
	agentv1 "github.com/berthrt/berth/messages/agent/v1"
	containerizerv1 "github.com/berthrt/berth/messages/containerizer/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/builtin"
)

// rssSteps are the container counts BenchmarkAgentRSS measures at, capped
// by BERTH_BENCH_RSS_MAX (default 1000).
func rssSteps(b *testing.B) []int {
	max := 1000
	if v := os.Getenv("BERTH_BENCH_RSS_MAX"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			b.Fatalf("BERTH_BENCH_RSS_MAX=%q: want a number of containers", v)
		}
		max = n
	}
	var steps []int
	for _, n := range []int{100, 1000} {
		if n <= max {
			steps = append(steps, n)
		}
	}
	if max > 0 && (len(steps) == 0 || steps[len(steps)-1] != max) {
		steps = append(steps, max)
	}
	return steps
}

// procKB reads a "Name:   N kB" field of a /proc file.
func procKB(path, field string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, field)
}

// BenchmarkAgentRSS starts a real `berth agent`, reads its VmRSS idle and
// with 100 and 1,000 long-running containers (`sleep` from the built-in
// image on overlay, launched over the agent's remote API), and
// the memory of the containers' inits (re-executions of the berth binary):
// VmRSS counts the pages they share once per process, Pss splits them.
// Then it destroys every container and checks that nothing is left. The
// counts are capped by BERTH_BENCH_RSS_MAX (0: idle only). Needs root.
func BenchmarkAgentRSS(b *testing.B) {
	actortest.RequiresRoot(b)
	steps := rssSteps(b)
	dir, err := os.MkdirTemp("", "berth-test-rss-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	work, runtime := filepath.Join(dir, "work"), filepath.Join(dir, "run")
	addr, web := freeAddr(b), freeAddr(b)
	logs, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logs.Close()
	cmd := exec.Command(berthBin, "agent", "--work_dir="+work, "--runtime_dir="+runtime, "--listen="+addr, "--plaintext_loopback", "--http="+web)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	waitHealthy(b, web, exited, logs.Name())
	sys, stop, err := dialAgent(addr, remoteFlags{})
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	ctx := context.Background()
	agentRSS := func() float64 {
		kb, err := procKB(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid), "VmRSS")
		if err != nil {
			b.Fatal(err)
		}
		return float64(kb) / 1024
	}

	b.ResetTimer()
	// The built-in image is built and cached by a first container, so that
	// idle means an agent that has served.
	var ids []string
	var pids []int
	var mu sync.Mutex
	launch := func(n int) {
		const workers = 4
		next := make(chan int)
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					id := fmt.Sprintf("berth-test-rss-%d", i)
					config := &typesv1.ContainerConfig{
						Command: &typesv1.CommandInfo{Arguments: []string{"sleep", "3600"}},
						ContainerInfo: &typesv1.ContainerInfo{Image: &typesv1.Image{
							Type: typesv1.Image_TYPE_DOCKER, Docker: &typesv1.Image_Docker{Name: builtin.Reference}, Cached: true,
						}},
					}
					r, err := ask.Request[*agentv1.RunContainerResponse](ctx, sys.Root, agent.AgentPID(addr),
						&agentv1.RunContainerRequest{ContainerId: &typesv1.ContainerID{Value: id}, Config: config, Backend: "overlay"}, 5*time.Minute)
					if err != nil {
						b.Errorf("launch %s: %v", id, err)
						continue
					}
					mu.Lock()
					ids, pids = append(ids, id), append(pids, int(r.GetPid()))
					mu.Unlock()
				}
			}()
		}
		for i := len(ids); i < n; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		if b.Failed() {
			b.FailNow()
		}
	}
	destroyAll := func() {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for _, id := range ids {
			wg.Add(1)
			sem <- struct{}{}
			go func(id string) {
				defer func() { <-sem; wg.Done() }()
				_, err := ask.Request[*containerizerv1.DestroyContainerResponse](ctx, sys.Root, agent.ContainerizerPID(addr),
					&containerizerv1.DestroyContainerRequest{ContainerId: &typesv1.ContainerID{Value: id}}, 5*time.Minute)
				if err != nil {
					b.Errorf("destroy %s: %v", id, err)
				}
				_ = os.RemoveAll(filepath.Join(work, "sandboxes", id))
			}(id)
		}
		wg.Wait()
	}
	defer destroyAll()

	launch(1)
	destroyAll()
	ids, pids = nil, nil
	time.Sleep(time.Second)
	b.ReportMetric(agentRSS(), "rss-idle-MB")
	var initRSS, initPSS float64
	for _, n := range steps {
		launch(n)
		time.Sleep(time.Second)
		b.ReportMetric(agentRSS(), fmt.Sprintf("rss-%d-MB", n))
		var rss, pss int64
		for _, pid := range pids {
			r, err := procKB(fmt.Sprintf("/proc/%d/status", pid), "VmRSS")
			if err != nil {
				b.Fatalf("the init of a container: %v", err)
			}
			p, err := procKB(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss")
			if err != nil {
				b.Fatal(err)
			}
			rss, pss = rss+r, pss+p
		}
		saveProfiles(b, web, n)
		// Per container, at the largest count (the last step wins).
		initRSS, initPSS = float64(rss)/float64(len(pids)), float64(pss)/float64(len(pids))
	}
	if len(steps) > 0 {
		b.ReportMetric(initRSS, "init-rss-KB/container")
		b.ReportMetric(initPSS, "init-pss-KB/container")
	}
	destroyAll()
	ids, pids = nil, nil
	b.StopTimer()
	checkRSSHostClean(b, dir, runtime, work)
}

// saveProfiles fetches the agent's heap and goroutine profiles from its
// HTTP endpoint into $BERTH_BENCH_RSS_PROFILES (when set), as
// heap-<n>.pb.gz, goroutine-<n>.txt and heap-<n>.txt (with the runtime's
// MemStats at its end): where the memory of n containers
// goes (go tool pprof -sample_index=inuse_space heap-<n>.pb.gz).
func saveProfiles(b *testing.B, web string, n int) {
	out := os.Getenv("BERTH_BENCH_RSS_PROFILES")
	if out == "" {
		return
	}
	for _, p := range []struct{ path, file string }{
		{"/debug/pprof/heap?gc=1", fmt.Sprintf("heap-%d.pb.gz", n)},
		{"/debug/pprof/goroutine?debug=1", fmt.Sprintf("goroutine-%d.txt", n)},
		{"/debug/pprof/heap?debug=1", fmt.Sprintf("heap-%d.txt", n)},
	} {
		resp, err := http.Get("http://" + web + p.path)
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: %d %v", p.path, resp.StatusCode, err)
		}
		if err := os.WriteFile(filepath.Join(out, p.file), body, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// waitHealthy waits for the agent's /health to answer 200.
func waitHealthy(b *testing.B, web string, exited <-chan struct{}, log string) {
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + web + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			out, _ := os.ReadFile(log)
			b.Fatalf("the agent exited:\n%s", out)
		default:
		}
		if i > 1000 {
			out, _ := os.ReadFile(log)
			b.Fatalf("the agent never became healthy on %s:\n%s", web, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkRSSHostClean: no mount below dir, no container or rootfs or runtime
// dir left, no process of the containers, no cgroup named after them.
func checkRSSHostClean(b *testing.B, dir, runtime, work string) {
	for _, m := range actortest.MountsBelow(b, dir) {
		b.Errorf("left mounted: %s", m)
	}
	for _, d := range []string{filepath.Join(work, "provisioner", "containers"), filepath.Join(work, "sandboxes"), filepath.Join(runtime, "containers")} {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			b.Errorf("left behind: %s", filepath.Join(d, e.Name()))
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		c, _ := os.ReadFile(p)
		if bytes.Contains(c, []byte(runtime)) && !bytes.Contains(c, []byte("agent")) {
			b.Errorf("process left running: %s: %q", p, c)
		}
	}
	cgroups, _ := filepath.Glob("/sys/fs/cgroup/*/*berth-test-rss-*")
	nested, _ := filepath.Glob("/sys/fs/cgroup/*/*/*berth-test-rss-*")
	for _, c := range append(cgroups, nested...) {
		b.Errorf("cgroup left behind: %s", c)
	}
}
