package backendtest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// benchFileSize is the size of each file of the synthetic images.
const benchFileSize = 256 << 10

// syntheticImage is one synthetic image, built once for the whole run.
type syntheticImage struct {
	once   sync.Once
	layers []string
	err    error
}

var (
	syntheticMu     sync.Mutex
	syntheticImages = map[[2]int]*syntheticImage{}
)

// SyntheticImage returns the layers of an mb-megabyte image in n layers of
// mb/n MB each, built on first use (in a berth-test temp dir, once per run
// for each size and layer count): files of 256 KiB with pseudo-random
// content from seed, 32 files a directory. The benchmarks of provisioning
// time against image size use it.
func SyntheticImage(b *testing.B, mb, n int, seed uint64) []string {
	b.Helper()
	syntheticMu.Lock()
	img := syntheticImages[[2]int{mb, n}]
	if img == nil {
		img = &syntheticImage{}
		syntheticImages[[2]int{mb, n}] = img
	}
	syntheticMu.Unlock()
	img.once.Do(func() { img.layers, img.err = buildSynthetic(mb, n, seed) })
	if img.err != nil {
		b.Fatal(img.err)
	}
	return img.layers
}

func buildSynthetic(mb, n int, seed uint64) ([]string, error) {
	dir, err := os.MkdirTemp("", fmt.Sprintf("berth-test-bench-%dmb-", mb))
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(uint64(mb), seed))
	buf := make([]byte, benchFileSize)
	perLayer := mb << 20 / n / benchFileSize
	var layers []string
	for l := range n {
		layer := filepath.Join(dir, fmt.Sprintf("layer%d", l))
		for f := range perLayer {
			sub := filepath.Join(layer, fmt.Sprintf("usr/lib/d%03d", f/32))
			if err := os.MkdirAll(sub, 0o755); err != nil {
				return nil, err
			}
			for i := 0; i < len(buf); i += 8 {
				v := rng.Uint64()
				for j := range 8 {
					buf[i+j] = byte(v >> (8 * j))
				}
			}
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%d.so", f)), buf, 0o644); err != nil {
				return nil, err
			}
		}
		layers = append(layers, layer)
	}
	// A store's layers were written long ago: flush them now, or the first
	// unmounts (which sync the upper filesystem, the same one here) pay for
	// writing the image back.
	unix.Sync()
	return layers, nil
}
