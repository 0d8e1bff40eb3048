package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/berthrt/berth/cmd/berth-bench/internal/report"
	"github.com/berthrt/berth/process/errdefs"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseConfigDefaultsAndQuick(t *testing.T) {
	c, err := parseConfig(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.quick || c.runs != 200 || c.warmup != 10 || len(c.sections) != 3 || c.goBenchtime != "1s" || c.goCount != 1 {
		t.Errorf("defaults = %+v", c)
	}
	if !reflect.DeepEqual(c.concurrency, []int{1, 10, 100}) || !reflect.DeepEqual(c.rounds, map[int]int{1: 100, 10: 10, 100: 3}) {
		t.Errorf("throughput = %v %v", c.concurrency, c.rounds)
	}
	q, err := parseConfig(nil, env(map[string]string{"BERTH_BENCH_QUICK": "1", "BERTH_BENCH_SECTIONS": "launch, gobench"}))
	if err != nil {
		t.Fatal(err)
	}
	if !q.quick || q.runs != 20 || q.warmup != 3 || q.goBenchtime != "100ms" || !q.sections["launch"] || !q.sections["gobench"] || q.sections["throughput"] {
		t.Errorf("quick = %+v", q)
	}
	if !reflect.DeepEqual(q.rounds, map[int]int{1: 10, 10: 1, 100: 1}) {
		t.Errorf("quick rounds = %v", q.rounds)
	}
	// Flags win over the environment; BERTH_BENCH_QUICK=0 is off.
	f, err := parseConfig([]string{"--runs=7", "--sections=throughput", "--concurrency=2,4"}, env(map[string]string{"BERTH_BENCH_QUICK": "0", "BERTH_BENCH_RUNS": "50"}))
	if err != nil {
		t.Fatal(err)
	}
	if f.quick || f.runs != 7 || !f.sections["throughput"] || len(f.sections) != 1 || !reflect.DeepEqual(f.concurrency, []int{2, 4}) {
		t.Errorf("flags = %+v", f)
	}
	if e, _ := parseConfig(nil, env(map[string]string{"BERTH_BENCH_RUNS": "50"})); e.runs != 50 {
		t.Errorf("BERTH_BENCH_RUNS: runs = %d", e.runs)
	}
}

func TestParseConfigBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"--sections=launch,bogus"}, {"--concurrency=1,x"}, {"--concurrency=0"}, {"--runs=0"}, {"--go_count=0"}, {"extra"},
	} {
		if _, err := parseConfig(args, env(nil)); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%v: err = %v, want invalid argument", args, err)
		}
	}
	if _, err := parseConfig([]string{"--nope"}, env(nil)); err == nil {
		t.Error("unknown flag accepted")
	}
}

