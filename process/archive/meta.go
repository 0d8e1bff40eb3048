package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/process/errdefs"
)

// overlayOpaqueXattr marks an opaque directory for overlayfs.
const overlayOpaqueXattr = "trusted.overlay.opaque"

// paxXattrPrefix starts the PAX records that carry extended attributes.
const paxXattrPrefix = "SCHILY.xattr."

// maxID is the largest uid or gid (-1 means "unchanged" to chown).
const maxID = 1<<32 - 2

// modeOf is the permission bits of hdr, with set-user-ID, set-group-ID and
// sticky.
func modeOf(hdr *tar.Header) uint32 {
	return uint32(hdr.Mode) & 0o7777
}

// timesOf is hdr's access and modification time for utimensat; the access
// time defaults to the modification time.
func timesOf(hdr *tar.Header) [2]unix.Timespec {
	at := hdr.AccessTime
	if at.IsZero() {
		at = hdr.ModTime
	}
	return [2]unix.Timespec{timespec(at), timespec(hdr.ModTime)}
}

// timespec converts t without the overflow of UnixNano outside 1678-2262.
func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// owner returns hdr's owner, checked to be a valid uid and gid.
func owner(hdr *tar.Header) (int, int, error) {
	if hdr.Uid < 0 || hdr.Uid > maxID || hdr.Gid < 0 || hdr.Gid > maxID {
		return 0, 0, invalid(hdr, "owner %d:%d out of range", hdr.Uid, hdr.Gid)
	}
	return hdr.Uid, hdr.Gid, nil
}

// procPath names name in the directory pfd through /proc: the parent is
// reached through its descriptor, and lsetxattr does not follow name.
func procPath(pfd int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(pfd) + "/" + name
}

// chownAt gives name in pfd e's owner, unless NoChown.
func (x *extractor) chownAt(e *entry, pfd int, name string) error {
	if x.opts.NoChown {
		return nil
	}
	uid, gid, err := owner(e.hdr)
	if err != nil {
		return err
	}
	if err := unix.Fchownat(pfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return chownErr(e, err)
	}
	return nil
}

// chownErr explains a failed chown.
func chownErr(e *entry, err error) error {
	op := "chown"
	if errors.Is(err, unix.EPERM) {
		op = "chown (not root? set Options.NoChown)"
	}
	return fsErr(e.hdr, op, err)
}

// fileMeta sets owner, mode and xattrs of the open regular file fd, in
// that order: chown clears set-user-ID and security.capability.
func (x *extractor) fileMeta(e *entry, fd int) error {
	if !x.opts.NoChown {
		uid, gid, err := owner(e.hdr)
		if err != nil {
			return err
		}
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return chownErr(e, err)
		}
	}
	if err := unix.Fchmod(fd, modeOf(e.hdr)); err != nil {
		return fsErr(e.hdr, "chmod", err)
	}
	if !hasXattrs(e.hdr) {
		return nil
	}
	return x.xattrs(e, func(name string, value []byte) error { return unix.Fsetxattr(fd, name, value, 0) })
}

// nodeMeta sets owner, mode (when chmod: not for symlinks), xattrs and
// times of e.base in pfd, which was just created by Extract.
func (x *extractor) nodeMeta(e *entry, pfd int, chmod bool) error {
	if err := x.chownAt(e, pfd, e.base); err != nil {
		return err
	}
	if chmod {
		if err := unix.Fchmodat(pfd, e.base, modeOf(e.hdr), 0); err != nil {
			return fsErr(e.hdr, "chmod", err)
		}
	}
	if err := x.xattrsAt(e, pfd, e.base); err != nil {
		return err
	}
	return x.timesAt(e, pfd, e.base)
}

// timesAt sets e's times on name in pfd, not following a symlink.
func (x *extractor) timesAt(e *entry, pfd int, name string) error {
	t := timesOf(e.hdr)
	if err := unix.UtimesNanoAt(pfd, name, t[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fsErr(e.hdr, "utimensat", err)
	}
	return nil
}

// xattrsAt sets e's xattrs on name in pfd, not following a symlink.
func (x *extractor) xattrsAt(e *entry, pfd int, name string) error {
	if !hasXattrs(e.hdr) {
		return nil
	}
	return x.xattrs(e, func(attr string, value []byte) error { return setxattrAt(pfd, name, attr, value) })
}

// setxattrAt sets attr on name in pfd, not following name, through
// /proc/self/fd (setxattrat(2) is too new to rely on).
func setxattrAt(pfd int, name, attr string, value []byte) error {
	err := unix.Lsetxattr(procPath(pfd, name), attr, value, 0)
	if errors.Is(err, unix.ENOENT) && !procMounted(pfd) {
		return fmt.Errorf("/proc/self/fd is not available (is /proc mounted?): %w (%w)", errdefs.ErrFailedPrecondition, err)
	}
	return err
}

// procMounted reports whether /proc/self/fd shows pfd.
func procMounted(pfd int) bool {
	var st unix.Stat_t
	return unix.Stat(procPath(pfd, "."), &st) == nil
}

// hasXattrs reports whether hdr may carry xattrs.
func hasXattrs(hdr *tar.Header) bool {
	return len(hdr.PAXRecords) > 0
}

// xattrs applies e's "SCHILY.xattr.*" records with set.
func (x *extractor) xattrs(e *entry, set func(name string, value []byte) error) error {
	for k, v := range e.hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, paxXattrPrefix)
		if !ok {
			continue
		}
		if err := checkXattr(name); err != nil {
			return invalid(e.hdr, "%v", err)
		}
		err := set(name, []byte(v))
		if err == nil || ignoredXattrErr(name, err) {
			continue
		}
		return fsErr(e.hdr, "set xattr "+strconv.Quote(name), err)
	}
	return nil
}

// checkXattr accepts the xattr namespaces of Linux, less overlayfs's own.
func checkXattr(name string) error {
	if strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.") {
		return fmt.Errorf("xattr %q is reserved for overlayfs", name)
	}
	for _, ns := range []string{"user.", "trusted.", "security.", "system."} {
		if strings.HasPrefix(name, ns) {
			return nil
		}
	}
	return fmt.Errorf("xattr %q is in no known namespace", name)
}

// ignoredXattrErr reports a failure to set a security.* xattr (an SELinux
// label, say) that the filesystem or our privileges refuse.
func ignoredXattrErr(name string, err error) bool {
	return strings.HasPrefix(name, "security.") && (errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EPERM))
}
