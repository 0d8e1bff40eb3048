package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berthrt/berth/actors/actortest"
)

// BenchmarkPullVsSkopeoUmoci pulls and unpacks one multi-layer image from
// Debian's docker-registry on loopback into a fresh store per iteration,
// with `berth image pull` and with `skopeo copy` + `umoci unpack`, in
// alternation so that drift cancels, and reports both and their ratio.
// BERTH_BENCH_MB sets the image size (default 200), over 6 layers.
//
//	go test -run '^$' -bench PullVsSkopeoUmoci -benchtime 3x ./cmd/berth/
func BenchmarkPullVsSkopeoUmoci(b *testing.B) {
	actortest.RequiresRoot(b)
	skopeo := actortest.RequiresTool(b, "skopeo", "apt-get install skopeo")
	umoci := actortest.RequiresTool(b, "umoci", "apt-get install umoci")
	reg := startDockerRegistry(b)
	mb := 200
	if v, err := strconv.Atoi(os.Getenv("BERTH_BENCH_MB")); err == nil && v > 0 {
		mb = v
	}
	const layers = 6
	img, err := random.Image(int64(mb)<<20/layers, layers)
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		b.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH // umoci wants them
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		b.Fatal(err)
	}
	ref := reg + "/berth/big:v1"
	r, err := name.ParseReference(ref)
	if err != nil {
		b.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		b.Fatal(err)
	}
	base := b.TempDir()
	var berth, peers time.Duration
	n := 0
	for i := 0; b.Loop(); i++ {
		n++
		work := filepath.Join(base, fmt.Sprintf("berth-%d", i))
		start := time.Now()
		if out, err := exec.Command(berthBin, "image", "pull", "--work_dir="+work, "--docker_registry="+reg, ref).CombinedOutput(); err != nil {
			b.Fatalf("berth image pull: %v\n%s", err, out)
		}
		berth += time.Since(start)
		dir := filepath.Join(base, fmt.Sprintf("peers-%d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		if out, err := exec.Command(skopeo, "copy", "--src-tls-verify=false", "docker://"+ref, "oci:"+filepath.Join(dir, "layout")+":v1").CombinedOutput(); err != nil {
			b.Fatalf("skopeo copy: %v\n%s", err, out)
		}
		if out, err := exec.Command(umoci, "unpack", "--image", filepath.Join(dir, "layout")+":v1", filepath.Join(dir, "bundle")).CombinedOutput(); err != nil {
			b.Fatalf("umoci unpack: %v\n%s", err, out)
		}
		peers += time.Since(start)
		b.StopTimer()
		_ = os.RemoveAll(work)
		_ = os.RemoveAll(dir)
		b.StartTimer()
	}
	b.ReportMetric(float64(mb), "MB")
	b.ReportMetric(float64(berth.Milliseconds())/float64(n), "berth-ms")
	b.ReportMetric(float64(peers.Milliseconds())/float64(n), "skopeo+umoci-ms")
	b.ReportMetric(float64(berth)/float64(peers), "berth/peers")
}
