package copyfs

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	pmount "github.com/berthrt/berth/process/mount"
)

func TestWhiteoutTarget(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target string
		ok     bool
		bad    bool // checkWhiteout rejects it
	}{
		{name: ".wh.passwd", target: "passwd", ok: true},
		{name: ".wh..hidden", target: ".hidden", ok: true},
		{name: ".wh.a b", target: "a b", ok: true},
		{name: ".wh..wh..opq"},      // the opaque marker: handled apart
		{name: ".wh..wh.plnk"},      // AUFS metadata: ignored
		{name: ".wh..wh.aufs"},      // AUFS metadata: ignored
		{name: ".wh.", bad: true},   // the parent itself
		{name: ".wh..", bad: true},  // "."
		{name: ".wh...", bad: true}, // ".."
		{name: "passwd"},            // not a whiteout
		{name: "x.wh.y"},            // not a whiteout
		{name: ".wh....", target: "...", ok: true},
	} {
		target, ok := whiteoutTarget(tc.name)
		if target != tc.target || ok != tc.ok {
			t.Errorf("whiteoutTarget(%q) = %q, %v; want %q, %v", tc.name, target, ok, tc.target, tc.ok)
		}
		if len(tc.name) >= 4 && tc.name[:4] == ".wh." {
			if err := checkWhiteout(tc.name); (err != nil) != tc.bad {
				t.Errorf("checkWhiteout(%q) = %v, want error: %v", tc.name, err, tc.bad)
			}
		}
	}
}

// dirent64 encodes one linux_dirent64 record.
func dirent64(ino uint64, typ uint8, name string) []byte {
	reclen := (19 + len(name) + 1 + 7) &^ 7
	b := make([]byte, reclen)
	binary.NativeEndian.PutUint64(b[0:], ino)
	binary.NativeEndian.PutUint64(b[8:], 1)
	binary.NativeEndian.PutUint16(b[16:], uint16(reclen))
	b[18] = typ
	copy(b[19:], name)
	return b
}

func TestParseDirents(t *testing.T) {
	var buf []byte
	buf = append(buf, dirent64(1, unix.DT_DIR, ".")...)
	buf = append(buf, dirent64(2, unix.DT_DIR, "..")...)
	buf = append(buf, dirent64(3, unix.DT_REG, "file")...)
	buf = append(buf, dirent64(0, unix.DT_REG, "deleted")...)
	buf = append(buf, dirent64(4, unix.DT_LNK, "a-much-longer-name-than-eight")...)
	buf = append(buf, dirent64(5, unix.DT_UNKNOWN, "u")...)
	buf = append(buf, 1, 2, 3) // a truncated record is ignored
	got := parseDirents(buf, nil)
	want := []dirent{{"file", unix.DT_REG}, {"a-much-longer-name-than-eight", unix.DT_LNK}, {"u", unix.DT_UNKNOWN}}
	if len(got) != len(want) {
		t.Fatalf("parseDirents = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %v, want %v", i, got[i], want[i])
		}
	}
}

