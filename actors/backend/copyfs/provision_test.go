package copyfs_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	bt "github.com/berthrt/berth/actors/backend/backendtest"
	"github.com/berthrt/berth/actors/backend/copyfs"
	"github.com/berthrt/berth/process/archive"
	"github.com/berthrt/berth/process/errdefs"
)

// fixture is a test's layers, backend directory and rootfs paths.
type fixture struct {
	t          *testing.T
	base       string
	backendDir string
	n          int
}

func newFixture(t *testing.T) *fixture {
	base := bt.TempDir(t)
	return &fixture{t: t, base: base, backendDir: filepath.Join(base, "backend")}
}

func (f *fixture) layer(entries ...bt.Entry) string {
	f.t.Helper()
	f.n++
	dir := filepath.Join(f.base, "layers", fmt.Sprint(f.n))
	if err := bt.BuildLayer(dir, archive.WhiteoutAUFS, entries...); err != nil {
		f.t.Fatal(err)
	}
	return dir
}

func (f *fixture) rootfs() string {
	f.n++
	return filepath.Join(f.backendDir, "rootfses", fmt.Sprint(f.n))
}

// provision provisions layers into a new rootfs and returns it.
func (f *fixture) provision(layers ...string) string {
	f.t.Helper()
	rootfs := f.rootfs()
	if _, err := copyfs.New().Provision(context.Background(), layers, rootfs, f.backendDir); err != nil {
		f.t.Fatalf("Provision: %v", err)
	}
	return rootfs
}

// check compares rootfs (root included) with the tree want describes.
func (f *fixture) check(rootfs string, want ...bt.Entry) {
	f.t.Helper()
	f.n++
	dir := filepath.Join(f.base, "expected", fmt.Sprint(f.n))
	if err := bt.BuildLayer(dir, archive.WhiteoutAUFS, want...); err != nil {
		f.t.Fatal(err)
	}
	wantTree, err := bt.Snapshot(dir)
	if err != nil {
		f.t.Fatal(err)
	}
	got, err := bt.Snapshot(rootfs)
	if err != nil {
		f.t.Fatal(err)
	}
	if d := bt.Diff(wantTree, got); len(d) > 0 {
		f.t.Errorf("rootfs differs (want vs got):\n  %s", strings.Join(d, "\n  "))
	}
}

func mustNotExist(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s: want it gone, lstat says %v", p, err)
	}
}

func TestName(t *testing.T) {
	if got := copyfs.New().Name(); got != "copy" {
		t.Errorf("Name() = %q, want copy", got)
	}
}

// TestRootMetadata: the rootfs root takes the top layer root's mode, owner
// and times.
func TestRootMetadata(t *testing.T) {
	f := newFixture(t)
	mtime := time.Unix(1300000000, 424242)
	rootfs := f.provision(
		f.layer(bt.Dir(".").WithMode(0o700), bt.File("a", "a")),
		f.layer(bt.Dir(".").WithMode(0o750).WithMTime(mtime), bt.File("b", "b")),
	)
	f.check(rootfs, bt.Dir(".").WithMode(0o750).WithMTime(mtime), bt.File("a", "a"), bt.File("b", "b"))
}

func TestOpaqueRoot(t *testing.T) {
	f := newFixture(t)
	rootfs := f.provision(
		f.layer(bt.File("etc/passwd", "x"), bt.File("bin/sh", "sh")),
		f.layer(bt.Opaque("."), bt.File("only", "only")),
	)
	f.check(rootfs, bt.File("only", "only"))
}

// TestTypeReplacements replaces every type by every other across layers.
func TestTypeReplacements(t *testing.T) {
	f := newFixture(t)
	rootfs := f.provision(
		f.layer(
			bt.File("dir-to-link/x/y", "y"),
			bt.File("file-to-dir", "f"),
			bt.Symlink("link-to-fifo", "/"),
			bt.FIFO("fifo-to-file"),
			bt.Symlink("link-to-link", "/old"),
			bt.File("file-to-hardlink", "old"),
			bt.File("dir-to-hardlink/z", "z"),
		),
		f.layer(
			bt.Symlink("dir-to-link", "t"),
			bt.File("file-to-dir/inside", "i"),
			bt.FIFO("link-to-fifo"),
			bt.File("fifo-to-file", "now a file"),
			bt.Symlink("link-to-link", "/new"),
			bt.File("source", "src"),
			bt.Hardlink("file-to-hardlink", "source"),
			bt.Hardlink("dir-to-hardlink", "source"),
		),
	)
	f.check(rootfs,
		bt.Symlink("dir-to-link", "t"),
		bt.File("file-to-dir/inside", "i"),
		bt.FIFO("link-to-fifo"),
		bt.File("fifo-to-file", "now a file"),
		bt.Symlink("link-to-link", "/new"),
		bt.File("source", "src"),
		bt.Hardlink("file-to-hardlink", "source"),
		bt.Hardlink("dir-to-hardlink", "source"),
	)
}

