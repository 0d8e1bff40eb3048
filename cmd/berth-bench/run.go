package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/berthrt/berth/actors/agent"
	"github.com/berthrt/berth/cmd/berth-bench/internal/report"
	"github.com/berthrt/berth/cmd/berth-bench/internal/stats"
	"github.com/berthrt/berth/process/errdefs"
)

// system is one way of running /bin/true in a fresh container; launch
// starts n at once and returns the time until the last one ended.
type system struct {
	name, note string
	launch     func(ctx context.Context, n int) (time.Duration, error)
}

var idCounter atomic.Int64

// nextID is a container id unique to this run.
func nextID() string {
	return fmt.Sprintf("berth-bench-%d-%d", os.Getpid(), idCounter.Add(1))
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "berth-bench: "+format+"\n", args...)
}

func run(ctx context.Context, cfg config) error {
	started := time.Now().UTC()
	root, module, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	if err := os.Chdir(root); err != nil {
		return err
	}
	res := &report.Results{Date: started.Format(time.RFC3339), Commit: commit(ctx, root), Quick: cfg.quick}
	if cfg.sections["launch"] || cfg.sections["throughput"] || cfg.sections["gobench"] {
		if os.Geteuid() != 0 {
			return fmt.Errorf("containers, mounts and the peers need root: run berth-bench (task bench) as root: %w", errdefs.ErrFailedPrecondition)
		}
		if err := ensurePeers(ctx, os.Getenv, logf); err != nil {
			return err
		}
	}
	res.Machine = machine(ctx)
	res.Machine.Versions["berth"] = res.Commit
	if cfg.sections["launch"] || cfg.sections["throughput"] {
		if err := measureContainers(ctx, cfg, res); err != nil {
			return err
		}
	}
	if cfg.sections["gobench"] {
		secs, notes, err := runGoBenches(ctx, cfg, root, module)
		if err != nil {
			return err
		}
		res.Sections = append(res.Sections, secs...)
		res.Notes = append(res.Notes, notes...)
	}
	if t := targetsSection(res); len(t.Rows) > 0 {
		res.Sections = append(res.Sections, t)
	}
	return writeResults(cfg, res, started)
}

