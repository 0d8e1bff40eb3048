package bind_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/actors/backend"
	"github.com/berthrt/berth/actors/backend/backendtest"
	"github.com/berthrt/berth/actors/backend/bind"
	"github.com/berthrt/berth/process/archive"
	"github.com/berthrt/berth/process/errdefs"
)

// TestConformance runs the backend conformance suite: one layer,
// read-only, as root (files with holes stay sparse: the rootfs is the
// layer itself); every case also checks that no mount is left.
func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		bind.LeakCheck(t)
		return bind.New()
	}, backendtest.Options{
		MultiLayer:  false,
		Writable:    false,
		NeedsRoot:   true,
		LayerFormat: archive.WhiteoutAUFS,
		Sparse:      true,
	})
}

// layer builds a small single layer under base.
func layer(t *testing.T, base string, entries ...backendtest.Entry) string {
	t.Helper()
	dir := filepath.Join(base, "layer")
	if len(entries) == 0 {
		entries = []backendtest.Entry{backendtest.File("etc/hostname", "box"), backendtest.File("bin/sh", "#!").WithMode(0o755)}
	}
	if err := backendtest.BuildLayer(dir, archive.WhiteoutAUFS, entries...); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestMultiLayerRefused needs no root: the layer count is checked before
// anything is created.
func TestMultiLayerRefused(t *testing.T) {
	base := bind.NewTestDir(t)
	backendDir := filepath.Join(base, "backend")
	rootfs := filepath.Join(backendDir, "rootfses", "r")
	_, err := bind.New().Provision(context.Background(), []string{"/l/0", "/l/1", "/l/2"}, rootfs, backendDir)
	if !errdefs.IsInvalidArgument(err) {
		t.Fatalf("Provision(3 layers) = %v, want ErrInvalidArgument", err)
	}
	want := "the bind backend supports single-layer images only; this image has 3 layers: use copy or overlay"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if _, err := os.Lstat(backendDir); !os.IsNotExist(err) {
		t.Errorf("something was created: %v", err)
	}
}

// TestReadOnlyAndFlagsKept bind-mounts a layer that lives on a nosuid,
// nodev mount: the rootfs must be read-only (EROFS, the layer untouched)
// and keep nosuid and nodev, and be private.
func TestReadOnlyAndFlagsKept(t *testing.T) {
	backendtest.RequireRoot(t)
	bind.LeakCheck(t)
	base := bind.NewTestDir(t)
	store := filepath.Join(base, "store")
	if err := os.Mkdir(store, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", store, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=16m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(store, unix.MNT_DETACH) })
	l := layer(t, store)
	backendDir := filepath.Join(base, "backend")
	rootfs := filepath.Join(backendDir, "rootfses", "r")
	b := bind.New()
	ctx := context.Background()
	eph, err := b.Provision(ctx, []string{l}, rootfs, backendDir)
	if err != nil || eph != nil {
		t.Fatalf("Provision = %v, %v; want no ephemeral paths, nil", eph, err)
	}
	t.Cleanup(func() { _, _ = b.Destroy(ctx, rootfs, backendDir) })
	err = os.WriteFile(filepath.Join(rootfs, "etc/hostname"), []byte("changed"), 0o644)
	if !errors.Is(err, unix.EROFS) {
		t.Errorf("writing into the rootfs: %v, want EROFS", err)
	}
	if got, _ := os.ReadFile(filepath.Join(l, "etc/hostname")); string(got) != "box" {
		t.Errorf("layer changed: %q", got)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(rootfs, &st); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]int64{"ro": unix.ST_RDONLY, "nosuid": unix.ST_NOSUID, "nodev": unix.ST_NODEV} {
		if st.Flags&f == 0 {
			t.Errorf("rootfs mount lacks %s (flags %#x)", name, st.Flags)
		}
	}
	if line := backendtest.MountinfoLine(t, rootfs); strings.Contains(line, "shared:") || strings.Contains(line, "master:") {
		t.Errorf("the rootfs mount propagates: %s", line)
	}
	existed, err := b.Destroy(ctx, rootfs, backendDir)
	if err != nil || !existed {
		t.Fatalf("Destroy = %v, %v", existed, err)
	}
	if _, err := os.Lstat(rootfs); !os.IsNotExist(err) {
		t.Errorf("rootfs left: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(l, "etc/hostname")); string(got) != "box" {
		t.Errorf("layer changed by Destroy: %q", got)
	}
}

// TestWhiteoutsShownAsIs documents the choice for a single layer's AUFS
// whiteouts: there is nothing below them to hide, so they are left as the
// plain (empty) files they are, as Mesos does.
func TestWhiteoutsShownAsIs(t *testing.T) {
	backendtest.RequireRoot(t)
	bind.LeakCheck(t)
	base := bind.NewTestDir(t)
	l := layer(t, base, backendtest.File("etc/a", "a"), backendtest.Whiteout("etc/b"), backendtest.Opaque("usr"))
	backendDir := filepath.Join(base, "backend")
	rootfs := filepath.Join(backendDir, "rootfses", "r")
	b := bind.New()
	ctx := context.Background()
	if _, err := b.Provision(ctx, []string{l}, rootfs, backendDir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = b.Destroy(ctx, rootfs, backendDir) })
	for _, p := range []string{"etc/a", "etc/.wh.b", "usr/.wh..wh..opq"} {
		if _, err := os.Lstat(filepath.Join(rootfs, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// TestDestroyBusy keeps a file of the rootfs open across Destroy: the
// mount is detached with a warning, and the mount point removed.
func TestDestroyBusy(t *testing.T) {
	backendtest.RequireRoot(t)
	bind.LeakCheck(t)
	base := bind.NewTestDir(t)
	l := layer(t, base)
	core, logs := observer.New(zap.WarnLevel)
	b := bind.NewWithOptions(bind.Options{Logger: zap.New(core)})
	backendDir := filepath.Join(base, "backend")
	rootfs := filepath.Join(backendDir, "rootfses", "r")
	ctx := context.Background()
	if _, err := b.Provision(ctx, []string{l}, rootfs, backendDir); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(rootfs, "etc/hostname"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	existed, err := b.Destroy(ctx, rootfs, backendDir)
	if err != nil || !existed {
		t.Fatalf("Destroy of a busy rootfs = %v, %v; want true, nil", existed, err)
	}
	if _, err := os.Lstat(rootfs); !os.IsNotExist(err) {
		t.Errorf("rootfs left: %v", err)
	}
	if logs.FilterMessageSnippet("detaching").Len() != 1 {
		t.Errorf("want one warning about the detach, got %v", logs.All())
	}
	if _, err := os.Stat(filepath.Join(l, "etc/hostname")); err != nil {
		t.Errorf("layer damaged: %v", err)
	}
}

// TestDestroyNonEmptyDir: an unmounted rootfs holding files is refused,
// never removed recursively (under a bind mount is the shared layer).
func TestDestroyNonEmptyDir(t *testing.T) {
	base := bind.NewTestDir(t)
	rootfs := filepath.Join(base, "backend", "rootfses", "r")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "keep"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := bind.New().Destroy(context.Background(), rootfs, filepath.Join(base, "backend"))
	if !errdefs.IsFailedPrecondition(err) {
		t.Errorf("Destroy = %v, want ErrFailedPrecondition", err)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "keep")); err != nil {
		t.Errorf("the rootfs's file was removed: %v", err)
	}
}
