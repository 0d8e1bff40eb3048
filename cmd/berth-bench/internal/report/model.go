package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berthrt/berth/process/checkpoint"
	"github.com/berthrt/berth/process/errdefs"
)

// Results is one run of the harness.
type Results struct {
	// Date is the start of the run, RFC 3339 in UTC.
	Date string `json:"date"`
	// Commit is the repository's HEAD (short hash, "+dirty" when the work
	// tree had changes).
	Commit string `json:"commit"`
	// Quick tells that the run was scaled down (BERTH_BENCH_QUICK).
	Quick   bool    `json:"quick"`
	Machine Machine `json:"machine"`
	// Notes are run-wide remarks (how a peer was run, what was skipped).
	Notes    []string  `json:"notes,omitempty"`
	Sections []Section `json:"sections"`
}

// Machine is where the run happened.
type Machine struct {
	CPU      string            `json:"cpu"`
	Cores    int               `json:"cores"`
	MemoryMB int               `json:"memory_mb"`
	Kernel   string            `json:"kernel"`
	Go       string            `json:"go"`
	Versions map[string]string `json:"versions,omitempty"`
}

// Section is one table: launch latency, throughput, one package's go
// benchmarks...
type Section struct {
	// ID is stable across runs (what compare matches on); Title is for
	// people.
	ID    string   `json:"id"`
	Title string   `json:"title"`
	Notes []string `json:"notes,omitempty"`
	Rows  []Row    `json:"rows"`
}

// Row is one system or benchmark.
type Row struct {
	Name    string   `json:"name"`
	Metrics []Metric `json:"metrics"`
}

// Metric is one value with its unit. Samples, when present, are the raw
// observations the value was computed from (for a latency median: every
// run's time), and what compare tests for significance.
type Metric struct {
	Unit    string    `json:"unit"`
	Value   float64   `json:"value"`
	Samples []float64 `json:"samples,omitempty"`
}

// Metric returns the row's metric with unit.
func (r Row) Metric(unit string) (Metric, bool) {
	for _, m := range r.Metrics {
		if m.Unit == unit {
			return m, true
		}
	}
	return Metric{}, false
}

// Section returns the section with id, or nil.
func (r *Results) Section(id string) *Section {
	for i := range r.Sections {
		if r.Sections[i].ID == id {
			return &r.Sections[i]
		}
	}
	return nil
}

// WriteJSON writes r to path atomically (indented, one file per run).
func WriteJSON(path string, r *Results) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	return checkpoint.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadJSON reads a file written by WriteJSON.
func ReadJSON(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("results %s: %v: %w", path, err, errdefs.ErrInvalidArgument)
	}
	return &r, nil
}
