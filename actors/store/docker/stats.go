package docker

// Stats are the store's counters since it was built.
type Stats struct {
	// Imports are images imported into the cache: pulled from a registry
	// or read from an archive or a layout (a cached Get is not one).
	Imports int64
	// Extractions are layers extracted into the cache.
	Extractions int64
}

// Stats reads the counters; they are atomic, so any goroutine may.
func (s *Store) Stats() Stats {
	return Stats{Imports: s.importRuns.Load(), Extractions: s.extractions.Load()}
}
