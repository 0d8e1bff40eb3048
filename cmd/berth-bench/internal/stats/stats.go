package stats

import (
	"errors"
	"math"
	"slices"
)

// ErrEmpty is returned for a sample with no values.
var ErrEmpty = errors.New("stats: empty sample")

// Summary is the order statistics of one sample.
type Summary struct {
	N                          int
	Min, Median, P90, P99, Max float64
	Mean                       float64
}

// Summarize sorts a copy of xs and returns its summary.
func Summarize(xs []float64) (Summary, error) {
	if len(xs) == 0 {
		return Summary{}, ErrEmpty
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	return Summary{
		N: len(s), Min: s[0], Max: s[len(s)-1], Mean: sum / float64(len(s)),
		Median: Quantile(s, 0.5), P90: Quantile(s, 0.9), P99: Quantile(s, 0.99),
	}, nil
}

// Quantile returns the q-quantile (0 ≤ q ≤ 1) of sorted, interpolating
// linearly between the two nearest order statistics (Hyndman and Fan's
// definition 7, the default of R and NumPy): position h = (n-1)q. It
// returns NaN for an empty sample.
func Quantile(sorted []float64, q float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	q = math.Max(0, math.Min(1, q))
	h := float64(n-1) * q
	lo := int(math.Floor(h))
	if lo >= n-1 {
		return sorted[n-1]
	}
	return sorted[lo] + (h-float64(lo))*(sorted[lo+1]-sorted[lo])
}

// Median is Quantile(sorted copy of xs, 0.5).
func Median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return Quantile(s, 0.5)
}
