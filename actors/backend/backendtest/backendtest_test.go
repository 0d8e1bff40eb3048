package backendtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/process/archive"
)

func build(t *testing.T, format archive.WhiteoutFormat, entries ...Entry) (string, Tree) {
	t.Helper()
	dir := filepath.Join(TempDir(t), "layer")
	if err := BuildLayer(dir, format, entries...); err != nil {
		t.Fatal(err)
	}
	tr, err := Snapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, tr
}

func TestBuildLayerAUFS(t *testing.T) {
	mtime := time.Unix(1234567890, 123)
	_, tr := build(t, archive.WhiteoutAUFS,
		File("etc/passwd", "root").WithMode(0o600).WithMTime(mtime),
		Hardlink("etc/passwd-", "etc/passwd"),
		Symlink("lib", "usr/lib").WithMTime(mtime),
		FIFO("run/p").WithMode(0o620),
		Dir("tmp").WithMode(0o1777),
		Whiteout("etc/shadow"),
		Opaque("usr"),
		File("sparse", "").WithExtent(1<<20, []byte("x")).WithSize(4<<20),
	)
	want := map[string]string{
		".":                "dir 0755",
		"etc":              "dir 0755",
		"etc/passwd":       "file 0600",
		"etc/passwd-":      "file 0600",
		"etc/.wh.shadow":   "file 0644",
		"lib":              "symlink 0777",
		"run/p":            "fifo 0620",
		"tmp":              "dir 1777",
		"usr":              "dir 0755",
		"usr/.wh..wh..opq": "file 0644",
		"sparse":           "file 0644",
		"run":              "dir 0755",
	}
	for p, w := range want {
		n, ok := tr[p]
		if !ok {
			t.Errorf("missing %s", p)
			continue
		}
		if got := n.String(); !strings.HasPrefix(got, w) {
			t.Errorf("%s: %s, want %s...", p, got, w)
		}
	}
	if len(tr) != len(want) {
		t.Errorf("tree has %v, want the %d paths %v", tr.Paths(), len(want), want)
	}
	if tr["etc/passwd"].MTime != mtime.UnixNano() || tr["lib"].MTime != mtime.UnixNano() {
		t.Errorf("mtimes not applied: %v", tr["etc/passwd"])
	}
	if tr["etc"].MTime != DefaultTime().UnixNano() {
		t.Errorf("implicit directory mtime %v, want DefaultTime", tr["etc"])
	}
	if tr["etc/passwd-"].LinkTo != "etc/passwd" {
		t.Errorf("hard link not recorded: %v", tr["etc/passwd-"])
	}
	if tr["lib"].Target != "usr/lib" || tr["sparse"].Size != 4<<20 {
		t.Errorf("symlink or size wrong: %v %v", tr["lib"], tr["sparse"])
	}
}

func TestBuildLayerOverlay(t *testing.T) {
	RequireRoot(t)
	dir, tr := build(t, archive.WhiteoutOverlay, File("etc/a", "a"), Whiteout("etc/shadow"), Opaque("usr"))
	if n := tr["etc/shadow"]; n.Type != "char" || n.Rdev != "0:0" {
		t.Errorf("overlay whiteout = %v, want a 0:0 character device", n)
	}
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(filepath.Join(dir, "usr"), "trusted.overlay.opaque", buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque xattr = %q, %v; want y", buf[:n], err)
	}
	if _, ok := tr["usr/"+archive.WhiteoutOpaque]; ok {
		t.Errorf("overlay form wrote an AUFS marker")
	}
}

func TestBuildLayerRefuses(t *testing.T) {
	for name, entries := range map[string][]Entry{
		"parent symlink":  {Symlink("a", "/tmp"), File("a/x", "x")},
		"parent file":     {File("a", "a"), File("a/x", "x")},
		"escape":          {File("../x", "x")},
		"absolute":        {File("/x", "x")},
		"duplicate":       {File("x", "1"), File("x", "2")},
		"root not a dir":  {File(".", "x")},
		"hardlink escape": {Hardlink("x", "../y")},
	} {
		dir := filepath.Join(t.TempDir(), "layer")
		if err := BuildLayer(dir, archive.WhiteoutAUFS, entries...); err == nil {
			t.Errorf("%s: BuildLayer succeeded", name)
		}
	}
}

func TestDiffEqual(t *testing.T) {
	entries := []Entry{
		File("a", "a").WithMode(0o4755).WithMTime(time.Unix(5, 6)),
		Hardlink("b", "a"),
		Symlink("c", "a"),
		Dir("d").WithMTime(time.Unix(7, 8)),
		FIFO("d/p"),
	}
	_, t1 := build(t, archive.WhiteoutAUFS, entries...)
	_, t2 := build(t, archive.WhiteoutAUFS, entries...)
	if d := Diff(t1, t2); d != nil {
		t.Errorf("Diff of equal trees = %v", d)
	}
}

func TestDiffFindsEveryField(t *testing.T) {
	_, want := build(t, archive.WhiteoutAUFS,
		File("content", "a"),
		File("mode", "m").WithMode(0o644),
		File("mtime", "t"),
		File("link1", "l"), Hardlink("link2", "link1"),
		Symlink("target", "a"),
		File("type", "t"),
		File("missing", "m"),
	)
	_, got := build(t, archive.WhiteoutAUFS,
		File("content", "bb"),
		File("mode", "m").WithMode(0o4644),
		File("mtime", "t").WithMTime(time.Unix(1, 1)),
		File("link1", "l"), File("link2", "l"),
		Symlink("target", "b"),
		Dir("type"),
		File("unexpected", "u"),
	)
	d := strings.Join(Diff(want, got), "\n")
	for _, w := range []string{
		"content: size", "content: sha256", "mode: mode: want 0644, got 4644", "mtime: mtime",
		"link2: hardlink", "target: target", "type: type: want file, got dir",
		"missing missing", "unexpected unexpected",
	} {
		if !strings.Contains(d, w) {
			t.Errorf("Diff does not report %q:\n%s", w, d)
		}
	}
}

func TestDiffXattrs(t *testing.T) {
	p := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(p, "user.probe", []byte("1"), 0); err != nil {
		t.Skip("no user xattrs on the temporary directory's filesystem")
	}
	_, want := build(t, archive.WhiteoutAUFS, File("f", "f").WithXattr("user.a", "1"))
	_, got := build(t, archive.WhiteoutAUFS, File("f", "f").WithXattr("user.a", "2"))
	if d := strings.Join(Diff(want, got), "\n"); !strings.Contains(d, "f: xattrs") {
		t.Errorf("Diff does not report the xattr change: %q", d)
	}
}
