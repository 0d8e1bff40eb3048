package archive_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/fixtures/layers"
	"github.com/berthrt/berth/process/archive"
)

// L is a layer entry.
type L = layers.Entry

// ci reports a CI run, where a missing prerequisite fails instead of
// skipping.
func ci() bool { return os.Getenv("CI") == "true" }

// requireRoot skips a test that needs root (chown, mknod, trusted xattrs),
// or fails it in CI.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if ci() {
		t.Fatal("this test needs root (CI=true: a missing prerequisite is a failure)")
	}
	t.Skip("this test needs root: run the tests as root")
}

// withoutRoot is opts for the current user: NoChown unless root.
func withoutRoot(opts archive.Options) archive.Options {
	opts.NoChown = opts.NoChown || os.Geteuid() != 0
	return opts
}

// modes are the two ways Extract resolves parents.
var modes = []struct {
	name string
	opts func(archive.Options) archive.Options
}{
	{"openat2", func(o archive.Options) archive.Options { return o }},
	{"walk", archive.WithWalk},
}

// sandbox is a layer directory <base>/p/layer beside the targets of the
// hostile corpus: <base>/p/outside/sentinel and <base>/outside.
type sandbox struct {
	base, layer string
}

// newSandbox makes a sandbox in a fresh temporary directory.
func newSandbox(t testing.TB) sandbox {
	t.Helper()
	base := t.TempDir()
	s := sandbox{base: base, layer: filepath.Join(base, "p", "layer")}
	for _, d := range []string{s.layer, filepath.Join(base, "p", "outside"), filepath.Join(base, "outside")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(base, "p", "outside", layers.Sentinel), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { makeWritable(s.layer) })
	for _, p := range []string{filepath.Join(base, "p", "outside", layers.Sentinel), filepath.Join(base, "p", "outside"), filepath.Join(base, "outside"), filepath.Join(base, "p"), base} {
		if err := os.Chtimes(p, sandboxTime, sandboxTime); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// sandboxTime is the time of the sandbox's paths, fixed so that a change is
// visible whatever the clock.
var sandboxTime = time.Unix(1500000000, 0)

// reset empties the layer directory, keeping the parent's times.
func (s sandbox) reset(t testing.TB) {
	t.Helper()
	if err := os.RemoveAll(s.layer); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(s.layer, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Dir(s.layer), sandboxTime, sandboxTime); err != nil {
		t.Fatal(err)
	}
}

// listXattrs lists the xattr names of p, not following a symlink.
func listXattrs(p string) ([]string, error) {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name != "" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// makeWritable gives the owner rwx on every directory under dir, so that
// a non-root cleanup can remove what a layer made read-only.
func makeWritable(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
}

// snapshot describes everything under the sandbox but the layer.
func (s sandbox) snapshot(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(s.base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == s.layer {
			return filepath.SkipDir
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s mode=%o uid=%d nlink=%d size=%d mtime=%d.%d", p, st.Mode, st.Uid, st.Nlink, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
		if names, err := listXattrs(p); err != nil || len(names) > 0 {
			fmt.Fprintf(&b, " xattrs=%q (%v)", names, err)
		}
		if d.Type().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " sum=%x", sha256.Sum256(data))
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// checkContained fails if anything outside the layer changed, the canary
// exists, or a file in the layer is a hard link to the sentinel or to
// /etc/passwd.
func (s sandbox) checkContained(t testing.TB, before string) {
	t.Helper()
	if after := s.snapshot(t); after != before {
		t.Errorf("the tree outside the layer changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if _, err := os.Lstat(layers.Canary); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("canary %s exists (or lstat failed: %v)", layers.Canary, err)
	}
	var forbidden []unix.Stat_t
	for _, p := range []string{filepath.Join(s.base, "p", "outside", layers.Sentinel), "/etc/passwd"} {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err == nil {
			forbidden = append(forbidden, st)
		}
	}
	_ = filepath.WalkDir(s.layer, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil {
			return nil
		}
		for _, f := range forbidden {
			if st.Dev == f.Dev && st.Ino == f.Ino {
				t.Errorf("%s is a hard link to a file outside the layer", p)
			}
		}
		return nil
	})
}

// extract runs Extract on b into a fresh sandbox.
func extract(t testing.TB, b []byte, opts archive.Options) (sandbox, archive.Result, error) {
	t.Helper()
	s := newSandbox(t)
	res, err := archive.Extract(context.Background(), bytes.NewReader(b), s.layer, opts)
	return s, res, err
}

// diffID is the expected DiffID of an uncompressed stream.
func diffID(raw []byte) string {
	sum := sha256.Sum256(raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// node is the expected state of one path in an extracted layer.
type node struct {
	path   string
	kind   uint32 // unix.S_IFREG, S_IFDIR, ...
	mode   uint32 // permission bits with suid/sgid/sticky; checked unless 0
	uid    int    // checked when chown is on (-1: not checked)
	gid    int
	body   *string // regular file contents
	link   string  // symlink target
	rdev   uint64  // device number of a character device
	mtime  time.Time
	xattrs map[string]string
}

// str makes a *string for node.body.
func str(s string) *string { return &s }

// checkTree compares the tree under dir with want; with exact, no other
// path may exist.
func checkTree(t *testing.T, dir string, want []node, chown, exact bool) {
	t.Helper()
	seen := map[string]bool{}
	for _, w := range want {
		seen[w.path] = true
		checkNode(t, dir, w, chown)
	}
	if !exact {
		return
	}
	var extra []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(dir, p)
		if err == nil && rel != "." && !seen[rel] {
			extra = append(extra, rel)
		}
		return nil
	})
	slices.Sort(extra)
	if len(extra) > 0 {
		t.Errorf("unexpected paths in the layer: %q", extra)
	}
}

// checkNode checks one path.
func checkNode(t *testing.T, dir string, w node, chown bool) {
	t.Helper()
	p := filepath.Join(dir, w.path)
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Errorf("%s: %v", w.path, err)
		return
	}
	if got := st.Mode & unix.S_IFMT; got != w.kind {
		t.Errorf("%s: type %o, want %o", w.path, got, w.kind)
		return
	}
	if w.mode != 0 && st.Mode&0o7777 != w.mode {
		t.Errorf("%s: mode %o, want %o", w.path, st.Mode&0o7777, w.mode)
	}
	if chown && w.uid >= 0 && (int(st.Uid) != w.uid || int(st.Gid) != w.gid) {
		t.Errorf("%s: owner %d:%d, want %d:%d", w.path, st.Uid, st.Gid, w.uid, w.gid)
	}
	if w.body != nil {
		if data, err := os.ReadFile(p); err != nil || string(data) != *w.body {
			t.Errorf("%s: contents %.40q (%v), want %.40q", w.path, data, err, *w.body)
		}
	}
	if w.kind == unix.S_IFLNK {
		if got, err := os.Readlink(p); err != nil || got != w.link {
			t.Errorf("%s: link %q (%v), want %q", w.path, got, err, w.link)
		}
	}
	if w.kind == unix.S_IFCHR && st.Rdev != w.rdev {
		t.Errorf("%s: device %d, want %d", w.path, st.Rdev, w.rdev)
	}
	if !w.mtime.IsZero() && (st.Mtim.Sec != w.mtime.Unix() || st.Mtim.Nsec != int64(w.mtime.Nanosecond())) {
		t.Errorf("%s: mtime %v, want %v", w.path, time.Unix(st.Mtim.Sec, st.Mtim.Nsec), w.mtime)
	}
	for k, v := range w.xattrs {
		buf := make([]byte, 256)
		n, err := unix.Lgetxattr(p, k, buf)
		if err != nil || string(buf[:n]) != v {
			t.Errorf("%s: xattr %s = %q (%v), want %q", w.path, k, buf[:max(n, 0)], err, v)
		}
	}
}
