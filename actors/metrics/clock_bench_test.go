package metrics_test

import (
	"testing"

	"github.com/berthrt/berth/actors/metrics"
)

// BenchmarkMechanicTiming is the cost the metrics add to every blocking
// call of the pipeline (ask.Go, async.Run): Begin, End and the histogram
// observation, from as many goroutines as there are CPUs.
func BenchmarkMechanicTiming(b *testing.B) {
	m := metrics.New(metrics.Options{NoProcessCollectors: true})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.End("ForkRequest", m.Begin())
		}
	})
}
