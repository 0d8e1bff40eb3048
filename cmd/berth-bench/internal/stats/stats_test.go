package stats

import (
	"errors"
	"math"
	"testing"
)

func TestQuantile(t *testing.T) {
	s := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct{ q, want float64 }{
		{0, 1}, {1, 10}, {0.5, 5.5}, {0.9, 9.1}, {0.99, 9.91}, {0.25, 3.25}, {-1, 1}, {2, 10},
	} {
		if got := Quantile(s, c.q); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("Quantile(1..10, %v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := Quantile([]float64{7}, 0.99); got != 7 {
		t.Errorf("Quantile of one value = %v", got)
	}
	if !math.IsNaN(Quantile(nil, 0.5)) {
		t.Error("Quantile of nothing is not NaN")
	}
}

func TestSummarize(t *testing.T) {
	// Unsorted input; the input is not modified.
	xs := []float64{5, 1, 4, 2, 3}
	s, err := Summarize(xs)
	if err != nil {
		t.Fatal(err)
	}
	want := Summary{N: 5, Min: 1, Median: 3, P90: 4.6, P99: 4.96, Max: 5, Mean: 3}
	if s.N != want.N || s.Min != want.Min || s.Max != want.Max || s.Median != want.Median ||
		math.Abs(s.P90-want.P90) > 1e-12 || math.Abs(s.P99-want.P99) > 1e-12 || s.Mean != want.Mean {
		t.Errorf("Summarize = %+v, want %+v", s, want)
	}
	if xs[0] != 5 {
		t.Error("Summarize sorted its input")
	}
	if _, err := Summarize(nil); !errors.Is(err, ErrEmpty) {
		t.Errorf("Summarize(nil) error = %v", err)
	}
	if m := Median([]float64{3, 1, 2, 10}); m != 2.5 {
		t.Errorf("Median = %v", m)
	}
}

func seq(n int, f func(i int) float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

// The expected p-values were computed with golang.org/x/perf/benchmath
// (AssumeNothing.Compare, which runs go-moremath's MannWhitneyUTest,
// two-sided): an independent implementation.
func TestMannWhitneyKnownValues(t *testing.T) {
	for _, c := range []struct {
		name  string
		x, y  []float64
		p     float64
		exact bool
	}{
		{"separated", []float64{1, 2, 3, 4, 5}, []float64{6, 7, 8, 9, 10}, 0.007936507937, true},
		{"overlap", []float64{1.1, 2.2, 3.3, 4.4}, []float64{3.0, 5.5, 6.6, 7.7, 8.8}, 0.06349206349, true},
		{"unequal sizes", []float64{19, 22, 16, 29, 24}, []float64{20, 11, 17, 12}, 0.1111111111, true},
		{"ties exact", []float64{1, 2, 2, 3, 3, 3, 4}, []float64{2, 3, 4, 4, 5, 5, 6}, 0.05011655012, true},
		{"22+22 exact",
			seq(22, func(i int) float64 { return float64(10 + i) }),
			append([]float64{20}, seq(21, func(i int) float64 { return 21.5 + float64(i) })...),
			1.211883492e-05, true},
		{"60+60 normal", seq(60, func(i int) float64 { return float64(i) }), seq(60, func(i int) float64 { return float64(i) + 7.5 }), 0.0269458562, false},
		{"60+60 normal ties", seq(60, func(i int) float64 { return float64(i % 13) }), seq(60, func(i int) float64 { return float64(i%13 + 2) }), 0.006459972277, false},
		{"all equal", []float64{5, 5, 5}, []float64{5, 5, 5}, 1, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := MannWhitney(c.x, c.y)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(r.P-c.p) > 1e-9*math.Max(1, c.p) && math.Abs(r.P-c.p)/c.p > 1e-8 {
				t.Errorf("P = %.12g, want %.12g", r.P, c.p)
			}
			if r.Exact != c.exact {
				t.Errorf("Exact = %v, want %v", r.Exact, c.exact)
			}
			// The test is symmetric in its samples.
			r2, err := MannWhitney(c.y, c.x)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(r2.P-r.P) > 1e-12 {
				t.Errorf("P(y, x) = %v, P(x, y) = %v", r2.P, r.P)
			}
			if got := float64(len(c.x)*len(c.y)) - r.U; math.Abs(got-r2.U) > 1e-9 {
				t.Errorf("U(x,y) + U(y,x) = %v + %v, want n1·n2", r.U, r2.U)
			}
		})
	}
}

func TestMannWhitneyU(t *testing.T) {
	// x > y in 3 pairs, one tie (counts 1/2): U = 3.5.
	r, err := MannWhitney([]float64{1, 3, 5}, []float64{2, 3})
	if err != nil {
		t.Fatal(err)
	}
	if r.U != 3.5 {
		t.Errorf("U = %v, want 3.5", r.U)
	}
	if _, err := MannWhitney(nil, []float64{1}); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty sample: %v", err)
	}
}
