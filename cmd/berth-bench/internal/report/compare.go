package report

import (
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"

	"github.com/berthrt/berth/cmd/berth-bench/internal/stats"
)

// Alpha is the significance level below which compare calls a difference
// real.
const Alpha = 0.05

// Delta is one metric of one row in two runs.
type Delta struct {
	Section, Row, Unit string
	// Old and New are the values; HasOld/HasNew say whether the run had
	// the metric at all.
	Old, New       float64
	HasOld, HasNew bool
	// Percent is (New-Old)/Old·100 (NaN when Old is 0 or a side is missing).
	Percent float64
	// Tested tells that both sides had raw samples and P is the two-sided
	// Mann–Whitney U p-value over them; N1 and N2 are the sample sizes.
	Tested bool
	P      float64
	N1, N2 int
}

// Significant tells whether the difference passed the test at Alpha.
func (d Delta) Significant() bool { return d.Tested && d.P < Alpha }

// counts are units that describe how a row was measured, not what was
// measured; Compare leaves them out.
var counts = map[string]bool{"runs": true, "iterations": true, "N": true, "rounds": true}

// Compare matches sections by ID, rows by name and metrics by unit, and
// returns one Delta per metric of either run (counts such as "runs" left
// out), in the new run's order followed by what only the old run had. A
// metric without samples of its own (a p99 beside a median that carries
// every run's time) is tested over its row's samples: the test asks whether
// the distributions differ, whatever statistic is printed.
func Compare(old, cur *Results) []Delta {
	var out []Delta
	seen := map[[3]string]bool{}
	add := func(sec Section, row Row, m Metric) {
		k := [3]string{sec.ID, row.Name, m.Unit}
		if seen[k] || counts[m.Unit] {
			return
		}
		seen[k] = true
		d := Delta{Section: sec.ID, Row: row.Name, Unit: m.Unit, Percent: math.NaN()}
		o, oSamples, hasO := lookup(old, k)
		n, nSamples, hasN := lookup(cur, k)
		d.Old, d.HasOld, d.New, d.HasNew = o.Value, hasO, n.Value, hasN
		if hasO && hasN && o.Value != 0 {
			d.Percent = (n.Value - o.Value) / math.Abs(o.Value) * 100
		}
		if len(oSamples) > 1 && len(nSamples) > 1 {
			if r, err := stats.MannWhitney(oSamples, nSamples); err == nil {
				d.Tested, d.P, d.N1, d.N2 = true, r.P, len(oSamples), len(nSamples)
			}
		}
		out = append(out, d)
	}
	for _, res := range []*Results{cur, old} {
		for _, s := range res.Sections {
			for _, r := range s.Rows {
				for _, m := range r.Metrics {
					add(s, r, m)
				}
			}
		}
	}
	return out
}

// lookup finds a metric and the samples to test it with: its own, else the
// first ones of its row.
func lookup(r *Results, k [3]string) (Metric, []float64, bool) {
	s := r.Section(k[0])
	if s == nil {
		return Metric{}, nil, false
	}
	i := slices.IndexFunc(s.Rows, func(r Row) bool { return r.Name == k[1] })
	if i < 0 {
		return Metric{}, nil, false
	}
	m, ok := s.Rows[i].Metric(k[2])
	samples := m.Samples
	for _, other := range s.Rows[i].Metrics {
		if len(samples) > 0 {
			break
		}
		samples = other.Samples
	}
	return m, samples, ok
}

// WriteCompare prints deltas in the manner of benchstat, one table per
// section: old, new, the change in percent, and the p-value with the
// sample sizes; "~" replaces the change when the test found no significant
// difference, and "(no samples)" marks a change that could not be tested.
func WriteCompare(w io.Writer, oldName, newName string, ds []Delta) error {
	if _, err := fmt.Fprintf(w, "old: %s\nnew: %s\n", oldName, newName); err != nil {
		return err
	}
	var tw *tabwriter.Writer
	section := ""
	for i, d := range ds {
		if i == 0 || d.Section != section {
			if tw != nil {
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			section = d.Section
			if _, err := fmt.Fprintf(w, "\n%s\n", section); err != nil {
				return err
			}
			tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			if _, err := fmt.Fprintf(tw, "  row\tunit\told\tnew\tdelta\tp\n"); err != nil {
				return err
			}
		}
		o, n := "-", "-"
		if d.HasOld {
			o = FormatValue(d.Old)
		}
		if d.HasNew {
			n = FormatValue(d.New)
		}
		delta, p := "", ""
		switch {
		case !d.HasOld || !d.HasNew:
			delta = "(missing)"
		case d.Tested && !d.Significant():
			delta = "~"
		case math.IsNaN(d.Percent):
			delta = "?"
		default:
			delta = fmt.Sprintf("%+.2f%%", d.Percent)
		}
		switch {
		case d.Tested:
			p = fmt.Sprintf("p=%.3f n=%d+%d", d.P, d.N1, d.N2)
		case d.HasOld && d.HasNew:
			p = "(no samples)"
		}
		if _, err := fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", d.Row, d.Unit, o, n, delta, p); err != nil {
			return err
		}
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}
