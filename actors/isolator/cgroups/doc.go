// Package cgroups holds the cgroups/cpu and cgroups/mem isolators (Mesos's
// cgroups subsystems of one cgroups isolator): each puts the container in a
// cgroup of its controllers below --cgroups_root, writes the container's
// limits (its config's limits, else its resources) and reports its usage;
// cgroups/mem also watches for the kernel's OOM killer and reports a memory
// limitation, which makes the containerizer destroy the container. The
// mechanics, on cgroups v1 and v2, are in process/cgroups.
package cgroups
