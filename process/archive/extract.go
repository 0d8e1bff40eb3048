package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/process/errdefs"
)

// maxNameLen caps an entry's name (PATH_MAX).
const maxNameLen = 4096

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// errTooBig marks the uncompressed byte limit.
var errTooBig = errors.New("layer exceeds the uncompressed size limit")

// Extract reads a tar layer from r (plain, gzip or zstd, detected from the
// first bytes) and writes it into dir, which must exist and be empty.
//
// Hostile input is rejected with an error of class errdefs.ErrInvalidArgument
// naming the entry: escaping names, writes through symlinks, hardlinks that
// leave the layer or name nothing, malformed whiteouts, device nodes,
// truncated or corrupt streams. Limits give errdefs.ErrResourceExhausted.
// Nothing is ever written outside dir. On error dir holds a partial layer:
// callers extract into a staging directory and remove it.
func Extract(ctx context.Context, r io.Reader, dir string, opts Options) (Result, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	root, err := openEmptyDir(dir)
	if err != nil {
		return Result{}, err
	}
	defer unix.Close(root)
	stream, closeStream, err := decompress(r)
	if err != nil {
		return Result{}, err
	}
	defer closeStream()
	digest := sha256.New()
	counted := &limitedReader{r: io.TeeReader(stream, digest), left: opts.MaxBytes}
	x := &extractor{root: root, dir: dir, opts: opts, buf: make([]byte, 1<<20)}
	defer x.closeParent()
	tr := tar.NewReader(counted)
	for {
		if err := ctx.Err(); err != nil {
			return Result{}, fmt.Errorf("extract: %w", err)
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Result{}, streamError(err)
		}
		x.res.Entries++
		if x.res.Entries > opts.MaxEntries {
			return Result{}, fmt.Errorf("layer has more than %d entries: %w", opts.MaxEntries, errdefs.ErrResourceExhausted)
		}
		if err := x.apply(hdr, tr); err != nil {
			return Result{}, err
		}
	}
	// The diff id covers the whole uncompressed stream, padding included;
	// reading to the end also checks the gzip trailer.
	if _, err := io.CopyBuffer(io.Discard, counted, x.buf); err != nil {
		return Result{}, streamError(err)
	}
	if err := x.finishDirs(); err != nil {
		return Result{}, err
	}
	x.res.DiffID = "sha256:" + hex.EncodeToString(digest.Sum(nil))
	return x.res, nil
}

// openEmptyDir opens dir, which must be an empty directory.
func openEmptyDir(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("extract into %s: %w", dir, err)
	}
	f := os.NewFile(uintptr(fd), dir)
	names, err := f.Readdirnames(1)
	if err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return -1, fmt.Errorf("extract into %s: %w", dir, err)
	}
	if len(names) > 0 {
		f.Close()
		return -1, fmt.Errorf("extract into %s: the directory is not empty: %w", dir, errdefs.ErrAlreadyExists)
	}
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	f.Close()
	if err != nil {
		return -1, fmt.Errorf("extract into %s: %w", dir, err)
	}
	return root, nil
}

// decompress detects gzip and zstd from the magic bytes.
func decompress(r io.Reader) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 1<<16)
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, streamError(err)
	}
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, streamError(err)
		}
		return zr, func() { _ = zr.Close() }, nil
	case bytes.HasPrefix(magic, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, streamError(err)
		}
		return zr, zr.Close, nil
	}
	return br, func() {}, nil
}

// streamError classifies a read error of the layer stream.
func streamError(err error) error {
	if errors.Is(err, errTooBig) {
		return fmt.Errorf("%w: %w", err, errdefs.ErrResourceExhausted)
	}
	return fmt.Errorf("layer stream is truncated or corrupt: %v: %w", err, errdefs.ErrInvalidArgument)
}

// limitedReader fails once more than left bytes were read.
type limitedReader struct {
	r    io.Reader
	left int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, errTooBig
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n, errTooBig
	}
	return n, err
}

// dirMeta is applied to a directory after everything inside it is written
// (writing children changes a directory's mtime; a read-only mode would
// stop the writes of a non-root extractor).
type dirMeta struct {
	rel   string
	mode  uint32
	atime time.Time
	mtime time.Time
}

type extractor struct {
	root int
	dir  string
	opts Options
	buf  []byte
	res  Result
	dirs []dirMeta
	// The parent of the last entry stays open: entries come grouped by
	// directory. Any removal or symlink drops it.
	parentRel string
	parentFd  int
	hasParent bool
}

// entryError is the error of a hostile or malformed entry.
func entryError(name, format string, args ...any) error {
	return fmt.Errorf("layer entry %q: %s: %w", name, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
}

// cleanName turns a tar name into a path relative to the layer root.
// Absolute names are taken as rooted at the layer (as docker does); a name
// whose ".." would climb above the root is hostile.
func cleanName(name string) (string, error) {
	if name == "" || strings.ContainsRune(name, 0) {
		return "", entryError(name, "empty name or NUL byte")
	}
	if len(name) > maxNameLen {
		return "", entryError(name[:64]+"...", "name longer than %d bytes", maxNameLen)
	}
	depth := 0
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return "", entryError(name, "path escapes the layer")
			}
		default:
			depth++
		}
	}
	rel := strings.TrimPrefix(path.Clean("/"+name), "/")
	if rel == "" {
		rel = "."
	}
	return rel, nil
}