// measureContainers sets up Berth (binary, agent, image) and the peers'
// bundle, and runs the launch and throughput sections.
func measureContainers(ctx context.Context, cfg config, res *report.Results) error {
	scratch, err := os.MkdirTemp(cfg.scratch, "berth-bench-")
	if err != nil {
		return err
	}
	defer removeScratch(scratch)
	berth := cfg.berth
	if berth == "" {
		logf("building berth")
		if berth, err = buildBerth(ctx, ".", scratch); err != nil {
			return err
		}
	}
	bundle, manifest, err := makeBundle(ctx, scratch)
	if err != nil {
		return err
	}
	// Per-boot state on tmpfs, as /run is on the hosts Berth, runc and crun
	// run on (their defaults: /run/berth, /run/runc, /run/crun); this
	// machine's /run may be on disk. Mounted before the crun helper's
	// private mount namespace is made, so it is there too.
	run, unmountRun, err := mountRunTmpfs(filepath.Join(scratch, "run"))
	if err != nil {
		return err
	}
	defer unmountRun()
	logf("OCI bundle of the built-in image (manifest %s) in %s", manifest, bundle)
	peer, err := startPeerServer()
	if err != nil {
		return err
	}
	defer peer.close()
	ag, client, stopAgent, err := agentWithClient(ctx, berth, filepath.Join(scratch, "agent", "work"), filepath.Join(run, "agent"))
	if err != nil {
		return err
	}
	defer stopAgent()
	// A second agent whose containers get cgroups (cpu, cpuacct, memory),
	// as runc's do; its cgroups root is removed at the end.
	cgRoot := fmt.Sprintf("berth-bench-%d", os.Getpid())
	defer removeCgroupsRoot(cgRoot)
	_, clientCg, stopAgentCg, err := agentWithClient(ctx, berth, filepath.Join(scratch, "agent-cgroups", "work"), filepath.Join(run, "agent-cgroups"),
		"--isolation="+agent.DefaultIsolation+",cgroups/cpu,cgroups/mem", "--cgroups_root="+cgRoot)
	if err != nil {
		return err
	}
	defer stopAgentCg()
	emb := filepath.Join(scratch, "embedded")
	execute := func(backend string, extra ...string) func(context.Context, int) (time.Duration, error) {
		return func(ctx context.Context, n int) (time.Duration, error) {
			argvs := make([][]string, n)
			for i := range argvs {
				argvs[i] = append(append([]string{berth, "execute", "--backend=" + backend, "--name=" + nextID()}, extra...), "--", "/bin/true")
			}
			return runProcs(ctx, argvs)
		}
	}
	embedded := []string{"--work_dir=" + filepath.Join(emb, "work"), "--runtime_dir=" + filepath.Join(run, "embedded")}
	viaAgent := func(backend string) func(context.Context, int) (time.Duration, error) {
		return func(ctx context.Context, n int) (time.Duration, error) { return client.launch(ctx, backend, n) }
	}
	runcRoot, crunRoot := filepath.Join(run, "runc"), filepath.Join(run, "crun")
	runc := func(ctx context.Context, n int) (time.Duration, error) {
		argvs := make([][]string, n)
		for i := range argvs {
			argvs[i] = []string{"runc", "--root=" + runcRoot, "run", "--bundle=" + bundle, nextID()}
		}
		return runProcs(ctx, argvs)
	}
	crun := func(_ context.Context, n int) (time.Duration, error) {
		argvs := make([][]string, n)
		for i := range argvs {
			argvs[i] = []string{"crun", "--cgroup-manager=disabled", "--root=" + crunRoot, "run", "--bundle=" + bundle, nextID()}
		}
		return peer.run(argvs)
	}
	agentCgroups := system{"berth-agent-overlay-cgroups", "as berth-agent-overlay, with the cgroups/cpu and cgroups/mem isolators added: each container gets cgroups, as runc's do", func(ctx context.Context, n int) (time.Duration, error) {
		return clientCg.launch(ctx, "overlay", n)
	}}
	agentOverlay := system{"berth-agent-overlay", "a running `berth agent`, requests (RunContainer + WaitContainer over its remote API) from a long-lived client in the harness; overlay backend", viaAgent("overlay")}
	runcSys := system{"runc", "`runc run` of the bundle (runc's default spec without the network namespace), exec'd from the harness", runc}
	crunSys := system{"crun", "`crun --cgroup-manager=disabled run` of the same bundle, exec'd from a helper in a private mount namespace without the cgroup2 mount (crun 1.8.1 refuses this host's hybrid cgroups otherwise); no cgroups at all, like Berth's default isolation (berth-agent-overlay-cgroups adds the cgroups isolators) and unlike runc, which makes one in every v1 hierarchy", crun}
	res.Notes = append(res.Notes,
		"All containers run /bin/true from the built-in image (process/builtin, reproducible from the host's files); runc and crun run an OCI bundle made by `umoci unpack` of that image's OCI layout.",
		"Per-boot state (Berth's --runtime_dir, runc's and crun's --root) is on a tmpfs the harness mounts, as /run is on most hosts; work dirs and the bundle are on the scratch dir's file system.",
		"Timings are wall clock from the request (process start for CLIs) to the command's exit and the container's teardown; systems alternate run by run so that drift cancels.")
	if cfg.sections["launch"] {
		systems := []system{
			{"berth-embedded-overlay", "one-shot `berth execute -- /bin/true` (embedded agent), overlay backend", execute("overlay", embedded...)},
			{"berth-embedded-copy", "one-shot `berth execute -- /bin/true` (embedded agent), copy backend", execute("copy", embedded...)},
			agentOverlay, agentCgroups,
			{"berth-agent-copy", "as berth-agent-overlay, copy backend", viaAgent("copy")},
			{"berth-agent-cli-overlay", "one-shot `berth execute --agent=ADDR -- /bin/true` against the running agent (client start-up counted), overlay backend", execute("overlay", "--agent="+ag.addr, "--plaintext_loopback")},
			runcSys, crunSys,
		}
		res.Sections = append(res.Sections, launchSections(ctx, cfg, systems)...)
	}
	if cfg.sections["throughput"] {
		res.Sections = append(res.Sections, throughputSections(ctx, cfg, []system{agentOverlay, agentCgroups, runcSys, crunSys})...)
	}
	works := []string{filepath.Join(scratch, "agent", "work"), filepath.Join(scratch, "agent-cgroups", "work")}
	if cfg.sections["launch"] {
		works = append(works, filepath.Join(emb, "work"))
	}
	res.Notes = append(res.Notes, sameImageNote(ctx, berth, manifest, works...))
	return ctx.Err()
}

