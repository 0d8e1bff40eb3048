package rootfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/process/errdefs"
)

// openInRoot opens name relative to the directory rootFd as if rootFd were
// "/": ".." and absolute symlinks cannot leave it (RESOLVE_IN_ROOT), magic
// links in /proc are never followed, and with noSymlinks no symlink at all
// is. The result is O_CLOEXEC.
func openInRoot(rootFd int, name string, flags int, noSymlinks bool) (int, error) {
	resolve := uint64(unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS)
	if noSymlinks {
		resolve |= unix.RESOLVE_NO_SYMLINKS
	}
	rel := strings.TrimLeft(path.Clean("/"+name), "/")
	if rel == "" {
		rel = "."
	}
	for {
		fd, err := unix.Openat2(rootFd, rel, &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolve})
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue
		}
		if err != nil {
			return -1, &pathError{op: "open", path: "/" + strings.TrimPrefix(rel, "."), err: err}
		}
		return fd, nil
	}
}

// mkdirAllInRoot makes every missing directory of name inside rootFd, each
// component resolved inside the root, and returns an O_PATH descriptor of
// the last one.
func mkdirAllInRoot(rootFd int, name string, mode uint32, noSymlinks bool) (int, error) {
	parts := strings.Split(strings.Trim(path.Clean("/"+name), "/"), "/")
	fd, err := unix.Dup(rootFd)
	if err != nil {
		return -1, err
	}
	unix.CloseOnExec(fd)
	prefix := ""
	for _, p := range parts {
		if p == "" {
			continue
		}
		cur := prefix + "/" + p
		// Each prefix is resolved from the root, so that a symlink in the
		// image resolves as it will inside the container.
		next, err := openInRoot(rootFd, cur, unix.O_PATH|unix.O_DIRECTORY, noSymlinks)
		if err != nil && errors.Is(err, unix.ENOENT) {
			err = unix.Mkdirat(fd, p, mode)
			if errors.Is(err, unix.EROFS) {
				fd, err = writableDir(rootFd, fd, prefix, name, noSymlinks)
				if err == nil {
					err = unix.Mkdirat(fd, p, mode)
				}
			}
			if err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(fd)
				return -1, &pathError{op: "mkdir", path: name, err: err}
			}
			next, err = openInRoot(rootFd, cur, unix.O_PATH|unix.O_DIRECTORY, noSymlinks)
		}
		unix.Close(fd)
		if err != nil {
			return -1, fmt.Errorf("%s: %w", name, err)
		}
		fd, prefix = next, cur
	}
	return fd, nil
}

// writableDir handles a mount target missing from a read-only rootfs (the
// bind backend): when the deepest existing directory, dir (fd), is empty and
// not the root, an empty tmpfs over it changes nothing the image shows and
// takes the new mount point, as Docker's read-only containers get. Else the
// image must provide the mount point. It returns a descriptor of the
// writable directory and closes fd.
func writableDir(rootFd, fd int, dir, target string, noSymlinks bool) (int, error) {
	if dir == "" {
		unix.Close(fd)
		return -1, fmt.Errorf("the rootfs is read-only and has no %s; add it to the image or use a writable backend (overlay, copy): %w", target, errdefs.ErrFailedPrecondition)
	}
	empty, err := isEmptyDir(fd)
	if err != nil || !empty {
		unix.Close(fd)
		return -1, fmt.Errorf("the rootfs is read-only, %s is not empty and has no %s; add it to the image or use a writable backend (overlay, copy): %w", dir, target, errdefs.ErrFailedPrecondition)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, err
	}
	data := fmt.Sprintf("mode=%o,uid=%d,gid=%d,size=64k", st.Mode&0o7777, st.Uid, st.Gid)
	err = unix.Mount("tmpfs", procFd(fd), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, data)
	unix.Close(fd)
	if err != nil {
		return -1, fmt.Errorf("mount point %s on a read-only rootfs: tmpfs over %s: %w", target, dir, err)
	}
	return openInRoot(rootFd, dir, unix.O_PATH|unix.O_DIRECTORY, noSymlinks)
}

// isEmptyDir reports whether the directory behind an O_PATH descriptor has
// no entries.
func isEmptyDir(fd int) (bool, error) {
	dfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	f := os.NewFile(uintptr(dfd), "dir")
	defer f.Close()
	names, err := f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return len(names) == 0, err
}

// createFileInRoot makes name an (empty) regular file inside rootFd if it
// does not exist, its parents included, and returns an O_PATH descriptor.
func createFileInRoot(rootFd int, name string, noSymlinks bool) (int, error) {
	dir, base := path.Split(path.Clean("/" + name))
	if base == "" || base == "." || base == ".." {
		return -1, &pathError{op: "create", path: name, err: unix.EINVAL}
	}
	dfd, err := mkdirAllInRoot(rootFd, dir, 0o755, noSymlinks)
	if err != nil {
		return -1, err
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat(dfd, base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err == nil {
		unix.Close(fd)
	} else if !errors.Is(err, unix.EEXIST) {
		return -1, &pathError{op: "create", path: name, err: err}
	}
	return openInRoot(dfd, base, unix.O_PATH|unix.O_NOFOLLOW, true)
}

// procFd is the path through which mount(2) reaches an open descriptor:
// mounting there mounts on the inode we resolved, not on whatever the name
// points at by the time mount(2) runs (CVE-2021-30465).
func procFd(fd int) string { return fmt.Sprintf("/proc/self/fd/%d", fd) }

type pathError struct {
	op, path string
	err      error
}

func (e *pathError) Error() string { return e.op + " " + e.path + ": " + e.err.Error() }
func (e *pathError) Unwrap() error { return e.err }
