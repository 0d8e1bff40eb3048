// Package launcher holds the Launcher interface (Mesos's LinuxLauncher), its
// Linux implementation in plain Go, and the actor that serves it.
package launcher

import (
	"context"
	"syscall"

	launcherv1 "github.com/berthrt/berth/messages/launcher/v1"
)

// IO says where the container's standard streams go.
type IO struct {
	// StdoutPath and StderrPath are files opened O_APPEND|O_CREAT; empty means
	// /dev/null.
	StdoutPath string
	StderrPath string
}

// Process identifies a container's init on the host.
type Process struct {
	Pid int
	// StartTime is field 22 of /proc/<pid>/stat; with Pid it names the process
	// uniquely across pid reuse.
	StartTime uint64
}

// ExitStatus is how the container's command ended.
type ExitStatus struct {
	// WaitStatus is the command's wait(2) status, from the status file its init
	// wrote, else from the init itself.
	WaitStatus syscall.WaitStatus
	// Known is false when no status could be learned (the init was killed
	// before the command exited, or the status file is missing after recovery).
	Known bool
}

// Known is a container the containerizer recovered from its checkpoint.
type Known struct {
	ID         string
	Process    Process
	RuntimeDir string
}

// Launcher starts and kills containers' processes.
type Launcher interface {
	// Fork starts the container's init in the namespaces spec names; it applies
	// spec (mounts, pivot_root, hostname) and blocks before exec. Fork returns
	// once the init is ready, or the setup error it reported.
	Fork(ctx context.Context, id string, spec *launcherv1.LaunchSpec, io IO) (Process, error)
	// Exec releases the init: it execs the command. Exec returns once the
	// command runs, or the error (an executable missing from the image is
	// errdefs.ErrNotFound).
	Exec(ctx context.Context, id string) error
	// Wait blocks until the container's init has exited and returns the
	// command's status. It works for forked and recovered containers alike.
	Wait(ctx context.Context, id string) (ExitStatus, error)
	// Signal sends sig to the container's command.
	Signal(ctx context.Context, id string, sig syscall.Signal) error
	// Destroy kills every process of the container and waits until they are
	// gone. existed is false for unknown containers.
	Destroy(ctx context.Context, id string) (existed bool, err error)
	// Recover re-attaches to known containers after a restart and returns the
	// ids of the ones still alive and of orphans (running but unknown).
	Recover(ctx context.Context, known []Known) (alive, orphans []string, err error)
}
