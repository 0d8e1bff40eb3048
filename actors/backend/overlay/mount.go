package overlay

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/actors/backend/union"
)

// probeLowerdirAdd reports whether the kernel's overlayfs takes lower
// layers one at a time through fsconfig(FSCONFIG_SET_STRING, "lowerdir+").
//
// It opens a filesystem context, fsopen("overlay"), and sets two
// parameters on it, without ever creating a filesystem:
//   - "lowerdir+" = "/": accepted by a kernel that has the parameter (it
//     resolves the path at once; "/" always exists), refused with EINVAL
//     by an overlayfs parser that does not know it (6.5 until "lowerdir+"
//     came; 6.8 on has it, per the shared notes);
//   - an unknown key, "berth-probe": refused with EINVAL by overlayfs's
//     own parser (since 6.5), but accepted by the VFS's legacy parser that
//     older overlayfs goes through, which takes any key into an option
//     string that would only fail at FSCONFIG_CMD_CREATE; so a "lowerdir+"
//     accepted there proves nothing.
//
// fsopen failing (ENOSYS before 5.2, EPERM without CAP_SYS_ADMIN, ENODEV
// without overlay) means no as well: the legacy mount(2) then reports the
// real problem. Nothing reaches the kernel log.
func probeLowerdirAdd() bool {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	if unix.FsconfigSetString(fd, "lowerdir+", "/") != nil {
		return false
	}
	return errors.Is(unix.FsconfigSetString(fd, "berth-probe", "1"), unix.EINVAL)
}

// mountFsconfig mounts an overlay configured by params on target with the
// new mount API:
//
//	fd  = fsopen("overlay", FSOPEN_CLOEXEC)
//	fsconfig(fd, FSCONFIG_SET_STRING, key, value)   for each param
//	fsconfig(fd, FSCONFIG_CMD_CREATE)               builds the superblock
//	mfd = fsmount(fd, FSMOUNT_CLOEXEC, 0)           a detached mount
//	move_mount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH)
//
// Every layer is one fsconfig call, so no option string exists and the
// page-size limit of mount(2) does not apply. When a step fails, the
// messages overlayfs logged into the context (read(2) on fd) are added to
// the error. If move_mount fails, closing mfd releases the detached mount.
func mountFsconfig(params []option, target string) error {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen overlay: %w", classify(err))
	}
	defer unix.Close(fd)
	for _, o := range params {
		if err := unix.FsconfigSetString(fd, o.key, o.value); err != nil {
			return fmt.Errorf("fsconfig %s=%s: %w%s", o.key, o.value, classify(err), fsLog(fd))
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fmt.Errorf("fsconfig create: %w%s", classify(err), orKernelLog(fsLog(fd)))
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("fsmount: %w%s", classify(err), fsLog(fd))
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount onto %s: %w", target, classify(err))
	}
	return nil
}

// fsLog returns the messages queued in the filesystem context fd, as
// "; kernel: ...", or "" when there are none. Each read(2) returns one
// message ("e overlay: ..."); ENODATA ends the queue.
func fsLog(fd int) string {
	var msgs []string
	buf := make([]byte, 1024)
	for range 16 {
		n, err := unix.Read(fd, buf)
		if err != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	if len(msgs) == 0 {
		return ""
	}
	return "; kernel: " + strings.Join(msgs, "; ")
}

// orKernelLog returns msgs, or when empty a pointer to the kernel log,
// where overlayfs reports most of its reasons (pr_err, not the context).
func orKernelLog(msgs string) string {
	if msgs != "" {
		return msgs
	}
	return " (overlayfs gives the reason in the kernel log: dmesg)"
}

// mountLegacy mounts the overlay of plan on target with mount(2), after
// creating the plan's symlinks in linksDir:
//
//	mkdir(linksDir, 0700); symlink(layer i, linksDir/i) for each layer
//	[thread: unshare(CLONE_FS); chdir(linksDir)]   when plan.cwd is set
//	mount("overlay", target, "overlay", 0, plan.data)
//
// Overlayfs resolves every lower, upper and work path during the mount
// call, from the calling thread's working directory for relative ones, and
// keeps references to the directories, not the names: the links are only
// needed for the call, and are removed by Destroy with the rest.
func mountLegacy(plan legacyPlan, linksDir, target string) error {
	return union.MountWithLinks(Name, plan.links, linksDir, plan.cwd, func() error {
		if err := unix.Mount("overlay", target, "overlay", 0, plan.data); err != nil {
			return fmt.Errorf("mount overlay (%d-byte options) onto %s: %w%s", len(plan.data), target, classify(err), orKernelLog(""))
		}
		return nil
	})
}

// makePrivate sets target's mount propagation to private:
// mount(NULL, target, NULL, MS_PRIVATE, NULL). See the package
// documentation for why.
func makePrivate(target string) error {
	if err := unix.Mount("", target, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make %s private: %w", target, classify(err))
	}
	return nil
}
