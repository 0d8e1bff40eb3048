package backendtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/process/errdefs"
)

func caseEmptyLayerList(e *env) {
	rootfs := e.rootfsPath("empty")
	ctx, cancel := opContext()
	defer cancel()
	_, err := e.b.Provision(ctx, nil, rootfs, e.backendDir)
	if !errdefs.IsInvalidArgument(err) {
		e.t.Errorf("Provision(no layers) = %v, want an error of class ErrInvalidArgument", err)
	}
	mustNotExist(e.t, rootfs)
}

// basicTree is a small, ordinary image.
func basicTree() []Entry {
	return []Entry{
		File("etc/hostname", "box\n"),
		File("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
		File("bin/sh", "#!/bin/true\n").WithMode(0o755),
		Dir("usr/lib"),
		File("usr/lib/libc.so", strings.Repeat("\x7fELF", 5000)),
		Symlink("lib", "usr/lib"),
		Dir("tmp").WithMode(0o1777),
		Dir("empty"),
		File("empty-file", ""),
	}
}

func caseSingleLayer(e *env) {
	rootfs := e.provision([]string{e.layer(basicTree()...)})
	e.check(rootfs, basicTree()...)
}

func caseLayerOrder(e *env) {
	layers := e.layers(
		[]Entry{
			File("a", "lower"),
			File("d/x", "x"),
			File("f2", "a file below"),
			File("d2/y", "y"),
			Symlink("s", "target-lower"),
			File("keep", "keep"),
			File("dd/sub/z", "z"),
			File("ff", "a file below"),
			File("shadowed", "lower").WithMode(0o755),
		},
		[]Entry{
			File("a", "upper").WithMode(0o600),
			File("f2/z", "a dir above"),
			File("d2", "a file above"),
			File("s", "a file above"),
			File("new", "new"),
			Symlink("dd", "elsewhere"),
			Symlink("ff", "elsewhere2"),
		},
		[]Entry{
			File("shadowed", "top").WithMode(0o640),
		},
	)
	rootfs := e.provision(layers)
	e.check(rootfs,
		File("a", "upper").WithMode(0o600),
		File("d/x", "x"),
		File("f2/z", "a dir above"),
		File("d2", "a file above"),
		File("s", "a file above"),
		File("keep", "keep"),
		File("new", "new"),
		Symlink("dd", "elsewhere"),
		Symlink("ff", "elsewhere2"),
		File("shadowed", "top").WithMode(0o640),
	)
}

func caseWhiteouts(e *env) {
	layers := e.layers(
		[]Entry{
			File("etc/a", "a"),
			File("etc/b", "b"),
			File("etc/sub/x", "x"),
			File("etc/sub/deeper/y", "y"),
			Symlink("etc/link", "/etc/b"),
			FIFO("etc/pipe"),
			File("top", "t"),
			File("gone/f", "f"),
		},
		[]Entry{
			Whiteout("etc/a"),
			Whiteout("etc/sub"),
			Whiteout("etc/link"),
			Whiteout("etc/pipe"),
			Whiteout("etc/never-existed"),
			Whiteout("top"),
			Whiteout("gone"),
		},
		[]Entry{
			File("etc/a", "again"),
		},
	)
	rootfs := e.provision(layers)
	e.check(rootfs, File("etc/a", "again"), File("etc/b", "b"))
}

func caseOpaqueDir(e *env) {
	layers := e.layers(
		[]Entry{
			File("dir1/file1", "1"),
			File("dir1/dir2/file2", "2"),
			File("dir1/dir2/sub/deep", "d"),
			Symlink("dir1/dir2/link", "/"),
			File("other/o", "o"),
		},
		[]Entry{
			Whiteout("dir1/file1"),
			Opaque("dir1/dir2"),
			File("dir1/dir2/file3", "3"), // same layer as the marker: survives
		},
	)
	rootfs := e.provision(layers)
	e.check(rootfs,
		Dir("dir1/dir2"),
		File("dir1/dir2/file3", "3"),
		File("other/o", "o"),
	)
}

// caseWhiteoutThroughSymlink plants symlinks out of the rootfs in a lower
// layer, and whiteouts, files, opaque markers and hard links "under" them
// in the upper one: the upper layer's directories must replace the
// symlinks, and nothing outside the rootfs may change.
func caseWhiteoutThroughSymlink(e *env) {
	sentinel := filepath.Join(e.base, "sentinel")
	if err := BuildLayer(sentinel, e.opts.LayerFormat,
		File("keep", "keep me"), File("x", "x"), File("sub/y", "y"), File("planted", "original")); err != nil {
		e.t.Fatal(err)
	}
	outside := filepath.Join(e.base, "x") // what <rootfs>/evil2/x reaches through "../../.."
	if err := os.WriteFile(outside, []byte("outside"), 0o644); err != nil {
		e.t.Fatal(err)
	}
	before := e.snapshot(sentinel)
	beforeX := e.snapshot(outside)
	viaRoot := strings.TrimPrefix(sentinel, "/")
	layers := e.layers(
		[]Entry{
			Symlink("evil", sentinel),
			Symlink("evil2", "../../.."),
			Symlink("evil3", sentinel),
			Symlink("evil4", sentinel),
			Symlink("evil5", sentinel+"/keep"),
			Symlink("evil6", sentinel),
			Symlink("evil7", "/"),
			Symlink("d/evil", sentinel),
		},
		[]Entry{
			Whiteout("evil/keep"),
			Whiteout("evil2/x"),
			File("evil3/planted", "planted"),
			Opaque("evil4"),
			File("evil5", "replaced"),
			File("h", "h"),
			Hardlink("evil6/h2", "h"),
			Whiteout("evil7/" + viaRoot + "/keep"),
			Whiteout("d/evil/keep"),
		},
	)
	rootfs := e.provision(layers)
	e.check(rootfs,
		Dir("evil"),
		Dir("evil2"),
		File("evil3/planted", "planted"),
		Dir("evil4"),
		File("evil5", "replaced"),
		File("h", "h"),
		Hardlink("evil6/h2", "h"),
		Dir("evil7/"+viaRoot),
		Dir("d/evil"),
	)
	e.compare("sentinel after Provision", before, e.snapshot(sentinel))
	e.compare("file outside after Provision", beforeX, e.snapshot(outside))
	e.destroy(rootfs, true)
	e.compare("sentinel after Destroy", before, e.snapshot(sentinel))
	e.compare("file outside after Destroy", beforeX, e.snapshot(outside))
}

func caseHardlinks(e *env) {
	tree := []Entry{
		File("a", "shared content"),
		Hardlink("b", "a"),
		Hardlink("sub/c", "a"),
		File("x", "x"),
		Symlink("sl", "target"),
		Hardlink("sl2", "sl"),
	}
	rootfs := e.provision([]string{e.layer(tree...)})
	e.check(rootfs, tree...)
	assertSameInode(e, rootfs, "a", "b", "sub/c")
}

// assertSameInode checks that the names are one inode in rootfs.
func assertSameInode(e *env, rootfs string, names ...string) {
	e.t.Helper()
	var first unix.Stat_t
	for i, n := range names {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(rootfs, n), &st); err != nil {
			e.t.Fatal(err)
		}
		if i == 0 {
			first = st
			continue
		}
		if st.Ino != first.Ino || st.Dev != first.Dev {
			e.t.Errorf("%s and %s: inodes %d and %d, want one (hard links)", names[0], n, first.Ino, st.Ino)
		}
	}
}

