package backendtest

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/berthrt/berth/actors/backend"
)

// BenchProvision measures Provision then Destroy of layers with be, and
// reports each apart (provision-ms, destroy-ms) beside the pair's ns/op.
func BenchProvision(b *testing.B, be backend.Backend, layers []string) {
	b.Helper()
	backendDir := b.TempDir()
	ctx := context.Background()
	var prov, destroy time.Duration
	n := 0
	for i := 0; b.Loop(); i++ {
		rootfs := filepath.Join(backendDir, "rootfses", fmt.Sprint(i))
		start := time.Now()
		if _, err := be.Provision(ctx, layers, rootfs, backendDir); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		if _, err := be.Destroy(ctx, rootfs, backendDir); err != nil {
			b.Fatal(err)
		}
		prov += mid.Sub(start)
		destroy += time.Since(mid)
		n++
	}
	if n > 0 {
		b.ReportMetric(float64(prov.Microseconds())/1000/float64(n), "provision-ms")
		b.ReportMetric(float64(destroy.Microseconds())/1000/float64(n), "destroy-ms")
	}
}
