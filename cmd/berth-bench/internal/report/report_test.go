package report

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/berthrt/berth/process/errdefs"
)

// goBenchOutput is real `go test -bench` output of two packages (one with
// -count 2), with logs, custom metrics and the lines around them.
const goBenchOutput = `goos: linux
goarch: amd64
pkg: github.com/berthrt/berth/actors/backend/overlay
cpu: Intel(R) Xeon(R) Processor @ 2.40GHz
BenchmarkProvision/50MB-2         	      10	   2300000 ns/op	        50.00 MB
BenchmarkProvision/800MB-2        	      10	   2500000 ns/op	       800.0 MB
BenchmarkProvisionManyLayers/fsconfig-2   	      10	   1200345 ns/op
    bench_test.go:12: a log line that mentions BenchmarkX 10 20 ns/op
PASS
ok  	github.com/berthrt/berth/actors/backend/overlay	12.3s
goos: linux
goarch: amd64
pkg: github.com/berthrt/berth/cmd/berth
BenchmarkPullVsSkopeoUmoci 	       3	1234567890 ns/op	       200.0 MB	      4100 berth-ms	      9000 skopeo+umoci-ms	         0.4556 berth/peers	 1024 B/op	 12 allocs/op
BenchmarkPullVsSkopeoUmoci 	       3	1334567890 ns/op	       200.0 MB	      4300 berth-ms	      9100 skopeo+umoci-ms	         0.4725 berth/peers	 1024 B/op	 12 allocs/op
--- FAIL: BenchmarkBroken
BenchmarkHalf-2  notanumber  1 ns/op
BenchmarkOdd-2  5  1 ns/op 7
FAIL
`

func TestParseGoBench(t *testing.T) {
	bs, err := ParseGoBench(strings.NewReader(goBenchOutput))
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 5 {
		t.Fatalf("%d benchmarks, want 5: %+v", len(bs), bs)
	}
	want0 := Benchmark{Pkg: "github.com/berthrt/berth/actors/backend/overlay", Name: "BenchmarkProvision/50MB", Procs: 2, Iterations: 10,
		Values: []Value{{2300000, "ns/op"}, {50, "MB"}}}
	if !reflect.DeepEqual(bs[0], want0) {
		t.Errorf("first = %+v\nwant %+v", bs[0], want0)
	}
	if bs[2].Name != "BenchmarkProvisionManyLayers/fsconfig" || len(bs[2].Values) != 1 {
		t.Errorf("third = %+v", bs[2])
	}
	p := bs[3]
	if p.Pkg != "github.com/berthrt/berth/cmd/berth" || p.Name != "BenchmarkPullVsSkopeoUmoci" || p.Procs != 0 || p.Iterations != 3 {
		t.Errorf("pull = %+v", p)
	}
	units := []string{}
	for _, v := range p.Values {
		units = append(units, v.Unit)
	}
	if got := strings.Join(units, " "); got != "ns/op MB berth-ms skopeo+umoci-ms berth/peers B/op allocs/op" {
		t.Errorf("units = %s", got)
	}
	if p.Values[4].Value != 0.4556 {
		t.Errorf("ratio = %v", p.Values[4].Value)
	}
}

func TestGoBenchSections(t *testing.T) {
	bs, err := ParseGoBench(strings.NewReader(goBenchOutput))
	if err != nil {
		t.Fatal(err)
	}
	secs := GoBenchSections(bs, "github.com/berthrt/berth")
	if len(secs) != 2 {
		t.Fatalf("%d sections", len(secs))
	}
	if secs[0].ID != "go:github.com/berthrt/berth/actors/backend/overlay" || secs[0].Title != "go test -bench ./actors/backend/overlay" || len(secs[0].Rows) != 3 {
		t.Errorf("section 0 = %+v", secs[0])
	}
	pull := secs[1].Rows[0]
	if len(secs[1].Rows) != 1 || pull.Name != "BenchmarkPullVsSkopeoUmoci" {
		t.Fatalf("section 1 = %+v", secs[1])
	}
	it, _ := pull.Metric("iterations")
	if it.Value != 6 {
		t.Errorf("iterations = %v, want 6", it.Value)
	}
	ms, _ := pull.Metric("berth-ms")
	if ms.Value != 4200 || !reflect.DeepEqual(ms.Samples, []float64{4100, 4300}) {
		t.Errorf("berth-ms = %+v, want the median 4200 of [4100 4300]", ms)
	}
	one, _ := secs[0].Rows[0].Metric("ns/op")
	if one.Value != 2300000 || one.Samples != nil {
		t.Errorf("single line metric = %+v", one)
	}
}

func sampleResults() *Results {
	return &Results{
		Date: "2026-11-23T10:00:00Z", Commit: "abc1234", Quick: true,
		Machine: Machine{CPU: "Test CPU", Cores: 2, MemoryMB: 24000, Kernel: "6.18", Go: "go1.26.8",
			Versions: map[string]string{"runc": "1.1.5", "crun": "1.8.1"}},
		Notes: []string{"crun runs with --cgroup-manager=disabled"},
		Sections: []Section{{
			ID: "launch", Title: "Launch latency", Notes: []string{"ms, /bin/true"},
			Rows: []Row{
				{Name: "berth agent | overlay", Metrics: []Metric{{Unit: "runs", Value: 3}, {Unit: "median-ms", Value: 4.25, Samples: []float64{4, 4.25, 5}}}},
				{Name: "runc", Metrics: []Metric{{Unit: "median-ms", Value: 30}, {Unit: "p99-ms", Value: 61.5}}},
			},
		}},
	}
}

func TestMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := Markdown(&b, sampleResults()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"## Results: 2026-11-23T10:00:00Z, commit abc1234, quick run",
		"| CPU | Test CPU (2 cores) |",
		"| crun | 1.8.1 |\n| runc | 1.1.5 |",
		"- crun runs with --cgroup-manager=disabled\n",
		"### Launch latency\n\n- ms, /bin/true\n\n",
		"| | runs | median-ms | p99-ms |\n|---|---:|---:|---:|\n",
		"| berth agent \\| overlay | 3 | 4.25 | |\n",
		"| runc | | 30 | 61.5 |\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "4, 4.25") {
		t.Error("raw samples printed")
	}
}

func TestFormatValue(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0", 3: "3", 1234.567: "1235", 45.67: "45.7", 4.567: "4.57", 0.4556: "0.456", 0.0001234: "0.000123", -2.5: "-2.50",
	} {
		if got := FormatValue(v); got != want {
			t.Errorf("FormatValue(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestUpdateDocKeepsHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "performance.md")
	if err := UpdateDoc(path, "# Perf\n\nHow to run.\n", []byte("table 1\n")); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if want := "# Perf\n\nHow to run.\n\n" + Marker + "\n\ntable 1\n"; string(got) != want {
		t.Fatalf("new doc:\n%q\nwant\n%q", got, want)
	}
	// A hand edit above the marker survives; the old tables do not.
	edited := strings.Replace(string(got), "How to run.", "How to run, edited.", 1)
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := UpdateDoc(path, "ignored default", []byte("table 2\n")); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(path)
	if want := "# Perf\n\nHow to run, edited.\n\n" + Marker + "\n\ntable 2\n"; string(got) != want {
		t.Fatalf("regenerated doc:\n%q\nwant\n%q", got, want)
	}
	// A file without the marker is kept whole as the header.
	if err := os.WriteFile(path, []byte("# Mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := UpdateDoc(path, "ignored", []byte("t\n")); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(path)
	if want := "# Mine\n\n" + Marker + "\n\nt\n"; string(got) != want {
		t.Fatalf("doc without marker:\n%q", got)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results", "x.json")
	r := sampleResults()
	if err := WriteJSON(path, r); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, r) {
		t.Errorf("round trip:\n%+v\nwant\n%+v", back, r)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadJSON(bad); !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad JSON: %v, want invalid argument", err)
	}
	if _, err := ReadJSON(filepath.Join(t.TempDir(), "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestCompare(t *testing.T) {
	old := sampleResults()
	cur := sampleResults()
	slow := make([]float64, 10)
	fast := make([]float64, 10)
	for i := range slow {
		slow[i], fast[i] = 10+float64(i), 5+float64(i)/10
	}
	old.Sections[0].Rows[0].Metrics[1] = Metric{Unit: "median-ms", Value: 14.5, Samples: slow}
	cur.Sections[0].Rows[0].Metrics[1] = Metric{Unit: "median-ms", Value: 5.45, Samples: fast}
	old.Sections[0].Rows[0].Metrics = append(old.Sections[0].Rows[0].Metrics, Metric{Unit: "p99-ms", Value: 19})
	cur.Sections[0].Rows[0].Metrics = append(cur.Sections[0].Rows[0].Metrics, Metric{Unit: "p99-ms", Value: 6})
	cur.Sections[0].Rows[1].Metrics[0].Value = 33 // runc: +10%, no samples
	cur.Sections[0].Rows = append(cur.Sections[0].Rows, Row{Name: "crun", Metrics: []Metric{{Unit: "median-ms", Value: 9}}})
	old.Sections = append(old.Sections, Section{ID: "gone", Rows: []Row{{Name: "x", Metrics: []Metric{{Unit: "u", Value: 1}}}}})

	ds := Compare(old, cur)
	byKey := map[string]Delta{}
	for _, d := range ds {
		byKey[d.Section+"/"+d.Row+"/"+d.Unit] = d
	}
	// "runs" is a count, left out.
	if len(ds) != 6 {
		t.Errorf("%d deltas, want 6: %+v", len(ds), ds)
	}
	if _, ok := byKey["launch/berth agent | overlay/runs"]; ok {
		t.Error("the runs count was compared")
	}
	// A p99 without samples of its own is tested over its row's samples.
	if d := byKey["launch/berth agent | overlay/p99-ms"]; !d.Tested || d.N1 != 10 || !d.Significant() {
		t.Errorf("p99 delta = %+v", d)
	}
	d := byKey["launch/berth agent | overlay/median-ms"]
	if !d.Tested || !d.Significant() || d.N1 != 10 || d.N2 != 10 || math.Abs(d.Percent-(5.45-14.5)/14.5*100) > 1e-9 {
		t.Errorf("tested delta = %+v", d)
	}
	if d := byKey["launch/runc/median-ms"]; d.Tested || math.Abs(d.Percent-10) > 1e-9 {
		t.Errorf("untested delta = %+v", d)
	}
	if d := byKey["launch/crun/median-ms"]; d.HasOld || !d.HasNew {
		t.Errorf("new-only delta = %+v", d)
	}
	if d := byKey["gone/x/u"]; !d.HasOld || d.HasNew {
		t.Errorf("old-only delta = %+v", d)
	}
	// Same samples on both sides: not significant, printed as "~".
	same := Compare(old, old)
	var b bytes.Buffer
	if err := WriteCompare(&b, "old.json", "new.json", same); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "~") || !strings.Contains(b.String(), "p=1.000 n=10+10") {
		t.Errorf("compare of a run with itself:\n%s", b.String())
	}
	b.Reset()
	if err := WriteCompare(&b, "old.json", "new.json", ds); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-62.41%", "+10.00%", "(no samples)", "(missing)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("compare output lacks %q:\n%s", want, b.String())
		}
	}
}
