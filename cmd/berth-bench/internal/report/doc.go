// Package report is the data of one berth-bench run and what is made of it:
// the results model (sections of rows of metrics, each metric optionally
// with its raw samples), the parser of `go test -bench` output lines, the
// JSON file kept per commit under bench/results/, the generated tables of
// docs/performance.md (below a marker, so the hand-written header above it
// survives regeneration), and the comparison of two JSON files with a
// Mann–Whitney U test where both have raw samples.
//
// Nothing here measures anything; every function is pure or writes a file,
// and is unit-tested.
package report
