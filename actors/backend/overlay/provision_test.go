package overlay_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/actors/backend/backendtest"
	"github.com/berthrt/berth/actors/backend/overlay"
	"github.com/berthrt/berth/process/archive"
	"github.com/berthrt/berth/process/errdefs"
)

// apis are the two mount paths, each tested on its own.
var apis = []overlay.MountAPI{overlay.MountFsconfig, overlay.MountLegacy}

// longLayerDir returns the directory to build layers in: deep enough that
// each layer path is about as long as the docker store's (~140 bytes), so
// that the legacy option string overflows its page with a few dozen layers.
func longLayerDir(t *testing.T, base string) string {
	t.Helper()
	dir := filepath.Join(base, strings.Repeat("long-layer-path-", 5), "layers")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// buildCountedLayers builds n layers: layer i adds f<i> holding i and
// sets "counter" to i; the top layer also whiteouts f000 and makes "opq"
// opaque (lower layers put opq/l<i> there).
func buildCountedLayers(t *testing.T, dir string, n int) []string {
	t.Helper()
	layers := make([]string, n)
	for i := range n {
		entries := []backendtest.Entry{
			backendtest.File(fmt.Sprintf("f%03d", i), fmt.Sprint(i)),
			backendtest.File("counter", fmt.Sprint(i)),
			backendtest.File(fmt.Sprintf("opq/l%03d", i), "hidden by the top layer"),
		}
		if i == n-1 {
			entries = []backendtest.Entry{
				backendtest.File(fmt.Sprintf("f%03d", i), fmt.Sprint(i)),
				backendtest.File("counter", fmt.Sprint(i)),
				backendtest.Whiteout("f000"),
				backendtest.Opaque("opq"),
				backendtest.File("opq/top", "top"),
			}
		}
		layers[i] = filepath.Join(dir, fmt.Sprintf("layer-%03d", i))
		if err := backendtest.BuildLayer(layers[i], archive.WhiteoutOverlay, entries...); err != nil {
			t.Fatal(err)
		}
	}
	return layers
}

// TestManyLayers provisions 128 and 200 layers with ~140-byte paths
// through both mount paths and checks the merged view: every layer's
// file, the top layer's whiteout and opaque directory, the top layer's
// counter; then writes go to the upper dir, and nothing is left mounted
// after Destroy.
func TestManyLayers(t *testing.T) {
	backendtest.RequireRoot(t)
	for _, n := range []int{128, 200} {
		base := overlay.NewTestDir(t)
		layers := buildCountedLayers(t, longLayerDir(t, base), n)
		for _, api := range apis {
			t.Run(fmt.Sprintf("%d/%s", n, api), func(t *testing.T) {
				overlay.LeakCheck(t)
				b := overlay.NewWithOptions(overlay.Options{Mount: api})
				backendDir := filepath.Join(base, "backend-"+api.String())
				rootfs := filepath.Join(backendDir, "rootfses", "r")
				ctx := context.Background()
				eph, err := b.Provision(ctx, layers, rootfs, backendDir)
				if err != nil {
					t.Fatalf("Provision %d layers: %v", n, err)
				}
				t.Cleanup(func() { _, _ = b.Destroy(ctx, rootfs, backendDir) })
				checkCounted(t, rootfs, n)
				links, _ := os.ReadDir(filepath.Join(backendDir, "links", "r"))
				if api == overlay.MountLegacy && len(links) != n {
					t.Errorf("legacy mount: %d links, want one per layer (%d)", len(links), n)
				}
				if api == overlay.MountFsconfig && len(links) != 0 {
					t.Errorf("fsconfig mount: %d links, want none", len(links))
				}
				if err := os.WriteFile(filepath.Join(rootfs, "f001"), []byte("written"), 0o644); err != nil {
					t.Fatal(err)
				}
				if got, err := os.ReadFile(filepath.Join(eph[0], "f001")); err != nil || string(got) != "written" {
					t.Errorf("upper dir %s has f001 = %q, %v; want the write", eph[0], got, err)
				}
				if got, err := os.ReadFile(filepath.Join(layers[1], "f001")); err != nil || string(got) != "1" {
					t.Errorf("layer 1 has f001 = %q, %v; want it untouched", got, err)
				}
				existed, err := b.Destroy(ctx, rootfs, backendDir)
				if err != nil || !existed {
					t.Fatalf("Destroy = %v, %v", existed, err)
				}
				assertGone(t, rootfs, backendDir)
			})
		}
	}
}

// checkCounted checks the merged view of buildCountedLayers(n).
func checkCounted(t *testing.T, rootfs string, n int) {
	t.Helper()
	if _, err := os.Lstat(filepath.Join(rootfs, "f000")); !os.IsNotExist(err) {
		t.Errorf("f000 (whited out by the top layer): lstat = %v, want not found", err)
	}
	for i := 1; i < n; i++ {
		got, err := os.ReadFile(filepath.Join(rootfs, fmt.Sprintf("f%03d", i)))
		if err != nil || string(got) != fmt.Sprint(i) {
			t.Fatalf("f%03d = %q, %v; want %d", i, got, err, i)
		}
	}
	if got, err := os.ReadFile(filepath.Join(rootfs, "counter")); err != nil || string(got) != fmt.Sprint(n-1) {
		t.Errorf("counter = %q, %v; want the top layer's %d", got, err, n-1)
	}
	names, err := os.ReadDir(filepath.Join(rootfs, "opq"))
	if err != nil || len(names) != 1 || names[0].Name() != "top" {
		t.Errorf("opaque dir holds %v, %v; want only the top layer's file", names, err)
	}
}

// assertGone checks that rootfs, its scratch and links dirs are gone and
// that nothing is mounted under backendDir.
func assertGone(t *testing.T, rootfs, backendDir string) {
	t.Helper()
	id := filepath.Base(rootfs)
	for _, p := range []string{rootfs, filepath.Join(backendDir, "scratch", id), filepath.Join(backendDir, "links", id)} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s: lstat = %v, want it gone", p, err)
		}
	}
	if mps, err := overlay.MountsUnder(backendDir); err != nil || len(mps) > 0 {
		t.Errorf("mounts left under %s: %v, %v", backendDir, mps, err)
	}
}

