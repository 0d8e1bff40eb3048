package cgroups

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/berthrt/berth/actors/isolator"
	isolatorv1 "github.com/berthrt/berth/messages/isolator/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
	cg "github.com/berthrt/berth/process/cgroups"
	"github.com/berthrt/berth/process/errdefs"
)

// DestroyTimeout bounds the kill and removal of a container's cgroups
// (Mesos: --cgroups_destroy_timeout=60secs).
const DestroyTimeout = time.Minute

// subsystem is what both isolators share: a Manager of their controllers.
type subsystem struct {
	name string
	m    *cg.Manager
}

func newSubsystem(name string, l cg.Layout, root string, controllers ...string) (subsystem, error) {
	m, err := cg.NewManager(l, root, controllers)
	if err != nil {
		return subsystem{}, fmt.Errorf("%s: %w", name, err)
	}
	return subsystem{name: name, m: m}, nil
}

// Limits turns a container's requests and limits into cgroup limits: the
// CPU weight follows the request (else the limit), the hard limits follow
// the limits (else the requests).
func Limits(resources, limits *typesv1.Resources) cg.Limits {
	shareCPUs := resources.GetCpus()
	if shareCPUs <= 0 {
		shareCPUs = limits.GetCpus()
	}
	quota := limits.GetCpus()
	if quota <= 0 {
		quota = resources.GetCpus()
	}
	mem := limits.GetMemBytes()
	if mem == 0 {
		mem = resources.GetMemBytes()
	}
	return cg.Limits{CPUShares: cg.SharesFromCPUs(shareCPUs), CPUQuota: quota, MemoryBytes: mem}
}

// Name is the registry key.
func (s subsystem) Name() string { return s.name }

// Prepare creates the container's cgroups and writes its limits; there is
// nothing for the launch plan (the init is attached by Isolate, before the
// command is released). A failed Prepare removes what it made: Cleanup
// only follows a Prepare that succeeded.
func (s subsystem) Prepare(ctx context.Context, id *typesv1.ContainerID, config *typesv1.ContainerConfig) (*isolatorv1.ContainerLaunchInfo, error) {
	name := id.GetValue()
	if err := s.m.Create(name); err != nil {
		return nil, s.undo(ctx, name, err)
	}
	if err := s.m.SetLimits(name, Limits(config.GetResources(), config.GetLimits())); err != nil {
		return nil, s.undo(ctx, name, err)
	}
	return nil, nil
}

func (s subsystem) undo(ctx context.Context, name string, err error) error {
	dctx, cancel := context.WithTimeout(ctx, DestroyTimeout)
	defer cancel()
	if derr := s.m.Destroy(dctx, name); derr != nil {
		return fmt.Errorf("%w (and removing the cgroup: %v)", err, derr)
	}
	return err
}

// Isolate moves the container's init into its cgroups; its command and
// every process after it are born there.
func (s subsystem) Isolate(_ context.Context, id *typesv1.ContainerID, pid int) error {
	return s.m.Attach(id.GetValue(), pid)
}

// Update writes new limits.
func (s subsystem) Update(_ context.Context, id *typesv1.ContainerID, resources, limits *typesv1.Resources) error {
	if !s.m.Exists(id.GetValue()) {
		return fmt.Errorf("%s: container %q has no cgroup: %w", s.name, id.GetValue(), errdefs.ErrNotFound)
	}
	return s.m.SetLimits(id.GetValue(), Limits(resources, limits))
}

// Status names the container's cgroups.
func (s subsystem) Status(_ context.Context, id *typesv1.ContainerID) (map[string]string, error) {
	out := map[string]string{}
	for i, d := range s.m.Dirs(id.GetValue()) {
		out[fmt.Sprintf("%s.cgroup.%d", s.name, i)] = d
	}
	return out, nil
}

// Cleanup kills what is left in the container's cgroups and removes them;
// an unknown container is not an error.
func (s subsystem) Cleanup(ctx context.Context, id *typesv1.ContainerID) error {
	dctx, cancel := context.WithTimeout(ctx, DestroyTimeout)
	defer cancel()
	return s.m.Destroy(dctx, id.GetValue())
}

// Recover keeps the cgroups of the recovered containers (their processes
// are still in them) and destroys every other cgroup below the root: the
// orphans' and those of containers whose checkpoint is gone.
func (s subsystem) Recover(ctx context.Context, containers []*isolatorv1.RecoveredContainer, _ []*typesv1.ContainerID) error {
	var keep []string
	for _, c := range containers {
		keep = append(keep, c.GetContainerId().GetValue())
	}
	dctx, cancel := context.WithTimeout(ctx, DestroyTimeout)
	defer cancel()
	if _, err := s.m.Purge(dctx, func(name string) bool { return slices.Contains(keep, name) }); err != nil {
		return fmt.Errorf("%s: destroying unknown cgroups: %w", s.name, err)
	}
	return nil
}

