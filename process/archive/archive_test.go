package archive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/fixtures/layers"
	"github.com/berthrt/berth/process/archive"
	"github.com/berthrt/berth/process/errdefs"
)

var (
	t1 = time.Unix(1600000000, 123456789).UTC()
	t2 = time.Unix(1650000000, 0).UTC()
)

// validCase is a layer Extract must accept, and the tree it must make.
type validCase struct {
	name    string
	raw     []byte // uncompressed stream
	entries int
	size    int64
	want    []node
	exact   bool // no other paths
}

// validCases are the table of TestExtractValid. uid/gid 0 in a node are
// root's; -1 skips the check.
func validCases() []validCase {
	return []validCase{
		{
			name: "tree",
			raw: layers.Tar(
				L{Name: "./", Type: tar.TypeDir, Mode: 0o755},
				L{Name: "etc/", Type: tar.TypeDir, Mode: 0o755, ModTime: t1},
				L{Name: "etc/hostname", Body: "box\n", Mode: 0o640, Uid: 1000, Gid: 1001, ModTime: t2},
				L{Name: "bin/su", Body: "ELF", Mode: 0o4755, Uid: 1000, Gid: 1000},
				L{Name: "bin/wall", Body: "ELF2", Mode: 0o2755, Gid: 5},
				L{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777},
				L{Name: "srv/", Type: tar.TypeDir, Mode: 0o2750, Uid: 7, Gid: 8},
				L{Name: "lib/ld.so", Body: "loader", Mode: 0o755},
				L{Name: "lib/ld-link.so", Type: tar.TypeLink, Link: "lib/ld.so"},
				L{Name: "lib/abs", Type: tar.TypeSymlink, Link: "/no/such/abs", Uid: 3, Gid: 4, ModTime: t1},
				L{Name: "lib/out", Type: tar.TypeSymlink, Link: "../../outside/" + layers.Sentinel, Uid: 3, Gid: 4, ModTime: t1},
				L{Name: "lib/rel", Type: tar.TypeSymlink, Link: "../etc/hostname"},
				L{Name: "lib/dangling", Type: tar.TypeSymlink, Link: "/no/such/file"},
				L{Name: "run/fifo", Type: tar.TypeFifo, Mode: 0o620, Uid: 9, Gid: 9},
				L{Name: "/abs/path", Body: "rooted"},
				L{Name: "./dot/./slash//name", Body: "clean"},
				L{Name: "xattr", Body: "x", Xattrs: map[string]string{"user.berth": "yes", "user.empty": ""}},
				L{Name: "etc/", Type: tar.TypeDir, Mode: 0o700, ModTime: t1}, // repeated: last wins
			),
			entries: 18,
			size:    int64(len("box\n" + "ELF" + "ELF2" + "loader" + "rooted" + "clean" + "x")),
			want: []node{
				{path: "etc", kind: unix.S_IFDIR, mode: 0o700, mtime: t1},
				{path: "etc/hostname", kind: unix.S_IFREG, mode: 0o640, uid: 1000, gid: 1001, body: str("box\n"), mtime: t2},
				{path: "bin", kind: unix.S_IFDIR, mode: 0o755},
				{path: "bin/su", kind: unix.S_IFREG, mode: 0o4755, uid: 1000, gid: 1000, body: str("ELF")},
				{path: "bin/wall", kind: unix.S_IFREG, mode: 0o2755, uid: 0, gid: 5, body: str("ELF2")},
				{path: "tmp", kind: unix.S_IFDIR, mode: 0o1777},
				{path: "srv", kind: unix.S_IFDIR, mode: 0o2750, uid: 7, gid: 8},
				{path: "lib", kind: unix.S_IFDIR, mode: 0o755},
				{path: "lib/ld.so", kind: unix.S_IFREG, mode: 0o755, body: str("loader")},
				{path: "lib/ld-link.so", kind: unix.S_IFREG, mode: 0o755, body: str("loader")},
				{path: "lib/abs", kind: unix.S_IFLNK, link: "/no/such/abs", uid: 3, gid: 4, mtime: t1},
				{path: "lib/out", kind: unix.S_IFLNK, link: "../../outside/" + layers.Sentinel, uid: 3, gid: 4, mtime: t1},
				{path: "lib/rel", kind: unix.S_IFLNK, link: "../etc/hostname"},
				{path: "lib/dangling", kind: unix.S_IFLNK, link: "/no/such/file"},
				{path: "run", kind: unix.S_IFDIR},
				{path: "run/fifo", kind: unix.S_IFIFO, mode: 0o620, uid: 9, gid: 9},
				{path: "abs", kind: unix.S_IFDIR},
				{path: "abs/path", kind: unix.S_IFREG, body: str("rooted")},
				{path: "dot", kind: unix.S_IFDIR},
				{path: "dot/slash", kind: unix.S_IFDIR},
				{path: "dot/slash/name", kind: unix.S_IFREG, body: str("clean")},
				{path: "xattr", kind: unix.S_IFREG, body: str("x"), xattrs: map[string]string{"user.berth": "yes", "user.empty": ""}},
			},
			exact: true,
		},
		{
			name: "dirs after their children keep their mode and times",
			raw: layers.Tar(
				L{Name: "a/b/c", Body: "c"},
				L{Name: "a/b/", Type: tar.TypeDir, Mode: 0o750, ModTime: t1},
				L{Name: "a/", Type: tar.TypeDir, Mode: 0o700, ModTime: t2},
				L{Name: "a/d", Body: "d"},
				L{Name: "ro/", Type: tar.TypeDir, Mode: 0o555, ModTime: t1},
				L{Name: "ro/sub/", Type: tar.TypeDir, Mode: 0o500, ModTime: t2},
				L{Name: "ro/sub/f", Body: "f", Mode: 0o400},
				L{Name: "./", Type: tar.TypeDir, Mode: 0o711, ModTime: t1},
			),
			entries: 8, size: 3,
			want: []node{
				{path: ".", kind: unix.S_IFDIR, mode: 0o711, mtime: t1},
				{path: "a", kind: unix.S_IFDIR, mode: 0o700, mtime: t2},
				{path: "a/b", kind: unix.S_IFDIR, mode: 0o750, mtime: t1},
				{path: "a/b/c", kind: unix.S_IFREG, body: str("c")},
				{path: "a/d", kind: unix.S_IFREG, body: str("d")},
				{path: "ro", kind: unix.S_IFDIR, mode: 0o555, mtime: t1},
				{path: "ro/sub", kind: unix.S_IFDIR, mode: 0o500, mtime: t2},
				{path: "ro/sub/f", kind: unix.S_IFREG, mode: 0o400, body: str("f")},
			},
			exact: true,
		},
		{
			name: "later entries replace, never follow, what is there",
			raw: layers.Tar(
				L{Name: "x", Type: tar.TypeSymlink, Link: layers.Canary},
				L{Name: "x", Body: "file, not through the symlink"},
				L{Name: "d", Type: tar.TypeSymlink, Link: "../outside"},
				L{Name: "d/", Type: tar.TypeDir, Mode: 0o750},
				L{Name: "d/f", Body: "inside"},
				L{Name: "e/", Type: tar.TypeDir},
				L{Name: "e/child", Body: "gone"},
				L{Name: "e", Body: "now a file"},
				L{Name: "f", Body: "was a file"},
				L{Name: "f/", Type: tar.TypeDir},
				L{Name: "g", Body: "target"},
				L{Name: "s", Type: tar.TypeSymlink, Link: "g"},
				L{Name: "s", Type: tar.TypeLink, Link: "g"},
				L{Name: "p", Type: tar.TypeFifo},
				L{Name: "p", Type: tar.TypeSymlink, Link: "/"},
				L{Name: "y", Type: tar.TypeSymlink, Link: "/"},
				L{Name: "y", Type: tar.TypeFifo},
			),
			entries: 17, size: int64(len("file, not through the symlinkinsidegonenow a filewas a filetarget")),
			want: []node{
				{path: "x", kind: unix.S_IFREG, body: str("file, not through the symlink")},
				{path: "d", kind: unix.S_IFDIR, mode: 0o750},
				{path: "d/f", kind: unix.S_IFREG, body: str("inside")},
				{path: "e", kind: unix.S_IFREG, body: str("now a file")},
				{path: "f", kind: unix.S_IFDIR},
				{path: "g", kind: unix.S_IFREG, body: str("target")},
				{path: "s", kind: unix.S_IFREG, body: str("target")},
				{path: "p", kind: unix.S_IFLNK, link: "/"},
				{path: "y", kind: unix.S_IFIFO},
			},
			exact: true,
		},
		{
			name: "hardlink to a symlink links the symlink",
			raw: layers.Tar(
				L{Name: "s", Type: tar.TypeSymlink, Link: "/etc/passwd"},
				L{Name: "h", Type: tar.TypeLink, Link: "/s"},
			),
			entries: 2,
			want: []node{
				{path: "s", kind: unix.S_IFLNK, link: "/etc/passwd"},
				{path: "h", kind: unix.S_IFLNK, link: "/etc/passwd"},
			},
			exact: true,
		},
		{
			name: "global header, no end marker",
			raw: func() []byte {
				var buf bytes.Buffer
				tw := tar.NewWriter(&buf)
				_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "hi"}})
				_ = tw.WriteHeader(L{Name: "f", Body: "f"}.Header())
				_, _ = tw.Write([]byte("f"))
				_ = tw.Flush() // no Close: no end-of-archive blocks
				return buf.Bytes()
			}(),
			entries: 1, size: 1,
			want:  []node{{path: "f", kind: unix.S_IFREG, body: str("f")}},
			exact: true,
		},
		{
			name:    "empty archive",
			raw:     layers.Tar(),
			entries: 0,
			exact:   true,
		},
		{
			name:    "trailing bytes after the archive are hashed",
			raw:     append(layers.Tar(L{Name: "f", Body: "f"}), "trailing"...),
			entries: 1, size: 1,
			want: []node{{path: "f", kind: unix.S_IFREG, body: str("f")}},
		},
		{
			name: "sparse and zero files",
			raw: append(new(layers.Raw).PAX(map[string]string{
				"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "sparse", "GNU.sparse.realsize": strconv.Itoa(3 << 20),
			}).Header(layers.RawHeader("GNUSparseFile.0/sparse", tar.TypeReg, 512+4)).Data(append([]byte("1\n2097152\n4\n"+strings.Repeat("\x00", 512-12)), "data"...)).Bytes(),
				layers.Tar(L{Name: "zeros", Body: strings.Repeat("\x00", 3<<20)}, L{Name: "tail", Body: "head" + strings.Repeat("\x00", 2<<20)})...),
			entries: 3, size: 3<<20 + 3<<20 + 4 + 2<<20,
			want: []node{
				{path: "sparse", kind: unix.S_IFREG, body: str(strings.Repeat("\x00", 2<<20) + "data" + strings.Repeat("\x00", 1<<20-4))},
				{path: "zeros", kind: unix.S_IFREG, body: str(strings.Repeat("\x00", 3<<20))},
				{path: "tail", kind: unix.S_IFREG, body: str("head" + strings.Repeat("\x00", 2<<20))},
			},
			exact: true,
		},
		{
			name: "aufs metadata kept, empty names cleaned",
			raw: layers.Tar(
				L{Name: ".wh..wh.plnk/", Type: tar.TypeDir},
				L{Name: ".wh..wh.plnk/123.456", Body: "x"},
				L{Name: "long/" + strings.Repeat("n", 200), Body: "pax path"},
			),
			entries: 3, size: 9,
			want: []node{
				{path: ".wh..wh.plnk", kind: unix.S_IFDIR},
				{path: ".wh..wh.plnk/123.456", kind: unix.S_IFREG, body: str("x")},
				{path: "long/" + strings.Repeat("n", 200), kind: unix.S_IFREG, body: str("pax path")},
			},
		},
	}
}

