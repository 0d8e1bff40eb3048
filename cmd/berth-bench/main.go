package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/berthrt/berth/cmd/berth-bench/internal/report"
)

const usage = `Usage:
  berth-bench [run] [flags]            measure; write results JSON and docs/performance.md
  berth-bench compare OLD.json NEW.json
  berth-bench markdown RESULTS.json [DOC]   rewrite DOC (docs/performance.md) from a results file
Environment: BERTH_BENCH_QUICK=1 (scaled down), BERTH_BENCH_SECTIONS=launch,throughput,gobench,
BERTH_BENCH_RUNS=N, BERTH_BENCH_DIR=DIR (scratch space, e.g. on tmpfs), BERTH_BENCH_MB (pull size).`

func main() { os.Exit(mainCode(os.Args[1:])) }

func mainCode(args []string) int {
	sub := "run"
	if len(args) > 0 && (args[0] == "run" || args[0] == "compare" || args[0] == "markdown" || args[0] == peerServerCmd) {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "compare":
		return compare(args)
	case "markdown":
		return markdown(args)
	case peerServerCmd:
		return peerServer(os.Stdin, os.Stdout)
	}
	cfg, err := parseConfig(args, os.Getenv)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "berth-bench: %v\n%s\n", err, usage)
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "berth-bench: %v\n", err)
		return 1
	}
	return 0
}

func compare(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, usage)
		return 2
	}
	old, err := report.ReadJSON(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-bench: %v\n", err)
		return 1
	}
	cur, err := report.ReadJSON(args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-bench: %v\n", err)
		return 1
	}
	if err := report.WriteCompare(os.Stdout, args[0], args[1], report.Compare(old, cur)); err != nil {
		fmt.Fprintf(os.Stderr, "berth-bench: %v\n", err)
		return 1
	}
	return 0
}

// markdown rewrites the report from a results file, e.g. to put a full
// run's results back after a quick run overwrote them.
func markdown(args []string) int {
	if len(args) < 1 || len(args) > 2 {
		fmt.Fprintln(os.Stderr, usage)
		return 2
	}
	doc := "docs/performance.md"
	if len(args) == 2 {
		doc = args[1]
	}
	res, err := report.ReadJSON(args[0])
	if err == nil {
		var md bytes.Buffer
		if err = report.Markdown(&md, res); err == nil {
			err = report.UpdateDoc(doc, docHeader, md.Bytes())
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-bench: %v\n", err)
		return 1
	}
	return 0
}
