package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/berthrt/berth/process/errdefs"
)

// config is one run's settings, from flags over environment variables.
type config struct {
	quick    bool
	sections map[string]bool
	// runs and warmup are per system for the launch section.
	runs, warmup int
	// concurrency are the N of the throughput section; rounds maps N to
	// the number of rounds per system.
	concurrency []int
	rounds      map[int]int
	// berth is a prebuilt berth binary; "" builds one.
	berth string
	// scratch is the parent of the run's scratch dir ("" = os.TempDir()).
	scratch string
	// jsonOut and doc are where results go; "" derives the JSON path and
	// skips the doc respectively.
	jsonOut, doc string
	// goBenchtime and goCount apply to benchmarks not in a known suite.
	goBenchtime string
	goCount     int
}

var allSections = []string{"launch", "throughput", "gobench"}

func parseConfig(args []string, getenv func(string) string) (config, error) {
	fs := flag.NewFlagSet("berth-bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	quickEnv := getenv("BERTH_BENCH_QUICK")
	c := config{quick: quickEnv != "" && quickEnv != "0"}
	var sections, conc string
	runs, warmup := -1, -1
	fs.BoolVar(&c.quick, "quick", c.quick, "scaled-down run (also BERTH_BENCH_QUICK=1)")
	fs.StringVar(&sections, "sections", getenv("BERTH_BENCH_SECTIONS"), "comma-separated sections: launch, throughput, gobench (default all)")
	fs.IntVar(&runs, "runs", envInt(getenv, "BERTH_BENCH_RUNS", -1), "launch runs per system (default 200, quick 20)")
	fs.IntVar(&warmup, "warmup", -1, "unmeasured launches per system first (default 10, quick 3)")
	fs.StringVar(&conc, "concurrency", "1,10,100", "throughput: containers launched at once")
	fs.StringVar(&c.berth, "berth", getenv("BERTH_BENCH_BERTH"), "prebuilt berth binary (default: build ./cmd/berth)")
	fs.StringVar(&c.scratch, "dir", getenv("BERTH_BENCH_DIR"), "parent of the scratch directory (default $TMPDIR)")
	fs.StringVar(&c.jsonOut, "json", "", "results file (default bench/results/<date>-<commit>[-quick].json)")
	fs.StringVar(&c.doc, "doc", "docs/performance.md", "Markdown report to update (\"\" to skip)")
	fs.StringVar(&c.goBenchtime, "go_benchtime", "", "-benchtime of benchmarks outside the known suites (default 1s, quick 100ms)")
	fs.IntVar(&c.goCount, "go_count", envInt(getenv, "BERTH_BENCH_GO_COUNT", 1), "-count of every go test -bench (>1 gives compare samples)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stderr)
			fmt.Fprintln(os.Stderr, usage+"\nFlags of run:")
			fs.PrintDefaults()
		}
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q: %w", fs.Args(), errdefs.ErrInvalidArgument)
	}
	c.sections = map[string]bool{}
	if sections == "" {
		sections = strings.Join(allSections, ",")
	}
	for _, s := range strings.Split(sections, ",") {
		s = strings.TrimSpace(s)
		if !contains(allSections, s) {
			return c, fmt.Errorf("unknown section %q (have %s): %w", s, strings.Join(allSections, ", "), errdefs.ErrInvalidArgument)
		}
		c.sections[s] = true
	}
	c.runs, c.warmup = pick(runs, 200, 20, c.quick), pick(warmup, 10, 3, c.quick)
	if c.runs < 1 {
		return c, fmt.Errorf("--runs %d: %w", c.runs, errdefs.ErrInvalidArgument)
	}
	for _, f := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return c, fmt.Errorf("--concurrency %q: %w", conc, errdefs.ErrInvalidArgument)
		}
		c.concurrency = append(c.concurrency, n)
	}
	c.rounds = map[int]int{}
	for _, n := range c.concurrency {
		// About 100 (quick: 10) containers per system for each N, at
		// least 3 (quick: 1) rounds.
		per, least := 100, 3
		if c.quick {
			per, least = 10, 1
		}
		c.rounds[n] = max(least, per/n)
	}
	if c.goBenchtime == "" {
		c.goBenchtime = "1s"
		if c.quick {
			c.goBenchtime = "100ms"
		}
	}
	if c.goCount < 1 {
		return c, fmt.Errorf("--go_count %d: %w", c.goCount, errdefs.ErrInvalidArgument)
	}
	return c, nil
}

func pick(v, full, quick int, isQuick bool) int {
	switch {
	case v >= 0:
		return v
	case isQuick:
		return quick
	}
	return full
}

func envInt(getenv func(string) string, name string, def int) int {
	if v, err := strconv.Atoi(getenv(name)); err == nil {
		return v
	}
	return def
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