// TestExtractValid checks owners only as root; otherwise it extracts
// with NoChown.
func TestExtractValid(t *testing.T) {
	root := os.Geteuid() == 0
	for _, c := range validCases() {
		for _, comp := range []string{"", "gzip", "zstd"} {
			for _, m := range modes {
				t.Run(fmt.Sprintf("%s/%s/%s", c.name, compName(comp), m.name), func(t *testing.T) {
					s := newSandbox(t)
					before := s.snapshot(t)
					res, err := archive.Extract(context.Background(), bytes.NewReader(layers.Compress(c.raw, comp)), s.layer, m.opts(withoutRoot(archive.Options{})))
					if err != nil {
						t.Fatal(err)
					}
					s.checkContained(t, before)
					if res.DiffID != diffID(c.raw) {
						t.Errorf("DiffID %s, want %s (sha256 of the uncompressed stream)", res.DiffID, diffID(c.raw))
					}
					if res.Entries != c.entries {
						t.Errorf("Entries %d, want %d", res.Entries, c.entries)
					}
					if c.size != 0 && res.Size != c.size {
						t.Errorf("Size %d, want %d", res.Size, c.size)
					}
					checkTree(t, s.layer, c.want, root, c.exact)
				})
			}
		}
	}
}

func compName(c string) string {
	if c == "" {
		return "plain"
	}
	return c
}

