package report

import (
	"bufio"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/berthrt/berth/cmd/berth-bench/internal/stats"
)

// Benchmark is one result line of `go test -bench` output.
type Benchmark struct {
	// Pkg is the import path from the preceding "pkg:" line.
	Pkg string
	// Name is the benchmark's name without the -GOMAXPROCS suffix, with its
	// sub-benchmark path: "BenchmarkProvision/50MB".
	Name string
	// Procs is the GOMAXPROCS suffix (0 when absent).
	Procs int
	// Iterations is b.N.
	Iterations int64
	// Values are every "value unit" pair in order: ns/op, B/op, allocs/op,
	// MB/s and any unit given to b.ReportMetric.
	Values []Value
}

// Value is one "value unit" pair of a benchmark line.
type Value struct {
	Value float64
	Unit  string
}

var procsSuffix = regexp.MustCompile(`-(\d+)$`)

// ParseGoBench reads `go test -bench` output (with or without -v, several
// packages, -count > 1) and returns every benchmark result line in order.
// Anything that is not a result line (headers, logs, PASS, ok, FAIL) is
// skipped; "pkg:" lines set the package of the lines that follow.
func ParseGoBench(r io.Reader) ([]Benchmark, error) {
	var out []Benchmark
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		if b, ok := parseBenchLine(line); ok {
			b.Pkg = pkg
			out = append(out, b)
		}
	}
	return out, sc.Err()
}

// parseBenchLine parses "BenchmarkX/sub-2  10  123 ns/op  4.5 my-unit".
func parseBenchLine(line string) (Benchmark, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || len(f)%2 != 0 || !strings.HasPrefix(f[0], "Benchmark") {
		return Benchmark{}, false
	}
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || n <= 0 {
		return Benchmark{}, false
	}
	b := Benchmark{Name: f[0], Iterations: n}
	if m := procsSuffix.FindStringSubmatch(f[0]); m != nil {
		b.Procs, _ = strconv.Atoi(m[1])
		b.Name = strings.TrimSuffix(f[0], m[0])
	}
	for i := 2; i < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return Benchmark{}, false
		}
		b.Values = append(b.Values, Value{Value: v, Unit: f[i+1]})
	}
	return b, true
}

// GoBenchSections groups benchmark results into one section per package
// (id "go:<import path>"), one row per benchmark name in first-seen order.
// With -count > 1 a name has several lines: each unit's value is then the
// median of its lines and the lines are kept as samples. The iteration
// count becomes the unit "iterations" (summed over lines).
func GoBenchSections(bs []Benchmark, module string) []Section {
	type key struct{ pkg, name string }
	var pkgs []string
	rows := map[string][]string{}
	lines := map[key][]Benchmark{}
	for _, b := range bs {
		k := key{b.Pkg, b.Name}
		if _, ok := rows[b.Pkg]; !ok {
			pkgs = append(pkgs, b.Pkg)
		}
		if _, ok := lines[k]; !ok {
			rows[b.Pkg] = append(rows[b.Pkg], b.Name)
		}
		lines[k] = append(lines[k], b)
	}
	var out []Section
	for _, pkg := range pkgs {
		short := strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
		if short == "" {
			short = pkg
		}
		s := Section{ID: "go:" + pkg, Title: "go test -bench ./" + short}
		for _, name := range rows[pkg] {
			s.Rows = append(s.Rows, goBenchRow(name, lines[key{pkg, name}]))
		}
		out = append(out, s)
	}
	return out
}

func goBenchRow(name string, ls []Benchmark) Row {
	row := Row{Name: name}
	var iters int64
	var units []string
	samples := map[string][]float64{}
	for _, l := range ls {
		iters += l.Iterations
		for _, v := range l.Values {
			if _, ok := samples[v.Unit]; !ok {
				units = append(units, v.Unit)
			}
			samples[v.Unit] = append(samples[v.Unit], v.Value)
		}
	}
	row.Metrics = append(row.Metrics, Metric{Unit: "iterations", Value: float64(iters)})
	for _, u := range units {
		m := Metric{Unit: u, Value: median(samples[u])}
		if len(samples[u]) > 1 {
			m.Samples = samples[u]
		}
		row.Metrics = append(row.Metrics, m)
	}
	return row
}

func median(xs []float64) float64 { return stats.Median(xs) }
