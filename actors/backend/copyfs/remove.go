package copyfs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/process/errdefs"
)

// remover deletes trees relative to directory descriptors. It never follows
// a symlink (a symlink is unlinked like any file) and never crosses into
// another mount: a directory on another mount, or a file that is a mount
// point (unlinkat fails with EBUSY), stops it with ErrFailedPrecondition.
//
// A remover is used by one goroutine at a time; with a semaphore, it
// removes sibling directories on other goroutines (each with a remover of
// its own) while slots are free, and waits for them before removing their
// parent.
type remover struct {
	ctx context.Context
	mnt mountID       // the mount the whole tree lives on
	buf []byte        // getdents buffer; readDir finishes before any recursion
	sem chan struct{} // nil: sequential; else one slot per extra goroutine
}

func newRemover(ctx context.Context, mnt mountID, parallelism int) *remover {
	r := &remover{ctx: ctx, mnt: mnt, buf: make([]byte, direntBufSize)}
	if parallelism > 1 {
		r.sem = make(chan struct{}, parallelism)
	}
	return r
}

// errMount names a mount point found where only plain files may be.
func errMount(path string) error {
	return fmt.Errorf("%s is a mount point (unmount it first): %w", path, errdefs.ErrFailedPrecondition)
}

// removeEntry removes name from the directory open at dirfd, recursively if
// it is a directory. A missing name is not an error. path names the entry in
// errors.
//
// Sequence: unlinkat(dirfd, name, 0); on EISDIR, removeDir.
func (r *remover) removeEntry(dirfd int, name, path string) error {
	err := retryEINTR(func() error { return unix.Unlinkat(dirfd, name, 0) })
	if errors.Is(err, unix.EACCES) && grantWrite(dirfd) {
		err = retryEINTR(func() error { return unix.Unlinkat(dirfd, name, 0) })
	}
	switch {
	case err == nil, errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.EISDIR):
		return r.removeDir(dirfd, name, path)
	case errors.Is(err, unix.EBUSY):
		return errMount(path)
	default:
		return fmt.Errorf("unlink %s: %w", path, err)
	}
}

// removeDir removes the directory name of dirfd and everything below it.
//
// Sequence: fd = openat(dirfd, name, O_DIRECTORY|O_NOFOLLOW) (a symlink fails
// here and is unlinked instead); statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID)
// and compare with the tree's mount; clear(fd); close(fd);
// unlinkat(dirfd, name, AT_REMOVEDIR).
func (r *remover) removeDir(dirfd int, name, path string) error {
	fd, err := r.openDir(dirfd, name)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ELOOP):
		return r.removeEntry(dirfd, name, path) // not (or no longer) a directory
	case err != nil:
		return fmt.Errorf("open %s: %w", path, err)
	}
	err = r.clearChecked(fd, path)
	unix.Close(fd)
	if err != nil {
		return err
	}
	err = retryEINTR(func() error { return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR) })
	if errors.Is(err, unix.EACCES) && grantWrite(dirfd) {
		err = retryEINTR(func() error { return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR) })
	}
	switch {
	case err == nil, errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.EBUSY):
		return errMount(path)
	default:
		return fmt.Errorf("rmdir %s: %w", path, err)
	}
}

// openDir opens name under dirfd as a directory without following a
// symlink. When the directory denies us search or read permission (only
// possible without CAP_DAC_OVERRIDE), it grants u+rwx and retries once.
func (r *remover) openDir(dirfd int, name string) (int, error) {
	var fd int
	open := func() (err error) {
		fd, err = unix.Openat(dirfd, name, dirFlags, 0)
		return err
	}
	err := retryEINTR(open)
	if errors.Is(err, unix.EACCES) {
		if chErr := chmodAt(dirfd, name, 0o700); chErr == nil {
			err = retryEINTR(open)
		}
	}
	return fd, err
}

// clearChecked empties the directory open at fd after checking that it is on
// the tree's mount.
func (r *remover) clearChecked(fd int, path string) error {
	m, _, err := statMount(fd, "")
	if err != nil {
		return fmt.Errorf("statx %s: %w", path, err)
	}
	if crossesMount(r.mnt, m) {
		return errMount(path)
	}
	return r.clear(fd, path)
}

// clear removes every entry of the directory open at fd, leaving it empty.
// Entries the directory reports as DT_DIR go to removeDir, on another
// goroutine when a slot is free; the rest are unlinked first (one system
// call for the common case).
func (r *remover) clear(fd int, path string) error {
	ents, err := readDir(fd, r.buf)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	setErr := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
	}
	for _, e := range ents {
		if err := r.ctx.Err(); err != nil {
			setErr(err)
			break
		}
		child := joinRel(path, e.name)
		if e.typ != unix.DT_DIR {
			err = r.removeEntry(fd, e.name, child)
		} else if !r.trySpawn(&wg, func(sub *remover) { setErr(sub.removeDir(fd, e.name, child)) }) {
			err = r.removeDir(fd, e.name, child)
		}
		if err != nil {
			setErr(err)
			break
		}
	}
	wg.Wait()
	return first
}

// trySpawn runs f on a new goroutine, with a remover of its own, if a slot
// is free, and reports whether it did.
func (r *remover) trySpawn(wg *sync.WaitGroup, f func(sub *remover)) bool {
	select {
	case r.sem <- struct{}{}:
	default:
		return false // no slot, or sequential (nil channel)
	}
	sub := &remover{ctx: r.ctx, mnt: r.mnt, buf: make([]byte, direntBufSize), sem: r.sem}
	wg.Go(func() {
		defer func() { <-r.sem }()
		f(sub)
	})
	return true
}

// grantWrite adds u+rwx to the directory open at fd, so that an
// unprivileged owner can remove entries from a read-only directory. It
// reports whether the mode changed.
func grantWrite(fd int) bool {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&0o700 == 0o700 {
		return false
	}
	return unix.Fchmod(fd, (st.Mode&0o7777)|0o700) == nil
}

// chmodAt changes the mode of name under dirfd, never following a symlink
// (changing a symlink's mode fails with EOPNOTSUPP).
//
// Sequence: fchmodat2(dirfd, name, mode, AT_SYMLINK_NOFOLLOW) (Linux 6.6+);
// where the kernel lacks it (ENOSYS, or EPERM from a seccomp filter; a
// genuine EPERM comes back from the fallback too): fd = openat(dirfd, name,
// O_PATH|O_NOFOLLOW); fstat(fd) (a symlink: EOPNOTSUPP);
// fchmodat(AT_FDCWD, "/proc/self/fd/<fd>", mode, 0), as glibc does: the
// magic link resolves to the opened inode itself.
func chmodAt(dirfd int, name string, mode uint32) error {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return err
	}
	_, _, errno := unix.Syscall6(unix.SYS_FCHMODAT2, uintptr(dirfd), uintptr(unsafe.Pointer(p)), uintptr(mode), unix.AT_SYMLINK_NOFOLLOW, 0, 0)
	switch errno {
	case 0:
		return nil
	case unix.ENOSYS, unix.EPERM: // no fchmodat2, or a seccomp filter refusing unknown calls
		return chmodAtProc(dirfd, name, mode)
	default:
		return errno
	}
}

// chmodAtProc is chmodAt without fchmodat2.
func chmodAtProc(dirfd int, name string, mode uint32) error {
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return unix.EOPNOTSUPP
	}
	return unix.Fchmodat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), mode, 0)
}

// joinRel joins a slash-separated relative path and a name; "" is the root.
func joinRel(rel, name string) string {
	if rel == "" || rel == "." {
		return name
	}
	return rel + "/" + name
}
