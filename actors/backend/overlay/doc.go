// Package overlay is the overlay backend (Mesos's OverlayBackend): each
// container's root filesystem is an overlayfs mount that stacks the image
// layers, read-only and shared by every container of the image, under an
// upper directory of its own that takes the container's writes. Provision
// and Destroy are a mount and an unmount: their cost does not depend on
// the size of the image (about 1.5-2 ms for Provision+Destroy of a 4-layer
// image of 50 or 200 MB here, see BenchmarkProvision), and any number of
// layers up to overlayfs's limit of 500 stacks (MaxLayers).
//
// The layers hold whiteouts in overlay form, as the docker store extracts
// them for this backend (archive.WhiteoutOverlay): a deleted name is a 0/0
// character device, an opaque directory carries trusted.overlay.opaque=y.
// The kernel interprets them; the backend never reads, let alone writes,
// the layers.
//
// # Layout
//
// Everything a rootfs owns is named after its id, the base name of rootfs
// (a UUID in the provisioner's layout), so Destroy finds it from the paths
// alone, by a fresh Backend after an agent restart as well (as in Mesos):
//
//	<backendDir>/rootfses/<id>            the mount point (the rootfs)
//	<backendDir>/scratch/<id>/upperdir    the container's writes
//	<backendDir>/scratch/<id>/workdir     overlayfs's copy-up staging dir
//	<backendDir>/links/<id>/0..N-1        short symlinks to the layers,
//	                                      legacy mount(2) path only
//
// Provision returns [upperdir, workdir] as the ephemeral paths: all that
// the container writes to its rootfs lands there (disk/du counts them).
// scratch/<id> is 0700: only overlayfs, which uses the mounter's
// credentials, needs to reach it.
//
// # Provision
//
//  1. Check the arguments before creating anything: 1 to MaxLayers
//     layers, each an absolute path to an existing directory that neither
//     contains nor lies in the rootfs; rootfs and backendDir absolute. A
//     cancelled context stops here. Nothing exists yet to clean up. A
//     layer listed twice (an image that repeats a diff, such as the empty
//     tar of older Docker images) is kept once, at its topmost place:
//     overlayfs refuses a lower dir given twice, and the view is the same.
//  2. mkdir -p <backendDir>/rootfses, then mkdir(rootfs): EEXIST fails with
//     ErrAlreadyExists and leaves the existing directory alone.
//  3. Remove scratch/<id> and links/<id> if a crashed Provision of the same
//     id left them (the rootfs did not exist, so nothing uses them), then
//     mkdir scratch/<id> (0700), upperdir (0755: it is the rootfs's root
//     directory, so "/" of the container is 0755 root:root), workdir.
//  4. Mount, with fsconfig when the kernel's overlayfs has "lowerdir+"
//     (probed once per Backend; Linux 6.18 here has it), else with
//     mount(2) (and always with MountLegacy); see the next two sections.
//  5. mount(NULL, rootfs, NULL, MS_PRIVATE, NULL); see Propagation.
//
// Any failure after step 2 undoes everything: the mount (detached), the
// rootfs directory, scratch/<id> and links/<id>.
//
// # Mounting with fsconfig
//
//	fd = fsopen("overlay", FSOPEN_CLOEXEC)
//	fsconfig(fd, FSCONFIG_SET_STRING, "source", "overlay")
//	fsconfig(fd, FSCONFIG_SET_STRING, "lowerdir+", <layer>)   top layer first, one call each
//	fsconfig(fd, FSCONFIG_SET_STRING, "upperdir", <upper>), then "workdir"
//	fsconfig(fd, FSCONFIG_SET_STRING, "index", "off"), then "metacopy"
//	fsconfig(fd, FSCONFIG_CMD_CREATE)
//	mfd = fsmount(fd, FSMOUNT_CLOEXEC, 0)
//	move_mount(mfd, "", AT_FDCWD, rootfs, MOVE_MOUNT_F_EMPTY_PATH)
//
// Each layer is one call, so there is no option string to overflow, paths
// need no escaping, and a failing step says which layer it was (with the
// messages overlayfs queued on fd, when it queued any; it reports most in
// the kernel log). If move_mount fails, closing mfd releases the detached
// mount. The probe (probeLowerdirAdd) sets parameters on a context it
// never creates, so it mounts nothing and logs nothing.
//
// # Mounting with mount(2)
//
//	mount("overlay", rootfs, "overlay", 0,
//	      "lowerdir=<top>:...:<bottom>,upperdir=<upper>,workdir=<work>,index=off,metacopy=off")
//
// The kernel copies the option string into one page (4096 bytes with its
// NUL) and cuts the rest: with the docker store's ~140-byte layer paths
// the mount fails (ENOENT on the truncated path) from 29 layers on (shared
// notes, peers §2; MESOS-6000 in Mesos, seen at 38). When the layers' own
// paths do not fit, or hold ',', ':' or '\', the backend does what Mesos
// does and names the layers through symlinks links/<id>/0..N-1 (link i →
// layer i, bottom first):
//
//	mkdir(links/<id>, 0700); symlink(<layer i>, links/<id>/i)   for each layer
//	[a new OS thread] unshare(CLONE_FS); chdir(links/<id>)
//	mount("overlay", rootfs, "overlay", 0,
//	      "lowerdir=N-1:...:1:0,upperdir=../../scratch/<id>/upperdir,workdir=../../scratch/<id>/workdir,...")
//
// Mesos's links, absolute paths in a mkdtemp directory, still cost ~16
// bytes a layer; ours are relative to the links directory, so even 500
// layers take under 2 KiB whatever the length of backendDir. Overlayfs
// resolves relative paths from the calling thread's working directory,
// which every thread of the process shares (the fs_struct), so a plain
// chdir would move the whole agent: the mount runs on a goroutine locked
// to its OS thread, which first unshares its fs_struct (allowed in a
// multithreaded process, unlike CLONE_NEWNS) and then chdirs, and which
// ends without unlocking, so that the Go runtime retires the thread
// (inDir). Overlayfs keeps references to the directories, not the names,
// so the links only matter during the call; they are removed with the
// rest by Destroy. Creating them is the cost of this path: 128 symlinks
// with long targets take ~25 ms on this machine's ext4, against ~2 ms for
// the whole fsconfig mount.
//
// # Mount options
//
// index=off and metacopy=off are always set, whatever the kernel's
// compile-time defaults: the inode index is only useful for NFS export and
// remounts with the same layers, which a container rootfs never has, and
// without metacopy a chown or chmod copies the whole file up, so the upper
// dir is self-contained, disk/du measures what the container really uses,
// and overlayfs never follows a metacopy or redirect xattr found in a layer
// (the extractor refuses trusted.overlay.* from archives as well).
// redirect_dir and xino keep the kernel's defaults. userxattr is not set:
// the layers carry trusted.overlay.* and the agent mounts as root in the
// initial user namespace. volatile (no syncs of the upper dir) is not set:
// it would make fsync in the container a silent no-op, and gains nothing
// measurable here (it saves ~0.4 ms of unmount and costs ~0.9 ms of mount).
//
// # Propagation
//
// The rootfs mount is made private right after it is attached, where Mesos
// makes it slave then shared. Nothing is ever mounted under a rootfs in the
// agent's mount namespace: the container's mounts (proc, dev, the sandbox,
// volumes) are made by its init inside its own mount namespace
// (process/rootfs), after making / rslave there. So the mount has no event
// to receive from the host, and none of its own to send anywhere. If the
// parent directory sits on a shared mount (systemd makes / shared), the
// mount event itself still propagates, when it is attached, to the peers
// and slaves of that parent (other mount namespaces get a copy), as for any
// mount there; making ours private afterwards keeps our later unmount from
// propagating to those copies, but Destroy's rmdir of the mount point
// detaches every mount on that directory in every other namespace (Linux
// 3.18 and later), so nothing outlives Destroy. Copies that containers'
// namespaces took at clone time go with those namespaces.
//
// # Destroy
//
//  1. Read /proc/self/mountinfo and unmount every mount at or below the
//     rootfs (its parent's symlinks resolved, since the kernel reports
//     resolved paths), deepest first: umount2(UMOUNT_NOFOLLOW), and on
//     EBUSY (a process still uses the rootfs, which it should not after the
//     launcher killed the container) umount2(MNT_DETACH|UMOUNT_NOFOLLOW)
//     with a warning: the mount point is free at once, the kernel drops the
//     overlay when its last user goes. EINVAL (not a mount: a concurrent
//     Destroy won) is fine. Repeat until mountinfo lists nothing (stacked
//     mounts).
//  2. rmdir(rootfs). The rootfs is never removed recursively: if it is not
//     empty once unmounted, something else is there, and Destroy fails with
//     ErrFailedPrecondition and leaves it alone.
//  3. Refuse (ErrFailedPrecondition) if anything is mounted inside
//     scratch/<id> or links/<id>, then remove both recursively (symlinks are
//     unlinked, never followed; the layers are not reachable from there).
//
// existed is true when any of this found something. Destroying twice, or
// a rootfs that never existed, returns false and no error.
//
// # Overlayfs semantics to know
//
//   - A lower layer's whiteout in a directory that is not merged with
//     anything below it (a directory that only that layer has, or one that
//     replaced a lower symlink or file) is listed by readdir as a character
//     device, but every lookup of it fails with ENOENT: it hides nothing
//     and cannot be opened, but ls shows it with "?" fields. The kernel
//     does this; a backend that must not modify the layers cannot hide it.
//   - Files report the lower file's inode number (same st_dev for all when
//     the layers and the upper dir share a filesystem), so hard links of a
//     layer stay one inode until one name is written (copy-up breaks the
//     link for that name only).
//   - The rootfs's root directory shows the upper dir's owner, mode and
//     times, not the top layer's.
//   - The layers, upper and work dirs must not be on overlayfs themselves
//     and their filesystem must support d_type and trusted.* xattrs; the
//     agent checks that when it picks this backend.
package overlay