// TestHardlinkKinds links FIFOs and symlinks, across directories, and
// into a directory whose metadata must still be the layer's.
func TestHardlinkKinds(t *testing.T) {
	f := newFixture(t)
	mtime := time.Unix(1400000000, 7)
	tree := []bt.Entry{
		bt.FIFO("p"),
		bt.Hardlink("d/p2", "p"),
		bt.Symlink("l", "/target"),
		bt.Hardlink("d/l2", "l"),
		bt.File("z/f", "content"),
		bt.Hardlink("a/f2", "z/f"),
		bt.Dir("d").WithMode(0o710).WithMTime(mtime),
		bt.Dir("a").WithMTime(mtime),
	}
	rootfs := f.provision(f.layer(tree...))
	f.check(rootfs, tree...)
}

// TestAUFSMetadataIgnored: AUFS's own ".wh..wh.*" entries are neither
// copied nor applied.
func TestAUFSMetadataIgnored(t *testing.T) {
	f := newFixture(t)
	upper := f.layer(bt.File("b", "b"), bt.File(".wh..wh.aufs", ""), bt.Dir(".wh..wh.plnk"), bt.File(".wh..wh.orph", ""))
	rootfs := f.provision(f.layer(bt.File("a", "a"), bt.File(".wh.aufs", "x")), upper)
	f.check(rootfs, bt.File("a", "a"), bt.File("b", "b"))
}

func TestMalformedWhiteout(t *testing.T) {
	for _, name := range []string{".wh.", ".wh..", ".wh..."} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			lower := f.layer(bt.File("d/keep", "k"))
			upper := f.layer(bt.File("d/"+name, ""))
			rootfs := f.rootfs()
			_, err := copyfs.New().Provision(context.Background(), []string{lower, upper}, rootfs, f.backendDir)
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("Provision with whiteout %q = %v, want ErrInvalidArgument", name, err)
			}
			mustNotExist(t, rootfs)
		})
	}
}

// TestAtime: access times are copied too, to the nanosecond.
func TestAtime(t *testing.T) {
	f := newFixture(t)
	layer := f.layer(bt.File("f", "f"), bt.Dir("d"))
	// An atime in the future is never updated by reads under relatime.
	atime := time.Now().Add(time.Hour).Truncate(time.Second).Add(123456789)
	for _, name := range []string{"f", "d"} {
		ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(bt.DefaultTime().UnixNano())}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(layer, name), ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
	}
	rootfs := f.provision(layer)
	for _, name := range []string{"f", "d"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(rootfs, name), &st); err != nil {
			t.Fatal(err)
		}
		if got := time.Unix(st.Atim.Unix()); !got.Equal(atime) {
			t.Errorf("%s: atime %v, want %v", name, got, atime)
		}
	}
}

// TestAwkwardNames: long, odd and non-UTF-8 names, and a deep tree.
func TestAwkwardNames(t *testing.T) {
	f := newFixture(t)
	deep := strings.Repeat("d/", 200) + "leaf"
	tree := []bt.Entry{
		bt.File(strings.Repeat("n", 255), "255"),
		bt.File("sp ace", "s"),
		bt.File("new\nline", "n"),
		bt.File("\xff\xfe-not-utf8", "b"),
		bt.File("ünïcødé", "u"),
		bt.File("-dash", "d"),
		bt.File(deep, "deep"),
	}
	rootfs := f.provision(f.layer(tree...))
	f.check(rootfs, tree...)
	existed, err := copyfs.New().Destroy(context.Background(), rootfs, f.backendDir)
	if err != nil || !existed {
		t.Fatalf("Destroy = %v, %v", existed, err)
	}
	mustNotExist(t, rootfs)
}

