package stats

import (
	"math"
	"slices"
)

// ExactLimit is the largest n1+n2 for which MannWhitney computes the exact
// permutation distribution; larger samples use the normal approximation.
const ExactLimit = 50

// MannWhitneyResult is the outcome of a two-sided Mann–Whitney U test.
type MannWhitneyResult struct {
	// U is the statistic of the first sample: the number of pairs (x, y)
	// with x > y, ties counting one half.
	U float64
	// P is the two-sided p-value of the hypothesis that both samples come
	// from the same distribution.
	P float64
	// Exact tells whether P comes from the exact permutation distribution
	// (n1+n2 ≤ ExactLimit) rather than the normal approximation.
	Exact bool
}

// MannWhitney runs the two-sided Mann–Whitney U (Wilcoxon rank-sum) test of
// x against y. Tied values get their mean rank. For small samples the
// p-value is exact: the distribution of the rank sum over every way to pick
// len(x) of the pooled ranks (ties included, so it is exact with ties too);
// otherwise it uses the normal approximation with tie and continuity
// corrections. Two samples whose values are all equal give P = 1.
func MannWhitney(x, y []float64) (MannWhitneyResult, error) {
	n1, n2 := len(x), len(y)
	if n1 == 0 || n2 == 0 {
		return MannWhitneyResult{}, ErrEmpty
	}
	ranks2, ties := doubledRanks(x, y)
	// R1 is the rank sum of x; with doubled ranks everything stays integral.
	var r1x2 int
	for i := 0; i < n1; i++ {
		r1x2 += ranks2[i]
	}
	u := float64(r1x2)/2 - float64(n1*(n1+1))/2
	nn := float64(n1 * n2)
	if u == nn/2 {
		return MannWhitneyResult{U: u, P: 1, Exact: n1+n2 <= ExactLimit}, nil
	}
	if n1+n2 <= ExactLimit {
		return MannWhitneyResult{U: u, P: exactP(ranks2, n1, u), Exact: true}, nil
	}
	n := float64(n1 + n2)
	sigma := math.Sqrt(nn / 12 * ((n + 1) - ties/(n*(n-1))))
	if sigma == 0 {
		return MannWhitneyResult{U: u, P: 1}, nil
	}
	d := u - nn/2
	// Continuity correction: move half a step towards the mean.
	d -= math.Copysign(0.5, d)
	z := math.Abs(d) / sigma
	p := math.Erfc(z / math.Sqrt2) // = 2 * (1 - Φ(z))
	return MannWhitneyResult{U: u, P: math.Min(1, p)}, nil
}

// doubledRanks returns twice the mid-rank of every value of x then y (in
// that order), and the tie term Σ(t³-t) over groups of t equal values.
func doubledRanks(x, y []float64) ([]int, float64) {
	n := len(x) + len(y)
	idx := make([]int, n)
	val := func(i int) float64 {
		if i < len(x) {
			return x[i]
		}
		return y[i-len(x)]
	}
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		va, vb := val(a), val(b)
		switch {
		case va < vb:
			return -1
		case va > vb:
			return 1
		}
		return 0
	})
	ranks := make([]int, n)
	ties := 0.0
	for i := 0; i < n; {
		j := i
		for j < n && val(idx[j]) == val(idx[i]) {
			j++
		}
		// Positions i..j-1 (ranks i+1..j) share the mean rank (i+1+j)/2.
		for k := i; k < j; k++ {
			ranks[idx[k]] = i + 1 + j
		}
		t := float64(j - i)
		ties += t*t*t - t
		i = j
	}
	return ranks, ties
}

// exactP is 2·P(U ≤ min(u, n1n2-u)) under the permutation distribution:
// every subset of n1 of the pooled (doubled) ranks is equally likely.
func exactP(ranks2 []int, n1 int, u float64) float64 {
	n := len(ranks2)
	maxSum := 0
	for _, r := range ranks2 {
		maxSum += r
	}
	// count[k][s]: the number of k-subsets of the ranks seen so far whose
	// doubled rank sum is s. float64 holds C(50, 25) ≈ 1.3e14 exactly.
	count := make([][]float64, n1+1)
	for k := range count {
		count[k] = make([]float64, maxSum+1)
	}
	count[0][0] = 1
	for _, r := range ranks2 {
		for k := n1; k >= 1; k-- {
			prev, cur := count[k-1], count[k]
			for s := maxSum; s >= r; s-- {
				cur[s] += prev[s-r]
			}
		}
	}
	n2 := n - n1
	uSmall := math.Min(u, float64(n1*n2)-u)
	// U = R1 - n1(n1+1)/2, so U ≤ uSmall ⇔ 2·R1 ≤ 2·uSmall + n1(n1+1).
	limit := 2*uSmall + float64(n1*(n1+1))
	var below, total float64
	for s, c := range count[n1] {
		total += c
		if float64(s) <= limit+1e-9 {
			below += c
		}
	}
	return math.Min(1, 2*below/total)
}