func TestExtractHardlinkSharesInode(t *testing.T) {
	raw := layers.Tar(L{Name: "a", Body: "a"}, L{Name: "d/b", Type: tar.TypeLink, Link: "./a"})
	s, _, err := extract(t, raw, withoutRoot(archive.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	var a, b unix.Stat_t
	if err := unix.Lstat(filepath.Join(s.layer, "a"), &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lstat(filepath.Join(s.layer, "d/b"), &b); err != nil {
		t.Fatal(err)
	}
	if a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("d/b is inode %d, a is %d with %d links: want one inode, two links", b.Ino, a.Ino, a.Nlink)
	}
}

func TestExtractNoChown(t *testing.T) {
	raw := layers.Tar(L{Name: "d/", Type: tar.TypeDir, Uid: 4242, Gid: 4243}, L{Name: "d/f", Body: "f", Uid: 4242, Gid: 4243, Mode: 0o4755})
	s, _, err := extract(t, raw, archive.Options{NoChown: true})
	if err != nil {
		t.Fatal(err)
	}
	uid, gid := os.Geteuid(), os.Getegid()
	checkTree(t, s.layer, []node{
		{path: "d", kind: unix.S_IFDIR, uid: uid, gid: gid},
		{path: "d/f", kind: unix.S_IFREG, mode: 0o4755, uid: uid, gid: gid},
	}, true, true)
}

func TestExtractAtimeFromPAX(t *testing.T) {
	h := L{Name: "f", Body: "f", ModTime: t2}.Header()
	h.AccessTime = t1
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(h); err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write([]byte("f"))
	_ = tw.Close()
	s, _, err := extract(t, buf.Bytes(), withoutRoot(archive.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(s.layer, "f"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Atim.Sec != t1.Unix() || st.Mtim.Sec != t2.Unix() {
		t.Errorf("atime %d mtime %d, want %d %d", st.Atim.Sec, st.Mtim.Sec, t1.Unix(), t2.Unix())
	}
}

func TestExtractGzipMultistream(t *testing.T) {
	raw := layers.Tar(L{Name: "f", Body: "f"})
	half := len(raw) / 2
	blob := append(layers.Gzip(raw[:half]), layers.Gzip(raw[half:])...)
	s, res, err := extract(t, blob, withoutRoot(archive.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if res.DiffID != diffID(raw) {
		t.Errorf("DiffID %s, want %s", res.DiffID, diffID(raw))
	}
	checkTree(t, s.layer, []node{{path: "f", kind: unix.S_IFREG, body: str("f")}}, false, true)
}

func TestExtractDirectoryChecks(t *testing.T) {
	raw := layers.Tar(L{Name: "f", Body: "f"})
	base := t.TempDir()
	full := filepath.Join(base, "full")
	if err := os.MkdirAll(filepath.Join(full, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dir  string
		want error
	}{
		{full, errdefs.ErrAlreadyExists},
		{filepath.Join(base, "missing"), errdefs.ErrInvalidArgument},
		{file, errdefs.ErrInvalidArgument},
	} {
		_, err := archive.Extract(context.Background(), bytes.NewReader(raw), c.dir, archive.Options{})
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want class %v", c.dir, err, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(full, "f")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("extracted into a non-empty directory: %v", err)
	}
}

func TestExtractBadOptions(t *testing.T) {
	for _, o := range []archive.Options{{MaxBytes: -1}, {MaxEntries: -1}, {Whiteouts: 7}} {
		_, _, err := extract(t, layers.Tar(), o)
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%+v: %v, want invalid argument", o, err)
		}
	}
}

func TestExtractCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := newSandbox(t)
	_, err := archive.Extract(ctx, bytes.NewReader(layers.Tar(L{Name: "f", Body: "f"})), s.layer, archive.Options{})
	if !errors.Is(err, context.Canceled) || !errdefs.IsCanceled(err) {
		t.Fatalf("%v, want context.Canceled", err)
	}
}

// errReader fails after its data.
type errReader struct {
	r   *bytes.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, _ := e.r.Read(p)
	if n == 0 {
		return 0, e.err
	}
	return n, nil
}

func TestExtractReaderErrorIsNotCorruption(t *testing.T) {
	boom := errors.New("connection reset")
	raw := layers.Tar(L{Name: "f", Body: strings.Repeat("f", 10000)})
	for _, comp := range []string{"", "gzip", "zstd"} {
		blob := layers.Compress(raw, comp)
		s := newSandbox(t)
		_, err := archive.Extract(context.Background(), &errReader{r: bytes.NewReader(blob[:len(blob)/2]), err: boom}, s.layer, archive.Options{NoChown: true})
		if !errors.Is(err, boom) || errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v, want the reader's error, not invalid argument", compName(comp), err)
		}
	}
}

// TarHash sees the whole uncompressed stream, padding after the end
// marker included, whatever the compression: its sum is the hash of the
// plain tar.
func TestExtractTarHash(t *testing.T) {
	raw := layers.Tar(L{Name: "a", Body: "x"}, L{Name: "d/", Type: tar.TypeDir})
	raw = append(raw, make([]byte, 4096)...) // record padding, as tar(1) writes
	want := sha512.Sum512(raw)
	for _, kind := range []string{"", "gzip", "zstd"} {
		t.Run("compression="+kind, func(t *testing.T) {
			h := sha512.New()
			res, err := archive.Extract(context.Background(), bytes.NewReader(layers.Compress(raw, kind)), t.TempDir(), archive.Options{NoChown: true, TarHash: h})
			if err != nil {
				t.Fatal(err)
			}
			if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
				t.Errorf("TarHash = %x, want %x", got, want)
			}
			if sum := sha256.Sum256(raw); res.DiffID != "sha256:"+hex.EncodeToString(sum[:]) {
				t.Errorf("DiffID = %s, want the sha256 of the same bytes", res.DiffID)
			}
		})
	}
}
