package aufs_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthrt/berth/actors/backend"
	"github.com/berthrt/berth/actors/backend/aufs"
	"github.com/berthrt/berth/actors/backend/backendtest"
	"github.com/berthrt/berth/process/archive"
	"github.com/berthrt/berth/process/errdefs"
)

// noAufs is the message the backend gives on a kernel without aufs.
const noAufs = "the kernel has no aufs (not in /proc/filesystems); use overlay or copy"

func supported(t *testing.T) bool {
	t.Helper()
	ok, err := aufs.Supported()
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestConformance runs the backend conformance suite where the kernel has
// aufs. Most kernels do not (aufs was never merged upstream; this
// machine's has overlay only): the suite is then skipped, whatever CI
// says, since that is a property of the kernel, detected the documented
// way (/proc/filesystems), and TestProvisionWithoutAufs covers the
// backend's behaviour there.
func TestConformance(t *testing.T) {
	if !supported(t) {
		t.Skip("the kernel has no aufs (not in /proc/filesystems): the aufs conformance suite needs a kernel with aufs; " +
			"TestProvisionWithoutAufs checks the backend's refusal here")
	}
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		aufs.LeakCheck(t)
		return aufs.New()
	}, backendtest.Options{
		MultiLayer:  true,
		Writable:    true,
		NeedsRoot:   true,
		LayerFormat: archive.WhiteoutAUFS,
	})
}

// TestManyLayersLinks provisions 64 layers with long paths and a small
// page, so the mount goes through the relative links; only where the
// kernel has aufs.
func TestManyLayersLinks(t *testing.T) {
	if !supported(t) {
		t.Skip("the kernel has no aufs (not in /proc/filesystems)")
	}
	backendtest.RequireRoot(t)
	aufs.LeakCheck(t)
	base := aufs.NewTestDir(t)
	dir := filepath.Join(base, strings.Repeat("long-layer-path-", 6))
	var layers []string
	for i := range 64 {
		l := filepath.Join(dir, "layer", string(rune('a'+i/26)), string(rune('a'+i%26)))
		if err := backendtest.BuildLayer(l, archive.WhiteoutAUFS, backendtest.File("counter", l)); err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	b := aufs.New()
	backendDir := filepath.Join(base, "backend")
	rootfs := filepath.Join(backendDir, "rootfses", "r")
	ctx := context.Background()
	if _, err := b.Provision(ctx, layers, rootfs, backendDir); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(rootfs, "counter")); err != nil || string(got) != layers[63] {
		t.Errorf("counter = %q, %v; want the top layer's", got, err)
	}
	if existed, err := b.Destroy(ctx, rootfs, backendDir); err != nil || !existed {
		t.Fatalf("Destroy = %v, %v", existed, err)
	}
}

// TestCheck: Check agrees with Supported, and without aufs says so
// clearly, with class ErrFailedPrecondition.
func TestCheck(t *testing.T) {
	err := aufs.Check()
	if supported(t) {
		if err != nil {
			t.Errorf("Check() = %v on a kernel with aufs", err)
		}
		return
	}
	if !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), noAufs) {
		t.Errorf("Check() = %v, want ErrFailedPrecondition saying %q", err, noAufs)
	}
}

// TestProvisionWithoutAufs: on a kernel without aufs, Provision fails
// with ErrFailedPrecondition and creates nothing, whether the backend
// directory exists or not; Destroy still works (nothing to do). The
// refusal comes before any privileged call, so this runs without root.
func TestProvisionWithoutAufs(t *testing.T) {
	if supported(t) {
		t.Skip("the kernel has aufs")
	}
	aufs.LeakCheck(t)
	base := aufs.NewTestDir(t)
	layer := filepath.Join(base, "layer")
	if err := backendtest.BuildLayer(layer, archive.WhiteoutAUFS, backendtest.File("etc/hostname", "box")); err != nil {
		t.Fatal(err)
	}
	b := aufs.New()
	ctx := context.Background()
	for _, existing := range []bool{false, true} {
		backendDir := filepath.Join(base, "backend")
		if existing {
			if err := os.MkdirAll(filepath.Join(backendDir, "rootfses"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		rootfs := filepath.Join(backendDir, "rootfses", "r")
		_, err := b.Provision(ctx, []string{layer, layer}, rootfs, backendDir)
		if !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), noAufs) {
			t.Fatalf("Provision = %v, want ErrFailedPrecondition saying %q", err, noAufs)
		}
		t.Logf("error (expected): %v", err)
		var left []string
		_ = filepath.WalkDir(backendDir, func(p string, d os.DirEntry, err error) error {
			if err == nil && p != backendDir && p != filepath.Join(backendDir, "rootfses") {
				left = append(left, p)
			}
			return nil
		})
		if _, err := os.Lstat(backendDir); !existing && !os.IsNotExist(err) {
			left = append(left, backendDir)
		}
		if len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
		if existed, err := b.Destroy(ctx, rootfs, backendDir); err != nil || existed {
			t.Errorf("Destroy = %v, %v; want false, nil", existed, err)
		}
	}
}