func TestInvalidArguments(t *testing.T) {
	f := newFixture(t)
	layer := f.layer(bt.File("a", "a"))
	file := filepath.Join(f.base, "plain-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	b := copyfs.New()
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		layers []string
		rootfs string
		is     func(error) bool
	}{
		{"relative rootfs", []string{layer}, "rootfses/r", errdefs.IsInvalidArgument},
		{"rootfs is /", []string{layer}, "/", errdefs.IsInvalidArgument},
		{"rootfs inside a layer", []string{layer}, filepath.Join(layer, "r"), errdefs.IsInvalidArgument},
		{"layer inside rootfs", []string{filepath.Join(f.backendDir, "r", "layer")}, filepath.Join(f.backendDir, "r"), errdefs.IsInvalidArgument},
		{"layer is a file", []string{file}, f.rootfs(), errdefs.IsInvalidArgument},
		{"layer missing", []string{filepath.Join(f.base, "nope")}, f.rootfs(), errdefs.IsNotFound},
	} {
		_, err := b.Provision(ctx, tc.layers, tc.rootfs, f.backendDir)
		if !tc.is(err) {
			t.Errorf("%s: Provision = %v, wrong class", tc.name, err)
		}
		if filepath.IsAbs(tc.rootfs) && tc.rootfs != "/" {
			mustNotExist(t, tc.rootfs)
		}
	}
	if _, err := b.Destroy(ctx, "relative", f.backendDir); !errdefs.IsInvalidArgument(err) {
		t.Errorf("Destroy(relative) = %v, want ErrInvalidArgument", err)
	}
}

