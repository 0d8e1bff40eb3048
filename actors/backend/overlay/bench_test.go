package overlay_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/actors/backend/backendtest"
	"github.com/berthrt/berth/actors/backend/overlay"
)

// benchLayers is the number of layers of the synthetic benchmark images.
const benchLayers = 4

// benchFileSize is the size of each file of the synthetic images.
const benchFileSize = 256 << 10

// benchImage is a synthetic image built once per size for the whole run
// (under the package's berth-test directory, removed after the run).
type benchImage struct {
	once   sync.Once
	layers []string
	err    error
}

var benchImages = map[int]*benchImage{50: {}, 200: {}, 800: {}}

// imageOf returns the layers of the mb-megabyte image, building them on
// first use: benchLayers layers of mb/benchLayers MB each, in files of
// benchFileSize with pseudo-random content, 32 files a directory.
func imageOf(b *testing.B, mb int) []string {
	b.Helper()
	img := benchImages[mb]
	img.once.Do(func() {
		dir, err := os.MkdirTemp("", fmt.Sprintf("berth-test-bench-%dmb-", mb))
		if err != nil {
			img.err = err
			return
		}
		rng := rand.New(rand.NewPCG(uint64(mb), 7))
		buf := make([]byte, benchFileSize)
		perLayer := mb << 20 / benchLayers / benchFileSize
		for l := range benchLayers {
			layer := filepath.Join(dir, fmt.Sprintf("layer%d", l))
			for f := range perLayer {
				sub := filepath.Join(layer, fmt.Sprintf("usr/lib/d%03d", f/32))
				if err := os.MkdirAll(sub, 0o755); err != nil {
					img.err = err
					return
				}
				for i := 0; i < len(buf); i += 8 {
					v := rng.Uint64()
					for j := range 8 {
						buf[i+j] = byte(v >> (8 * j))
					}
				}
				if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%d.so", f)), buf, 0o644); err != nil {
					img.err = err
					return
				}
			}
			img.layers = append(img.layers, layer)
		}
		// A store's layers were written long ago: flush them now, or the
		// first unmounts (which sync the upper filesystem, the same one
		// here) pay for writing the image back.
		unix.Sync()
	})
	if img.err != nil {
		b.Fatal(img.err)
	}
	return img.layers
}

// BenchmarkProvision measures Provision+Destroy of the 50, 200 and 800 MB
// synthetic images (4 layers each): a mount and an unmount, so the time
// must not grow with the image.
func BenchmarkProvision(b *testing.B) {
	backendtest.RequireRoot(b)
	for _, mb := range []int{50, 200, 800} {
		b.Run(fmt.Sprintf("%dMB", mb), func(b *testing.B) {
			layers := imageOf(b, mb)
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