// TestTooManyLayers: more than overlayfs's 500 is refused up front.
func TestTooManyLayers(t *testing.T) {
	base := overlay.NewTestDir(t)
	layers := make([]string, overlay.MaxLayers+1)
	for i := range layers {
		layers[i] = filepath.Join(base, "layers", fmt.Sprint(i))
		if err := os.MkdirAll(layers[i], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rootfs := filepath.Join(base, "backend", "rootfses", "r")
	_, err := overlay.New().Provision(context.Background(), layers, rootfs, filepath.Join(base, "backend"))
	if !errdefs.IsInvalidArgument(err) {
		t.Errorf("Provision(%d layers) = %v, want ErrInvalidArgument", len(layers), err)
	}
	if _, err := os.Lstat(filepath.Join(base, "backend")); !os.IsNotExist(err) {
		t.Errorf("backend dir created: %v", err)
	}
}

// TestMountFailureLeavesNothing makes the mount itself fail (procfs cannot
// be an overlay layer) after the rootfs, scratch and links dirs exist:
// all of them must be removed.
func TestMountFailureLeavesNothing(t *testing.T) {
	backendtest.RequireRoot(t)
	base := overlay.NewTestDir(t)
	layers := buildCountedLayers(t, longLayerDir(t, base), 40)
	layers = append(layers, "/proc/1")
	for _, api := range apis {
		t.Run(api.String(), func(t *testing.T) {
			overlay.LeakCheck(t)
			backendDir := filepath.Join(base, "backend-"+api.String())
			rootfs := filepath.Join(backendDir, "rootfses", "r")
			b := overlay.NewWithOptions(overlay.Options{Mount: api})
			_, err := b.Provision(context.Background(), layers, rootfs, backendDir)
			if err == nil {
				t.Cleanup(func() { _, _ = b.Destroy(context.Background(), rootfs, backendDir) })
				t.Fatal("Provision with a procfs layer succeeded")
			}
			t.Logf("error (expected): %v", err)
			if !strings.Contains(err.Error(), rootfs) {
				t.Errorf("the error does not name the rootfs: %v", err)
			}
			assertGone(t, rootfs, backendDir)
		})
	}
}

// TestDestroyBusy keeps a file of the rootfs open across Destroy: the
// normal unmount fails with EBUSY, and Destroy detaches the mount, warns,
// and still removes everything.
func TestDestroyBusy(t *testing.T) {
	backendtest.RequireRoot(t)
	overlay.LeakCheck(t)
	base := overlay.NewTestDir(t)
	layers := buildCountedLayers(t, filepath.Join(base, "layers"), 2)
	core, logs := observer.New(zap.WarnLevel)
	b := overlay.NewWithOptions(overlay.Options{Logger: zap.New(core)})
	backendDir := filepath.Join(base, "backend")
	rootfs := filepath.Join(backendDir, "rootfses", "r")
	ctx := context.Background()
	if _, err := b.Provision(ctx, layers, rootfs, backendDir); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(rootfs, "f001"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	existed, err := b.Destroy(ctx, rootfs, backendDir)
	if err != nil || !existed {
		t.Fatalf("Destroy of a busy rootfs = %v, %v; want true, nil", existed, err)
	}
	assertGone(t, rootfs, backendDir)
	if logs.FilterMessageSnippet("detaching").Len() != 1 {
		t.Errorf("want one warning about the detach, got %v", logs.All())
	}
	if got, err := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d", f.Fd())); err != nil || string(got) != "1" {
		t.Errorf("the open file after the detach reads %q, %v", got, err)
	}
}

// TestDestroyNonEmptyDir: a rootfs dir that is not a mount and holds
// files is not the backend's to remove recursively.
func TestDestroyNonEmptyDir(t *testing.T) {
	base := overlay.NewTestDir(t)
	backendDir := filepath.Join(base, "backend")
	rootfs := filepath.Join(backendDir, "rootfses", "r")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "keep"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := overlay.New().Destroy(context.Background(), rootfs, backendDir)
	if !errdefs.IsFailedPrecondition(err) {
		t.Errorf("Destroy = %v, want ErrFailedPrecondition", err)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "keep")); err != nil {
		t.Errorf("the rootfs's file was removed: %v", err)
	}
}

// TestPropagation provisions under a shared mount: the rootfs mount must
// come out private (no "shared:" or "master:" tag in mountinfo), and
// Destroy must leave no mount behind.
func TestPropagation(t *testing.T) {
	backendtest.RequireRoot(t)
	overlay.LeakCheck(t)
	base := overlay.NewTestDir(t)
	layers := buildCountedLayers(t, filepath.Join(base, "layers"), 3)
	backendDir := filepath.Join(base, "backend")
	if err := os.MkdirAll(backendDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(backendDir, backendDir, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(backendDir, unix.MNT_DETACH) })
	if err := unix.Mount("", backendDir, "", unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	for _, api := range apis {
		b := overlay.NewWithOptions(overlay.Options{Mount: api})
		rootfs := filepath.Join(backendDir, "rootfses", "r-"+api.String())
		ctx := context.Background()
		if _, err := b.Provision(ctx, layers, rootfs, backendDir); err != nil {
			t.Fatal(err)
		}
		line := backendtest.MountinfoLine(t, rootfs)
		if strings.Contains(line, "shared:") || strings.Contains(line, "master:") {
			t.Errorf("%s: the rootfs mount propagates: %s", api, line)
		}
		if _, err := b.Destroy(ctx, rootfs, backendDir); err != nil {
			t.Fatal(err)
		}
		if mps, _ := overlay.MountsUnder(rootfs); len(mps) > 0 {
			t.Errorf("%s: left mounted: %v", api, mps)
		}
	}
}

// TestAPIProbe: on a kernel with "lowerdir+" (6.8 on), MountAuto resolves
// to fsconfig; MountLegacy stays legacy.
func TestAPIProbe(t *testing.T) {
	backendtest.RequireRoot(t)
	if got := overlay.NewWithOptions(overlay.Options{Mount: overlay.MountLegacy}).API(); got != overlay.MountLegacy {
		t.Errorf("legacy API() = %v", got)
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	var major, minor int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor); err != nil {
		t.Fatal(err)
	}
	got := overlay.New().API()
	t.Logf("kernel %d.%d: overlay mounts with %v", major, minor, got)
	if (major > 6 || major == 6 && minor >= 8) && got != overlay.MountFsconfig {
		t.Errorf("kernel %d.%d has lowerdir+, but API() = %v", major, minor, got)
	}
}

// TestRepeatedLayer stacks the same layer three times around another one,
// as an image that repeats a diff does: the view is that of each layer
// once, at its topmost position.
func TestRepeatedLayer(t *testing.T) {
	backendtest.RequireRoot(t)
	base := overlay.NewTestDir(t)
	e := filepath.Join(base, "e")
	x := filepath.Join(base, "x")
	if err := backendtest.BuildLayer(e, archive.WhiteoutOverlay, backendtest.File("f", "from e"), backendtest.File("d/e", "e")); err != nil {
		t.Fatal(err)
	}
	if err := backendtest.BuildLayer(x, archive.WhiteoutOverlay, backendtest.Whiteout("f"), backendtest.Opaque("d"), backendtest.File("d/x", "x")); err != nil {
		t.Fatal(err)
	}
	for _, api := range apis {
		t.Run(api.String(), func(t *testing.T) {
			overlay.LeakCheck(t)
			b := overlay.NewWithOptions(overlay.Options{Mount: api})
			backendDir := filepath.Join(base, "backend-"+api.String())
			rootfs := filepath.Join(backendDir, "rootfses", "r")
			ctx := context.Background()
			if _, err := b.Provision(ctx, []string{e, x, e, x, e}, rootfs, backendDir); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _, _ = b.Destroy(ctx, rootfs, backendDir) })
			for p, want := range map[string]string{"f": "from e", "d/e": "e", "d/x": "x"} {
				if got, err := os.ReadFile(filepath.Join(rootfs, p)); err != nil || string(got) != want {
					t.Errorf("%s = %q, %v; want %q", p, got, err, want)
				}
			}
		})
	}
}
