// Package archive extracts image layers (tar, optionally gzip or zstd
// compressed) safely into a directory, and defines the whiteout names.
//
// # Threat model
//
// A layer is hostile input, extracted as root. Extract must never create,
// modify or follow anything outside the layer directory, whatever the
// names, link targets, types and order of its entries.
//
// # How
//
// Extract opens the layer directory once and never writes through a path
// string joined onto it: every operation is a *at system call relative to a
// directory descriptor.
//
//   - Names are cleaned as if rooted at "/" (docker and containerd accept
//     "/etc/x" as "etc/x"); a name whose ".." climbs above the root ("../x",
//     "a/../../x", "/../../x"), with a NUL byte, or longer than 4096 bytes is
//     rejected.
//   - Every entry's parent is opened with openat2(RESOLVE_IN_ROOT|
//     RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS) relative to the layer
//     directory: the kernel keeps resolution inside the layer, and a parent
//     chain through any symlink is refused, so "evil/x" after "evil -> /" is
//     an error, not a write to /x. Missing parents are made (0755). Symlink
//     targets are data and may point anywhere; they are never followed here.
//   - The entry itself is created with O_CREAT|O_EXCL|O_NOFOLLOW, mkdirat,
//     symlinkat, mknodat or linkat; whatever was at its name is removed
//     first (unlinkat, recursively on descriptors for a directory), except
//     that a directory over a directory is kept.
//   - Hardlink targets are cleaned the same way, resolved without symlinks,
//     and must already exist in the layer and not be a directory.
//   - Devices: a character device 0/0 is an overlay whiteout; every other
//     character or block device is rejected (an image has no business
//     shipping /dev/kmem; the container's /dev is made by the launcher).
//     FIFOs are allowed.
//   - Whiteouts: ".wh.NAME" with NAME empty, "." or ".." is rejected. In
//     WhiteoutAUFS form whiteouts are kept as empty files (and a 0/0 device
//     becomes ".wh.NAME"); in WhiteoutOverlay form ".wh.NAME" becomes a 0/0
//     character device and ".wh..wh..opq" the xattr trusted.overlay.opaque=y.
//     Other ".wh..wh." names (AUFS metadata) are ignored.
//   - Ownership is set with fchownat(AT_SYMLINK_NOFOLLOW) before the mode,
//     because chown clears setuid and setgid; xattrs come from PAX
//     SCHILY.xattr.* records (ENOTSUP and EPERM tolerated, as containerd
//     does). Directory modes and times are set last, deepest first: writing
//     children changes a directory's mtime, and a read-only mode would stop
//     the writes.
//   - Limits: uncompressed bytes and entry count (ErrResourceExhausted);
//     archive/tar caps PAX headers at 1 MiB. A truncated or corrupt stream,
//     gzip checksum included, is ErrInvalidArgument.
//
// The diff id is the sha256 of the whole uncompressed stream, read to its
// end. On error the directory holds a partial layer: callers extract into a
// staging directory and remove it (the docker store does).
package archive
