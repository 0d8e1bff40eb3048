package copyfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Open flags used throughout. Every descriptor is close-on-exec so a
// concurrent fork/exec elsewhere in the agent never inherits one.
const (
	// dirFlags opens a directory we will read or create entries in, and
	// refuses a symlink in the last component (ELOOP or ENOTDIR).
	dirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	// srcFileFlags opens a layer file for reading. O_NONBLOCK keeps a FIFO
	// swapped in after the directory read from blocking us forever; it has no
	// effect on regular files.
	srcFileFlags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK
	// dstFileFlags creates a rootfs file: O_EXCL makes the kernel refuse any
	// existing name, symlinks included, so nothing is ever written through one.
	dstFileFlags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
)

// direntBufSize is the getdents buffer: large enough for a few hundred
// names per system call.
const direntBufSize = 32 << 10

// dirent is one directory entry as getdents64 returns it.
type dirent struct {
	name string
	typ  uint8 // unix.DT_*
}

// readDir returns every entry of the directory open at fd except "." and
// "..", with the d_type the filesystem reports (DT_UNKNOWN when it does not).
// It reads from the descriptor's current offset, which for a fresh fd is the
// start.
func readDir(fd int, buf []byte) ([]dirent, error) {
	var out []dirent
	for {
		n, err := unix.Getdents(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("getdents: %w", err)
		}
		if n <= 0 {
			return out, nil
		}
		out = parseDirents(buf[:n], out)
	}
}

// parseDirents appends the linux_dirent64 records in b to out:
// u64 d_ino, s64 d_off, u16 d_reclen, u8 d_type, char d_name[] (NUL-terminated).
func parseDirents(b []byte, out []dirent) []dirent {
	const nameOff = 19
	for len(b) >= nameOff {
		reclen := int(binary.NativeEndian.Uint16(b[16:18]))
		if reclen < nameOff || reclen > len(b) {
			return out
		}
		rec := b[:reclen]
		b = b[reclen:]
		name := rec[nameOff:]
		if i := indexNUL(name); i >= 0 {
			name = name[:i]
		}
		if ino := binary.NativeEndian.Uint64(rec[0:8]); ino == 0 {
			continue // deleted entry some filesystems still report
		}
		if s := string(name); s != "." && s != ".." {
			out = append(out, dirent{name: s, typ: rec[18]})
		}
	}
	return out
}

func indexNUL(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}

// futimens sets the access and modification times of the file open at fd:
// utimensat(fd, NULL, ts, 0), which (unlike AT_EMPTY_PATH) every Linux
// version accepts, with nanosecond precision (unix.Futimes has only µs).
func futimens(fd int, ts *[2]unix.Timespec) error {
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(ts)), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// procPath names the entry name of the directory open at dirfd through
// /proc/self/fd: the magic link resolves to that very directory, and the
// l*xattr calls then act on name without following it. This is how we reach
// symlinks and device nodes, which cannot be opened for f*xattr.
func procPath(dirfd int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + name
}

// resolveFlags confine openat2: chroot-like resolution inside the root, and
// no symlink (nor /proc magic link) anywhere on the way.
const resolveFlags = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// openDirInRoot opens the directory rel (slash-separated, relative to the
// root open at rootfd) as an O_PATH descriptor, refusing any symlink on the
// way. It uses openat2 and falls back to a component-wise openat walk on
// kernels without it (before 5.6) or where a seccomp filter hides it.
func openDirInRoot(rootfd int, rel string) (int, error) {
	if rel == "" || rel == "." {
		return unix.Openat(rootfd, ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	}
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: resolveFlags}
	for range 16 {
		fd, err := unix.Openat2(rootfd, rel, &how)
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			continue // a concurrent rename elsewhere; openat2 asks to retry
		case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM):
			return openDirStepwise(rootfd, rel)
		default:
			return -1, err
		}
	}
	return -1, unix.EAGAIN
}

// openDirStepwise is the openat2 fallback: one openat per component, each
// with O_NOFOLLOW|O_DIRECTORY relative to the previous descriptor, so a
// symlink anywhere fails with ELOOP or ENOTDIR and ".." is refused outright.
func openDirStepwise(rootfd int, rel string) (int, error) {
	cur, err := unix.Openat(rootfd, ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	for comp := range strings.SplitSeq(rel, "/") {
		if comp == "" || comp == "." {
			continue
		}
		if comp == ".." {
			unix.Close(cur)
			return -1, unix.EXDEV
		}
		next, err := unix.Openat(cur, comp, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(cur)
		if err != nil {
			return -1, err
		}
		cur = next
	}
	return cur, nil
}

// mountID identifies the mount a file lives on: the statx mount id when the
// kernel reports it (5.8+), else the device number. Bind mounts of one
// filesystem share a device but not a mount id, hence the preference.
type mountID struct {
	id    uint64
	hasID bool
	dev   uint64
	root  bool // STATX_ATTR_MOUNT_ROOT: the file is the root of a mount
}

// statMount returns the mount of name under dirfd (or of dirfd itself when
// name is ""), never following a symlink, and the file type (S_IFMT bits).
func statMount(dirfd int, name string) (mountID, uint16, error) {
	flags := unix.AT_SYMLINK_NOFOLLOW | unix.AT_NO_AUTOMOUNT
	if name == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	var stx unix.Statx_t
	err := retryEINTR(func() error {
		return unix.Statx(dirfd, name, flags, unix.STATX_TYPE|unix.STATX_MNT_ID, &stx)
	})
	if err != nil {
		return mountID{}, 0, err
	}
	return mountID{
		id:    stx.Mnt_id,
		hasID: stx.Mask&unix.STATX_MNT_ID != 0,
		dev:   unix.Mkdev(stx.Dev_major, stx.Dev_minor),
		root:  stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 && stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0,
	}, stx.Mode & unix.S_IFMT, nil
}

// crossesMount reports whether child, found inside parent, is on another
// mount: it is a mount root, or its mount id (else device) differs.
func crossesMount(parent, child mountID) bool {
	if child.root {
		return true
	}
	if parent.hasID && child.hasID {
		return parent.id != child.id
	}
	return parent.dev != child.dev
}

// retryEINTR runs f until it stops failing with EINTR.
func retryEINTR(f func() error) error {
	for {
		if err := f(); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