// TestReadDirBatches reads a directory larger than one getdents buffer.
func TestReadDirBatches(t *testing.T) {
	dir := t.TempDir()
	const n = 3000
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, "entry-with-a-fairly-long-name-"+itoa(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	ents, err := readDir(fd, make([]byte, 4096))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range ents {
		seen[e.name] = true
	}
	if len(ents) != n || len(seen) != n {
		t.Errorf("readDir: %d entries (%d distinct), want %d", len(ents), len(seen), n)
	}
}

func itoa(i int) string {
	return string(appendInt(nil, i))
}

func appendInt(b []byte, i int) []byte {
	if i >= 10 {
		b = appendInt(b, i/10)
	}
	return append(b, byte('0'+i%10))
}

func TestOpenDirInRoot(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	for _, d := range []string{"a/b/c", "real"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{"abs": outside, "rel": "real", "up": "../../..", "a/b/link": "/"} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	rootfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rootfd)
	open := map[string]func(int, string) (int, error){"openat2": openDirInRoot, "stepwise": openDirStepwise}
	for how, f := range open {
		for _, ok := range []string{"", "a", "a/b", "a/b/c", "real"} {
			fd, err := f(rootfd, ok)
			if err != nil {
				t.Errorf("%s(%q): %v", how, ok, err)
				continue
			}
			unix.Close(fd)
		}
		for _, bad := range []string{"abs", "rel", "up", "a/b/link", "abs/x", "a/b/link/tmp"} {
			fd, err := f(rootfd, bad)
			if err == nil {
				unix.Close(fd)
				t.Errorf("%s(%q) succeeded; want a refusal", how, bad)
			}
		}
		// ".." may be refused, or (openat2's RESOLVE_IN_ROOT) stop at the root.
		for _, up := range []string{"..", "a/../..", "a/b/../../../.."} {
			fd, err := f(rootfd, up)
			if err != nil {
				continue
			}
			var st, rst unix.Stat_t
			if unix.Fstat(fd, &st) != nil || unix.Fstat(rootfd, &rst) != nil || st.Ino != rst.Ino || st.Dev != rst.Dev {
				t.Errorf("%s(%q) resolved outside the root", how, up)
			}
			unix.Close(fd)
		}
	}
}

// writeSparse writes a file of size bytes with the given extents.
func writeSparse(t *testing.T, p string, size int64, extents map[int64][]byte) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for off, data := range extents {
		if _, err := f.WriteAt(data, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

// copyFile runs copyData (or copyRW when rw is set) from src to a new dst.
func copyFile(t *testing.T, ctx context.Context, src, dst string, rw bool) error {
	t.Helper()
	sfd, err := unix.Open(src, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sfd)
	dfd, err := unix.Open(dst, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := unix.Fstat(sfd, &st); err != nil {
		t.Fatal(err)
	}
	if rw {
		return copyRW(ctx, sfd, dfd, 0, st.Size)
	}
	return copyData(ctx, sfd, dfd, st.Size, st.Blocks)
}

func TestCopyDataSparse(t *testing.T) {
	const mib = 1 << 20
	block := func(c byte) []byte { return bytes.Repeat([]byte{c}, 8192) }
	for name, tc := range map[string]struct {
		size    int64
		extents map[int64][]byte
	}{
		"hole-in-middle":  {size: 8 * mib, extents: map[int64][]byte{0: block('a'), 7*mib + 4096: block('b')}},
		"hole-at-start":   {size: 8 * mib, extents: map[int64][]byte{6 * mib: block('c')}},
		"hole-at-end":     {size: 8 * mib, extents: map[int64][]byte{0: block('d')}},
		"all-hole":        {size: 8 * mib},
		"dense":           {size: 3 * 8192, extents: map[int64][]byte{0: block('e'), 8192: block('f'), 16384: block('g')}},
		"unaligned-tail":  {size: 2*mib + 17, extents: map[int64][]byte{2 * mib: []byte("0123456789abcdefg")}},
		"odd-extent-size": {size: 4 * mib, extents: map[int64][]byte{12345: []byte("xyz"), 3 * mib: []byte("end")}},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
			writeSparse(t, src, tc.size, tc.extents)
			if err := copyFile(t, context.Background(), src, dst, false); err != nil {
				t.Fatal(err)
			}
			assertSameContent(t, src, dst)
			var ss, ds unix.Stat_t
			if err := unix.Stat(src, &ss); err != nil {
				t.Fatal(err)
			}
			if err := unix.Stat(dst, &ds); err != nil {
				t.Fatal(err)
			}
			if ds.Size != ss.Size {
				t.Errorf("size %d, want %d", ds.Size, ss.Size)
			}
			if ds.Blocks > ss.Blocks+64 { // a few blocks of slack for filesystem rounding
				t.Errorf("dst has %d blocks, src %d: holes were filled", ds.Blocks, ss.Blocks)
			}
		})
	}
}

func assertSameContent(t *testing.T, a, b string) {
	t.Helper()
	ab, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ab, bb) {
		t.Errorf("%s and %s differ (%d and %d bytes)", a, b, len(ab), len(bb))
	}
}

func TestCopyRW(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	data := bytes.Repeat([]byte("0123456789"), 100_000) // > rwBufSize, not a multiple of it
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(t, context.Background(), src, dst, true); err != nil {
		t.Fatal(err)
	}
	assertSameContent(t, src, dst)
}

func TestCopyCanceled(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, bytes.Repeat([]byte("x"), 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i, rw := range []bool{false, true} {
		err := copyFile(t, ctx, src, filepath.Join(dir, "dst"+itoa(i)), rw)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("copy (rw=%v) with a cancelled context = %v, want context.Canceled", rw, err)
		}
	}
}

func TestChmodAtDoesNotFollow(t *testing.T) {
	for name, chmod := range map[string]func(int, string, uint32) error{"fchmodat2": chmodAt, "proc": chmodAtProc} {
		t.Run(name, func(t *testing.T) { testChmodAt(t, chmod) })
	}
}

func testChmodAt(t *testing.T, chmodAt func(int, string, uint32) error) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := chmodAt(fd, "link", 0o600); err == nil {
		t.Errorf("chmodAt(symlink) succeeded; want EOPNOTSUPP")
	}
	if fi, err := os.Stat(target); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("chmodAt through a symlink changed its target: %v, %v", fi.Mode(), err)
	}
	if err := chmodAt(fd, "fifo", 0o640); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "fifo")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("chmodAt(fifo): mode %v, %v; want 0640", fi.Mode(), err)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/plain`:            "/plain",
		`/with\040space`:    "/with space",
		`/tab\011and\012nl`: "/tab\tand\nnl",
		`/back\134slash`:    `/back\slash`,
		`/trailing\04`:      `/trailing\04`,
		`/not\9990ctal`:     `/not\9990ctal`,
	} {
		if got := pmount.UnescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRemoverStopsAtMounts checks the descriptor walk's own mount checks,
// without Destroy's mountinfo scan in front: a bind mount of the same
// filesystem (same device, another mount id) and a tmpfs are refused, and
// nothing on them is removed.
func TestRemoverStopsAtMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root: run as root")
		}
		t.Skip("needs root: run as root")
	}
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	if err := os.MkdirAll(filepath.Join(outside, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"bind", "tmpfs"} {
		tree := filepath.Join(base, kind)
		mnt := filepath.Join(tree, "a", "m")
		if err := os.MkdirAll(mnt, 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if kind == "bind" {
			err = unix.Mount(outside, mnt, "", unix.MS_BIND, "")
		} else {
			err = unix.Mount("tmpfs", mnt, "tmpfs", 0, "")
			if err == nil {
				err = os.Mkdir(filepath.Join(mnt, "sub"), 0o755)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) })
		pfd, err := unix.Open(base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		err = removeRootfs(context.Background(), pfd, kind, tree, 1)
		unix.Close(pfd)
		if err == nil || !strings.Contains(err.Error(), mnt) {
			t.Errorf("%s: removeRootfs = %v, want a refusal naming %s", kind, err, mnt)
		}
		if _, err := os.Stat(filepath.Join(mnt, "sub")); err != nil {
			t.Errorf("%s: the mount's content was removed: %v", kind, err)
		}
	}
}
