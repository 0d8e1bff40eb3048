package main

import (
	"fmt"

	"github.com/berthrt/berth/cmd/berth-bench/internal/report"
)

// target is one of DESIGN.md §6's performance targets, read from a row of
// the results.
type target struct {
	what               string
	section, row, unit string
	atMost             bool
	bound              float64
}

const modPath = "github.com/berthrt/berth"

var targets = []target{
	{"agent launch median ≤ 0.4× crun", "launch-ratios", "berth-agent-overlay / crun", "median", true, 0.4},
	{"agent launch median ≤ 0.15× runc", "launch-ratios", "berth-agent-overlay / runc", "median", true, 0.15},
	{"agent launch p99 ≤ 0.5× crun", "launch-ratios", "berth-agent-overlay / crun", "p99", true, 0.5},
	{"one-shot berth execute median ≤ 1.0× crun", "launch-ratios", "berth-embedded-overlay / crun", "median", true, 1.0},
	{"100 concurrent launches ≥ 3× runc's containers/s", "throughput-ratios", "berth-agent-overlay / runc N=100", "containers/s ratio", false, 3},
	{"copy backend ≤ 1.0× cp -a", "go:" + modPath + "/actors/backend/copyfs", "BenchmarkCopyVsCpA", "provision/cp-a", true, 1.0},
	{"overlay provisioning ≤ 5 ms at 800 MB", "go:" + modPath + "/actors/backend/overlay", "BenchmarkProvision/800MB", "provision-ms", true, 5},
	{"bind provisioning ≤ 5 ms at 800 MB", "go:" + modPath + "/actors/backend/bind", "BenchmarkProvision/800MB", "provision-ms", true, 5},
	{"actor messaging ≤ 5% of launch latency", "go:" + modPath + "/actors/agent", "BenchmarkLaunchActorOverhead", "launch-messaging-%", true, 5},
	{"agent RSS ≤ 100 MB with 1,000 containers", "go:" + modPath + "/cmd/berth", "BenchmarkAgentRSS", "rss-1000-MB", true, 100},
	{"pull + unpack ≤ 0.5× skopeo copy + umoci unpack", "go:" + modPath + "/cmd/berth", "BenchmarkPullVsSkopeoUmoci", "berth/peers", true, 0.5},
}

// targetsSection checks every target whose row the run has: measured,
// target and met (1 or 0).
func targetsSection(res *report.Results) report.Section {
	s := report.Section{ID: "targets", Title: "DESIGN.md §6 targets (from the rows above)",
		Notes: []string{"met = 1 when the measured value is within the target. crun runs without cgroups here (see the launch notes), as Berth does (no cgroups isolator yet); runc makes cgroups, which favours Berth against runc."}}
	for _, t := range targets {
		sec := res.Section(t.section)
		if sec == nil {
			continue
		}
		for _, r := range sec.Rows {
			if r.Name != t.row {
				continue
			}
			m, ok := r.Metric(t.unit)
			if !ok {
				continue
			}
			met := m.Value >= t.bound
			if t.atMost {
				met = m.Value <= t.bound
			}
			s.Rows = append(s.Rows, report.Row{Name: fmt.Sprintf("%s (%s)", t.what, t.row), Metrics: []report.Metric{
				{Unit: "measured", Value: m.Value}, {Unit: "target", Value: t.bound}, {Unit: "met", Value: b2f(met)},
			}})
		}
	}
	return s
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
