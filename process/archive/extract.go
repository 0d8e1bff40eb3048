package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/process/errdefs"
)

// copyBufSize is the size of the buffer file contents are copied through.
const copyBufSize = 1 << 20

// fileFlags create a regular file, never through a symlink.
const fileFlags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC

// extractor is the state of one Extract call.
type extractor struct {
	ctx     context.Context
	opts    Options
	root    *root
	stream  *stream
	tr      *tar.Reader
	buf     []byte
	res     Result
	headers int   // headers read, against MaxEntries
	written int64 // regular file bytes written, against MaxBytes
	last    string
	dirs    dirTimes
}

// entry is a tar header with its cleaned name split.
type entry struct {
	hdr  *tar.Header
	rel  string // cleaned, "." for the root
	dir  string // rel's directory, "." at the top
	base string
}

// path is the cleaned name of name in e's directory.
func (e *entry) path(name string) string {
	if e.dir == "." {
		return name
	}
	return e.dir + "/" + name
}

// run applies every entry, drains the stream and fixes directory metadata.
func (x *extractor) run() error {
	for {
		if err := x.ctx.Err(); err != nil {
			return fmt.Errorf("archive: extract canceled after %d entries: %w", x.res.Entries, err)
		}
		hdr, err := x.tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !insecurePath(hdr, err) {
			return x.stream.classify(x.where(), err)
		}
		x.headers++
		if x.headers > x.opts.MaxEntries {
			return fmt.Errorf("archive: entry %s: layer has more than %d entries: %w", quoteName(hdr.Name), x.opts.MaxEntries, errdefs.ErrResourceExhausted)
		}
		x.last = hdr.Name
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		if err := x.apply(hdr); err != nil {
			return err
		}
		x.res.Entries++
	}
	if err := x.stream.drain(x.buf); err != nil {
		return err
	}
	return x.dirs.apply(x.ctx, x.root)
}

// insecurePath reports the error archive/tar returns, with the header,
// for a non-local name under GODEBUG=tarinsecurepath=0: Extract cleans
// names itself.
func insecurePath(hdr *tar.Header, err error) bool {
	return hdr != nil && errors.Is(err, tar.ErrInsecurePath)
}

// where names the position in the stream for an error in a header.
func (x *extractor) where() string {
	if x.headers == 0 {
		return "first tar header"
	}
	return "tar header after entry " + quoteName(x.last)
}

// apply writes one entry.
func (x *extractor) apply(hdr *tar.Header) error {
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return invalid(hdr, "%v", err)
	}
	if hdr.Size < 0 {
		return invalid(hdr, "negative size %d", hdr.Size)
	}
	if len(hdr.Linkname) > maxNameLen {
		return invalid(hdr, "link target is %d bytes long, the limit is %d", len(hdr.Linkname), maxNameLen)
	}
	e := entry{hdr: hdr, rel: rel}
	e.dir, e.base = splitRel(rel)
	meta, err := checkParents(e.dir)
	if err != nil {
		return invalid(hdr, "%v", err)
	}
	kind, target, err := classifyWhiteout(e.base)
	if err != nil {
		return invalid(hdr, "%v", err)
	}
	if meta || kind == whiteoutMeta {
		if x.opts.Whiteouts == WhiteoutOverlay {
			return nil // AUFS metadata means nothing to overlayfs
		}
		kind = notWhiteout
	}
	switch kind {
	case whiteoutEntry:
		return x.whiteout(&e, target)
	case whiteoutOpq:
		return x.opaque(&e)
	}
	if rel == "." && hdr.Typeflag != tar.TypeDir {
		return invalid(hdr, "only a directory may name the layer root")
	}
	return x.node(&e)
}