func TestBenchSpec(t *testing.T) {
	in := `{"ociVersion":"1.0.2-dev","process":{"terminal":true,"args":["sh"],"cwd":"/"},
	  "root":{"path":"rootfs","readonly":true},
	  "linux":{"namespaces":[{"type":"pid"},{"type":"network"},{"type":"ipc"},{"type":"uts"},{"type":"mount"}],"maskedPaths":["/proc/kcore"]}}`
	out, err := benchSpec([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Process struct {
			Terminal bool     `json:"terminal"`
			Args     []string `json:"args"`
			Cwd      string   `json:"cwd"`
		} `json:"process"`
		Root struct {
			Readonly bool `json:"readonly"`
		} `json:"root"`
		Linux struct {
			Namespaces  []struct{ Type string } `json:"namespaces"`
			MaskedPaths []string                `json:"maskedPaths"`
		} `json:"linux"`
	}
	if err := json.Unmarshal(out, &spec); err != nil {
		t.Fatal(err)
	}
	var ns []string
	for _, n := range spec.Linux.Namespaces {
		ns = append(ns, n.Type)
	}
	if spec.Process.Terminal || !reflect.DeepEqual(spec.Process.Args, []string{"/bin/true"}) || spec.Process.Cwd != "/" ||
		!spec.Root.Readonly || strings.Join(ns, ",") != "pid,ipc,uts,mount" || len(spec.Linux.MaskedPaths) != 1 {
		t.Errorf("spec = %+v", spec)
	}
	for _, bad := range []string{"{", `{"linux":{}}`, `{"process":{}}`} {
		if _, err := benchSpec([]byte(bad)); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
}

func TestGoBenchPlan(t *testing.T) {
	root := t.TempDir()
	write := func(rel, body string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("actors/backend/copyfs/bench_test.go", "func BenchmarkCopyVsCpA(b *testing.B) {}\nfunc BenchmarkCpA(b *testing.B) {}\nfunc BenchmarkProvision(b *testing.B) {}\n")
	write("cmd/berth/pull_bench_test.go", "func BenchmarkPullVsSkopeoUmoci(b *testing.B) {}\nfunc BenchmarkSomethingNew(b *testing.B) {}\n")
	write("actors/containerizer/bench_test.go", "func BenchmarkActorOverhead(b *testing.B) {}\n// func BenchmarkCommented(b *testing.B) {}\nfunc BenchmarkLaunch(tb *testing.B) {}\n")
	write("actors/containerizer/plain.go", "func BenchmarkNotATest(b *testing.B) {}\n")
	write(".git/x_test.go", "func BenchmarkHidden(b *testing.B) {}\n")
	write("testdata/y_test.go", "func BenchmarkData(b *testing.B) {}\n")
	found, err := findBenchmarks(root)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"./actors/backend/copyfs": {"BenchmarkCopyVsCpA", "BenchmarkCpA", "BenchmarkProvision"},
		"./cmd/berth":             {"BenchmarkPullVsSkopeoUmoci", "BenchmarkSomethingNew"},
		"./actors/containerizer":  {"BenchmarkActorOverhead", "BenchmarkLaunch"},
	}
	if !reflect.DeepEqual(found, want) {
		t.Fatalf("found = %v\nwant %v", found, want)
	}
	plan := goBenchPlan(found, false, "2s")
	known := len(knownSuites(false))
	extra := plan[known:]
	if len(extra) != 2 {
		t.Fatalf("extra suites = %+v", extra)
	}
	if extra[0].pkg != "./actors/containerizer" || extra[0].bench != "^(BenchmarkActorOverhead|BenchmarkLaunch)$" || extra[0].benchtime != "2s" {
		t.Errorf("containerizer suite = %+v", extra[0])
	}
	// A new benchmark in a package with a known suite runs too; the known
	// one and the copy backend's parts do not run twice.
	if extra[1].pkg != "./cmd/berth" || extra[1].bench != "^(BenchmarkSomethingNew)$" {
		t.Errorf("cmd/berth suite = %+v", extra[1])
	}
	for _, s := range knownSuites(true) {
		if s.bench == "PullVsSkopeoUmoci" && s.env[0] != "BERTH_BENCH_MB=50" && os.Getenv("BERTH_BENCH_MB") == "" {
			t.Errorf("quick pull size: %v", s.env)
		}
		if s.bench == "AgentRSS" && s.env[0] != "BERTH_BENCH_RSS_MAX=100" && os.Getenv("BERTH_BENCH_RSS_MAX") == "" {
			t.Errorf("quick RSS count: %v", s.env)
		}
	}
}

func TestTargetsSection(t *testing.T) {
	res := &report.Results{Sections: []report.Section{
		{ID: "launch-ratios", Rows: []report.Row{
			{Name: "berth-agent-overlay / crun", Metrics: []report.Metric{{Unit: "median", Value: 0.3}, {Unit: "p99", Value: 0.9}}},
		}},
		{ID: "throughput-ratios", Rows: []report.Row{
			{Name: "berth-agent-overlay / runc N=100", Metrics: []report.Metric{{Unit: "containers/s ratio", Value: 3.5}}},
		}},
	}}
	s := targetsSection(res)
	got := map[string][3]float64{}
	for _, r := range s.Rows {
		m, _ := r.Metric("measured")
		b, _ := r.Metric("target")
		met, _ := r.Metric("met")
		got[r.Name] = [3]float64{m.Value, b.Value, met.Value}
	}
	want := map[string][3]float64{
		"agent launch median ≤ 0.4× crun (berth-agent-overlay / crun)":                        {0.3, 0.4, 1},
		"agent launch p99 ≤ 0.5× crun (berth-agent-overlay / crun)":                           {0.9, 0.5, 0},
		"100 concurrent launches ≥ 3× runc's containers/s (berth-agent-overlay / runc N=100)": {3.5, 3, 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("targets = %v\nwant %v", got, want)
	}
}

func TestEnsurePeersNamesWhatToInstall(t *testing.T) {
	// No peer on PATH, and CI set: berth-bench never installs, it says what
	// to install.
	t.Setenv("PATH", t.TempDir())
	err := ensurePeers(t.Context(), env(map[string]string{"CI": "true"}), t.Logf)
	if !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("err = %v, want failed precondition", err)
	}
	if !strings.Contains(err.Error(), "apt-get install -y runc crun skopeo umoci docker-registry") {
		t.Errorf("err = %v", err)
	}
	// Every peer present: nothing to do.
	dir := t.TempDir()
	for _, p := range peers {
		if err := os.WriteFile(filepath.Join(dir, p.bin), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
	if err := ensurePeers(t.Context(), env(map[string]string{"CI": "true"}), t.Logf); err != nil {
		t.Errorf("all peers present: %v", err)
	}
}
