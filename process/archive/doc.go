// Package archive extracts image layers (tar, optionally gzip or zstd
// compressed) safely into a directory, and defines the whiteout names.
//
// # Threat model
//
// A layer is hostile input: it comes from a registry or a tarball the user
// was handed, and it is extracted as root. Extract must never create,
// modify or follow anything outside the layer directory, whatever the
// names, link targets, types and order of its entries.
//
// # Security model
//
// Extract opens the layer directory once and never touches a path string
// built from it again: every operation is a *at system call relative to a
// directory file descriptor.
//
//   - Names are cleaned as if rooted at "/" (docker and containerd accept
//     "/etc/x" as "etc/x"); a name that still climbs out after cleaning
//     ("../x", "a/../../x", "/../../x"), contains NUL or is longer than 4096
//     bytes is rejected.
//   - The parent directory of every entry is opened with openat2(2) and
//     RESOLVE_IN_ROOT|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS|
//     RESOLVE_NO_XDEV relative to the layer directory. RESOLVE_IN_ROOT makes
//     the kernel, not string checks, keep resolution inside the layer;
//     RESOLVE_NO_SYMLINKS refuses a parent chain that goes through any
//     symlink, so an entry "evil/x" after a symlink "evil -> /" is rejected
//     instead of written through it. Symlink targets themselves are data and
//     may point anywhere ("/etc/alternatives/..."): they are only dangerous
//     when followed, and Extract never follows one.
//   - Without openat2 (ENOSYS or EPERM from a seccomp filter, kernels before
//     5.6) the parent is opened one component at a time with
//     openat(O_PATH|O_DIRECTORY|O_NOFOLLOW), which gives the same guarantees
//     because the names carry no ".." and every component must be a real
//     directory.
//   - The final component is created with O_CREAT|O_EXCL|O_NOFOLLOW,
//     mkdirat, symlinkat, mknodat or linkat, none of which follow a symlink
//     there. When it already exists (a layer may list a path twice) it is
//     removed and created again, except that a directory over a directory is
//     merged. Removal is recursive through directory descriptors opened with
//     O_NOFOLLOW.
//   - Ownership and times are set with fchownat/utimensat and
//     AT_SYMLINK_NOFOLLOW; modes with fchmod on the open file or fchmodat
//     on a name just checked (fstatat, AT_SYMLINK_NOFOLLOW) not to be a
//     symlink; extended attributes with fsetxattr on the open file or
//     lsetxattr on /proc/self/fd/<parent>/<name>, which resolves the parent
//     through its descriptor and does not follow the final name.
//   - A hard link's target is cleaned the same way, must already exist in
//     the layer, must not be a directory and is resolved with the same
//     no-symlink rule; the link is made with linkat without
//     AT_SYMLINK_FOLLOW. Hard links to files outside the layer are therefore
//     impossible.
//
// # Syscall sequence per entry
//
//	parent: openat2(root, dir, O_PATH|O_DIRECTORY, RESOLVE_IN_ROOT|...)
//	        (the last parent is cached; a miss that is ENOENT creates the
//	        missing directories with mkdirat, 0755, one at a time)
//	file:   openat(parent, name, O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW) →
//	        write → fchown → fchmod → fsetxattr → close →
//	        utimensat(parent, name, AT_SYMLINK_NOFOLLOW)
//	dir:    mkdirat → fchownat → lsetxattr; mode and times at the end
//	link:   symlinkat | linkat | mknodat(S_IFIFO), then fchownat,
//	        fchmodat (not for symlinks), lsetxattr, utimensat
//
// Chmod comes after chown because chown(2) clears the set-user-ID and
// set-group-ID bits of regular files, even for root. Extended attributes
// come after chown too, as chown drops security.capability.
//
// Directory modes and times are applied last, deepest directory first:
// writing a child changes its parent's mtime, so times set earlier would be
// lost, and a read-only mode applied early would stop a non-root caller
// from creating the children that follow.
//
// # Whiteouts and device nodes
//
// ".wh.NAME" deletes NAME from the layers below and ".wh..wh..opq" makes
// its directory opaque (OCI image spec). With WhiteoutAUFS they are written
// verbatim as empty regular files (owner, mode and times from the header);
// with WhiteoutOverlay ".wh.NAME" becomes the character device 0/0 NAME and
// the opaque marker becomes the xattr trusted.overlay.opaque=y on its
// directory (created if missing). Whiteouts of "", "." or ".." (".wh.",
// ".wh..", ".wh..."), and names that use a whiteout as a directory
// (".wh.x/y"), are rejected. AUFS metadata (".wh..wh.plnk" and the like,
// other than the opaque marker) is kept verbatim in AUFS form and skipped
// in overlay form, as containerd does.
//
// Device nodes have no business in an image layer: block devices and
// character devices other than 0/0 are rejected. A character device 0/0 is
// an overlay-style whiteout and is converted like one (to ".wh.NAME" in AUFS
// form). FIFOs are allowed.
//
// Extended attributes come from PAX records "SCHILY.xattr.NAME". Failures
// with EOPNOTSUPP or EPERM are ignored for "security.*" names (SELinux
// labels on a filesystem or in a context that refuses them); any other
// failure is an error. Names outside the user, trusted, security and system
// namespaces are rejected, and so are names under "trusted.overlay." and
// "user.overlay.": they steer overlayfs (redirects, metacopy, opacity) and
// only Extract's own whiteout conversion may write them. Setting xattrs on
// anything but an open regular file goes through /proc/self/fd, so it
// needs /proc mounted.
//
// # Limits
//
// MaxBytes bounds both the uncompressed tar bytes read (a decompression
// bomb) and the regular-file bytes written (a sparse-file bomb declares a
// huge file in a tiny archive); MaxEntries bounds the number of headers.
// Exceeding either is errdefs.ErrResourceExhausted. archive/tar caps PAX
// and GNU long-name headers at 1 MiB. Runs of zero bytes in regular files
// are written as holes. zstd frames may use windows up to 128 MiB, the
// reference decoder's default limit.
//
// # Errors
//
// Errors carry a class from process/errdefs, and name the entry:
// errdefs.ErrInvalidArgument for hostile or malformed input (including a
// truncated or corrupt gzip, zstd or tar stream),
// errdefs.ErrResourceExhausted for the limits and a full disk,
// errdefs.ErrPermissionDenied when the caller lacks a privilege (chown
// without root: set Options.NoChown). Read errors from the caller's reader
// are returned wrapped, unclassified. A cancelled ctx is checked between
// entries and between 1 MiB chunks and returned wrapped.
//
// On error the layer directory is left as it is, partly written: callers
// extract into a staging directory and remove it on failure. The Result
// then counts what was applied, and its DiffID is empty.
//
// A tar stream that ends cleanly after an entry but lacks the two zero
// blocks that end an archive is accepted, as by docker and containerd; the
// caller's DiffID check catches a layer cut at such a boundary.
package archive
