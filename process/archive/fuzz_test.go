package archive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/berthrt/berth/fixtures/layers"
	"github.com/berthrt/berth/process/archive"
)

// FuzzExtract: whatever the bytes, Extract returns (no panic) and writes
// nothing outside the layer's directory.
//
//	go test -run '^$' -fuzz FuzzExtract -fuzztime 60s ./process/archive/
func FuzzExtract(f *testing.F) {
	for _, c := range layers.Hostile() {
		if len(c.Tar) < 64<<10 {
			f.Add(c.Tar)
		}
	}
	f.Add(layers.Tar(L{Name: "a/", Type: tar.TypeDir}, L{Name: "a/b", Body: "b"}, L{Name: "a/.wh.c"}, L{Name: "l", Type: tar.TypeLink, Link: "a/b"}))
	f.Add(layers.Gzip(layers.Tar(L{Name: "s", Type: tar.TypeSymlink, Link: "../.."}, L{Name: "s/x", Body: "x"})))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, wh := range []archive.WhiteoutFormat{archive.WhiteoutAUFS, archive.WhiteoutOverlay} {
			outside, err := extractBeside(t, b, archive.Options{Whiteouts: wh, NoChown: os.Geteuid() != 0, MaxBytes: 64 << 20, MaxEntries: 10000})
			if outside != "" {
				t.Fatalf("written outside the layer (err %v): %s", err, outside)
			}
		}
	})
}

// BenchmarkExtract measures extraction of a gzip layer of 2,000 files
// (about 50 MB), the cost that dominates an image pull.
func BenchmarkExtract(b *testing.B) {
	var entries []L
	chunk := bytes.Repeat([]byte("berth layer data "), 1536)
	for i := range 2000 {
		entries = append(entries, L{Name: fmt.Sprintf("d%02d/f%04d", i%50, i), Body: string(chunk[:len(chunk)-i%100])})
	}
	plain := layers.Tar(entries...)
	raw := layers.Gzip(plain)
	b.SetBytes(int64(len(plain))) // throughput of unpacked bytes
	b.ResetTimer()
	for range b.N {
		dir := filepath.Join(b.TempDir(), "layer")
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		if _, err := archive.Extract(context.Background(), bytes.NewReader(raw), dir, archive.Options{NoChown: os.Geteuid() != 0}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(dir)
		b.StartTimer()
	}
}