// caseHardlinkBrokenByUpperLayer replaces one name of a linked pair in an
// upper layer: the other name must keep the old content (no write through
// the shared inode).
func caseHardlinkBrokenByUpperLayer(e *env) {
	layers := e.layers(
		[]Entry{File("a", "shared"), Hardlink("b", "a"), Hardlink("c", "a")},
		[]Entry{File("b", "replaced")},
	)
	rootfs := e.provision(layers)
	e.check(rootfs, File("a", "shared"), File("b", "replaced"), Hardlink("c", "a"))
	assertSameInode(e, rootfs, "a", "c")
}

func caseSymlinks(e *env) {
	tree := []Entry{
		Symlink("abs", "/etc/passwd"),
		Symlink("rel", "../x/y"),
		Symlink("dangling", "nowhere"),
		Symlink("dir/self", "."),
		Symlink("loop1", "loop2"),
		Symlink("loop2", "loop1"),
		Symlink("up", "../../../../etc"),
		Symlink("long", strings.Repeat("a/", 1000)+"z"),
		Symlink("weird", "sp ace\ttab\nnewline:colon\\"),
		Symlink("trailing", "dir/"),
	}
	rootfs := e.provision([]string{e.layer(tree...)})
	e.check(rootfs, tree...)
}

func caseFIFO(e *env) {
	tree := []Entry{FIFO("run/pipe").WithMode(0o620), FIFO("p")}
	rootfs := e.provision([]string{e.layer(tree...)})
	e.check(rootfs, tree...)
}

