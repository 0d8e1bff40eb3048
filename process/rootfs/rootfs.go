// Package rootfs sets up a container's root filesystem from inside its new
// mount namespace and pivots into it (Mesos's fs::enter and prepareMounts,
// runc's rootfs_linux.go). It runs in the container's init, before exec.
//
// The sequence, and why:
//
//  1. mount("", "/", MS_SLAVE|MS_REC): nothing we mount propagates back to
//     the host, while unmounts on the host still reach us.
//  2. bind the rootfs onto itself: pivot_root needs the new root to be a
//     mount point.
//  3. open the rootfs (O_PATH) and resolve every target inside it with
//     openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS), creating missing
//     directories on the way; system mounts (proc, sysfs, tmpfs, devpts,
//     mqueue) refuse symlinks altogether, so an image cannot point /proc at
//     another directory (CVE-2019-16884). Each mount is made on
//     /proc/self/fd/N of the resolved descriptor, never on a path string
//     that could be swapped under us (CVE-2021-30465).
//  4. device nodes in the new /dev (mknod; a bind of the host node where
//     mknod is not allowed), the standard /dev symlinks.
//  5. masked paths: /dev/null (checked to be char 1:3) over files, an
//     empty read-only tmpfs over directories; read-only paths: a bind onto
//     itself remounted read-only.
//  6. pivot_root(".", ".") then umount2(".", MNT_DETACH): the old root is
//     stacked under the new one and detached, with no put_old directory
//     left in the image.
package rootfs

import (
	"errors"
	"fmt"
	"path"

	"golang.org/x/sys/unix"

	isolatorv1 "github.com/berthrt/berth/messages/isolator/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/errdefs"
	"github.com/berthrt/berth/process/mount"
)

// Plan is what the container's mount namespace gets.
type Plan struct {
	// Rootfs is the host path of the root filesystem; "" keeps the host's.
	Rootfs        string
	Mounts        []*typesv1.Mount
	Devices       []*isolatorv1.Device
	MaskedPaths   []string
	ReadonlyPaths []string
}

