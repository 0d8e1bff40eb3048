package cgroups

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/berthrt/berth/process/errdefs"
)

// hybridMountinfo is this project's CI host: v1 hierarchies (cpu and
// cpuacct apart) and a cgroup2 mount without controllers.
const hybridMountinfo = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

// systemdV1Mountinfo co-mounts cpu and cpuacct, as systemd does.
const systemdV1Mountinfo = `25 24 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
29 25 0:26 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,memory
30 25 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:11 - cgroup2 cgroup2 rw,nsdelegate
`

// unifiedMountinfo is a modern host: cgroup2 only. The second cgroup2 line
// is a container's bind of a sub-cgroup, which must not be taken.
const unifiedMountinfo = `22 1 0:21 / /sys rw - sysfs sysfs rw
26 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
90 22 0:23 /system.slice/x /var/lib/x/cgroup rw - cgroup2 cgroup2 rw
`

func TestParseLayout(t *testing.T) {
	ctl := func(text string) func(string) (string, error) {
		return func(mp string) (string, error) { return text, nil }
	}
	tests := []struct {
		name, mountinfo, controllers string
		want                         Layout
	}{
		{"hybrid: v1 for the controllers", hybridMountinfo, "", Layout{
			Version: V1, Unified: "/sys/fs/cgroup/unified",
			V1: map[string]string{CPU: "/sys/fs/cgroup/cpu", CPUAcct: "/sys/fs/cgroup/cpuacct", Memory: "/sys/fs/cgroup/memory", "freezer": "/sys/fs/cgroup/freezer"},
		}},
		{"systemd v1 with cpu,cpuacct co-mounted", systemdV1Mountinfo, "\n", Layout{
			Version: V1, Unified: "/sys/fs/cgroup/unified",
			V1: map[string]string{CPU: "/sys/fs/cgroup/cpu,cpuacct", CPUAcct: "/sys/fs/cgroup/cpu,cpuacct", Memory: "/sys/fs/cgroup/memory"},
		}},
		{"unified with controllers", unifiedMountinfo, "cpuset cpu io memory hugetlb pids rdma misc\n", Layout{
			Version: V2, Unified: "/sys/fs/cgroup", V1: map[string]string{},
			UnifiedControllers: []string{"cpu", "cpuset", "hugetlb", "io", "memory", "misc", "pids", "rdma"},
		}},
		{"unified without controllers is no v2", unifiedMountinfo, "", Layout{
			Version: V1, Unified: "/sys/fs/cgroup", V1: map[string]string{},
		}},
		{"no cgroups at all", "22 1 0:21 / /sys rw - sysfs sysfs rw\n", "", Layout{Version: V1, V1: map[string]string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLayout(tt.mountinfo, ctl(tt.controllers))
			if err != nil {
				t.Fatal(err)
			}
			if len(got.UnifiedControllers) == 0 {
				got.UnifiedControllers = nil
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseLayout =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
	_, err := ParseLayout(unifiedMountinfo, func(string) (string, error) { return "", fmt.Errorf("gone: %w", errdefs.ErrNotFound) })
	if !errdefs.IsNotFound(err) {
		t.Errorf("unreadable cgroup.controllers: err %v, want NotFound", err)
	}
}

func TestNewManager(t *testing.T) {
	hybrid, _ := ParseLayout(hybridMountinfo, func(string) (string, error) { return "", nil })
	m, err := NewManager(hybrid, "berth", []string{CPU})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Dirs("c1"), []string{"/sys/fs/cgroup/cpu/berth/c1", "/sys/fs/cgroup/cpuacct/berth/c1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("cpu dirs %v, want %v", got, want)
	}
	co, _ := ParseLayout(systemdV1Mountinfo, func(string) (string, error) { return "", nil })
	m, _ = NewManager(co, "a/b", []string{CPU, Memory})
	if got, want := m.Dirs("c1"), []string{"/sys/fs/cgroup/cpu,cpuacct/a/b/c1", "/sys/fs/cgroup/memory/a/b/c1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("co-mounted dirs %v, want %v", got, want)
	}
	v2, _ := ParseLayout(unifiedMountinfo, func(string) (string, error) { return "cpu memory", nil })
	m, _ = NewManager(v2, "berth", []string{CPU, Memory})
	if got, want := m.Dirs("c1"), []string{"/sys/fs/cgroup/berth/c1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("v2 dirs %v, want %v", got, want)
	}
	for _, tt := range []struct {
		name  string
		l     Layout
		root  string
		ctl   []string
		class error
	}{
		{"absolute root", hybrid, "/berth", []string{CPU}, errdefs.ErrInvalidArgument},
		{"root escapes", hybrid, "../x", []string{CPU}, errdefs.ErrInvalidArgument},
		{"v1 controller not mounted", hybrid, "berth", []string{"pids"}, errdefs.ErrFailedPrecondition},
		{"v2 controller not offered", v2, "berth", []string{"io"}, errdefs.ErrFailedPrecondition},
	} {
		if _, err := NewManager(tt.l, tt.root, tt.ctl); !errors.Is(err, tt.class) {
			t.Errorf("%s: err %v, want %v", tt.name, err, tt.class)
		}
	}
	m, _ = NewManager(v2, "berth", nil)
	for _, bad := range []string{"", ".", "..", "a/b"} {
		if err := m.Create(bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Create(%q): err %v, want InvalidArgument", bad, err)
		}
	}
}
