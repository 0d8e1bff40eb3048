// Package backend holds the rootfs Backend interface, the generic actor that
// serves any Backend over protobuf messages, and the registry of backends.
//
// A backend stacks image layers into a container's root filesystem (Mesos's
// provisioner backends). Implementations live in subpackages (copyfs, bind,
// overlay, aufs) and are plain Go; only actor.go here imports protoactor.
package backend

import (
	"context"

	"go.uber.org/zap"
)

// Backend builds and removes root filesystems from layers.
//
// Layers are host directories, bottom first; later layers shadow earlier ones.
// Layer directories hold whiteouts in AUFS form (".wh.NAME" files and
// ".wh..wh..opq" markers), as the docker store extracts them.
//
// rootfs is <backendDir>/rootfses/<uuid>; backendDir is the backend's
// per-container directory (<work_dir>/provisioner/containers/<id>/backends/<name>),
// where a backend may keep scratch space.
type Backend interface {
	// Name is the registry key: "copy", "bind", "overlay", "aufs".
	Name() string
	// Provision builds rootfs from layers. rootfs must not exist. It returns the
	// ephemeral paths that hold the container's writes (overlay's upper and
	// work dirs), counted against the sandbox disk quota.
	Provision(ctx context.Context, layers []string, rootfs, backendDir string) (ephemeral []string, err error)
	// Destroy unmounts and removes rootfs and its scratch space. existed is false
	// when there was nothing to remove. Destroying twice is not an error.
	Destroy(ctx context.Context, rootfs, backendDir string) (existed bool, err error)
}

// BusyMountLogger returns what the backends tell mount.UnmountAll: a mount
// that had to be detached is worth a warning, since the launcher should
// have killed every process of the container first.
func BusyMountLogger(logger *zap.Logger) func(mountPoint string) {
	return func(mp string) {
		logger.Warn("rootfs mount busy: detaching it (a process still uses it)", zap.String("mount", mp))
	}
}
