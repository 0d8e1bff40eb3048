// Package isolator holds the Isolator interface (Mesos's Isolator), a base
// with the default behaviour to embed, the generic actor that serves any
// Isolator over isolatorv1 messages, and the registry of isolators by name.
//
// Isolators work with the wire types of messages/ directly: a
// ContainerLaunchInfo is a plan (data), merged by the containerizer into the
// LaunchSpec that the container's init applies (docs/adr/0003).
package isolator

import (
	"context"

	isolatorv1 "github.com/berthrt/berth/messages/isolator/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
)

// Isolator isolates containers in one respect (a filesystem, a namespace, a
// cgroup). Every method but Name and Prepare has a default in Base.
//
// Lifecycle per container: Prepare (before fork, in isolator order) → Isolate
// (after fork, all isolators together) → Watch / Update / Usage while it runs →
// Cleanup (after every process is dead, in reverse order). Cleanup must accept
// containers it does not know. Recover rebuilds state after a restart.
type Isolator interface {
	// Name is the registry key, with Mesos's names: "filesystem/linux".
	Name() string
	// Prepare returns what the container needs from this isolator, or nil.
	Prepare(ctx context.Context, id *typesv1.ContainerID, config *typesv1.ContainerConfig) (*isolatorv1.ContainerLaunchInfo, error)
	// Isolate places the container's init (host pid) under isolation.
	Isolate(ctx context.Context, id *typesv1.ContainerID, pid int) error
	// Watch blocks until the container hits a limitation, or ctx ends. An
	// isolator that never reports limitations returns (nil, nil) at once,
	// so that it holds no goroutine per container.
	Watch(ctx context.Context, id *typesv1.ContainerID) (*typesv1.Limitation, error)
	// Update applies new resources.
	Update(ctx context.Context, id *typesv1.ContainerID, resources, limits *typesv1.Resources) error
	// Usage samples resource usage.
	Usage(ctx context.Context, id *typesv1.ContainerID) (*typesv1.ResourceStatistics, error)
	// Status describes the container as the isolator sees it.
	Status(ctx context.Context, id *typesv1.ContainerID) (map[string]string, error)
	// Cleanup releases everything held for the container.
	Cleanup(ctx context.Context, id *typesv1.ContainerID) error
	// Recover rebuilds state for living containers; orphans are about to be destroyed.
	Recover(ctx context.Context, containers []*isolatorv1.RecoveredContainer, orphans []*typesv1.ContainerID) error
}

// Base gives an Isolator the defaults: nothing to isolate, watch, update,
// report, clean up or recover.
type Base struct{}

// Isolate does nothing.
func (Base) Isolate(context.Context, *typesv1.ContainerID, int) error { return nil }

// Watch answers at once: no limitation is ever reported.
func (Base) Watch(context.Context, *typesv1.ContainerID) (*typesv1.Limitation, error) {
	return nil, nil
}

// Update does nothing.
func (Base) Update(context.Context, *typesv1.ContainerID, *typesv1.Resources, *typesv1.Resources) error {
	return nil
}

// Usage reports nothing.
func (Base) Usage(context.Context, *typesv1.ContainerID) (*typesv1.ResourceStatistics, error) {
	return &typesv1.ResourceStatistics{}, nil
}

// Status reports nothing.
func (Base) Status(context.Context, *typesv1.ContainerID) (map[string]string, error) {
	return nil, nil
}

// Cleanup does nothing.
func (Base) Cleanup(context.Context, *typesv1.ContainerID) error { return nil }

// Recover does nothing.
func (Base) Recover(context.Context, []*isolatorv1.RecoveredContainer, []*typesv1.ContainerID) error {
	return nil
}
