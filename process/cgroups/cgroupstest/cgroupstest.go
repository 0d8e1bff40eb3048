// Package cgroupstest gives tests a cgroups root of their own: named with
// berth-test, with Managers of the cpu and memory controllers below it, and
// checked and removed when the test ends, even when it failed.
package cgroupstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/berthrt/berth/process/cgroups"
)

// Root returns a fresh root "berth-test-<name>-<random>" and the host's
// Managers of cpu and memory below it. Without root or without the
// controllers the test is skipped (failed under CI=true). At the end, a
// container cgroup still below the root is reported as an error and
// destroyed, and the root is removed.
func Root(t testing.TB, name string) (root string, cpu, mem *cgroups.Manager) {
	t.Helper()
	ci := os.Getenv("CI") == "true"
	if os.Geteuid() != 0 {
		if ci {
			t.Fatal("this test needs root; CI runs as root")
		}
		t.Skip("this test needs root to make cgroups: run as root, e.g. sudo -E go test ./...")
	}
	l, err := cgroups.Detect()
	if err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	root = "berth-test-" + name + "-" + hex.EncodeToString(b[:])
	if cpu, err = cgroups.NewManager(l, root, []string{cgroups.CPU}); err == nil {
		mem, err = cgroups.NewManager(l, root, []string{cgroups.Memory})
	}
	if err != nil {
		if ci {
			t.Fatal(err)
		}
		t.Skipf("this host cannot limit CPU and memory through cgroups (a property of its kernel and boot): %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, m := range []*cgroups.Manager{cpu, mem} {
			gone, err := m.Purge(ctx, nil)
			for _, n := range gone {
				t.Errorf("cgroup left behind: %v", m.Dirs(n))
			}
			if err != nil {
				t.Error(err)
			}
			if err := m.RemoveRoot(); err != nil {
				t.Error(err)
			}
		}
	})
	return root, cpu, mem
}
