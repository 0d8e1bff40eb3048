package bind_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/actors/backend/backendtest"
	"github.com/berthrt/berth/actors/backend/bind"
)

// benchFileSize is the size of each file of the synthetic images.
const benchFileSize = 256 << 10

// benchImage is a synthetic single-layer image built once per size for the
// whole run (under the package's berth-test directory, removed after it).
type benchImage struct {
	once  sync.Once
	layer string
	err   error
}

var benchImages = map[int]*benchImage{50: {}, 200: {}, 800: {}}

// layerOf returns the mb-megabyte layer, building it on first use: files
// of benchFileSize with pseudo-random content, 32 a directory.
func layerOf(b *testing.B, mb int) string {
	b.Helper()
	img := benchImages[mb]
	img.once.Do(func() {
		dir, err := os.MkdirTemp("", fmt.Sprintf("berth-test-bench-%dmb-", mb))
		if err != nil {
			img.err = err
			return
		}
		rng := rand.New(rand.NewPCG(uint64(mb), 9))
		buf := make([]byte, benchFileSize)
		for f := range mb << 20 / benchFileSize {
			sub := filepath.Join(dir, "layer", fmt.Sprintf("usr/lib/d%03d", f/32))
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
		img.layer = filepath.Join(dir, "layer")
		unix.Sync() // a store's layers were written long ago
	})
	if img.err != nil {
		b.Fatal(img.err)
	}
	return img.layer
}

// BenchmarkProvision measures Provision+Destroy of the 50, 200 and 800 MB
// synthetic layers: a bind mount, a remount and an unmount, so the time
// must not grow with the image.
func BenchmarkProvision(b *testing.B) {
	backendtest.RequireRoot(b)
	for _, mb := range []int{50, 200, 800} {
		b.Run(fmt.Sprintf("%dMB", mb), func(b *testing.B) {
			layer := layerOf(b, mb)
			backendtest.BenchProvision(b, bind.New(), []string{layer})
			b.ReportMetric(float64(mb), "MB")
		})
	}
}
