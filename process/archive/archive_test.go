package archive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/fixtures/layers"
	"github.com/berthrt/berth/process/archive"
	"github.com/berthrt/berth/process/errdefs"
)

type L = layers.Entry

// requireRoot skips outside CI without root, and fails in CI.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("needs root (CI=true: a missing prerequisite is a failure)")
	}
	t.Skip("needs root: run the tests as root")
}

func extract(t testing.TB, b []byte, opts archive.Options) (string, archive.Result, error) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layer")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := archive.Extract(context.Background(), bytes.NewReader(b), dir, opts)
	return dir, res, err
}

func TestExtractTreeAndDiffID(t *testing.T) {
	requireRoot(t)
	raw := layers.Tar(
		L{Name: "./", Type: tar.TypeDir, Mode: 0o755},
		L{Name: "etc/", Type: tar.TypeDir, Mode: 0o755},
		L{Name: "etc/hostname", Body: "box\n", Mode: 0o644, Uid: 1000, Gid: 1001},
		L{Name: "bin/su", Body: "ELF", Mode: 0o4755},
		L{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777},
		L{Name: "lib/ld.so", Body: "loader", Mode: 0o755},
		L{Name: "lib/ld-link.so", Type: tar.TypeLink, Link: "lib/ld.so"},
		L{Name: "lib/abs", Type: tar.TypeSymlink, Link: "/etc/hostname"},
		L{Name: "run/fifo", Type: tar.TypeFifo, Mode: 0o600},
		L{Name: "/abs/path", Body: "rooted"},
		L{Name: "xattr", Body: "x", Xattrs: map[string]string{"user.berth": "yes"}},
		L{Name: "etc/hostname", Body: "replaced\n", Mode: 0o600},
	)
	want := sha256.Sum256(raw)
	for _, c := range []struct {
		name string
		b    []byte
	}{{"plain", raw}, {"gzip", layers.Gzip(raw)}, {"zstd", layers.Zstd(raw)}} {
		t.Run(c.name, func(t *testing.T) {
			dir, res, err := extract(t, c.b, archive.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.DiffID != "sha256:"+hex.EncodeToString(want[:]) {
				t.Errorf("diff id %s, want sha256 of the uncompressed stream", res.DiffID)
			}
			if res.Entries != 12 {
				t.Errorf("entries %d, want 12", res.Entries)
			}
			checkFile(t, dir, "etc/hostname", "replaced\n", 0o600)
			checkFile(t, dir, "abs/path", "rooted", 0o644)
			st := stat(t, dir, "bin/su")
			if st.Mode&0o7777 != 0o4755 {
				t.Errorf("bin/su mode %o, want 4755 (setuid survives chown)", st.Mode&0o7777)
			}
			if st := stat(t, dir, "tmp"); st.Mode&0o7777 != 0o1777 {
				t.Errorf("tmp mode %o, want 1777", st.Mode&0o7777)
			}
			if a, b := stat(t, dir, "lib/ld.so"), stat(t, dir, "lib/ld-link.so"); a.Ino != b.Ino {
				t.Error("hardlink is a copy")
			}
			if l, _ := os.Readlink(filepath.Join(dir, "lib/abs")); l != "/etc/hostname" {
				t.Errorf("symlink target %q", l)
			}
			if st := stat(t, dir, "run/fifo"); st.Mode&unix.S_IFMT != unix.S_IFIFO {
				t.Error("fifo is not a fifo")
			}
			if st := stat(t, dir, "etc"); st.Mtim.Sec != layers.Epoch.Unix() {
				t.Errorf("etc mtime %d, want %d (directory times set last)", st.Mtim.Sec, layers.Epoch.Unix())
			}
			buf := make([]byte, 16)
			if n, err := unix.Lgetxattr(filepath.Join(dir, "xattr"), "user.berth", buf); err == nil && string(buf[:n]) != "yes" {
				t.Errorf("xattr = %q", buf[:n])
			}
		})
	}
}

func TestExtractOwnership(t *testing.T) {
	requireRoot(t)
	dir, _, err := extract(t, layers.Tar(L{Name: "f", Body: "x", Uid: 1234, Gid: 5678}, L{Name: "s", Type: tar.TypeSymlink, Link: "f", Uid: 42, Gid: 43}), archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st := stat(t, dir, "f"); st.Uid != 1234 || st.Gid != 5678 {
		t.Errorf("owner %d:%d, want 1234:5678", st.Uid, st.Gid)
	}
	if st := stat(t, dir, "s"); st.Uid != 42 || st.Gid != 43 {
		t.Errorf("symlink owner %d:%d, want 42:43", st.Uid, st.Gid)
	}
}

func TestExtractWhiteouts(t *testing.T) {
	requireRoot(t)
	raw := layers.Tar(
		L{Name: "a/", Type: tar.TypeDir},
		L{Name: "a/.wh..wh..opq"},
		L{Name: "a/.wh.gone"},
		L{Name: "b/kept", Body: "k"},
		L{Name: "c", Type: tar.TypeChar},
	)
	t.Run("aufs", func(t *testing.T) {
		dir, _, err := extract(t, raw, archive.Options{Whiteouts: archive.WhiteoutAUFS})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"a/.wh..wh..opq", "a/.wh.gone", ".wh.c"} {
			if st := stat(t, dir, n); st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != 0 {
				t.Errorf("%s: want an empty regular file", n)
			}
		}
	})
	t.Run("overlay", func(t *testing.T) {
		dir, _, err := extract(t, raw, archive.Options{Whiteouts: archive.WhiteoutOverlay})
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
			if os.Getenv("CI") == "true" {
				t.Fatalf("trusted xattrs unsupported on %s: %v", os.TempDir(), err)
			}
			t.Skipf("trusted.* xattrs unsupported on the temp dir's filesystem: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"a/gone", "c"} {
			st := stat(t, dir, n)
			if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
				t.Errorf("%s: want a 0/0 character device", n)
			}
		}
		if _, err := os.Lstat(filepath.Join(dir, "a/.wh..wh..opq")); !errors.Is(err, fs.ErrNotExist) {
			t.Error("opaque marker written as a file in overlay form")
		}
		buf := make([]byte, 4)
		n, err := unix.Lgetxattr(filepath.Join(dir, "a"), "trusted.overlay.opaque", buf)
		if err != nil || string(buf[:n]) != "y" {
			t.Errorf("a: trusted.overlay.opaque = %q, %v; want y", buf[:n], err)
		}
	})
}