// launchSections measures one container at a time per system, alternating,
// after warm-up runs (which also import the image into Berth's stores).
func launchSections(ctx context.Context, cfg config, systems []system) []report.Section {
	samples := map[string][]float64{}
	failed := map[string]error{}
	total := cfg.warmup + cfg.runs
	for i := 0; i < total && ctx.Err() == nil; i++ {
		if i >= cfg.warmup && (i-cfg.warmup)%max(1, cfg.runs/10) == 0 {
			logf("launch: run %d/%d (after %d warm-up runs)", max(0, i-cfg.warmup), cfg.runs, cfg.warmup)
		}
		for j := range systems {
			s := systems[(i+j)%len(systems)]
			if failed[s.name] != nil {
				continue
			}
			d, err := s.launch(ctx, 1)
			if err != nil {
				failed[s.name] = err
				logf("launch: %s failed, dropped from the run: %v", s.name, err)
				continue
			}
			if i >= cfg.warmup {
				samples[s.name] = append(samples[s.name], ms(d))
			}
		}
	}
	lat := report.Section{ID: "launch", Title: "Launch latency: /bin/true in a fresh container, request to exit (ms)"}
	lat.Notes = append(lat.Notes, fmt.Sprintf("%d runs per system after %d warm-up runs, one container at a time.", cfg.runs, cfg.warmup))
	sums := map[string]stats.Summary{}
	for _, s := range systems {
		lat.Notes = append(lat.Notes, fmt.Sprintf("**%s**: %s", s.name, s.note))
		if err := failed[s.name]; err != nil {
			lat.Notes = append(lat.Notes, fmt.Sprintf("%s FAILED: %v", s.name, firstLines(err.Error(), 3)))
		}
		sum, err := stats.Summarize(samples[s.name])
		if err != nil {
			continue
		}
		sums[s.name] = sum
		lat.Rows = append(lat.Rows, report.Row{Name: s.name, Metrics: []report.Metric{
			{Unit: "runs", Value: float64(sum.N)},
			{Unit: "median-ms", Value: sum.Median, Samples: samples[s.name]},
			{Unit: "p90-ms", Value: sum.P90}, {Unit: "p99-ms", Value: sum.P99},
			{Unit: "min-ms", Value: sum.Min}, {Unit: "max-ms", Value: sum.Max},
		}})
	}
	ratios := report.Section{ID: "launch-ratios", Title: "Launch latency ratios: Berth / peer (lower is better for Berth)"}
	for _, s := range systems {
		if !strings.HasPrefix(s.name, "berth") {
			continue
		}
		b, ok := sums[s.name]
		if !ok {
			continue
		}
		for _, peer := range []string{"runc", "crun"} {
			p, ok := sums[peer]
			if !ok {
				continue
			}
			ratios.Rows = append(ratios.Rows, report.Row{Name: s.name + " / " + peer, Metrics: []report.Metric{
				{Unit: "median", Value: b.Median / p.Median}, {Unit: "p90", Value: b.P90 / p.P90}, {Unit: "p99", Value: b.P99 / p.P99},
			}})
		}
	}
	return []report.Section{lat, ratios}
}

