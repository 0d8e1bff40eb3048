package copyfs_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/berthrt/berth/actors/backend/backendtest"
	"github.com/berthrt/berth/actors/backend/copyfs"
	"github.com/berthrt/berth/process/archive"
)

// benchDirEnv names a directory to build the benchmark image in instead of
// b.TempDir() (for instance a tmpfs, to measure without the disk).
const benchDirEnv = "BERTH_BENCH_DIR"

// benchImage is a synthetic image: 3 layers, ~100 MB, ~5,000 files in
// ~200 directories, with symlinks, hard links, whiteouts and an opaque
// directory in the upper layers.
type benchImage struct {
	layers []string
	bytes  int64
	files  int
}

// benchLayerFiles returns the number of files of each layer, bottom first.
func benchLayerFiles() []int { return []int{3000, 1500, 500} }

// benchSizeEnv sets the image's size in MB (default 100): `task bench`
// runs it at 200, the size DESIGN.md's targets name.
const benchSizeEnv = "BERTH_BENCH_MB"

// benchMeanSize is the mean file size: 5,000 files of 20 KiB ≈ 100 MB, or
// BERTH_BENCH_MB spread over the same files.
func benchMeanSize() float64 {
	mb, err := strconv.Atoi(os.Getenv(benchSizeEnv))
	if err != nil || mb <= 0 {
		mb = 100
	}
	return float64(mb) * (1 << 20) / 5000
}