func caseDevices(e *env) {
	tree := []Entry{
		CharDevice("dev/null", 1, 3).WithMode(0o666),
		CharDevice("dev/zero", 1, 5).WithMode(0o666),
		BlockDevice("dev/loop0", 7, 0).WithMode(0o660),
	}
	rootfs := e.provision([]string{e.layer(tree...)})
	e.check(rootfs, tree...)
}

func caseModes(e *env) {
	tree := []Entry{
		File("m/0644", "x").WithMode(0o644),
		File("m/0755", "x").WithMode(0o755),
		File("m/0600", "x").WithMode(0o600),
		File("m/4755", "x").WithMode(0o4755),
		File("m/2755", "x").WithMode(0o2755),
		File("m/6711", "x").WithMode(0o6711),
		File("m/1644", "x").WithMode(0o1644),
		Dir("m/sticky").WithMode(0o1777),
		Dir("m/sgid").WithMode(0o2775),
		Dir("m/private").WithMode(0o700),
		Dir("m/ro").WithMode(0o555),
		File("m/ro/inside", "x").WithMode(0o444),
	}
	if os.Geteuid() == 0 { // unreadable without CAP_DAC_OVERRIDE
		tree = append(tree, File("m/0000", "x").WithMode(0), Dir("m/closed").WithMode(0), File("m/closed/f", "f"))
	}
	rootfs := e.provision([]string{e.layer(tree...)})
	e.check(rootfs, tree...)
}

// caseReadOnlyDirMerged adds entries, in an upper layer, to a directory a
// lower layer made read-only.
func caseReadOnlyDirMerged(e *env) {
	layers := e.layers(
		[]Entry{Dir("ro").WithMode(0o555), File("ro/a", "a"), Dir("ro/sub").WithMode(0o500), File("ro/sub/x", "x")},
		[]Entry{Dir("ro").WithMode(0o555), File("ro/b", "b"), Dir("ro/sub").WithMode(0o500), File("ro/sub/y", "y"), Whiteout("ro/sub/x")},
	)
	rootfs := e.provision(layers)
	e.check(rootfs,
		Dir("ro").WithMode(0o555), File("ro/a", "a"), File("ro/b", "b"),
		Dir("ro/sub").WithMode(0o500), File("ro/sub/y", "y"),
	)
}

func caseOwnership(e *env) {
	tree := []Entry{
		File("o/a", "a").WithOwner(1000, 1000),
		Dir("o/d").WithOwner(1001, 1002).WithMode(0o750),
		File("o/d/f", "f").WithOwner(65534, 65534),
		Symlink("o/l", "a").WithOwner(1003, 1004),
		File("o/suid", "x").WithOwner(1000, 1000).WithMode(0o4755),
		File("o/sgid", "x").WithOwner(0, 1000).WithMode(0o2755),
		FIFO("o/p").WithOwner(5, 6),
		Dir("o/sticky").WithOwner(1000, 0).WithMode(0o1777),
	}
	rootfs := e.provision([]string{e.layer(tree...)})
	e.check(rootfs, tree...)
}

// xattrsSupported reports whether the filesystem of dir takes user.* xattrs.
func xattrsSupported(e *env) bool {
	p := filepath.Join(e.base, "xattr-probe")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = os.Remove(p) }()
	err := unix.Setxattr(p, "user.probe", []byte("1"), 0)
	return err == nil
}

func caseXattrs(e *env) {
	if !xattrsSupported(e) {
		e.t.Skip("the temporary directory's filesystem has no user.* xattrs")
	}
	tree := []Entry{
		File("x/f", "f").WithXattr("user.one", "1").WithXattr("user.bin", "\x00\x01\xff"),
		Dir("x/d").WithXattr("user.dir", "d"),
		File("x/big", "b").WithXattr("user.big", strings.Repeat("v", 3000)),
		File("x/empty-value", "e").WithXattr("user.empty", ""),
	}
	if os.Geteuid() == 0 {
		tree = append(tree, File("x/trusted", "t").WithXattr("trusted.berth", "t"))
	}
	rootfs := e.provision([]string{e.layer(tree...)})
	e.check(rootfs, tree...)
}

