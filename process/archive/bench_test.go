package archive_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/berthrt/berth/fixtures/layers"
	"github.com/berthrt/berth/process/archive"
)

// benchLayer is a gzip layer of about 50 MB uncompressed: 100 directories
// of 20 files of 25 KB, roughly a language runtime's layer.
func benchLayer() (raw, gz []byte) {
	chunk := bytes.Repeat([]byte("berth layer bench data, somewhat compressible 0123456789\n"), 450)
	var entries []L
	for d := range 100 {
		entries = append(entries, L{Name: fmt.Sprintf("usr/lib/d%03d/", d), Type: '5'})
		for f := range 20 {
			body := chunk[:len(chunk)-(d*20+f)%512]
			entries = append(entries, L{Name: fmt.Sprintf("usr/lib/d%03d/f%02d.so", d, f), Body: string(body), Mode: 0o755})
		}
	}
	raw = layers.Tar(entries...)
	return raw, layers.Gzip(raw)
}

// BenchmarkExtract measures extraction throughput, in uncompressed bytes
// per second, of a gzip layer (the image-pull hot path).
func BenchmarkExtract(b *testing.B) {
	raw, gz := benchLayer()
	for _, c := range []struct {
		name string
		blob []byte
	}{{"gzip", gz}, {"plain", raw}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			parent := b.TempDir()
			b.ResetTimer()
			for i := range b.N {
				dir := filepath.Join(parent, fmt.Sprint(i))
				b.StopTimer()
				if err := os.Mkdir(dir, 0o755); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := archive.Extract(context.Background(), bytes.NewReader(c.blob), dir, withoutRoot(archive.Options{})); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := os.RemoveAll(dir); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
