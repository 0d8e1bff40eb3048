// Package launch is the container's first process, Berth's init (Mesos's
// `mesos-containerizer launch`), and the protocol the launcher speaks with
// it.
//
// The launcher re-executes the berth binary with argv "init <id>
// <runtime_dir>" and the environment _BERTH_INIT=1, in new namespaces
// (clone flags), with three pipes beyond stdio:
//
//	fd 3  spec     the launcher writes one framed LaunchSpec and closes it
//	fd 4  release  the launcher writes one byte when isolation is done
//	fd 5  report   the init writes framed ChildReports
//
// A frame is a 4-byte big-endian length and a protobuf message.
//
// The init:
//  1. marks every inherited descriptor above 2 close-on-exec, and makes
//     itself non-dumpable, so the command can reach none of them through
//     /proc (CVE-2016-9962, CVE-2024-21626);
//  2. reads the spec, opens <runtime_dir>/status while the host's
//     filesystem is still visible, becomes a child subreaper;
//  3. builds the mount namespace and pivots into the rootfs (process/rootfs),
//     sets the hostname;
//  4. reports READY (or FAILED with a typed Status) and blocks on the
//     release pipe: the launcher isolates the pid (cgroups) meanwhile;
//     EOF without the byte ends the init;
//  5. resolves the user, the working directory and the executable inside
//     the container (a missing executable is NOT_FOUND, a non-executable one
//     PERMISSION_DENIED), limits the capabilities to Docker's default set
//     (bounding set; inheritable and ambient emptied), forks and execs the
//     command, reports STARTED with its pid (or FAILED) and closes the
//     report pipe;
//  6. stays as the reaper: forwards every signal to the command, reaps
//     every child, and when the command exits records its wait status with
//     one pwrite of "<status>\n" (a reader sees all or nothing) and exits
//     with the command's code. In a pid namespace its exit kills every
//     other process of the container.
//
// The status file lets a restarted agent learn how a command ended though
// it was not the init's parent any more.
package launch
