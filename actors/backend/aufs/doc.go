// Package aufs is the aufs backend (Mesos's AufsBackend): each container's
// root filesystem is an aufs union of the image layers, read-only branches
// shared by every container of the image, under a writable branch of its
// own. Like overlay, Provision and Destroy are a mount and an unmount,
// whatever the size of the image.
//
// aufs was never merged into Linux: only kernels patched for it (older
// Debian and Ubuntu kernels) have it. Supported reads /proc/filesystems,
// the list of filesystem types the running kernel has (built in or with
// their module loaded), and looks for "aufs"; nothing else is probed, and
// no module is loaded. Check, for the agent at start when aufs is asked
// for, returns ErrFailedPrecondition "the kernel has no aufs (not in
// /proc/filesystems); use overlay or copy" when it is missing. New never
// fails; Provision checks again (a module may be loaded meanwhile) and
// fails with that same error before creating anything. Destroy works on
// any kernel, so rootfses can be cleaned up after the kernel changed.
//
// The layers hold whiteouts in AUFS form, aufs's own: ".wh.NAME" files
// and ".wh..wh..opq" markers (archive.WhiteoutAUFS), which aufs interprets
// on branches mounted "+wh". The backend never writes to the layers.
//
// # Layout
//
// As in Mesos, everything a rootfs owns is named after its id, the base
// name of rootfs, so Destroy needs no state:
//
//	<backendDir>/rootfses/<id>          the mount point (the rootfs)
//	<backendDir>/scratch/<id>/workdir   the writable branch (the container's
//	                                    writes; aufs keeps its .wh..wh.*
//	                                    bookkeeping there); ephemeral path
//	<backendDir>/links/<id>/0..N-1      short symlinks to the layers, when
//	                                    the option string needs them
//
// # Provision
//
//  1. Check without side effects: layers (at least one, absolute paths to
//     directories that neither contain nor lie in the rootfs), the
//     cancelled context, the mount plan (below), then the kernel
//     (Supported). Nothing exists yet to clean up. A layer listed twice is
//     kept once, at its topmost place: aufs refuses a branch given twice,
//     and the union is the same.
//  2. mkdir -p <backendDir>/rootfses, mkdir(rootfs) (EEXIST:
//     ErrAlreadyExists, the existing directory left alone); remove a stale
//     scratch/<id> and links/<id> (a crashed Provision of the same id),
//     mkdir scratch/<id> (0700) and its workdir (0755: the rootfs's root).
//  3. mount("none", rootfs, "aufs", 0, "br:<workdir>=rw:<top>=ro+wh:...:
//     <bottom>=ro+wh"): aufs looks names up from the leftmost branch, so the
//     writable branch comes first and the layers follow top first; "ro+wh"
//     makes a layer read-only and honours its whiteouts.
//     The option string must fit in one page with its NUL (the kernel
//     copies no more). When the layers' own paths do not fit, or hold ',',
//     ':', '=' or '\', the branches are symlinks links/<id>/0..N-1 named
//     relative to the links directory ("br:../../scratch/<id>/workdir=rw:
//     N-1=ro+wh:...:0=ro+wh", at most 10 bytes a layer, about 410 layers in
//     a 4 KiB page), and the mount runs on a goroutine locked to an OS
//     thread that unshare(CLONE_FS)s and chdirs into the links directory,
//     so the working directory of the rest of the agent never moves; the
//     thread is retired afterwards (inDir). This is the same scheme as the
//     overlay backend's mount(2) path, where it is tested on this machine.
//     aufs itself also limits the number of branches at compile time
//     (CONFIG_AUFS_BRANCH_MAX_127 by default): more fail in the mount.
//  4. mount(NULL, rootfs, NULL, MS_PRIVATE, NULL), for the reasons the
//     overlay backend's documentation gives (Mesos makes it slave then
//     shared).
//
// Any failure after step 2 undoes everything: the mount (detached), the
// rootfs directory, scratch/<id> and links/<id>.
//
// # Destroy
//
// As the overlay backend's: unmount every mount at or below the rootfs
// found in /proc/self/mountinfo, deepest first (umount2(UMOUNT_NOFOLLOW),
// on EBUSY MNT_DETACH with a warning); rmdir the rootfs, never a recursive
// removal (a non-empty, unmounted rootfs fails with ErrFailedPrecondition
// and is left alone); refuse if anything is mounted in scratch/<id> or
// links/<id>, then remove both. existed is false when there was nothing.
package aufs
