package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/process/errdefs"
)

// WhiteoutMetaPrefix starts AUFS's own metadata names (.wh..wh.opq and
// others).
const WhiteoutMetaPrefix = ".wh..wh."

// overlayOpaqueXattr marks an opaque directory for overlayfs.
const overlayOpaqueXattr = "trusted.overlay.opaque"

func (x *extractor) mkdir(hdr *tar.Header, dir, base string) error {
	pfd, err := x.parent(hdr.Name, dir)
	if err != nil {
		return err
	}
	kept, err := x.clear(pfd, base, true)
	if err != nil {
		return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
	}
	if !kept {
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
			return fmt.Errorf("layer entry %q: mkdir: %w", hdr.Name, err)
		}
	}
	if err := x.chown(pfd, base, hdr); err != nil {
		return err
	}
	if err := x.xattrsAt(pfd, base, hdr); err != nil {
		return err
	}
	x.dirs = append(x.dirs, dirMeta{rel: path.Join(dir, base), mode: uint32(hdr.Mode & 0o7777), atime: hdr.AccessTime, mtime: hdr.ModTime})
	return nil
}

func (x *extractor) file(hdr *tar.Header, r io.Reader, dir, base string) error {
	if hdr.Size < 0 {
		return entryError(hdr.Name, "negative size")
	}
	// The stream limit counts what is read; a sparse entry declares far more
	// than it carries, so what is written counts too.
	if x.res.Size+hdr.Size > x.opts.MaxBytes {
		return fmt.Errorf("layer entry %q: %d bytes would pass the limit of %d unpacked bytes: %w", hdr.Name, hdr.Size, x.opts.MaxBytes, errdefs.ErrResourceExhausted)
	}
	pfd, err := x.parent(hdr.Name, dir)
	if err != nil {
		return err
	}
	if _, err := x.clear(pfd, base, false); err != nil {
		return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
	}
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("layer entry %q: create: %w", hdr.Name, err)
	}
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	sw := &holeWriter{f: f}
	n, err := io.CopyBuffer(sw, io.LimitReader(r, hdr.Size), x.buf)
	if err == nil && sw.skipped {
		err = f.Truncate(n)
	}
	if err != nil {
		return streamOrWriteError(hdr.Name, err)
	}
	if n != hdr.Size {
		return streamError(fmt.Errorf("entry %q: %d of %d bytes", hdr.Name, n, hdr.Size))
	}
	x.res.Size += n
	if !x.opts.NoChown {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("layer entry %q: chown: %w", hdr.Name, err)
		}
	}
	// chmod after chown: chown clears the setuid and setgid bits.
	if err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777)); err != nil {
		return fmt.Errorf("layer entry %q: chmod: %w", hdr.Name, err)
	}
	if err := x.xattrsFd(fd, hdr); err != nil {
		return err
	}
	return x.times(pfd, base, hdr)
}

// holeBlock is the granularity at which runs of zeros become holes.
const holeBlock = 4096

// holeWriter writes a file's contents, leaving every all-zero 4 KiB block
// as a hole: archive/tar expands a sparse entry's holes into zeros, and a
// layer must not turn a sparse file (or a sparse bomb within the limits)
// into gigabytes on disk. The caller truncates to the full size at the end.
type holeWriter struct {
	f       *os.File
	off     int64
	skipped bool
}

func (w *holeWriter) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		// A run of non-zero blocks is written with one pwrite.
		run := 0
		for run < len(p) {
			end := min(run+holeBlock, len(p))
			if isZero(p[run:end]) {
				break
			}
			run = end
		}
		if run > 0 {
			if _, err := w.f.WriteAt(p[:run], w.off); err != nil {
				return total - len(p), err
			}
			w.off += int64(run)
			p = p[run:]
			continue
		}
		end := min(holeBlock, len(p))
		w.off += int64(end)
		w.skipped = true
		p = p[end:]
	}
	return total, nil
}

func isZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// streamOrWriteError tells a bad stream from a failed write (a full disk
// is not the layer's fault).
func streamOrWriteError(name string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("layer entry %q: write: %w", name, err)
	}
	return streamError(err)
}