// throughputSections launches N containers at once per system, alternating
// round by round, for every N.
func throughputSections(ctx context.Context, cfg config, systems []system) []report.Section {
	tp := report.Section{ID: "throughput", Title: "Throughput: N containers of /bin/true launched at once, until the last exit"}
	ratios := report.Section{ID: "throughput-ratios", Title: "Throughput ratios: Berth's containers/s / peer's (higher is better for Berth)"}
	for _, s := range systems {
		tp.Notes = append(tp.Notes, fmt.Sprintf("**%s**: %s", s.name, s.note))
	}
	for _, n := range cfg.concurrency {
		rounds := cfg.rounds[n]
		logf("throughput: N=%d, %d rounds per system", n, rounds)
		rates := map[string][]float64{}
		failed := map[string]error{}
		for r := 0; r < rounds && ctx.Err() == nil; r++ {
			for j := range systems {
				s := systems[(r+j)%len(systems)]
				if failed[s.name] != nil {
					continue
				}
				d, err := s.launch(ctx, n)
				if err != nil {
					failed[s.name] = err
					logf("throughput: %s N=%d failed: %v", s.name, n, firstLines(err.Error(), 3))
					continue
				}
				rates[s.name] = append(rates[s.name], float64(n)/d.Seconds())
			}
		}
		med := map[string]float64{}
		for _, s := range systems {
			if err := failed[s.name]; err != nil {
				tp.Notes = append(tp.Notes, fmt.Sprintf("%s N=%d FAILED: %v", s.name, n, firstLines(err.Error(), 3)))
			}
			if len(rates[s.name]) == 0 {
				continue
			}
			med[s.name] = stats.Median(rates[s.name])
			tp.Rows = append(tp.Rows, report.Row{Name: fmt.Sprintf("%s N=%d", s.name, n), Metrics: []report.Metric{
				{Unit: "N", Value: float64(n)}, {Unit: "rounds", Value: float64(len(rates[s.name]))},
				{Unit: "containers/s", Value: med[s.name], Samples: rates[s.name]},
			}})
		}
		for _, s := range systems {
			if !strings.HasPrefix(s.name, "berth") || med[s.name] == 0 {
				continue
			}
			for _, peer := range []string{"runc", "crun"} {
				if med[peer] == 0 {
					continue
				}
				ratios.Rows = append(ratios.Rows, report.Row{Name: fmt.Sprintf("%s / %s N=%d", s.name, peer, n),
					Metrics: []report.Metric{{Unit: "containers/s ratio", Value: med[s.name] / med[peer]}}})
			}
		}
	}
	return []report.Section{tp, ratios}
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, " ")
}

// writeResults writes the JSON file and the Markdown report, and prints
// the tables.
func writeResults(cfg config, res *report.Results, started time.Time) error {
	path := cfg.jsonOut
	if path == "" {
		suffix := ""
		if cfg.quick {
			suffix = "-quick"
		}
		path = filepath.Join("bench", "results", started.Format("20060102T150405Z")+"-"+res.Commit+suffix+".json")
	}
	if err := report.WriteJSON(path, res); err != nil {
		return err
	}
	var md bytes.Buffer
	if err := report.Markdown(&md, res); err != nil {
		return err
	}
	fmt.Print(md.String())
	logf("results: %s", path)
	if cfg.doc != "" {
		if err := report.UpdateDoc(cfg.doc, docHeader, md.Bytes()); err != nil {
			return err
		}
		logf("report: %s", cfg.doc)
	}
	return nil
}

// removeScratch removes the run's scratch dir unless something is still
// mounted below it (then removing could reach into a mount: it is left,
// and said).
func removeScratch(dir string) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err == nil && bytes.Contains(mi, []byte(" "+dir+"/")) {
		logf("mounts left below %s; not removing it", dir)
		return
	}
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		logf("removing %s: %v", dir, err)
	}
}
