package mount

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/process/errdefs"
)

// maxUnmountRounds bounds the unmount loop of UnmountAll: each round
// unmounts what mountinfo lists, so stacked mounts need one round each.
const maxUnmountRounds = 16

// ResolvePath returns p with the symlinks of its parent resolved: the path
// the kernel reports mounts at in /proc/self/mountinfo. The last component
// is kept as is (never followed). It returns fs.ErrNotExist when the
// parent does not exist.
func ResolvePath(p string) (string, error) {
	dir, err := filepath.EvalSymlinks(filepath.Dir(p))
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, filepath.Base(p)), nil
}

// MountsUnder returns the mount points at or below each of roots (resolved
// paths), as /proc/self/mountinfo lists them, deepest first.
func MountsUnder(roots ...string) ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options ... - type source superopts
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := UnescapeMountinfo(fields[4])
		for _, r := range roots {
			if mp == r || strings.HasPrefix(mp, r+"/") {
				out = append(out, mp)
				break
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	// Children before parents; mountinfo lists a mount after its parent,
	// so a stable sort on depth keeps stacked mounts top first.
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Count(out[i], "/") > strings.Count(out[j], "/")
	})
	return out, nil
}

// UnescapeMountinfo decodes the \ooo octal escapes mountinfo uses for
// space, tab, newline and backslash.
func UnescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// UnmountAll unmounts every mount at or below root (a resolved path),
// deepest first, and returns how many it unmounted.
//
// Each is umount2(UMOUNT_NOFOLLOW) first: a normal unmount fails with
// EBUSY while a process still uses the mount, which is worth a warning,
// since the launcher should have killed every process of the container.
// It is then detached (MNT_DETACH): the mount point is freed at once and
// the kernel drops the filesystem when its last user goes. EINVAL (no
// longer a mount: another Destroy got there first) is not an error.
// mountinfo is read again after each round, until nothing is left.
// busy, when set, is told each mount point that had to be detached.
func UnmountAll(root string, busy func(mountPoint string)) (int, error) {
	n := 0
	for range maxUnmountRounds {
		mps, err := MountsUnder(root)
		if err != nil {
			return n, err
		}
		if len(mps) == 0 {
			return n, nil
		}
		for _, mp := range mps {
			err := unix.Unmount(mp, unix.UMOUNT_NOFOLLOW)
			if errors.Is(err, unix.EBUSY) {
				if busy != nil {
					busy(mp)
				}
				err = unix.Unmount(mp, unix.UMOUNT_NOFOLLOW|unix.MNT_DETACH)
			}
			switch {
			case err == nil:
				n++
			case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			default:
				return n, fmt.Errorf("unmount %s: %w", mp, Classify(err, "that"))
			}
		}
	}
	return n, fmt.Errorf("%s: still mounted after %d rounds of unmounting: %w", root, maxUnmountRounds, errdefs.ErrInternal)
}

// InDir runs f on a locked OS thread whose working directory is dir, so
// that f's system calls resolve relative paths from dir.
//
// The working directory belongs to the fs_struct that all of a process's
// threads share, so chdir would move every goroutine of the agent. The
// thread first unshares it (unshare(CLONE_FS), allowed in a multithreaded
// process, unlike CLONE_NEWNS), so the chdir is the thread's alone; the
// goroutine then ends without unlocking, which makes the Go runtime
// terminate the thread instead of reusing it.
func InDir(dir string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread's fs_struct is private from here on,
		// and the runtime must not give the thread to another goroutine.
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_FS): %w", err)
			return
		}
		if err := unix.Chdir(dir); err != nil {
			errc <- fmt.Errorf("chdir %s: %w", dir, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// Classify wraps a system call error of a mount of filesystem fs with its
// error class; ENODEV means the kernel lacks fs.
func Classify(err error, fs string) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("%w: %w", errdefs.ErrNotFound, err)
	case errors.Is(err, unix.EEXIST):
		return fmt.Errorf("%w: %w", errdefs.ErrAlreadyExists, err)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return fmt.Errorf("%w: %w", errdefs.ErrPermissionDenied, err)
	case errors.Is(err, unix.ENOSPC), errors.Is(err, unix.EDQUOT), errors.Is(err, unix.ENOMEM),
		errors.Is(err, unix.EMFILE), errors.Is(err, unix.ENFILE):
		return fmt.Errorf("%w: %w", errdefs.ErrResourceExhausted, err)
	case errors.Is(err, unix.ENODEV):
		return fmt.Errorf("%w: the kernel has no %s filesystem: %w", errdefs.ErrFailedPrecondition, fs, err)
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ENAMETOOLONG), errors.Is(err, unix.ELOOP):
		return fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err)
	}
	return fmt.Errorf("%w: %w", errdefs.ErrInternal, err)
}

// RemoveDir removes dir and everything below it, reporting whether it
// existed. os.RemoveAll unlinks symlinks without following them.
func RemoveDir(dir string) (bool, error) {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return true, fmt.Errorf("remove %s: %w", dir, Classify(err, "that"))
	}
	return true, nil
}
