package appc

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/berthrt/berth/actors/actortest"
	"github.com/berthrt/berth/fixtures/aci"
	"github.com/berthrt/berth/fixtures/layers"
)

// benchACI writes a gzip ACI of about 48 MiB unpacked (192 files of
// 256 KiB, half random bytes so that gzip has work) into dir.
func benchACI(b *testing.B, dir string) (string, aci.Image) {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var files []layers.Entry
	for i := range 192 {
		buf := make([]byte, 256<<10)
		for j := 0; j < len(buf)/2; j++ {
			buf[j] = byte(rng.Uint32())
		}
		files = append(files, file(fmt.Sprintf("data/%03d", i), string(buf)))
	}
	p := filepath.Join(dir, "bench.aci")
	img, err := aci.Write(p, aci.Spec{Manifest: manifest("bench", "1"), Files: files, Compression: "gzip"})
	if err != nil {
		b.Fatal(err)
	}
	return p, img
}

// BenchmarkImportACI: storing a gzip ACI (decompress, SHA-512, safe
// extraction, checks, syncfs, rename) against the shell pipeline doing the
// same in one pass: gzip -dc | tee >(sha512sum) | tar -x, then sync -f. Run: go test -run '^$' -bench ImportACI ./actors/store/appc/
func BenchmarkImportACI(b *testing.B) {
	dir, err := os.MkdirTemp("", "berth-test-appc-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(dir) })
	p, img := benchACI(b, dir)
	b.Run("berth", func(b *testing.B) {
		b.SetBytes(int64(len(img.Tar)))
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			sd := filepath.Join(dir, fmt.Sprintf("store-%d", i))
			s, err := New(Options{Dir: sd})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			got, err := s.Import(context.Background(), p)
			if err != nil || got.Digest != img.ID {
				b.Fatalf("%s %v", got.Digest, err)
			}
			b.StopTimer()
			_ = os.RemoveAll(sd)
			b.StartTimer()
		}
	})
	b.Run("tar+sha512sum", func(b *testing.B) {
		sh := actortest.RequiresTool(b, "bash", "apt-get install bash")
		actortest.RequiresTool(b, "tar", "apt-get install tar")
		b.SetBytes(int64(len(img.Tar)))
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			out := filepath.Join(dir, fmt.Sprintf("tar-%d", i))
			if err := os.Mkdir(out, 0o700); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			cmd := exec.Command(sh, "-c", `set -o pipefail; gzip -dc "$1" | tee >(sha512sum >/dev/null) | tar -x -C "$2" && sync -f "$2"`, "sh", p, out)
			if o, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%v: %s", err, o)
			}
			b.StopTimer()
			_ = os.RemoveAll(out)
			b.StartTimer()
		}
	})
}