// capNetRaw is a VFS_CAP_REVISION_2 security.capability value granting
// CAP_NET_RAW (13), permitted and effective.
func capNetRaw() string {
	var b bytes.Buffer
	for _, v := range []uint32{0x02000000 | 0x1, 1 << 13, 0, 0, 0} {
		_ = binary.Write(&b, binary.LittleEndian, v)
	}
	return b.String()
}

func caseCapabilities(e *env) {
	tree := []Entry{
		File("bin/ping", "elf").WithMode(0o755).WithXattr("security.capability", capNetRaw()),
		File("bin/owned", "elf").WithOwner(1000, 1000).WithMode(0o4755).WithXattr("security.capability", capNetRaw()),
	}
	rootfs := e.provision([]string{e.layer(tree...)})
	e.check(rootfs, tree...)
}

func caseTimes(e *env) {
	tree := []Entry{
		File("t/f", "f").WithMTime(time.Unix(1234567890, 987654321)),
		Dir("t/d").WithMTime(time.Unix(1000000000, 1)),
		File("t/d/inner", "i").WithMTime(time.Unix(2000000000, 999999999)),
		Symlink("t/l", "f").WithMTime(time.Unix(1500000000, 500)),
		FIFO("t/p").WithMTime(time.Unix(1600000000, 42)),
		File("t/epoch", "e").WithMTime(time.Unix(1, 0)),
		File("t/future", "f").WithMTime(time.Unix(4102444800, 123)),
		Dir("t").WithMTime(time.Unix(1111111111, 111111111)),
	}
	rootfs := e.provision([]string{e.layer(tree...)})
	e.check(rootfs, tree...)
}

// caseTimesOfMergedDirs: a directory present in two layers shows the upper
// layer's mtime, even though the lower one set another and the upper one
// added an entry.
func caseTimesOfMergedDirs(e *env) {
	layers := e.layers(
		[]Entry{Dir("d").WithMTime(time.Unix(1000000000, 5)), File("d/old", "o"), Dir("only-lower").WithMTime(time.Unix(1300000000, 7))},
		[]Entry{Dir("d").WithMTime(time.Unix(1200000000, 6)), File("d/new", "n")},
	)
	rootfs := e.provision(layers)
	e.check(rootfs,
		Dir("d").WithMTime(time.Unix(1200000000, 6)),
		File("d/old", "o"),
		File("d/new", "n"),
		Dir("only-lower").WithMTime(time.Unix(1300000000, 7)),
	)
}

func caseSparse(e *env) {
	if !e.opts.Sparse {
		e.t.Skip("the backend does not keep files sparse (Options.Sparse is false)")
	}
	const size = 16 << 20
	block := func(c byte) []byte { return bytes.Repeat([]byte{c}, 4096) }
	tree := []Entry{
		File("sparse", "").WithExtent(1<<20, block('a')).WithExtent(8<<20, block('b')).WithSize(size),
		File("tail-hole", "head").WithSize(size),
	}
	layer := e.layer(tree...)
	for _, name := range []string{"sparse", "tail-hole"} {
		if blocksOf(e, filepath.Join(layer, name)) >= 1<<20 {
			e.t.Skipf("the layer's filesystem does not keep %s sparse", name)
		}
	}
	rootfs := e.provision([]string{layer})
	e.check(rootfs, tree...)
	for _, name := range []string{"sparse", "tail-hole"} {
		if got := blocksOf(e, filepath.Join(rootfs, name)); got >= 1<<20 {
			e.t.Errorf("%s: %d bytes allocated for a %d-byte file with 8 KiB of data: holes were filled", name, got, size)
		}
	}
}

// blocksOf returns the bytes allocated to p.
func blocksOf(e *env, p string) int64 {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		e.t.Fatal(err)
	}
	return st.Blocks * 512
}

func caseManyLayers(e *env) {
	const n = 32
	var layers [][]Entry
	for i := range n {
		l := []Entry{
			File(fmt.Sprintf("l%02d", i), fmt.Sprint(i)),
			File("counter", fmt.Sprint(i)),
			File(fmt.Sprintf("shared/f%02d", i), fmt.Sprint(i)),
		}
		if i >= 2 {
			l = append(l, Whiteout(fmt.Sprintf("l%02d", i-2)))
		}
		layers = append(layers, l)
	}
	rootfs := e.provision(e.layers(layers...))
	want := []Entry{
		File(fmt.Sprintf("l%02d", n-2), fmt.Sprint(n-2)),
		File(fmt.Sprintf("l%02d", n-1), fmt.Sprint(n-1)),
		File("counter", fmt.Sprint(n-1)),
	}
	for i := range n {
		want = append(want, File(fmt.Sprintf("shared/f%02d", i), fmt.Sprint(i)))
	}
	e.check(rootfs, want...)
}

