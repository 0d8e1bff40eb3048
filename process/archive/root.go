package archive

import (
	"errors"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// resolveFlags confine openat2 to the layer: no escape (IN_ROOT), no
// symlinks at all in a parent chain, no /proc magic links, no mounts.
const resolveFlags = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// dirOpenFlags open a directory for use as a *at base only, without
// following a symlink in the last component.
const dirOpenFlags = unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

// openat2Flags are dirOpenFlags without O_NOFOLLOW, which would make a
// trailing symlink ENOTDIR: RESOLVE_NO_SYMLINKS refuses it with ELOOP.
const openat2Flags = unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC

// maxEAGAIN bounds openat2 retries after a concurrent rename (EAGAIN).
const maxEAGAIN = 64

// root is the layer directory as a descriptor, with the parent directory
// opened last (entries of one directory usually follow each other).
type root struct {
	fd int
	// walk is set when openat2 is unavailable (ENOSYS, or EPERM from a
	// seccomp filter): directories are then opened one component at a time.
	walk bool
	// cacheRel and cacheFD are the directory opened last; cacheFD is -1
	// when there is none. The descriptor is owned by the cache.
	cacheRel string
	cacheFD  int
}

// openRoot opens dir, which must be an empty directory.
func openRoot(dir string, forceWalk bool) (*root, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &root{fd: fd, walk: forceWalk, cacheFD: -1}, nil
}

// close releases the descriptors.
func (r *root) close() {
	r.forget()
	_ = unix.Close(r.fd)
}

// empty reports whether the root directory has no entries.
func (r *root) empty(buf []byte) (bool, error) {
	for {
		n, err := unix.Getdents(r.fd, buf)
		if err != nil {
			return false, err
		}
		if n <= 0 {
			return true, nil
		}
		if _, _, names := unix.ParseDirent(buf[:n], 1, nil); len(names) > 0 {
			return false, nil
		}
	}
}

// forget closes the cached directory.
func (r *root) forget() {
	if r.cacheFD >= 0 {
		_ = unix.Close(r.cacheFD)
	}
	r.cacheFD, r.cacheRel = -1, ""
}

// removed tells the cache that directory rel is gone.
func (r *root) removed(rel string) {
	if r.cacheFD >= 0 && (r.cacheRel == rel || strings.HasPrefix(r.cacheRel, rel+"/")) {
		r.forget()
	}
}

// dir returns a descriptor of directory rel (cleaned, "." for the root),
// borrowed: valid until the next call. With create, missing directories
// are made (mode 0755). A component that is a symlink gives ELOOP, one
// that is not a directory ENOTDIR.
func (r *root) dir(rel string, create bool) (int, error) {
	if rel == "." {
		return r.fd, nil
	}
	if r.cacheFD >= 0 && r.cacheRel == rel {
		return r.cacheFD, nil
	}
	fd, err := r.open(rel, create)
	if err != nil {
		return -1, err
	}
	r.forget()
	r.cacheRel, r.cacheFD = rel, fd
	return fd, nil
}

// open opens directory rel with openat2, or by walking when openat2 is
// unavailable or directories must be created.
func (r *root) open(rel string, create bool) (int, error) {
	if !r.walk {
		fd, err := openat2Dir(r.fd, rel)
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM):
			r.walk = true
		case errors.Is(err, unix.ENOENT) && create:
		default:
			return -1, err
		}
	}
	return r.walkDir(rel, create)
}

// openat2Dir opens rel beneath dfd with resolveFlags.
func openat2Dir(dfd int, rel string) (int, error) {
	how := unix.OpenHow{Flags: openat2Flags, Resolve: resolveFlags}
	for range maxEAGAIN {
		fd, err := unix.Openat2(dfd, rel, &how)
		if !errors.Is(err, unix.EAGAIN) {
			return fd, err
		}
	}
	return -1, unix.EAGAIN
}

// walkDir opens rel one component at a time with O_NOFOLLOW, making
// missing directories when create is set.
func (r *root) walkDir(rel string, create bool) (int, error) {
	cur := r.fd
	for rest := rel; rest != ""; {
		var comp string
		comp, rest, _ = strings.Cut(rest, "/")
		fd, err := openDirAt(cur, comp, create)
		if cur != r.fd {
			_ = unix.Close(cur)
		}
		if err != nil {
			return -1, err
		}
		cur = fd
	}
	return cur, nil
}

// openDirAt opens the directory name in dfd without following a symlink.
func openDirAt(dfd int, name string, create bool) (int, error) {
	fd, err := unix.Openat(dfd, name, dirOpenFlags, 0)
	if errors.Is(err, unix.ENOENT) && create {
		if err := unix.Mkdirat(dfd, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, err
		}
		fd, err = unix.Openat(dfd, name, dirOpenFlags, 0)
	}
	if errors.Is(err, unix.ENOTDIR) && isSymlinkAt(dfd, name) {
		return -1, unix.ELOOP
	}
	return fd, err
}

// statAt lstat's name in dfd.
func statAt(dfd int, name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	return st, err
}

// isSymlinkAt reports whether name in dfd is a symlink.
func isSymlinkAt(dfd int, name string) bool {
	st, err := statAt(dfd, name)
	return err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK
}

// isDirAt reports whether name in dfd is a directory (not a symlink to one).
func isDirAt(dfd int, name string) bool {
	st, err := statAt(dfd, name)
	return err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR
}

// removeAll removes name from dfd, recursively when it is a directory.
// Nothing is followed: subdirectories are opened with O_NOFOLLOW.
func removeAll(dfd int, name string) error {
	err := unix.Unlinkat(dfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	if err := unix.Unlinkat(dfd, name, unix.AT_REMOVEDIR); err == nil {
		return nil
	}
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	names, err := f.Readdirnames(-1)
	if err == nil {
		for _, n := range names {
			if err = removeAll(fd, n); err != nil {
				break
			}
		}
	}
	_ = f.Close()
	if err != nil {
		return err
	}
	return unix.Unlinkat(dfd, name, unix.AT_REMOVEDIR)
}