// apply writes one entry.
func (x *extractor) apply(hdr *tar.Header, tr io.Reader) error {
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "." {
		if hdr.Typeflag == tar.TypeDir {
			x.dirs = append(x.dirs, dirMeta{rel: ".", mode: uint32(hdr.Mode & 0o7777), atime: hdr.AccessTime, mtime: hdr.ModTime})
			return x.chownRoot(hdr)
		}
		return entryError(hdr.Name, "the layer root must be a directory")
	}
	dir, base := path.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	if base == WhiteoutOpaque {
		return x.opaque(hdr, dir, base)
	}
	if strings.HasPrefix(base, WhiteoutMetaPrefix) {
		// Other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs) has no meaning here.
		return nil
	}
	if strings.HasPrefix(base, WhiteoutPrefix) {
		return x.whiteout(hdr, dir, base)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.mkdir(hdr, dir, base)
	case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // TypeRegA appears in old layers.
		return x.file(hdr, tr, dir, base)
	case tar.TypeSymlink:
		return x.symlink(hdr, dir, base)
	case tar.TypeLink:
		return x.hardlink(hdr, dir, base)
	case tar.TypeFifo:
		return x.node(hdr, dir, base, unix.S_IFIFO, 0)
	case tar.TypeChar:
		if hdr.Devmajor == 0 && hdr.Devminor == 0 {
			// An overlay-form whiteout.
			return x.whiteoutOf(hdr, dir, base)
		}
		return entryError(hdr.Name, "device node %d:%d not allowed in an image layer", hdr.Devmajor, hdr.Devminor)
	case tar.TypeBlock:
		return entryError(hdr.Name, "block device %d:%d not allowed in an image layer", hdr.Devmajor, hdr.Devminor)
	case tar.TypeXGlobalHeader:
		return nil
	}
	return entryError(hdr.Name, "unsupported tar entry type %q", hdr.Typeflag)
}

// parent opens the entry's parent directory inside the root, making
// missing directories, and never through a symlink: a layer may plant a
// symlink, but it cannot then write through it.
func (x *extractor) parent(name, rel string) (int, error) {
	if x.hasParent && x.parentRel == rel {
		return x.parentFd, nil
	}
	x.closeParent()
	fd, err := x.mkdirAll(name, rel)
	if err != nil {
		return -1, err
	}
	x.parentRel, x.parentFd, x.hasParent = rel, fd, true
	return fd, nil
}

func (x *extractor) closeParent() {
	if x.hasParent {
		if x.parentFd != x.root {
			unix.Close(x.parentFd)
		}
		x.hasParent = false
	}
}

// resolveFlags resolve a path inside the root and refuse every symlink.
const resolveFlags = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

func (x *extractor) openDir(rel string) (int, error) {
	if rel == "." {
		return x.root, nil
	}
	for {
		fd, err := unix.Openat2(x.root, rel, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: resolveFlags})
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		return fd, err
	}
}

// mkdirAll opens rel, making it and its missing parents (mode 0755, as
// containerd does for entries whose parents the layer does not list).
func (x *extractor) mkdirAll(name, rel string) (int, error) {
	fd, err := x.openDir(rel)
	if err == nil {
		return fd, nil
	}
	switch {
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENOTDIR):
		return -1, entryError(name, "its parent %s is a symlink or not a directory; a layer cannot write through it", rel)
	case !errors.Is(err, unix.ENOENT):
		return -1, fmt.Errorf("layer entry %q: open %s: %w", name, rel, err)
	}
	dir, base := path.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	pfd, err := x.mkdirAll(name, dir)
	if err != nil {
		return -1, err
	}
	if pfd != x.root {
		defer unix.Close(pfd)
	}
	if err := unix.Mkdirat(pfd, base, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, fmt.Errorf("layer entry %q: mkdir %s: %w", name, rel, err)
	}
	fd, err = x.openDir(rel)
	if err != nil {
		return -1, entryError(name, "its parent %s is a symlink or not a directory: %v", rel, err)
	}
	return fd, nil
}

// clear removes whatever is at base in pfd, unless keepDir and it is a
// directory. It reports whether a directory was kept.
func (x *extractor) clear(pfd int, base string, keepDir bool) (bool, error) {
	var st unix.Stat_t
	err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	if isDir && keepDir {
		return true, nil
	}
	x.invalidate()
	return false, removeAt(pfd, base, isDir)
}

// invalidate drops the cached parent: a removal may have taken it away.
func (x *extractor) invalidate() {
	if x.hasParent && x.parentFd != x.root {
		// The descriptor stays valid for the caller's current entry; it is
		// closed on the next lookup.
		x.parentRel = "\x00stale"
	}
}

// removeAt removes base from the directory pfd, recursively for a
// directory, without following any symlink.
func removeAt(pfd int, base string, isDir bool) error {
	if !isDir {
		return unix.Unlinkat(pfd, base, 0)
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), base)
	names, err := f.Readdirnames(-1)
	if err != nil {
		f.Close()
		return err
	}
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			f.Close()
			return err
		}
		if err := removeAt(fd, n, st.Mode&unix.S_IFMT == unix.S_IFDIR); err != nil {
			f.Close()
			return err
		}
	}
	f.Close()
	return unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR)
}
