package archive_test

import (
	"archive/tar"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/fixtures/layers"
	"github.com/berthrt/berth/process/archive"
)

// whiteoutLayer has every whiteout form: AUFS names, an overlay character
// device, an opaque marker for a directory the layer does not list, and
// AUFS metadata.
var whiteoutLayer = layers.Tar(
	L{Name: "a/", Type: tar.TypeDir, Mode: 0o750, ModTime: t1},
	L{Name: "a/.wh.b", Mode: 0o600, ModTime: t2},
	L{Name: "a/.wh..wh..opq"},
	L{Name: "a/kept", Body: "k"},
	L{Name: "c", Type: tar.TypeChar},
	L{Name: "n/.wh..wh..opq"},
	L{Name: ".wh..wh.plnk/", Type: tar.TypeDir},
	L{Name: ".wh..wh.plnk/1.2", Body: "aufs"},
)

func TestExtractWhiteoutsAUFS(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			s, res, err := extract(t, whiteoutLayer, m.opts(withoutRoot(archive.Options{Whiteouts: archive.WhiteoutAUFS})))
			if err != nil {
				t.Fatal(err)
			}
			if res.Entries != 8 || res.DiffID != diffID(whiteoutLayer) {
				t.Errorf("result %+v", res)
			}
			checkTree(t, s.layer, []node{
				{path: "a", kind: unix.S_IFDIR, mode: 0o750, mtime: t1},
				{path: "a/.wh.b", kind: unix.S_IFREG, mode: 0o600, body: str(""), mtime: t2},
				{path: "a/.wh..wh..opq", kind: unix.S_IFREG, mode: 0o644, body: str("")},
				{path: "a/kept", kind: unix.S_IFREG, body: str("k")},
				{path: ".wh.c", kind: unix.S_IFREG, body: str("")},
				{path: "n", kind: unix.S_IFDIR},
				{path: "n/.wh..wh..opq", kind: unix.S_IFREG, body: str("")},
				{path: ".wh..wh.plnk", kind: unix.S_IFDIR},
				{path: ".wh..wh.plnk/1.2", kind: unix.S_IFREG, body: str("aufs")},
			}, os.Geteuid() == 0, true)
		})
	}
}

// TestExtractWhiteoutsOverlay needs root: mknod of the 0/0 device and
// trusted.* xattrs.
func TestExtractWhiteoutsOverlay(t *testing.T) {
	requireRoot(t)
	requireTrustedXattrs(t)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			s, res, err := extract(t, whiteoutLayer, m.opts(archive.Options{Whiteouts: archive.WhiteoutOverlay}))
			if err != nil {
				t.Fatal(err)
			}
			if res.Entries != 8 || res.DiffID != diffID(whiteoutLayer) {
				t.Errorf("result %+v", res)
			}
			opaque := map[string]string{"trusted.overlay.opaque": "y"}
			checkTree(t, s.layer, []node{
				{path: "a", kind: unix.S_IFDIR, mode: 0o750, mtime: t1, xattrs: opaque},
				{path: "a/b", kind: unix.S_IFCHR, rdev: 0},
				{path: "a/kept", kind: unix.S_IFREG, body: str("k")},
				{path: "c", kind: unix.S_IFCHR, rdev: 0},
				{path: "n", kind: unix.S_IFDIR, xattrs: opaque},
			}, true, true)
		})
	}
}

// requireTrustedXattrs skips when the temporary directory's filesystem
// refuses trusted.* xattrs, or fails in CI.
func requireTrustedXattrs(t *testing.T) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "probe")
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	err := unix.Lsetxattr(p, "trusted.berth.probe", []byte("y"), 0)
	if err == nil {
		return
	}
	if ci() || !errors.Is(err, unix.EOPNOTSUPP) {
		t.Fatalf("trusted.* xattrs: %v", err)
	}
	t.Skipf("the filesystem of %s does not support trusted.* xattrs: %v", p, err)
}