func buildBenchImage(b *testing.B) benchImage {
	b.Helper()
	base := b.TempDir()
	if d := os.Getenv(benchDirEnv); d != "" {
		var err error
		if base, err = os.MkdirTemp(d, "copyfs-bench-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(base) })
	}
	rng := rand.New(rand.NewPCG(1, 2))
	mean := benchMeanSize()
	var img benchImage
	for li, n := range benchLayerFiles() {
		entries := benchLayer(rng, li, n, mean, &img)
		dir := filepath.Join(base, fmt.Sprintf("layer%d", li))
		if err := backendtest.BuildLayer(dir, archive.WhiteoutAUFS, entries...); err != nil {
			b.Fatal(err)
		}
		img.layers = append(img.layers, dir)
	}
	return img
}

// benchLayer returns the entries of layer li with n files.
func benchLayer(rng *rand.Rand, li, n int, mean float64, img *benchImage) []Entry {
	var entries []Entry
	for i := range n {
		size := int(rng.ExpFloat64() * mean)
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		p := fmt.Sprintf("usr/lib%d/d%02d/s%d/f%d.so", li, i%40, i%5, i)
		entries = append(entries, backendtest.File(p, string(data)).WithMode(0o644|uint32(i%3/2)*0o111))
		img.bytes += int64(size)
		img.files++
		if i%100 == 0 {
			entries = append(entries, backendtest.Symlink(p+".link", filepath.Base(p)))
		}
		if i%250 == 0 {
			entries = append(entries, backendtest.Hardlink(p+".hard", p))
		}
	}
	if li > 0 {
		for i := range 50 {
			entries = append(entries, backendtest.Whiteout(fmt.Sprintf("usr/lib0/d%02d/s%d/f%d.so", i%40, i%5, i*40+i%40)))
		}
		entries = append(entries, backendtest.Opaque(fmt.Sprintf("usr/lib0/d%02d/s0", 10+li)))
	}
	return entries
}

// Entry is the layer entry type of backendtest.
type Entry = backendtest.Entry

// BenchmarkProvision measures the copy backend on the synthetic image:
// Provision+Destroy, and Provision alone. Compare with BenchmarkCpA.
func BenchmarkProvision(b *testing.B) {
	img := buildBenchImage(b)
	be := copyfs.New()
	ctx := context.Background()
	out := b.TempDir()
	run := func(b *testing.B, timeDestroy bool) {
		b.SetBytes(img.bytes)
		for i := 0; b.Loop(); i++ {
			rootfs := filepath.Join(out, "rootfses", fmt.Sprint(i))
			if _, err := be.Provision(ctx, img.layers, rootfs, out); err != nil {
				b.Fatal(err)
			}
			if !timeDestroy {
				b.StopTimer()
			}
			if _, err := be.Destroy(ctx, rootfs, out); err != nil {
				b.Fatal(err)
			}
			if !timeDestroy {
				b.StartTimer()
			}
		}
		b.ReportMetric(float64(img.files), "files")
	}
	b.Run("provision+destroy", func(b *testing.B) { run(b, true) })
	b.Run("provision", func(b *testing.B) { run(b, false) })
}

// BenchmarkCpA measures `cp -aT` of each layer in turn (what Mesos's copy
// backend runs, minus its whiteout handling) into a fresh directory, with
// and without the `rm -rf` that destroys it, for comparison with
// BenchmarkProvision.
func BenchmarkCpA(b *testing.B) {
	cp, err := exec.LookPath("cp")
	if err != nil {
		b.Skip("cp not found")
	}
	rm, err := exec.LookPath("rm")
	if err != nil {
		b.Skip("rm not found")
	}
	img := buildBenchImage(b)
	out := b.TempDir()
	run := func(b *testing.B, timeRm bool) {
		b.SetBytes(img.bytes)
		for i := 0; b.Loop(); i++ {
			dst := filepath.Join(out, fmt.Sprint(i))
			for _, l := range img.layers {
				if o, err := exec.Command(cp, "-aT", l, dst).CombinedOutput(); err != nil {
					b.Fatalf("cp -aT %s %s: %v: %s", l, dst, err, o)
				}
			}
			if !timeRm {
				b.StopTimer()
			}
			if o, err := exec.Command(rm, "-rf", dst).CombinedOutput(); err != nil {
				b.Fatalf("rm -rf %s: %v: %s", dst, err, o)
			}
			if !timeRm {
				b.StartTimer()
			}
		}
		b.ReportMetric(float64(img.files), "files")
	}
	b.Run("cp-a+rm", func(b *testing.B) { run(b, true) })
	b.Run("cp-a", func(b *testing.B) { run(b, false) })
}

// BenchmarkCopyVsCpA interleaves the copy backend and `cp -aT` + `rm -rf`
// on the same image, iteration by iteration, so that both see the same
// filesystem state (on a disk filesystem, the cost of creating inodes
// depends on how many were deleted recently), and reports the per-iteration
// times of each phase and their ratios (copy backend / cp).
func BenchmarkCopyVsCpA(b *testing.B) {
	cp, err := exec.LookPath("cp")
	if err != nil {
		b.Skip("cp not found")
	}
	rm, err := exec.LookPath("rm")
	if err != nil {
		b.Skip("rm not found")
	}
	img := buildBenchImage(b)
	be := copyfs.New()
	ctx := context.Background()
	out := b.TempDir()
	if err := os.MkdirAll(filepath.Join(out, "cp"), 0o755); err != nil {
		b.Fatal(err)
	}
	var prov, destroy, cpa, rmrf time.Duration
	timed := func(d *time.Duration, f func() error) {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		*d += time.Since(start)
	}
	n := 0
	for i := 0; b.Loop(); i++ {
		n++
		rootfs := filepath.Join(out, "rootfses", fmt.Sprint(i))
		dst := filepath.Join(out, "cp", fmt.Sprint(i))
		copyPhase := func() {
			timed(&prov, func() error { _, err := be.Provision(ctx, img.layers, rootfs, out); return err })
		}
		cpPhase := func() {
			timed(&cpa, func() error {
				for _, l := range img.layers {
					if o, err := exec.Command(cp, "-aT", l, dst).CombinedOutput(); err != nil {
						return fmt.Errorf("cp: %v: %s", err, o)
					}
				}
				return nil
			})
		}
		destroyPhase := func() { timed(&destroy, func() error { _, err := be.Destroy(ctx, rootfs, out); return err }) }
		rmPhase := func() {
			timed(&rmrf, func() error {
				if o, err := exec.Command(rm, "-rf", dst).CombinedOutput(); err != nil {
					return fmt.Errorf("rm: %v: %s", err, o)
				}
				return nil
			})
		}
		if i%2 == 0 { // alternate who goes first
			copyPhase()
			cpPhase()
			destroyPhase()
			rmPhase()
		} else {
			cpPhase()
			copyPhase()
			rmPhase()
			destroyPhase()
		}
	}
	per := func(d time.Duration) float64 { return d.Seconds() * 1000 / float64(n) }
	b.ReportMetric(per(prov), "provision-ms")
	b.ReportMetric(per(cpa), "cp-a-ms")
	b.ReportMetric(per(prov)/per(cpa), "provision/cp-a")
	b.ReportMetric(per(destroy), "destroy-ms")
	b.ReportMetric(per(rmrf), "rm-rf-ms")
	b.ReportMetric(per(prov+destroy)/per(cpa+rmrf), "total/cp-a+rm")
}

// BenchmarkProvisionParallelism measures Provision alone at several
// worker bounds.
func BenchmarkProvisionParallelism(b *testing.B) {
	img := buildBenchImage(b)
	ctx := context.Background()
	out := b.TempDir()
	for _, p := range []int{1, 2, 4, 16} {
		be := copyfs.NewWithOptions(copyfs.Options{Parallelism: p})
		b.Run(fmt.Sprintf("parallelism=%d", p), func(b *testing.B) {
			b.SetBytes(img.bytes)
			for i := 0; b.Loop(); i++ {
				rootfs := filepath.Join(out, "rootfses", fmt.Sprintf("p%d-%d", p, i))
				if _, err := be.Provision(ctx, img.layers, rootfs, out); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if _, err := be.Destroy(ctx, rootfs, out); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