// manyFiles is a deterministic tree of 1,500 files of 0-40 KiB in 30
// directories: enough for several getdents batches per directory.
func manyFiles() []Entry {
	var tree []Entry
	for i := range 1500 {
		size := (i * 7919) % (40 << 10)
		if i%10 == 0 {
			size = 0
		}
		piece := fmt.Sprintf("%d,", i)
		content := strings.Repeat(piece, size/len(piece)+1)[:size]
		tree = append(tree, File(fmt.Sprintf("d%02d/file-with-a-long-name-%04d", i%30, i), content).WithMode(0o644|uint32(i%2)*0o111))
	}
	return tree
}

func caseManyFiles(e *env) {
	rootfs := e.provision([]string{e.layer(manyFiles()...)})
	e.check(rootfs, manyFiles()...)
}

func caseWrites(e *env) {
	rootfs := e.provision([]string{e.layer(File("etc/hostname", "box"))})
	err := os.WriteFile(filepath.Join(rootfs, "etc/new"), []byte("new"), 0o644)
	if !e.opts.Writable {
		if err == nil {
			e.t.Errorf("writing into a read-only rootfs succeeded")
		}
		return
	}
	if err != nil {
		e.t.Fatalf("writing into the rootfs: %v", err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "etc/hostname"), []byte("changed"), 0o644); err != nil {
		e.t.Fatalf("changing a file of the rootfs: %v", err)
	}
	for p, want := range map[string]string{"etc/hostname": "changed", "etc/new": "new"} {
		if b, err := os.ReadFile(filepath.Join(rootfs, p)); err != nil || string(b) != want {
			e.t.Errorf("%s after writing: %q, %v; want %q", p, b, err, want)
		}
	}
}

// caseLayersUntouched provisions, writes (when allowed) and destroys, and
// checks that no layer changed.
func caseLayersUntouched(e *env) {
	layers := []string{e.layer(append(basicTree(), Hardlink("hl", "etc/passwd"))...)}
	if e.opts.MultiLayer {
		layers = append(layers, e.layer(Whiteout("etc/hostname"), File("bin/sh", "upper"), Opaque("usr/lib")))
	}
	var before []Tree
	for _, l := range layers {
		before = append(before, e.snapshot(l))
	}
	rootfs := e.provision(layers)
	if e.opts.Writable {
		for _, p := range []string{"etc/passwd", "bin/sh", "hl"} {
			if err := os.WriteFile(filepath.Join(rootfs, p), []byte("written"), 0o644); err != nil {
				e.t.Fatal(err)
			}
		}
		if err := os.Chmod(filepath.Join(rootfs, "etc"), 0o700); err != nil {
			e.t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(rootfs, "usr")); err != nil {
			e.t.Fatal(err)
		}
	}
	e.destroy(rootfs, true)
	for i, l := range layers {
		e.compare(fmt.Sprintf("layer %d", i), before[i], e.snapshot(l))
	}
}

