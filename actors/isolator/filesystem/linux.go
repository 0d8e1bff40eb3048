// Package filesystem holds the filesystem/linux isolator: the container's
// mount namespace plan (Mesos's LinuxFilesystemIsolatorProcess). With a rootfs
// it mounts /proc, /sys, /dev and the sandbox inside it, makes the standard
// device nodes and hides the dangerous parts of /proc and /sys; the
// container's init applies the plan and pivots into the rootfs.
package filesystem

import (
	"context"
	"fmt"
	"path"

	"github.com/berthrt/berth/actors/isolator"
	isolatorv1 "github.com/berthrt/berth/messages/isolator/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/errdefs"
)

// DefaultSandboxDirectory is where the sandbox appears inside a container
// with a rootfs (Mesos: --sandbox_directory=/mnt/mesos/sandbox).
const DefaultSandboxDirectory = "/mnt/berth/sandbox"

// SandboxEnv is the variable that tells the command where its sandbox is
// (Mesos's MESOS_SANDBOX).
const SandboxEnv = "BERTH_SANDBOX"

// Linux is the filesystem/linux isolator.
type Linux struct {
	isolator.Base
	// SandboxDirectory is the sandbox's path inside the container.
	SandboxDirectory string
}

// NewLinux returns the isolator; sandboxDir "" means DefaultSandboxDirectory.
func NewLinux(sandboxDir string) (*Linux, error) {
	if sandboxDir == "" {
		sandboxDir = DefaultSandboxDirectory
	}
	if !path.IsAbs(sandboxDir) || path.Clean(sandboxDir) == "/" {
		return nil, fmt.Errorf("sandbox directory %q must be an absolute path below /: %w", sandboxDir, errdefs.ErrInvalidArgument)
	}
	return &Linux{SandboxDirectory: path.Clean(sandboxDir)}, nil
}

// Name is the registry key.
func (*Linux) Name() string { return "filesystem/linux" }

// maskedPaths are hidden from containers (Mesos and runc's default list).
var maskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/key-users",
	"/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
	"/proc/timer_stats", "/sys/firmware",
}

// readonlyPaths are visible but read-only.
var readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}

// devices are the standard device nodes of a container's /dev.
var devices = []*isolatorv1.Device{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: 0o666},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5, FileMode: 0o666},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7, FileMode: 0o666},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8, FileMode: 0o666},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9, FileMode: 0o666},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0, FileMode: 0o666},
}

// Prepare returns the mount plan. Without a rootfs the container keeps the
// host's filesystem in its own mount namespace and works in its sandbox.
func (l *Linux) Prepare(_ context.Context, _ *typesv1.ContainerID, config *typesv1.ContainerConfig) (*isolatorv1.ContainerLaunchInfo, error) {
	if config.GetDirectory() == "" {
		return nil, fmt.Errorf("filesystem/linux: the container has no sandbox directory: %w", errdefs.ErrInvalidArgument)
	}
	info := &isolatorv1.ContainerLaunchInfo{
		CloneNamespaces: []isolatorv1.Namespace{isolatorv1.Namespace_NAMESPACE_MOUNT},
	}
	if config.GetRootfs() == "" {
		info.WorkingDirectory = config.GetDirectory()
		info.Environment = env(SandboxEnv, config.GetDirectory())
		return info, nil
	}
	info.Mounts = []*typesv1.Mount{
		{Type: "proc", Source: "proc", Target: "/proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Type: "sysfs", Source: "sysfs", Target: "/sys", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		{Type: "tmpfs", Source: "tmpfs", Target: "/dev", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Type: "devpts", Source: "devpts", Target: "/dev/pts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Type: "tmpfs", Source: "shm", Target: "/dev/shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Type: "bind", Source: config.GetDirectory(), Target: l.SandboxDirectory, Options: []string{"rbind", "rw"}},
	}
	for _, v := range config.GetContainerInfo().GetVolumes() {
		if !path.IsAbs(v.GetTarget()) {
			return nil, fmt.Errorf("volume target %q must be absolute: %w", v.GetTarget(), errdefs.ErrInvalidArgument)
		}
		info.Mounts = append(info.Mounts, v)
	}
	info.Devices = devices
	info.MaskedPaths = maskedPaths
	info.ReadonlyPaths = readonlyPaths
	info.Environment = env(SandboxEnv, l.SandboxDirectory)
	return info, nil
}

func env(name, value string) *typesv1.Environment {
	return &typesv1.Environment{Variables: []*typesv1.Environment_Variable{{Name: name, Value: value}}}
}
