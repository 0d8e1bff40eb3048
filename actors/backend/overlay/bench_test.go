package overlay_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/berthrt/berth/actors/backend/backendtest"
	"github.com/berthrt/berth/actors/backend/overlay"
)

// benchLayers is the number of layers of the synthetic benchmark images.
const benchLayers = 4

// BenchmarkProvision measures Provision+Destroy of the 50, 200 and 800 MB
// synthetic images (4 layers each): a mount and an unmount, so the time
// must not grow with the image.
func BenchmarkProvision(b *testing.B) {
	backendtest.RequireRoot(b)
	for _, mb := range []int{50, 200, 800} {
		b.Run(fmt.Sprintf("%dMB", mb), func(b *testing.B) {
			layers := backendtest.SyntheticImage(b, mb, benchLayers, 7)
			benchProvision(b, overlay.New(), layers)
			b.ReportMetric(float64(mb), "MB")
		})
	}
}

// BenchmarkProvisionManyLayers measures Provision+Destroy of 128 empty
// layers with ~140-byte paths, through fsconfig "lowerdir+" and through
// mount(2) with short links.
func BenchmarkProvisionManyLayers(b *testing.B) {
	backendtest.RequireRoot(b)
	base := b.TempDir()
	dir := filepath.Join(base, "long-layer-path-long-layer-path-long-layer-path-long-layer-path", "layers")
	layers := make([]string, 128)
	for i := range layers {
		layers[i] = filepath.Join(dir, fmt.Sprintf("sha256_%064d", i))
		if err := os.MkdirAll(layers[i], 0o755); err != nil {
			b.Fatal(err)
		}
	}
	for _, api := range apis {
		b.Run(api.String(), func(b *testing.B) {
			benchProvision(b, overlay.NewWithOptions(overlay.Options{Mount: api}), layers)
		})
	}
}

// benchProvision times Provision+Destroy of layers with be.
func benchProvision(b *testing.B, be *overlay.Backend, layers []string) {
	b.Helper()
	backendtest.BenchProvision(b, be, layers)
}
