// Package builtin builds Berth's built-in default image from the host's own
// files, so that `berth execute` works on a machine with no registry and no
// network. The result is an OCI image layout that any OCI tool can read
// (umoci, skopeo) and that the docker store imports like any other layout.
//
// # The image
//
// Reference "localhost/berth/default:latest"; config Env
// PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin, Cmd
// ["/bin/sh"], os linux, architecture runtime.GOARCH (Go's GOARCH names are
// the OCI names; arm gets variant v7). Two gzip layers:
//
//  1. base: the directory skeleton (/bin /dev /etc /home /lib /mnt /opt /proc
//     /root (0700) /run /sbin /sys /tmp (1777) /usr/{bin,sbin,lib,local/bin}
//     /var/{tmp (1777),log}) and four small files: /etc/passwd (root and
//     nobody), /etc/group (root and nogroup), /etc/hosts (localhost) and an
//     empty /etc/hostname. /dev, /proc and /sys are empty mount points: the
//     runtime mounts them. Nothing else: no shadow file, no resolv.conf.
//  2. tools: a shell and core tools copied from the host. Preferred: the
//     host's busybox (Debian's busybox-static), at /bin/busybox with one
//     relative symlink /bin/<applet> -> busybox per applet that `busybox
//     --list` prints. Busybox is used when it is statically linked or its
//     shared libraries resolve. Otherwise (or with Options.Busybox "none"): the
//     host's /bin/sh and coreutils-style binaries (ls, cat, echo, env, id, ...;
//     those missing on the host are skipped, sh is required), each at
//     /bin/<name>, with their ELF interpreter and shared libraries, found by
//     reading PT_INTERP, DT_NEEDED and DT_RUNPATH/DT_RPATH recursively and
//     searching the loader's default directories and then the directories of
//     /etc/ld.so.conf. Symlinked library names are recreated as symlinks to
//     the real files. Setuid and setgid bits of host files are dropped.
//
// # Reproducibility
//
// The same host files give the same digests on every run: entries are
// sorted, owned by 0:0 with no names, dated at the Unix epoch, with modes
// taken from the host files (or fixed for the base layer); gzip headers carry
// no name and no time, at a fixed compression level; JSON is marshalled from
// structs with fixed field order.
//
// # On disk
//
// Build(ctx, dir) writes the layout into a temporary sibling of dir and
// renames it into place when complete, so dir is either absent or complete:
//
//	dir/oci-layout                    {"imageLayoutVersion":"1.0.0"}
//	dir/index.json                    one manifest, annotated ref.name "latest"
//	dir/blobs/sha256/<hex>            config, manifest and the two layers
//	dir/.berth-builtin                completion marker (the manifest digest), written last
//
// A dir with the marker is reused as it is. Concurrent builds into one dir are
// safe but wasteful; the docker store coalesces them.
package builtin