// node writes an entry that is not a whiteout by name.
func (x *extractor) node(e *entry) error {
	hdr := e.hdr
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.mkdir(e)
	case tar.TypeReg, tar.TypeGNUSparse:
		return x.file(e, e.base, true)
	case tar.TypeSymlink:
		return x.symlink(e)
	case tar.TypeLink:
		return x.hardlink(e)
	case tar.TypeFifo:
		return x.fifo(e)
	case tar.TypeChar:
		if hdr.Devmajor == 0 && hdr.Devminor == 0 {
			return x.charWhiteout(e)
		}
		return invalid(hdr, "character device %d/%d: device node not allowed in an image layer", hdr.Devmajor, hdr.Devminor)
	case tar.TypeBlock:
		return invalid(hdr, "block device %d/%d: device node not allowed in an image layer", hdr.Devmajor, hdr.Devminor)
	}
	return invalid(hdr, "unsupported tar entry type %q", hdr.Typeflag)
}

// parent opens e's directory, creating missing directories.
func (x *extractor) parent(e *entry) (int, error) {
	fd, err := x.root.dir(e.dir, true)
	if err != nil {
		return -1, resolveErr(e.hdr, "directory", e.dir, err)
	}
	return fd, nil
}

// replace runs mk, which creates name in pfd; when name exists it is
// removed (recursively for a directory, following nothing) and mk runs
// again.
func (x *extractor) replace(e *entry, pfd int, name string, mk func() error) error {
	err := mk()
	if errors.Is(err, unix.EEXIST) {
		if err = x.remove(e, pfd, name); err != nil {
			return err
		}
		err = mk()
	}
	return err
}

// remove deletes name from pfd to make room for e.
func (x *extractor) remove(e *entry, pfd int, name string) error {
	if err := removeAll(pfd, name); err != nil {
		return fsErr(e.hdr, "remove the existing "+quoteName(e.path(name)), err)
	}
	x.root.removed(e.path(name))
	return nil
}

// mkdir creates or updates a directory; its mode and times are set at the
// end.
func (x *extractor) mkdir(e *entry) error {
	pfd, err := x.parent(e)
	if err != nil {
		return err
	}
	err = unix.Mkdirat(pfd, e.base, 0o755)
	if errors.Is(err, unix.EEXIST) {
		err = nil
		if !isDirAt(pfd, e.base) {
			if err = x.remove(e, pfd, e.base); err == nil {
				err = unix.Mkdirat(pfd, e.base, 0o755)
			}
		}
	}
	if err != nil {
		return fsErr(e.hdr, "mkdirat", err)
	}
	if err := x.chownAt(e, pfd, e.base); err != nil {
		return err
	}
	if err := x.xattrsAt(e, pfd, e.base); err != nil {
		return err
	}
	x.dirs.add(e)
	return nil
}

// file creates the regular file name in e's directory with e's metadata,
// and e's contents when data is set (else empty: an AUFS whiteout).
func (x *extractor) file(e *entry, name string, data bool) error {
	pfd, err := x.parent(e)
	if err != nil {
		return err
	}
	fd, err := unix.Openat(pfd, name, fileFlags, 0o600)
	if errors.Is(err, unix.EEXIST) {
		if err = x.remove(e, pfd, name); err == nil {
			fd, err = unix.Openat(pfd, name, fileFlags, 0o600)
		}
	}
	if err != nil {
		return fsErr(e.hdr, "create file", err)
	}
	if data {
		err = x.copyData(e, fd)
	}
	if err == nil {
		err = x.fileMeta(e, fd)
	}
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = fsErr(e.hdr, "close", cerr)
	}
	if err != nil {
		return err
	}
	return x.timesAt(e, pfd, name)
}

// symlink creates a symlink; its target is data and is never followed.
func (x *extractor) symlink(e *entry) error {
	pfd, err := x.parent(e)
	if err != nil {
		return err
	}
	target := e.hdr.Linkname
	if err := x.replace(e, pfd, e.base, func() error { return unix.Symlinkat(target, pfd, e.base) }); err != nil {
		return fsErr(e.hdr, "symlinkat", err)
	}
	return x.nodeMeta(e, pfd, false)
}