// devSymlinks are the links every container's /dev has.
var devSymlinks = [][2]string{
	{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
	{"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
	{"pts/ptmx", "/dev/ptmx"},
}

// Setup applies p inside the calling process's mount namespace, which must
// be a new one. It does not pivot; call Pivot after.
func Setup(p Plan) error {
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make / rslave: %w", err)
	}
	if p.Rootfs == "" {
		return setupHostRoot(p)
	}
	if !path.IsAbs(p.Rootfs) {
		return fmt.Errorf("rootfs %q is not absolute: %w", p.Rootfs, errdefs.ErrInvalidArgument)
	}
	if err := unix.Mount(p.Rootfs, p.Rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind rootfs %s onto itself: %w", p.Rootfs, err)
	}
	root, err := unix.Open(p.Rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	defer unix.Close(root)
	for _, m := range p.Mounts {
		if err := mountInRoot(root, m); err != nil {
			return err
		}
	}
	if err := makeDevices(root, p.Devices); err != nil {
		return err
	}
	if hasMount(p.Mounts, "/dev") {
		for _, l := range devSymlinks {
			if err := symlinkInRoot(root, l[0], l[1]); err != nil {
				return err
			}
		}
	}
	for _, m := range p.MaskedPaths {
		if err := maskInRoot(root, m); err != nil {
			return err
		}
	}
	for _, r := range p.ReadonlyPaths {
		if err := readonlyInRoot(root, r); err != nil {
			return err
		}
	}
	return nil
}

// setupHostRoot applies the mounts of a container without a rootfs: they
// go onto the host's paths, inside the container's own mount namespace.
func setupHostRoot(p Plan) error {
	root, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(root)
	for _, m := range p.Mounts {
		if err := mountInRoot(root, m); err != nil {
			return err
		}
	}
	return nil
}

func hasMount(ms []*typesv1.Mount, target string) bool {
	for _, m := range ms {
		if path.Clean(m.GetTarget()) == target {
			return true
		}
	}
	return false
}

// mountInRoot performs one mount onto its target resolved inside root.
func mountInRoot(root int, m *typesv1.Mount) error {
	o, err := mount.ParseOptions(m.GetOptions())
	if err != nil {
		return fmt.Errorf("mount %s: %w", m.GetTarget(), err)
	}
	bind := o.Bind || m.GetType() == "bind"
	if bind {
		o.Flags |= unix.MS_BIND
		o.Bind = true
	}
	// Bind mounts (volumes) may go through the image's own symlinks, resolved
	// inside the root; system filesystems may not.
	noSymlinks := !bind
	fd, err := mountTarget(root, m, bind, noSymlinks)
	if err != nil {
		return fmt.Errorf("mount %s: target: %w", m.GetTarget(), err)
	}
	defer unix.Close(fd)
	fstype := m.GetType()
	if bind {
		fstype = ""
	}
	flags := o.Flags
	if bind {
		// A bind ignores every flag but MS_BIND|MS_REC; read-only and the
		// others take a remount.
		flags &= unix.MS_BIND | unix.MS_REC
	}
	if err := unix.Mount(m.GetSource(), procFd(fd), fstype, flags, o.Data); err != nil {
		return fmt.Errorf("mount %s %s on %s: %w", m.GetType(), m.GetSource(), m.GetTarget(), err)
	}
	if bind && o.Flags&^(unix.MS_BIND|unix.MS_REC) != 0 {
		if err := remountBind(root, m.GetTarget(), o.Flags&^unix.MS_REC, noSymlinks); err != nil {
			return err
		}
	}
	if o.Propagation != 0 {
		pfd, err := openInRoot(root, m.GetTarget(), unix.O_PATH, noSymlinks)
		if err != nil {
			return err
		}
		defer unix.Close(pfd)
		if err := unix.Mount("", procFd(pfd), "", o.Propagation, ""); err != nil {
			return fmt.Errorf("mount %s: propagation: %w", m.GetTarget(), err)
		}
	}
	return nil
}

// mountTarget resolves (and makes) the target: a directory, or for a bind
// of a file a file.
func mountTarget(root int, m *typesv1.Mount, bind, noSymlinks bool) (int, error) {
	if bind {
		var st unix.Stat_t
		if err := unix.Stat(m.GetSource(), &st); err != nil {
			return -1, fmt.Errorf("bind source %s: %w", m.GetSource(), err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return createFileInRoot(root, m.GetTarget(), noSymlinks)
		}
	}
	return mkdirAllInRoot(root, m.GetTarget(), 0o755, noSymlinks)
}

// remountBind makes a bind mount read-only (or nosuid, ...): the bind has to
// exist before its flags can change. The target is resolved again so that
// the remount reaches the new mount, not the directory beneath it.
func remountBind(root int, target string, flags uintptr, noSymlinks bool) error {
	fd, err := openInRoot(root, target, unix.O_PATH, noSymlinks)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Statfs_t
	if err := unix.Statfs(procFd(fd), &st); err != nil {
		return fmt.Errorf("remount %s: %w", target, err)
	}
	// Keep the flags the kernel locked on the mount (in a user namespace a
	// remount that drops nosuid/nodev/noexec is refused).
	locked := uintptr(st.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if err := unix.Mount("", procFd(fd), "", flags|locked|unix.MS_BIND|unix.MS_REMOUNT, ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", target, err)
	}
	return nil
}

// makeDevices creates the device nodes, each checked to be what it claims.
func makeDevices(root int, devs []*isolatorv1.Device) error {
	old := unix.Umask(0)
	defer unix.Umask(old)
	for _, d := range devs {
		if err := makeDevice(root, d); err != nil {
			return fmt.Errorf("device %s: %w", d.GetPath(), err)
		}
	}
	return nil
}

func makeDevice(root int, d *isolatorv1.Device) error {
	var kind uint32
	switch d.GetType() {
	case "c", "u":
		kind = unix.S_IFCHR
	case "b":
		kind = unix.S_IFBLK
	case "p":
		kind = unix.S_IFIFO
	default:
		return fmt.Errorf("type %q: %w", d.GetType(), errdefs.ErrInvalidArgument)
	}
	dir, base := path.Split(path.Clean("/" + d.GetPath()))
	dfd, err := mkdirAllInRoot(root, dir, 0o755, true)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	dev := unix.Mkdev(d.GetMajor(), d.GetMinor())
	mode := d.GetFileMode() & 0o7777
	if mode == 0 {
		mode = 0o666
	}
	err = unix.Mknodat(dfd, base, kind|mode, int(dev))
	if errors.Is(err, unix.EPERM) && kind != unix.S_IFIFO {
		// No CAP_MKNOD (a user namespace): bind the host's node instead.
		fd, cerr := createFileInRoot(root, d.GetPath(), true)
		if cerr != nil {
			return cerr
		}
		defer unix.Close(fd)
		return unix.Mount(d.GetPath(), procFd(fd), "", unix.MS_BIND, "")
	}
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	return nil
}

func symlinkInRoot(root int, target, name string) error {
	dir, base := path.Split(name)
	dfd, err := mkdirAllInRoot(root, dir, 0o755, true)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	if err := unix.Symlinkat(target, dfd, base); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("symlink %s: %w", name, err)
	}
	return nil
}

// maskInRoot hides name: /dev/null over a file, an empty read-only tmpfs
// over a directory. A missing path needs no mask.
func maskInRoot(root int, name string) error {
	fd, err := openInRoot(root, name, unix.O_PATH|unix.O_NOFOLLOW, true)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mask %s: %w", name, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("mask %s: %w", name, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if err := unix.Mount("tmpfs", procFd(fd), "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=555"); err != nil {
			return fmt.Errorf("mask %s: %w", name, err)
		}
		return nil
	}
	null, err := openInRoot(root, "/dev/null", unix.O_PATH|unix.O_NOFOLLOW, true)
	if err != nil {
		return fmt.Errorf("mask %s: %w", name, err)
	}
	defer unix.Close(null)
	var ns unix.Stat_t
	if err := unix.Fstat(null, &ns); err != nil {
		return err
	}
	// The container's /dev/null must be the real one, or the mask would
	// expose whatever an attacker put there (CVE-2025-31133).
	if ns.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(ns.Rdev) != 1 || unix.Minor(ns.Rdev) != 3 {
		return fmt.Errorf("mask %s: /dev/null is not the null device: %w", name, errdefs.ErrFailedPrecondition)
	}
	if err := unix.Mount(procFd(null), procFd(fd), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("mask %s: %w", name, err)
	}
	return nil
}

// readonlyInRoot binds name onto itself read-only. A missing path is left.
func readonlyInRoot(root int, name string) error {
	fd, err := openInRoot(root, name, unix.O_PATH|unix.O_NOFOLLOW, true)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read-only %s: %w", name, err)
	}
	err = unix.Mount(procFd(fd), procFd(fd), "", unix.MS_BIND|unix.MS_REC, "")
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("read-only %s: bind: %w", name, err)
	}
	return remountBind(root, name, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, true)
}

// Pivot makes rootfs the calling process's root: pivot_root(".", ".")
// stacks the old root under the new one, and a lazy unmount of "." then
// removes it, so no put_old directory is needed in the image.
func Pivot(rootfs string) error {
	fd, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("pivot: open %s: %w", rootfs, err)
	}
	defer unix.Close(fd)
	if err := unix.Fchdir(fd); err != nil {
		return fmt.Errorf("pivot: chdir: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %s: %w", rootfs, err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("pivot: detach old root: %w", err)
	}
	return unix.Chdir("/")
}
