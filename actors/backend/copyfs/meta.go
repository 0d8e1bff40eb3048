package copyfs

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// metaSetter applies a source entry's metadata to the rootfs copy. The
// order is fixed by what each step undoes: chown clears setuid/setgid bits
// and security.capability, so chown comes first; chmod restores the mode
// bits; the xattrs (security.capability included) come after both; and the
// times come last, since nothing after them may touch the inode.
type metaSetter struct {
	rootless bool // not running as root: ownership we cannot give is skipped
}

// times returns the atime/mtime pair of st, to the nanosecond.
func times(st *unix.Stat_t) *[2]unix.Timespec {
	return &[2]unix.Timespec{st.Atim, st.Mtim}
}

// fdMeta applies st's owner, mode, the xattrs of the source open at sfd and
// st's times to the file or directory open at dfd.
//
// Sequence: fchown(dfd); fchmod(dfd); flistxattr(sfd) + fgetxattr(sfd) →
// fsetxattr(dfd) per name; utimensat(dfd, NULL, {atime, mtime}, 0).
func (m metaSetter) fdMeta(sfd, dfd int, st *unix.Stat_t) error {
	if err := m.chown(unix.Fchown(dfd, int(st.Uid), int(st.Gid))); err != nil {
		return fmt.Errorf("fchown: %w", err)
	}
	if err := unix.Fchmod(dfd, st.Mode&0o7777); err != nil {
		return fmt.Errorf("fchmod: %w", err)
	}
	x := xattrIO{
		list: func(b []byte) (int, error) { return unix.Flistxattr(sfd, b) },
		get:  func(n string, b []byte) (int, error) { return unix.Fgetxattr(sfd, n, b) },
		set:  func(n string, v []byte) error { return unix.Fsetxattr(dfd, n, v, 0) },
	}
	if err := m.copyXattrs(x); err != nil {
		return err
	}
	if err := futimens(dfd, times(st)); err != nil {
		return fmt.Errorf("utimensat: %w", err)
	}
	return nil
}

// nodeMeta applies st's metadata to name under ddir, a symlink, FIFO,
// socket or device node just created; the xattrs come from name under sdir.
// None of these can be opened for f* calls, so every step is an *at call
// with AT_SYMLINK_NOFOLLOW, or goes through /proc/self/fd/<dirfd>/<name>.
//
// Sequence: fchownat(NOFOLLOW); fchmodat2(NOFOLLOW) unless a symlink (whose
// mode is always 0777); llistxattr/lgetxattr(/proc/self/fd/sdir/name) →
// lsetxattr(/proc/self/fd/ddir/name); utimensat(ddir, name, NOFOLLOW).
func (m metaSetter) nodeMeta(sdir, ddir int, name string, st *unix.Stat_t) error {
	err := unix.Fchownat(ddir, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW)
	if err := m.chown(err); err != nil {
		return fmt.Errorf("fchownat: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := chmodAt(ddir, name, st.Mode&0o7777); err != nil {
			return fmt.Errorf("fchmodat: %w", err)
		}
	}
	src, dst := procPath(sdir, name), procPath(ddir, name)
	x := xattrIO{
		list: func(b []byte) (int, error) { return unix.Llistxattr(src, b) },
		get:  func(n string, b []byte) (int, error) { return unix.Lgetxattr(src, n, b) },
		set:  func(n string, v []byte) error { return unix.Lsetxattr(dst, n, v, 0) },
	}
	if err := m.copyXattrs(x); err != nil {
		return err
	}
	ts := times(st)
	if err := unix.UtimesNanoAt(ddir, name, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("utimensat: %w", err)
	}
	return nil
}

// chown filters a chown error: without root, EPERM (not our uid/gid) and
// EINVAL (id not mapped in our user namespace) are dropped, as cp -a does.
func (m metaSetter) chown(err error) error {
	if err != nil && m.rootless && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL)) {
		return nil
	}
	return err
}

// xattrIO reads xattrs from a source and writes them to a destination.
type xattrIO struct {
	list func(dest []byte) (int, error)
	get  func(name string, dest []byte) (int, error)
	set  func(name string, value []byte) error
}

// copyXattrs copies every extended attribute. The common case, no xattrs,
// costs one listxattr call with a nil buffer.
func (m metaSetter) copyXattrs(x xattrIO) error {
	names, err := listXattrs(x.list)
	if err != nil {
		return fmt.Errorf("listxattr: %w", err)
	}
	for _, name := range names {
		val, err := getXattr(x.get, name)
		if errors.Is(err, unix.ENODATA) {
			continue // removed since the listing
		}
		if err != nil {
			return fmt.Errorf("getxattr %s: %w", name, err)
		}
		if err := x.set(name, val); err != nil && !m.skippableXattr(name, err) {
			return fmt.Errorf("setxattr %s: %w", name, err)
		}
	}
	return nil
}

// skippableXattr reports whether failing to set name may be ignored: only
// the security.* and trusted.* namespaces, when the destination filesystem
// does not support them (EOPNOTSUPP) or, without root, we may not set them.
func (m metaSetter) skippableXattr(name string, err error) bool {
	if !strings.HasPrefix(name, "security.") && !strings.HasPrefix(name, "trusted.") {
		return false
	}
	return errors.Is(err, unix.EOPNOTSUPP) || (m.rootless && errors.Is(err, unix.EPERM))
}

// listXattrs returns the names list reports; a source filesystem without
// xattr support has none.
func listXattrs(list func([]byte) (int, error)) ([]string, error) {
	for {
		n, err := list(nil)
		if errors.Is(err, unix.EOPNOTSUPP) {
			return nil, nil
		}
		if err != nil || n == 0 {
			return nil, err
		}
		buf := make([]byte, n)
		n, err = list(buf)
		if errors.Is(err, unix.ERANGE) {
			continue // grew since the size query
		}
		if err != nil {
			return nil, err
		}
		var names []string
		for b := range bytes.SplitSeq(buf[:n], []byte{0}) {
			if len(b) > 0 {
				names = append(names, string(b))
			}
		}
		return names, nil
	}
}

// getXattr returns the value of name.
func getXattr(get func(string, []byte) (int, error), name string) ([]byte, error) {
	for {
		n, err := get(name, nil)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, n)
		n, err = get(name, buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}
