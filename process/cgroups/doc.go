// Package cgroups creates, limits, samples and destroys the control groups of
// containers, on cgroups v1 (one hierarchy per controller, or a few
// controllers co-mounted) and v2 (one unified hierarchy). It is the
// mechanics behind the cgroups/cpu and cgroups/mem isolators; it never
// imports protoactor.
//
// Detect reads /proc/self/mountinfo: a host whose cpu and memory
// controllers are mounted as v1 hierarchies is driven through v1, even when
// a cgroup2 mount exists beside them (a "hybrid" host, whose cgroup2 mount
// has no controllers); a host whose cgroup2 mount offers the controllers in
// its cgroup.controllers is driven through v2.
//
// A container's cgroup is <hierarchy>/<root>/<container id> (root is
// --cgroups_root, "berth" by default), made in every v1 hierarchy of the
// Manager's controllers or once in the unified hierarchy. Limits are a plan:
// Plan turns resources into a list of {controller, file, value} writes per
// version, a pure function that is table-tested; Manager.Apply writes it.
// Statistics come from cpuacct.stat / cpu.stat and memory.stat; an OOM kill
// is awaited with an eventfd registered on memory.oom_control (v1) or with
// inotify on memory.events (v2). Destroy kills every process left (v2's
// cgroup.kill when the kernel has it), waits for the cgroup to empty and
// removes it. A Manager only ever lists, changes or removes cgroups below
// its root.
package cgroups
