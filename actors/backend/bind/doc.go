// Package bind is the bind backend (Mesos's BindBackend): the container's
// root filesystem is a read-only bind mount of the image's only layer.
// Provision and Destroy are a few mount calls, whatever the size of the
// image (about 0.4 ms for Provision+Destroy of a 50 or 200 MB layer here,
// see BenchmarkProvision), and nothing is copied or written. The price:
// single-layer images only, a rootfs the container cannot write to (it
// writes to its sandbox and volumes), and a rootfs that depends on the
// layer staying in the store while the container runs. The agent never
// picks it by default; it must be asked for.
//
// # Provision
//
//  1. Check without system calls: exactly one layer (more fail with
//     ErrInvalidArgument: "the bind backend supports single-layer images
//     only; this image has N layers: use copy or overlay"), an absolute
//     path to an existing directory that neither contains nor lies in the
//     rootfs; a cancelled context stops here.
//  2. mkdir -p the rootfs's parent, mkdir(rootfs): EEXIST fails with
//     ErrAlreadyExists and leaves the existing directory alone.
//  3. mount(layer, rootfs, NULL, MS_BIND, NULL): not MS_REC, so mounts
//     below the layer directory (there should be none) are not carried.
//  4. statfs(rootfs) for the per-mount flags the new mount inherited from
//     the layer's mount, then
//     mount(NULL, rootfs, NULL, MS_BIND|MS_REMOUNT|MS_RDONLY|<kept>, NULL):
//     a bind mount ignores MS_RDONLY on creation, and this remount changes
//     only this mount, not the layer's filesystem. A remount sets all the
//     per-mount flags at once, so nosuid, nodev and noexec, when the layer's
//     mount has them, are passed again: dropping them would loosen the
//     store's mount options (and fails with EPERM where the kernel locked
//     them, in a user namespace). Atime flags are kept by the kernel when
//     none is given.
//  5. mount(NULL, rootfs, NULL, MS_PRIVATE, NULL), for the reasons the
//     overlay backend's documentation gives (Mesos makes it slave then
//     shared): nothing is mounted under a rootfs in the agent's namespace,
//     so there is nothing to receive or send, and Destroy's rmdir detaches
//     any copy another namespace received when the mount was attached.
//
// A failure in 4 or 5 detaches the mount (MNT_DETACH) and removes the
// rootfs directory: nothing is left behind. There are no ephemeral paths
// and backendDir is not used.
//
// # Whiteouts
//
// The layer is in AUFS form, as the store extracts it for bind. A single
// layer's whiteouts (".wh.NAME" files, ".wh..wh..opq" markers) hide
// nothing, since there is nothing below them, so they are left as they
// are: empty regular files visible in the rootfs, as in Mesos. Rejecting
// them would mean walking the whole layer, which would make Provision
// O(inodes) for the sake of a few harmless empty files.
//
// # Read-only is per mount
//
// The container's init makes its own copy of this mount in its mount
// namespace. A container given CAP_SYS_ADMIN there could remount its copy
// read-write and write into the layer shared by every container of the
// image (and the store). Do not give such a container the bind backend.
//
// # Destroy
//
// Read /proc/self/mountinfo (so a fresh Backend cleans up after an agent
// restart) and unmount every mount at or below the rootfs, deepest first:
// umount2(UMOUNT_NOFOLLOW), and on EBUSY a detach (MNT_DETACH) with a
// warning. Then rmdir(rootfs). Nothing is ever removed recursively: under
// the mount is the shared layer. A rootfs that is still not empty once
// unmounted fails with ErrFailedPrecondition and is left alone. existed is
// false when there was neither a mount nor a directory.
package bind
