// Package stats holds the arithmetic of berth-bench: order statistics of a
// sample of timings (median, p90, p99 by linear interpolation between order
// statistics) and the two-sided Mann–Whitney U test that the comparison of
// two runs uses to say whether a difference is more than noise.
//
// It is plain Go with no dependency beyond the standard library, so that the
// pure parts of the harness are unit-tested in CI while the measurements
// themselves never are.
package stats