func TestExtractReplacesTypes(t *testing.T) {
	requireRoot(t)
	dir, _, err := extract(t, layers.Tar(
		L{Name: "x/", Type: tar.TypeDir},
		L{Name: "x/inner", Body: "i"},
		L{Name: "x", Body: "now a file"},
		L{Name: "y", Type: tar.TypeSymlink, Link: "/etc"},
		L{Name: "y/", Type: tar.TypeDir},
		L{Name: "y/z", Body: "z"},
	), archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, dir, "x", "now a file", 0o644)
	checkFile(t, dir, "y/z", "z", 0o644)
}

func TestExtractRefusesNonEmptyDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := archive.Extract(context.Background(), bytes.NewReader(layers.Tar(L{Name: "a", Body: "a"})), dir, archive.Options{NoChown: true})
	if !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("extract into a non-empty dir = %v, want already exists", err)
	}
}

func TestExtractCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := archive.Extract(ctx, bytes.NewReader(layers.Tar(L{Name: "a", Body: "a"})), t.TempDir(), archive.Options{NoChown: true})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("extract = %v, want canceled", err)
	}
}

// TestExtractHostileCorpus extracts every hostile case next to a sentinel
// and checks the error class and that nothing outside the layer changed.
func TestExtractHostileCorpus(t *testing.T) {
	requireRoot(t)
	for _, c := range layers.Hostile() {
		t.Run(c.Name, func(t *testing.T) {
			outside, err := extractBeside(t, c.Tar, archive.Options{MaxEntries: c.MaxEntries, MaxBytes: c.MaxBytes})
			want := errdefs.ErrInvalidArgument
			if c.Want == "exhausted" {
				want = errdefs.ErrResourceExhausted
			}
			if !errors.Is(err, want) {
				t.Errorf("err = %v, want class %v", err, want)
			}
			if outside != "" {
				t.Errorf("written outside the layer: %s", outside)
			}
		})
	}
}

// extractBeside extracts b into parent/layer where parent also holds a
// sentinel tree, and returns any change outside the layer and the error.
func extractBeside(t testing.TB, b []byte, opts archive.Options) (outside string, err error) {
	parent := t.TempDir()
	layer := filepath.Join(parent, "layer")
	for _, d := range []string{layer, filepath.Join(parent, "etc")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(parent, "etc", "passwd"), []byte("sentinel"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, parent, layer)
	_, err = archive.Extract(context.Background(), bytes.NewReader(b), layer, opts)
	after := snapshot(t, parent, layer)
	if before != after {
		return "before:\n" + before + "after:\n" + after, err
	}
	if _, serr := os.Lstat("/escaped"); serr == nil {
		return "/escaped", err
	}
	return "", err
}

// snapshot lists parent's tree outside layer with sizes and mtimes.
func snapshot(t testing.TB, parent, layer string) string {
	var lines []string
	_ = filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == layer {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		lines = append(lines, p+" "+info.Mode().String()+" "+info.ModTime().String()+" "+strconv.FormatInt(info.Size(), 10))
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

func stat(t testing.TB, dir, name string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dir, name), &st); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return st
}

func checkFile(t *testing.T, dir, name, content string, mode uint32) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if string(b) != content {
		t.Errorf("%s = %q, want %q", name, b, content)
	}
	if st := stat(t, dir, name); st.Mode&0o7777 != mode {
		t.Errorf("%s mode %o, want %o", name, st.Mode&0o7777, mode)
	}
}

// A sparse entry within the limits keeps its holes: 1 MiB of logical size,
// one data block on disk.
func TestExtractSparseStaysSparse(t *testing.T) {
	requireRoot(t)
	dir, res, err := extract(t, layers.SparseBomb(1<<20), archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := stat(t, dir, "bomb")
	if st.Size != 1<<20 || st.Blocks > 64 || res.Size != 1<<20 {
		t.Fatalf("size %d, %d blocks, result size %d; want 1 MiB in a few blocks", st.Size, st.Blocks, res.Size)
	}
}
