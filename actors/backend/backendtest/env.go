package backendtest

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

	"github.com/berthrt/berth/actors/backend"
	"github.com/berthrt/berth/process/archive"
)

// opTimeout bounds every Provision and Destroy of the suite.
const opTimeout = 2 * time.Minute

// maxDiffLines caps the differences printed for one comparison.
const maxDiffLines = 40

// env is one case's sandbox: a temporary base directory holding the
// layers, the expected trees, the backend directory and sentinels.
//
//	<base>/layers/<n>            layers built by layer()
//	<base>/expected/<n>          expected trees built by check()
//	<base>/backend               backendDir
//	<base>/backend/rootfses/<r>  rootfses (so <rootfs>/../../.. is <base>)
type env struct {
	t          *testing.T
	b          backend.Backend
	opts       Options
	base       string
	backendDir string
	n          int
}

func newEnv(t *testing.T, b backend.Backend, opts Options) *env {
	base := TempDir(t)
	e := &env{t: t, b: b, opts: opts, base: base, backendDir: filepath.Join(base, "backend")}
	if err := os.MkdirAll(e.backendDir, 0o755); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) next() int { e.n++; return e.n }

// layer builds a layer from entries in the backend's format.
func (e *env) layer(entries ...Entry) string {
	e.t.Helper()
	dir := filepath.Join(e.base, "layers", fmt.Sprint(e.next()))
	if err := BuildLayer(dir, e.opts.LayerFormat, entries...); err != nil {
		e.t.Fatal(err)
	}
	return dir
}

// layers builds one layer per entry list, bottom first.
func (e *env) layers(ls ...[]Entry) []string {
	e.t.Helper()
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = e.layer(l...)
	}
	return out
}

// rootfsPath returns a fresh rootfs path; nothing is created.
func (e *env) rootfsPath(name string) string {
	return filepath.Join(e.backendDir, "rootfses", name)
}

func opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}

// provision provisions layers into a new rootfs, failing the test on error,
// and destroys it when the test ends.
func (e *env) provision(layers []string) string {
	e.t.Helper()
	rootfs := e.rootfsPath(fmt.Sprintf("r%d", e.next()))
	if err := e.provisionAt(e.b, layers, rootfs); err != nil {
		e.t.Fatalf("Provision(%v, %s): %v", layers, rootfs, err)
	}
	return rootfs
}

// provisionAt provisions layers into rootfs with b and registers its
// destruction at the end of the test. It is safe from several goroutines.
func (e *env) provisionAt(b backend.Backend, layers []string, rootfs string) error {
	ctx, cancel := opContext()
	defer cancel()
	_, err := b.Provision(ctx, layers, rootfs, e.backendDir)
	e.t.Cleanup(func() { e.destroyQuietly(rootfs) })
	return err
}

// destroyQuietly destroys rootfs at the end of a test, whatever state it
// is in; failures are reported.
func (e *env) destroyQuietly(rootfs string) {
	ctx, cancel := opContext()
	defer cancel()
	if _, err := e.b.Destroy(ctx, rootfs, e.backendDir); err != nil {
		e.t.Errorf("cleanup: Destroy(%s): %v", rootfs, err)
	}
}

// destroy destroys rootfs and checks existed.
func (e *env) destroy(rootfs string, wantExisted bool) {
	e.t.Helper()
	ctx, cancel := opContext()
	defer cancel()
	existed, err := e.b.Destroy(ctx, rootfs, e.backendDir)
	if err != nil {
		e.t.Fatalf("Destroy(%s): %v", rootfs, err)
	}
	if existed != wantExisted {
		e.t.Errorf("Destroy(%s) existed = %v, want %v", rootfs, existed, wantExisted)
	}
}

// snapshot records the tree at p, failing the test on error.
func (e *env) snapshot(p string) Tree {
	e.t.Helper()
	tr, err := Snapshot(p)
	if err != nil {
		e.t.Fatalf("snapshot %s: %v", p, err)
	}
	return tr
}

// expect builds the tree that want describes (no whiteouts) and returns
// its snapshot, the root's own metadata left out (see normalizeRoot).
func (e *env) expect(want ...Entry) Tree {
	e.t.Helper()
	dir := filepath.Join(e.base, "expected", fmt.Sprint(e.next()))
	if err := BuildLayer(dir, archive.WhiteoutAUFS, want...); err != nil {
		e.t.Fatal(err)
	}
	return normalizeRoot(e.snapshot(dir))
}

// check compares the tree at rootfs with the tree want describes.
func (e *env) check(rootfs string, want ...Entry) {
	e.t.Helper()
	e.compare("rootfs "+rootfs, e.expect(want...), normalizeRoot(e.snapshot(rootfs)))
}

// compare reports the differences between two trees.
func (e *env) compare(what string, want, got Tree) {
	e.t.Helper()
	if msg := diffMessage(want, got); msg != "" {
		e.t.Errorf("%s differs from the expected tree (want vs got):\n%s", what, msg)
	}
}

// diffMessage formats Diff for a test failure ("" when equal).
func diffMessage(want, got Tree) string {
	d := Diff(want, got)
	if len(d) == 0 {
		return ""
	}
	if len(d) > maxDiffLines {
		d = append(d[:maxDiffLines], fmt.Sprintf("... and %d more", len(d)-maxDiffLines))
	}
	return "  " + strings.Join(d, "\n  ")
}

// normalizeRoot keeps only the type of the root entry: its owner, mode and
// times are the backend's business (overlay shows its upper directory,
// bind the layer, copy the top layer's root).
func normalizeRoot(t Tree) Tree {
	if n, ok := t["."]; ok {
		t["."] = Node{Type: n.Type}
	}
	return t
}

// TempDir returns t.TempDir(), made removable again before the testing
// package removes it: without root, directories built read-only (0555,
// 0000) would otherwise make that removal fail.
func TempDir(t testing.TB) string {
	dir := t.TempDir()
	t.Cleanup(func() { makeWritable(dir) })
	return dir
}

// makeWritable gives the owner rwx on every directory under dir that we
// own, before descending into it. Errors are ignored: this is best effort.
func makeWritable(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.Mode().Perm()&0o700 != 0o700 {
			_ = os.Chmod(p, fi.Mode().Perm()|0o700)
		}
		return nil
	})
}

// mustNotExist fails the test if p exists.
func mustNotExist(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s: want it gone, lstat says %v", p, err)
	}
}

// RequireRoot skips a test that needs root when not running as root, and
// fails it instead under CI=true, where nothing may be skipped silently.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("needs root: run as root (CI=true: root-only cases may not be skipped)")
	}
	t.Skip("needs root: run as root")
}