func (x *extractor) symlink(hdr *tar.Header, dir, base string) error {
	if hdr.Linkname == "" || strings.ContainsRune(hdr.Linkname, 0) {
		return entryError(hdr.Name, "symlink with an empty target or a NUL byte")
	}
	pfd, err := x.parent(hdr.Name, dir)
	if err != nil {
		return err
	}
	if _, err := x.clear(pfd, base, false); err != nil {
		return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
	}
	// The target is data: it is resolved inside the container's root at run
	// time, and no later entry of this layer is ever written through it.
	if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
		return fmt.Errorf("layer entry %q: symlink: %w", hdr.Name, err)
	}
	if err := x.chown(pfd, base, hdr); err != nil {
		return err
	}
	return x.times(pfd, base, hdr)
}

func (x *extractor) hardlink(hdr *tar.Header, dir, base string) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil || target == "." {
		return entryError(hdr.Name, "hardlink target %q escapes the layer", hdr.Linkname)
	}
	tdir, tbase := path.Split(target)
	tdir = strings.TrimSuffix(tdir, "/")
	if tdir == "" {
		tdir = "."
	}
	tfd, err := x.openDir(tdir)
	if err != nil {
		return entryError(hdr.Name, "hardlink target %q is not in the layer (or is behind a symlink)", hdr.Linkname)
	}
	if tfd != x.root {
		defer unix.Close(tfd)
	}
	var tst unix.Stat_t
	if err := unix.Fstatat(tfd, tbase, &tst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return entryError(hdr.Name, "hardlink target %q is not in the layer", hdr.Linkname)
	}
	if tst.Mode&unix.S_IFMT == unix.S_IFDIR {
		return entryError(hdr.Name, "hardlink to the directory %q", hdr.Linkname)
	}
	pfd, err := x.parent(hdr.Name, dir)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Ino == tst.Ino && st.Dev == tst.Dev {
		return nil
	}
	if _, err := x.clear(pfd, base, false); err != nil {
		return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
	}
	if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
		return fmt.Errorf("layer entry %q: link: %w", hdr.Name, err)
	}
	return nil
}

func (x *extractor) node(hdr *tar.Header, dir, base string, kind uint32, dev int) error {
	pfd, err := x.parent(hdr.Name, dir)
	if err != nil {
		return err
	}
	if _, err := x.clear(pfd, base, false); err != nil {
		return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
	}
	if err := unix.Mknodat(pfd, base, kind|0o600, dev); err != nil {
		return fmt.Errorf("layer entry %q: mknod: %w", hdr.Name, err)
	}
	if err := x.chown(pfd, base, hdr); err != nil {
		return err
	}
	if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode&0o7777), 0); err != nil {
		return fmt.Errorf("layer entry %q: chmod: %w", hdr.Name, err)
	}
	return x.times(pfd, base, hdr)
}

// whiteout handles ".wh.NAME".
func (x *extractor) whiteout(hdr *tar.Header, dir, base string) error {
	name := strings.TrimPrefix(base, WhiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return entryError(hdr.Name, "malformed whiteout")
	}
	if x.opts.Whiteouts == WhiteoutOverlay {
		return x.node(hdr, dir, name, unix.S_IFCHR, 0)
	}
	return x.emptyFile(hdr, dir, base)
}

// whiteoutOf handles a 0/0 character device (an overlay whiteout of base).
func (x *extractor) whiteoutOf(hdr *tar.Header, dir, base string) error {
	if x.opts.Whiteouts == WhiteoutOverlay {
		return x.node(hdr, dir, base, unix.S_IFCHR, 0)
	}
	return x.emptyFile(hdr, dir, WhiteoutPrefix+base)
}

// opaque handles ".wh..wh..opq" in dir.
func (x *extractor) opaque(hdr *tar.Header, dir, base string) error {
	if x.opts.Whiteouts != WhiteoutOverlay {
		return x.emptyFile(hdr, dir, base)
	}
	fd, err := x.mkdirAll(hdr.Name, dir)
	if err != nil {
		return err
	}
	if fd != x.root {
		defer unix.Close(fd)
	}
	if err := unix.Setxattr(procFd(fd), overlayOpaqueXattr, []byte("y"), 0); err != nil {
		return fmt.Errorf("layer entry %q: mark %s opaque: %w", hdr.Name, dir, err)
	}
	return nil
}