// fifo creates a named pipe.
func (x *extractor) fifo(e *entry) error {
	pfd, err := x.parent(e)
	if err != nil {
		return err
	}
	if err := x.replace(e, pfd, e.base, func() error { return unix.Mknodat(pfd, e.base, unix.S_IFIFO|0o600, 0) }); err != nil {
		return fsErr(e.hdr, "mknodat", err)
	}
	return x.nodeMeta(e, pfd, true)
}

// hardlink links to an entry already extracted. The target is cleaned
// like a name, resolved without symlinks, and must not be a directory.
func (x *extractor) hardlink(e *entry) error {
	hdr := e.hdr
	trel, err := cleanName(hdr.Linkname)
	if err != nil {
		return invalid(hdr, "hardlink target %s: %v", quoteName(hdr.Linkname), err)
	}
	if trel == "." || trel == e.rel {
		return invalid(hdr, "hardlink to %s: a link to itself or to the layer root", quoteName(hdr.Linkname))
	}
	tdir, tbase := splitRel(trel)
	tfd, err := x.root.open(tdir, false)
	if errors.Is(err, unix.ENOENT) {
		return invalid(hdr, "hardlink target %s does not exist in the layer", quoteName(hdr.Linkname))
	}
	if err != nil {
		return resolveErr(hdr, "hardlink target "+quoteName(hdr.Linkname)+": directory", tdir, err)
	}
	defer func() { _ = unix.Close(tfd) }()
	st, err := statAt(tfd, tbase)
	switch {
	case errors.Is(err, unix.ENOENT):
		return invalid(hdr, "hardlink target %s does not exist in the layer", quoteName(hdr.Linkname))
	case err != nil:
		return fsErr(hdr, "stat hardlink target", err)
	case st.Mode&unix.S_IFMT == unix.S_IFDIR:
		return invalid(hdr, "hardlink target %s is a directory", quoteName(hdr.Linkname))
	}
	pfd, err := x.parent(e)
	if err != nil {
		return err
	}
	if err := x.replace(e, pfd, e.base, func() error { return unix.Linkat(tfd, tbase, pfd, e.base, 0) }); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return invalid(hdr, "hardlink target %s does not exist in the layer", quoteName(hdr.Linkname))
		}
		return fsErr(hdr, "linkat", err)
	}
	return nil
}

// whiteout applies ".wh.NAME" (e), which deletes name from the layers
// below: e verbatim in AUFS form, a 0/0 character device NAME in overlay
// form.
func (x *extractor) whiteout(e *entry, name string) error {
	if x.opts.Whiteouts != WhiteoutOverlay {
		return x.file(e, e.base, false)
	}
	return x.overlayWhiteout(e, name)
}

// charWhiteout applies a 0/0 character device, overlayfs's whiteout: as
// is in overlay form, as the empty file ".wh.NAME" in AUFS form.
func (x *extractor) charWhiteout(e *entry) error {
	if x.opts.Whiteouts != WhiteoutOverlay {
		return x.file(e, WhiteoutPrefix+e.base, false)
	}
	return x.overlayWhiteout(e, e.base)
}

// overlayWhiteout makes the 0/0 character device name in e's directory.
func (x *extractor) overlayWhiteout(e *entry, name string) error {
	pfd, err := x.parent(e)
	if err != nil {
		return err
	}
	if err := x.replace(e, pfd, name, func() error { return unix.Mknodat(pfd, name, unix.S_IFCHR, 0) }); err != nil {
		return fsErr(e.hdr, "mknodat whiteout "+quoteName(e.path(name)), err)
	}
	return nil
}

// opaque marks e's directory opaque: e verbatim in AUFS form, the xattr
// trusted.overlay.opaque=y in overlay form.
func (x *extractor) opaque(e *entry) error {
	if x.opts.Whiteouts != WhiteoutOverlay {
		return x.file(e, e.base, false)
	}
	fd, err := x.parent(e)
	if err != nil {
		return err
	}
	if err := setxattrAt(fd, ".", overlayOpaqueXattr, []byte("y")); err != nil {
		return fsErr(e.hdr, "set "+overlayOpaqueXattr, err)
	}
	return nil
}
