// Package namespaces holds the namespaces/pid, namespaces/ipc and
// namespaces/uts isolators: each puts the container's init in a new namespace
// of its kind.
package namespaces

import (
	"context"

	"github.com/berthrt/berth/actors/isolator"
	isolatorv1 "github.com/berthrt/berth/messages/isolator/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
)

// PID is namespaces/pid: the container gets its own pid namespace, so its
// command sees itself as a child of its init (pid 1) and /proc shows only its
// processes. share_pid_namespace keeps the host's.
type PID struct{ isolator.Base }

// Name is the registry key.
func (PID) Name() string { return "namespaces/pid" }

// Prepare asks for CLONE_NEWPID.
func (PID) Prepare(_ context.Context, _ *typesv1.ContainerID, config *typesv1.ContainerConfig) (*isolatorv1.ContainerLaunchInfo, error) {
	if config.GetContainerInfo().GetSharePidNamespace() {
		return nil, nil
	}
	return &isolatorv1.ContainerLaunchInfo{CloneNamespaces: []isolatorv1.Namespace{isolatorv1.Namespace_NAMESPACE_PID}}, nil
}

// IPC is namespaces/ipc: a private IPC namespace, with its own POSIX message
// queue filesystem when the container has a rootfs.
type IPC struct{ isolator.Base }

// Name is the registry key.
func (IPC) Name() string { return "namespaces/ipc" }

// Prepare asks for CLONE_NEWIPC and mounts the namespace's mqueue.
func (IPC) Prepare(_ context.Context, _ *typesv1.ContainerID, config *typesv1.ContainerConfig) (*isolatorv1.ContainerLaunchInfo, error) {
	info := &isolatorv1.ContainerLaunchInfo{CloneNamespaces: []isolatorv1.Namespace{isolatorv1.Namespace_NAMESPACE_IPC}}
	if config.GetRootfs() != "" {
		info.Mounts = []*typesv1.Mount{{Type: "mqueue", Source: "mqueue", Target: "/dev/mqueue", Options: []string{"nosuid", "noexec", "nodev"}}}
	}
	return info, nil
}

// UTS is namespaces/uts: the container gets its own hostname, by default its
// container ID. (Mesos ties this to network/cni; Berth offers it alone.)
type UTS struct{ isolator.Base }

// Name is the registry key.
func (UTS) Name() string { return "namespaces/uts" }

// Prepare asks for CLONE_NEWUTS and sets the hostname.
func (UTS) Prepare(_ context.Context, id *typesv1.ContainerID, config *typesv1.ContainerConfig) (*isolatorv1.ContainerLaunchInfo, error) {
	host := config.GetContainerInfo().GetHostname()
	if host == "" {
		host = id.GetValue()
	}
	if len(host) > 64 {
		host = host[:64]
	}
	return &isolatorv1.ContainerLaunchInfo{
		CloneNamespaces: []isolatorv1.Namespace{isolatorv1.Namespace_NAMESPACE_UTS},
		Hostname:        host,
	}, nil
}