// emptyFile writes an AUFS whiteout marker: an empty file, mode 0600.
func (x *extractor) emptyFile(hdr *tar.Header, dir, base string) error {
	pfd, err := x.parent(hdr.Name, dir)
	if err != nil {
		return err
	}
	if _, err := x.clear(pfd, base, false); err != nil {
		return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
	}
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("layer entry %q: create: %w", hdr.Name, err)
	}
	return unix.Close(fd)
}

func (x *extractor) chown(pfd int, base string, hdr *tar.Header) error {
	if x.opts.NoChown {
		return nil
	}
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("layer entry %q: chown: %w", hdr.Name, err)
	}
	return nil
}

func (x *extractor) chownRoot(hdr *tar.Header) error {
	if x.opts.NoChown {
		return nil
	}
	if err := unix.Fchownat(x.root, "", hdr.Uid, hdr.Gid, unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("layer entry %q: chown: %w", hdr.Name, err)
	}
	return nil
}

func (x *extractor) times(pfd int, base string, hdr *tar.Header) error {
	ts := timespecs(hdr.AccessTime, hdr.ModTime)
	if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("layer entry %q: set times: %w", hdr.Name, err)
	}
	return nil
}

func timespecs(atime, mtime time.Time) []unix.Timespec {
	if atime.IsZero() {
		atime = mtime
	}
	return []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
}

// xattrs returns the entry's extended attributes (PAX SCHILY.xattr.*).
func xattrs(hdr *tar.Header) map[string]string {
	var out map[string]string
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if out == nil {
				out = map[string]string{}
			}
			out[name] = v
		}
	}
	return out
}

// xattrError tolerates a filesystem or a namespace that refuses an xattr
// (security.* and trusted.* without privilege, user.* on tmpfs of old
// kernels), as containerd does.
func xattrError(name, key string, err error) error {
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
		return nil
	}
	return fmt.Errorf("layer entry %q: xattr %s: %w", name, key, err)
}

func (x *extractor) xattrsFd(fd int, hdr *tar.Header) error {
	for k, v := range xattrs(hdr) {
		if err := unix.Fsetxattr(fd, k, []byte(v), 0); err != nil {
			if err := xattrError(hdr.Name, k, err); err != nil {
				return err
			}
		}
	}
	return nil
}

func (x *extractor) xattrsAt(pfd int, base string, hdr *tar.Header) error {
	xs := xattrs(hdr)
	if len(xs) == 0 {
		return nil
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
	}
	defer unix.Close(fd)
	return x.xattrsFd(fd, hdr)
}

// finishDirs sets directories' modes and times, deepest last-written first.
func (x *extractor) finishDirs() error {
	x.closeParent()
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		ts := timespecs(d.atime, d.mtime)
		if d.rel == "." {
			if err := os.Chmod(x.dir, os.FileMode(d.mode&0o777)|unixModeBits(d.mode)); err != nil {
				return fmt.Errorf("layer root: chmod: %w", err)
			}
			if err := unix.UtimesNano(x.dir, ts); err != nil {
				return fmt.Errorf("layer root: set times: %w", err)
			}
			continue
		}
		dir, base := path.Split(d.rel)
		dir = strings.TrimSuffix(dir, "/")
		if dir == "" {
			dir = "."
		}
		pfd, err := x.openDir(dir)
		if err != nil {
			// A later entry replaced a parent with something else.
			continue
		}
		var st unix.Stat_t
		if unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = unix.Fchmodat(pfd, base, d.mode, 0)
			if err == nil {
				err = unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
			}
		}
		if pfd != x.root {
			unix.Close(pfd)
		}
		if err != nil {
			return fmt.Errorf("layer entry %q: directory metadata: %w", d.rel, err)
		}
	}
	return nil
}

// unixModeBits maps setuid, setgid and sticky to os.FileMode.
func unixModeBits(mode uint32) os.FileMode {
	var m os.FileMode
	if mode&unix.S_ISUID != 0 {
		m |= os.ModeSetuid
	}
	if mode&unix.S_ISGID != 0 {
		m |= os.ModeSetgid
	}
	if mode&unix.S_ISVTX != 0 {
		m |= os.ModeSticky
	}
	return m
}

func procFd(fd int) string { return fmt.Sprintf("/proc/self/fd/%d", fd) }
