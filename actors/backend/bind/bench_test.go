package bind_test

import (
	"fmt"
	"testing"

	"github.com/berthrt/berth/actors/backend/backendtest"
	"github.com/berthrt/berth/actors/backend/bind"
)

// BenchmarkProvision measures Provision+Destroy of the 50, 200 and 800 MB
// synthetic layers: a bind mount, a remount and an unmount, so the time
// must not grow with the image.
func BenchmarkProvision(b *testing.B) {
	backendtest.RequireRoot(b)
	for _, mb := range []int{50, 200, 800} {
		b.Run(fmt.Sprintf("%dMB", mb), func(b *testing.B) {
			backendtest.BenchProvision(b, bind.New(), backendtest.SyntheticImage(b, mb, 1, 9))
			b.ReportMetric(float64(mb), "MB")
		})
	}
}
