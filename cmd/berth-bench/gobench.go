package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/berthrt/berth/cmd/berth-bench/internal/report"
)

// suite is one `go test -bench` command of the Taskfile's former bench task:
// the benchmarks whose names match bench in pkg, at fixed iteration counts.
type suite struct {
	pkg, bench       string
	benchtime, quick string
	env              []string
}

// knownSuites are the benchmarks with a chosen iteration count. Every
// other Benchmark function of the repository runs too (see goBenchPlan).
func knownSuites(quick bool) []suite {
	mb := "200"
	if quick {
		mb = "50"
	}
	if v := os.Getenv("BERTH_BENCH_MB"); v != "" {
		mb = v
	}
	// Agent RSS with 1,000 containers tracked (DESIGN.md §6); 100 in quick
	// runs.
	rssMax := "1000"
	if quick {
		rssMax = "100"
	}
	if v := os.Getenv("BERTH_BENCH_RSS_MAX"); v != "" {
		rssMax = v
	}
	return []suite{
		{pkg: "./actors/backend/copyfs", bench: "CopyVsCpA", benchtime: "5x", quick: "1x"},
		{pkg: "./actors/backend/overlay", bench: "Provision", benchtime: "10x", quick: "2x"},
		{pkg: "./actors/backend/bind", bench: "Provision", benchtime: "10x", quick: "2x"},
		{pkg: "./process/archive", bench: "Extract", benchtime: "5x", quick: "1x"},
		{pkg: "./cmd/berth", bench: "PullVsSkopeoUmoci", benchtime: "3x", quick: "1x", env: []string{"BERTH_BENCH_MB=" + mb}},
		{pkg: "./actors/store/appc", bench: "ImportACI", benchtime: "5x", quick: "1x"},
		{pkg: "./actors/agent", bench: "LaunchActorOverhead", benchtime: "100x", quick: "20x"},
		{pkg: "./cmd/berth", bench: "AgentRSS", benchtime: "1x", quick: "1x", env: []string{"BERTH_BENCH_RSS_MAX=" + rssMax}},
	}
}

// partsOf are benchmarks that only measure one side of a known suite's
// comparison (BenchmarkCopyVsCpA measures both, alternating); they are not
// run on their own.
var partsOf = map[string][]string{
	"./actors/backend/copyfs": {"BenchmarkProvision", "BenchmarkCpA", "BenchmarkProvisionParallelism"},
}

var benchFunc = regexp.MustCompile(`(?m)^func (Benchmark[A-Za-z0-9_]*)\(\w+ \*testing\.B\)`)

// findBenchmarks maps every package dir ("./x/y") under root to the
// Benchmark functions of its _test.go files.
func findBenchmarks(root string) (map[string][]string, error) {
	found := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "bin" || d.Name() == "testdata" || d.Name() == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		pkg := "./" + filepath.ToSlash(rel)
		if rel == "." {
			pkg = "."
		}
		for _, m := range benchFunc.FindAllSubmatch(b, -1) {
			found[pkg] = append(found[pkg], string(m[1]))
		}
		return nil
	})
	return found, err
}

// goBenchPlan is the known suites plus, per package, one command for the
// Benchmark functions no suite covers, at benchtime.
func goBenchPlan(found map[string][]string, quick bool, benchtime string) []suite {
	known := knownSuites(quick)
	plan := slices.Clone(known)
	pkgs := make([]string, 0, len(found))
	for p := range found {
		pkgs = append(pkgs, p)
	}
	slices.Sort(pkgs)
	for _, pkg := range pkgs {
		var rest []string
		for _, fn := range found[pkg] {
			if slices.Contains(partsOf[pkg], fn) || coveredBy(known, pkg, fn) {
				continue
			}
			rest = append(rest, fn)
		}
		if len(rest) == 0 {
			continue
		}
		slices.Sort(rest)
		plan = append(plan, suite{pkg: pkg, bench: "^(" + strings.Join(rest, "|") + ")$", benchtime: benchtime, quick: benchtime})
	}
	return plan
}

// coveredBy tells whether a suite of pkg selects fn, the way -bench
// matches the top-level name.
func coveredBy(suites []suite, pkg, fn string) bool {
	for _, s := range suites {
		if s.pkg != pkg {
			continue
		}
		if re, err := regexp.Compile(s.bench); err == nil && re.MatchString(fn) {
			return true
		}
	}
	return false
}

// runGoBenches runs the plan, streaming go test's output to stderr, and
// returns one section per package. A failing command is noted and the
// others still run.
func runGoBenches(ctx context.Context, cfg config, root, module string) ([]report.Section, []string, error) {
	found, err := findBenchmarks(root)
	if err != nil {
		return nil, nil, err
	}
	var all []report.Benchmark
	var notes []string
	commands := map[string][]string{}
	for _, s := range goBenchPlan(found, cfg.quick, cfg.goBenchtime) {
		bt := s.benchtime
		if cfg.quick {
			bt = s.quick
		}
		args := []string{"test", "-run", "^$", "-bench", s.bench, "-benchtime", bt, "-count", fmt.Sprint(cfg.goCount), "-timeout", "60m", s.pkg}
		line := "go " + strings.Join(args, " ")
		if len(s.env) > 0 {
			line = strings.Join(s.env, " ") + " go " + strings.Join(args, " ")
		}
		logf("%s", line)
		pkgPath := module + strings.TrimPrefix(s.pkg, ".")
		commands[pkgPath] = append(commands[pkgPath], "`"+line+"`")
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), s.env...)
		cmd.Stdout = io.MultiWriter(&out, os.Stderr)
		cmd.Stderr = os.Stderr
		runErr := cmd.Run()
		bs, err := report.ParseGoBench(&out)
		if err != nil {
			return nil, nil, err
		}
		all = append(all, bs...)
		if runErr != nil {
			notes = append(notes, fmt.Sprintf("`go %s` FAILED (%v); its results are missing or partial.", strings.Join(args, " "), runErr))
		}
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
	}
	secs := report.GoBenchSections(all, module)
	for i := range secs {
		pkg := strings.TrimPrefix(secs[i].ID, "go:")
		if cmds := commands[pkg]; len(cmds) > 0 {
			secs[i].Notes = append(secs[i].Notes, "Ran: "+strings.Join(cmds, "; "))
		}
	}
	return secs, notes, nil
}