// TestCancelMidway cancels a Provision while it copies: it must fail with
// the cancellation and leave no rootfs behind.
func TestCancelMidway(t *testing.T) {
	f := newFixture(t)
	var tree []bt.Entry
	for i := range 800 {
		tree = append(tree, bt.File(fmt.Sprintf("d%02d/f%04d", i%50, i), strings.Repeat("x", i%4096)))
	}
	layer := f.layer(tree...)
	rootfs := f.rootfs()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if ents, _ := os.ReadDir(rootfs); len(ents) > 0 {
				cancel()
				return
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	layers := []string{layer, layer, layer, layer, layer, layer}
	_, err := copyfs.New().Provision(ctx, layers, rootfs, f.backendDir)
	if err == nil {
		t.Skip("the copy finished before the cancellation")
	}
	if !errdefs.IsCanceled(err) {
		t.Errorf("Provision = %v, want a cancellation", err)
	}
	mustNotExist(t, rootfs)
}

// TestDestroyRootfsSymlink: a rootfs path that is a symlink is removed as
// such; its target is left alone.
func TestDestroyRootfsSymlink(t *testing.T) {
	f := newFixture(t)
	target := filepath.Join(f.base, "target")
	if err := os.MkdirAll(filepath.Join(target, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	rootfs := f.rootfs()
	if err := os.MkdirAll(filepath.Dir(rootfs), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, rootfs); err != nil {
		t.Fatal(err)
	}
	existed, err := copyfs.New().Destroy(context.Background(), rootfs, f.backendDir)
	if err != nil || !existed {
		t.Fatalf("Destroy = %v, %v", existed, err)
	}
	mustNotExist(t, rootfs)
	if _, err := os.Stat(filepath.Join(target, "sub")); err != nil {
		t.Errorf("the symlink's target was touched: %v", err)
	}
}

// TestDestroyReadOnlyDirs: directories without write permission are
// removed too (without root, by granting the owner write permission).
func TestDestroyReadOnlyDirs(t *testing.T) {
	f := newFixture(t)
	rootfs := f.provision(f.layer(
		bt.File("ro/a/b", "b"),
		bt.Dir("ro").WithMode(0o555),
		bt.Dir("ro/a").WithMode(0o500),
	))
	existed, err := copyfs.New().Destroy(context.Background(), rootfs, f.backendDir)
	if err != nil || !existed {
		t.Fatalf("Destroy = %v, %v", existed, err)
	}
	mustNotExist(t, rootfs)
}

// TestCrossFilesystemCopy copies a layer from a tmpfs into the temporary
// directory, where copy_file_range may refuse (EXDEV) and the read/write
// fallback runs.
func TestCrossFilesystemCopy(t *testing.T) {
	shm := "/dev/shm"
	var sfs, tfs unix.Statfs_t
	tmp := bt.TempDir(t)
	if unix.Statfs(shm, &sfs) != nil || unix.Statfs(tmp, &tfs) != nil || sfs.Type == tfs.Type {
		t.Skip("no tmpfs at /dev/shm distinct from the temporary directory's filesystem")
	}
	layer, err := os.MkdirTemp(shm, "copyfs-test-")
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { os.RemoveAll(layer) })
	tree := []bt.Entry{
		bt.File("big", strings.Repeat("0123456789", 200_000)),
		bt.File("sparse", "").WithExtent(3<<20, []byte("data")).WithSize(8 << 20),
		bt.File("small", "s"),
	}
	if err := bt.BuildLayer(layer, archive.WhiteoutAUFS, tree...); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, base: tmp, backendDir: filepath.Join(tmp, "backend")}
	rootfs := f.provision(layer)
	f.check(rootfs, tree...)
}

// mount mounts and registers the unmount.
func mount(t *testing.T, source, target, fstype string, flags uintptr) {
	t.Helper()
	if err := unix.Mount(source, target, fstype, flags, ""); err != nil {
		t.Fatalf("mount %s on %s: %v", source, target, err)
	}
	t.Cleanup(func() { _ = unix.Unmount(target, unix.MNT_DETACH) })
}

// TestDestroyRefusesMounts: Destroy must not remove anything from a mount
// found in the rootfs (a tmpfs, a bind mount of the same filesystem, a
// bind-mounted file) nor a rootfs that is itself a mount point; it fails
// with ErrFailedPrecondition naming the mount, and succeeds once unmounted.
func TestDestroyRefusesMounts(t *testing.T) {
	bt.RequireRoot(t)
	f := newFixture(t)
	outside := filepath.Join(f.base, "outside")
	if err := bt.BuildLayer(outside, archive.WhiteoutAUFS, bt.File("precious", "p"), bt.File("sub/more", "m")); err != nil {
		t.Fatal(err)
	}
	before, err := bt.Snapshot(outside)
	if err != nil {
		t.Fatal(err)
	}
	layer := f.layer(bt.Dir("mnt/tmpfs"), bt.Dir("mnt/bind"), bt.File("mnt/file", "f"), bt.File("z", "z"))
	b := copyfs.New()
	ctx := context.Background()

	for _, tc := range []struct {
		name, target string
		setup        func(rootfs string)
	}{
		{"tmpfs", "mnt/tmpfs", func(rootfs string) {
			mount(t, "tmpfs", filepath.Join(rootfs, "mnt/tmpfs"), "tmpfs", 0)
			if err := os.WriteFile(filepath.Join(rootfs, "mnt/tmpfs/inside"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"bind", "mnt/bind", func(rootfs string) {
			mount(t, outside, filepath.Join(rootfs, "mnt/bind"), "", unix.MS_BIND)
		}},
		{"file", "mnt/file", func(rootfs string) {
			mount(t, filepath.Join(outside, "precious"), filepath.Join(rootfs, "mnt/file"), "", unix.MS_BIND)
		}},
		{"rootfs", "", func(rootfs string) {
			mount(t, rootfs, rootfs, "", unix.MS_BIND)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rootfs := f.provision(layer)
			tc.setup(rootfs)
			existed, err := b.Destroy(ctx, rootfs, f.backendDir)
			if !errdefs.IsFailedPrecondition(err) || !existed {
				t.Fatalf("Destroy with a mount inside = %v, %v; want true, ErrFailedPrecondition", existed, err)
			}
			if want := filepath.Join(rootfs, tc.target); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name the mount %s", err, want)
			}
			if got, err := bt.Snapshot(outside); err != nil || len(bt.Diff(before, got)) > 0 {
				t.Fatalf("Destroy changed a mounted directory: %v %v", bt.Diff(before, got), err)
			}
			if _, err := os.Stat(filepath.Join(rootfs, "z")); err != nil && tc.name != "rootfs" {
				t.Errorf("Destroy removed files before refusing: %v", err)
			}
			if tc.name == "tmpfs" {
				if _, err := os.Stat(filepath.Join(rootfs, "mnt/tmpfs/inside")); err != nil {
					t.Errorf("Destroy removed a file of the tmpfs: %v", err)
				}
			}
			if err := unix.Unmount(filepath.Join(rootfs, tc.target), unix.MNT_DETACH); err != nil {
				t.Fatal(err)
			}
			if existed, err := b.Destroy(ctx, rootfs, f.backendDir); err != nil || !existed {
				t.Fatalf("Destroy after unmounting = %v, %v", existed, err)
			}
			mustNotExist(t, rootfs)
		})
	}
}
