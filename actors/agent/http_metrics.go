package agent

import (
	"github.com/berthrt/berth/actors/metrics"
	"github.com/berthrt/berth/actors/store"
	"github.com/berthrt/berth/actors/store/docker"
)

// observeStore feeds the store's counters to the image metrics.
func observeStore(m *metrics.Metrics, st store.Store) {
	s, ok := st.(interface{ Stats() docker.Stats })
	if !ok {
		return
	}
	m.SetImageStats(func() (int64, int64) {
		stats := s.Stats()
		return stats.Imports, stats.Extractions
	})
}