// Manager is the mechanics object (for tests and the agent).
func (s subsystem) Manager() *cg.Manager { return s.m }

// CPU is cgroups/cpu: CPU weight (cpu.shares / cpu.weight) and hard quota
// (CFS quota / cpu.max); usage is CPU time.
type CPU struct{ subsystem }

// NewCPU returns cgroups/cpu for the host's layout, below root.
func NewCPU(l cg.Layout, root string) (*CPU, error) {
	s, err := newSubsystem("cgroups/cpu", l, root, cg.CPU)
	if err != nil {
		return nil, err
	}
	return &CPU{s}, nil
}

// Watch answers at once: CPU is throttled, never a reason to stop.
func (*CPU) Watch(context.Context, *typesv1.ContainerID) (*typesv1.Limitation, error) {
	return nil, nil
}

// Usage reports the CPU time used.
func (c *CPU) Usage(_ context.Context, id *typesv1.ContainerID) (*typesv1.ResourceStatistics, error) {
	st, err := c.m.Stats(id.GetValue())
	if err != nil {
		return nil, err
	}
	return &typesv1.ResourceStatistics{CpusUserTimeSecs: st.CPUUserSeconds, CpusSystemTimeSecs: st.CPUSystemSeconds}, nil
}

// Mem is cgroups/mem: a hard memory limit (memory.limit_in_bytes /
// memory.max, no swap beyond it where swap is accounted), the kernel's OOM
// killer on, and a limitation when it kills.
type Mem struct {
	subsystem
	mu sync.Mutex
	// watching holds, per container, a channel closed when its Watch ends.
	watching map[string]chan struct{}
}

// NewMem returns cgroups/mem for the host's layout, below root.
func NewMem(l cg.Layout, root string) (*Mem, error) {
	s, err := newSubsystem("cgroups/mem", l, root, cg.Memory)
	if err != nil {
		return nil, err
	}
	return &Mem{subsystem: s, watching: map[string]chan struct{}{}}, nil
}

// watchSettle bounds how long Cleanup waits for the container's Watch to
// take its last look at the OOM counter before the cgroup goes.
const watchSettle = 2 * time.Second

// Watch blocks until the OOM killer kills in the container's cgroup and
// reports it as a memory limitation; it ends without one when ctx ends
// (Cleanup) with no kill seen, or when the cgroup is gone.
func (m *Mem) Watch(ctx context.Context, id *typesv1.ContainerID) (*typesv1.Limitation, error) {
	name := id.GetValue()
	done := make(chan struct{})
	m.mu.Lock()
	m.watching[name] = done
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		if m.watching[name] == done {
			delete(m.watching, name)
		}
		m.mu.Unlock()
		close(done)
	}()
	kills, err := m.m.WaitOOM(ctx, name)
	switch {
	case err == nil && kills > 0:
		st, _ := m.m.Stats(name)
		return &typesv1.Limitation{
			Resources: []string{"mem"},
			Message:   limitationMessage(kills, st.MemoryLimit),
		}, nil
	case ctx.Err() != nil, errdefs.IsNotFound(err):
		return nil, nil
	default:
		return nil, err
	}
}

// Cleanup lets the container's Watch (cancelled just before) finish its
// last look at the OOM counter, then destroys the cgroup: an OOM kill
// whose victim's exit was seen first is still reported.
func (m *Mem) Cleanup(ctx context.Context, id *typesv1.ContainerID) error {
	m.mu.Lock()
	done := m.watching[id.GetValue()]
	m.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-time.After(watchSettle):
		case <-ctx.Done():
		}
	}
	return m.subsystem.Cleanup(ctx, id)
}

// limitationMessage says what the OOM killer did, and the limit it kept.
func limitationMessage(kills, limit uint64) string {
	lim := "its memory limit"
	if limit > 0 {
		lim = fmt.Sprintf("its memory limit of %s (%d bytes)", humanBytes(limit), limit)
	}
	proc := "process"
	if kills != 1 {
		proc = "processes"
	}
	return fmt.Sprintf("Memory limit exceeded: the kernel's OOM killer killed %d %s of the container to keep it within %s", kills, proc, lim)
}

// humanBytes prints n in the largest binary unit that divides it evenly
// enough to read (64 MiB, 1.5 GiB).
func humanBytes(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if v == float64(uint64(v)) {
		return fmt.Sprintf("%d %s", uint64(v), units[i])
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

// Usage reports the memory in use, the limit and the processes.
func (m *Mem) Usage(_ context.Context, id *typesv1.ContainerID) (*typesv1.ResourceStatistics, error) {
	st, err := m.m.Stats(id.GetValue())
	if err != nil {
		return nil, err
	}
	return &typesv1.ResourceStatistics{MemRssBytes: st.MemoryRSS, MemLimitBytes: st.MemoryLimit, Processes: uint32(st.Processes)}, nil
}

var (
	_ isolator.Isolator = (*CPU)(nil)
	_ isolator.Isolator = (*Mem)(nil)
)
