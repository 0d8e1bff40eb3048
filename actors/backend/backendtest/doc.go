// Package backendtest is the conformance suite every rootfs Backend must
// pass (copy, bind, overlay, aufs), and the tools it is built from.
//
// Run drives the suite. Each case builds its layers with BuildLayer, which
// writes layer directories directly with system calls in either whiteout
// form (AUFS ".wh." files for copy and aufs; overlayfs 0/0 character devices
// and trusted.overlay.opaque for overlay), provisions them, and compares the
// rootfs with an expected tree built the same way: Snapshot records every
// entry (type, mode, owner, size, content digest, symlink target, device
// numbers, xattrs, mtime to the nanosecond, hard-link groups) and Diff lists
// the differences one per line.
//
// Capabilities a backend lacks are declared in Options, and the cases that
// need them are skipped with the reason. Cases that need root are skipped
// when not running as root, except under CI=true, where they fail instead.
//
// Layout of one case (all under t.TempDir, removed by the testing package):
//
//	<base>/layers/<n>            layers
//	<base>/expected/<n>          expected trees
//	<base>/backend               the backend directory
//	<base>/backend/rootfses/<r>  rootfses, so that <rootfs>/../../.. is <base>
//	<base>/sentinel, <base>/x    what the symlink cases must not touch
package backendtest