func caseDestroy(e *env) {
	layers := []string{e.layer(basicTree()...)}
	if e.opts.MultiLayer {
		layers = append(layers, e.layer(File("etc/more", "more"), Whiteout("bin/sh")))
	}
	rootfs := e.provision(layers)
	e.destroy(rootfs, true)
	mustNotExist(e.t, rootfs)
	// Only (empty) directories may remain in backendDir.
	err := filepath.WalkDir(e.backendDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			e.t.Errorf("left behind in the backend directory: %s (%s)", p, d.Type())
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func caseDestroyUnknown(e *env) {
	e.destroy(e.rootfsPath("never-provisioned"), false)
	ctx, cancel := opContext()
	defer cancel()
	nowhere := filepath.Join(e.base, "no-such-backend-dir")
	existed, err := e.b.Destroy(ctx, filepath.Join(nowhere, "rootfses", "r"), nowhere)
	if err != nil || existed {
		e.t.Errorf("Destroy under a missing backend directory = %v, %v; want false, nil", existed, err)
	}
}

func caseDestroyTwice(e *env) {
	rootfs := e.provision([]string{e.layer(basicTree()...)})
	e.destroy(rootfs, true)
	e.destroy(rootfs, false)
	mustNotExist(e.t, rootfs)
}

func caseAlreadyExists(e *env) {
	rootfs := e.rootfsPath("taken")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		e.t.Fatal(err)
	}
	marker := filepath.Join(rootfs, "mine")
	if err := os.WriteFile(marker, []byte("mine"), 0o644); err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := opContext()
	defer cancel()
	_, err := e.b.Provision(ctx, []string{e.layer(basicTree()...)}, rootfs, e.backendDir)
	if !errdefs.IsAlreadyExists(err) {
		e.t.Errorf("Provision into an existing rootfs = %v, want an error of class ErrAlreadyExists", err)
	}
	if b, err := os.ReadFile(marker); err != nil || string(b) != "mine" {
		e.t.Errorf("the existing rootfs was changed: %q, %v", b, err)
	}
}

func caseMissingLayer(e *env) {
	rootfs := e.rootfsPath("missing")
	ctx, cancel := opContext()
	defer cancel()
	layers := []string{filepath.Join(e.base, "layers", "does-not-exist")}
	if e.opts.MultiLayer {
		layers = append([]string{e.layer(basicTree()...)}, layers...)
	}
	_, err := e.b.Provision(ctx, layers, rootfs, e.backendDir)
	if err == nil {
		e.t.Cleanup(func() { e.destroyQuietly(rootfs) })
		e.t.Fatal("Provision with a missing layer succeeded")
	}
	mustNotExist(e.t, rootfs)
}

func caseCanceled(e *env) {
	rootfs := e.rootfsPath("canceled")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.b.Provision(ctx, []string{e.layer(basicTree()...)}, rootfs, e.backendDir)
	if !errdefs.IsCanceled(err) {
		e.t.Errorf("Provision with a cancelled context = %v, want a cancellation error", err)
	}
	if err == nil {
		e.t.Cleanup(func() { e.destroyQuietly(rootfs) })
	}
	mustNotExist(e.t, rootfs)
}

// caseConcurrent provisions the same layers into eight rootfses at once,
// then destroys them at once.
func caseConcurrent(e *env) {
	const n = 8
	var lower []Entry
	lower = append(lower, basicTree()...)
	lower = append(lower, manyFiles()[:300]...)
	lower = append(lower, Hardlink("hl", "etc/passwd"))
	layers := []string{e.layer(lower...)}
	want := lower
	if e.opts.MultiLayer {
		layers = append(layers, e.layer(Whiteout("etc/hostname"), File("bin/sh", "upper").WithMode(0o700)))
		want = append(removeEntries(lower, "etc/hostname", "bin/sh"), File("bin/sh", "upper").WithMode(0o700))
	}
	rootfses := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		rootfses[i] = e.rootfsPath(fmt.Sprintf("c%d", i))
		wg.Go(func() { errs[i] = e.provisionAt(e.b, layers, rootfses[i]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		e.t.Fatalf("concurrent Provision: %v", err)
	}
	expected := e.expect(want...)
	for _, r := range rootfses {
		e.compare("rootfs "+r, expected, normalizeRoot(e.snapshot(r)))
	}
	for i := range n {
		wg.Go(func() {
			ctx, cancel := opContext()
			defer cancel()
			existed, err := e.b.Destroy(ctx, rootfses[i], e.backendDir)
			if err == nil && !existed {
				err = fmt.Errorf("existed = false")
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		e.t.Fatalf("concurrent Destroy: %v", err)
	}
	for _, r := range rootfses {
		mustNotExist(e.t, r)
	}
}

// removeEntries returns tree without the entries at paths (an expected
// tree may not name a path twice).
func removeEntries(tree []Entry, paths ...string) []Entry {
	var out []Entry
	for _, en := range tree {
		drop := false
		for _, p := range paths {
			drop = drop || en.Path == p
		}
		if !drop {
			out = append(out, en)
		}
	}
	return out
}

// caseRecovery provisions with one backend instance and destroys with a
// fresh one, as an agent restarted after a crash would.
func (s *suite) caseRecovery(e *env) {
	rootfs := e.provision([]string{e.layer(basicTree()...)})
	fresh := s.newBackend(e.t)
	ctx, cancel := opContext()
	defer cancel()
	existed, err := fresh.Destroy(ctx, rootfs, e.backendDir)
	if err != nil || !existed {
		e.t.Fatalf("Destroy by a fresh backend = %v, %v; want true, nil", existed, err)
	}
	mustNotExist(e.t, rootfs)
}
