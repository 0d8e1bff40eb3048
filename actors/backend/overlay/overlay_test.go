package overlay_test

import (
	"testing"

	"github.com/berthrt/berth/actors/backend"
	"github.com/berthrt/berth/actors/backend/backendtest"
	"github.com/berthrt/berth/actors/backend/overlay"
	"github.com/berthrt/berth/process/archive"
)

// overlayOptions declares what the overlay backend can do. Files with
// holes stay sparse: overlayfs shows the lower file itself.
func overlayOptions() backendtest.Options {
	return backendtest.Options{
		MultiLayer:  true,
		Writable:    true,
		NeedsRoot:   true,
		LayerFormat: archive.WhiteoutOverlay,
		Sparse:      true,
	}
}

// conformanceConfigs are the mount paths the suite runs through: the
// default (fsconfig "lowerdir+" on this kernel), mount(2) with the layers'
// own paths, and mount(2) with a page small enough that every multi-layer
// case goes through the short relative symlinks.
var conformanceConfigs = []struct {
	name string
	opts overlay.Options
}{
	{"auto", overlay.Options{}},
	{"legacy", overlay.Options{Mount: overlay.MountLegacy}},
	{"legacy-links", overlay.Options{Mount: overlay.MountLegacy, PageSize: 256}},
}

// TestConformance runs the backend conformance suite once per mount path;
// every case also checks that no mount is left behind.
func TestConformance(t *testing.T) {
	for _, c := range conformanceConfigs {
		t.Run(c.name, func(t *testing.T) {
			backendtest.Run(t, func(t *testing.T) backend.Backend {
				overlay.LeakCheck(t)
				return overlay.NewWithOptions(c.opts)
			}, overlayOptions())
		})
	}
}
