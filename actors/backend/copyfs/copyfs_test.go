package copyfs_test

import (
	"testing"

	"github.com/berthrt/berth/actors/backend"
	"github.com/berthrt/berth/actors/backend/backendtest"
	"github.com/berthrt/berth/actors/backend/copyfs"
	"github.com/berthrt/berth/process/archive"
)

// copyOptions declares everything the copy backend can do.
func copyOptions() backendtest.Options {
	return backendtest.Options{
		MultiLayer:  true,
		Writable:    true,
		LayerFormat: archive.WhiteoutAUFS,
		Sparse:      true,
	}
}

// TestConformance runs the backend conformance suite with the default
// options, and TestConformanceSequential with one worker (the same code
// paths, without concurrency).
func TestConformance(t *testing.T) {
	backendtest.Run(t, func(*testing.T) backend.Backend { return copyfs.New() }, copyOptions())
}

func TestConformanceSequential(t *testing.T) {
	newBackend := func(*testing.T) backend.Backend { return copyfs.NewWithOptions(copyfs.Options{Parallelism: 1}) }
	backendtest.Run(t, newBackend, copyOptions())
}
