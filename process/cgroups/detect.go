package cgroups

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/berthrt/berth/process/errdefs"
	"github.com/berthrt/berth/process/mount"
)

// Version is the cgroups interface a host is driven through.
type Version int

// The versions.
const (
	V1 Version = 1
	V2 Version = 2
)

func (v Version) String() string { return fmt.Sprintf("v%d", int(v)) }

// Controller names, as the kernel spells them.
const (
	CPU     = "cpu"
	CPUAcct = "cpuacct"
	Memory  = "memory"
)

// Layout is where the host's cgroup hierarchies are mounted.
type Layout struct {
	// Version is how the controllers are driven.
	Version Version
	// V1 maps each v1 controller to the mount point of its hierarchy
	// (co-mounted controllers share one).
	V1 map[string]string
	// Unified is the mount point of the cgroup2 hierarchy, "" without one.
	// On a v1 host it may exist without controllers.
	Unified string
	// UnifiedControllers are those the cgroup2 root offers.
	UnifiedControllers []string
}

// ParseLayout reads the cgroup mounts of a mountinfo text; controllers
// returns the content of cgroup.controllers of a cgroup2 mount point. A host
// whose cpu or memory controller is a v1 hierarchy is V1; else a cgroup2
// mount whose root offers controllers makes it V2; else V1 (what controllers
// the caller needs is checked by NewManager).
func ParseLayout(mountinfo string, controllers func(mountPoint string) (string, error)) (Layout, error) {
	l := Layout{V1: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(mountinfo))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - type source superopts
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || len(fields) < sep+4 {
			continue
		}
		// Only the hierarchy's own root: a bind of a sub-cgroup elsewhere
		// (a container's view) is not where its cgroups live.
		if fields[3] != "/" {
			continue
		}
		mp := mount.UnescapeMountinfo(fields[4])
		switch fields[sep+1] {
		case "cgroup":
			for _, opt := range strings.Split(fields[sep+3], ",") {
				switch opt {
				case "rw", "ro", "":
					continue
				}
				if strings.Contains(opt, "=") || opt == "clone_children" || opt == "noprefix" || opt == "xattr" || opt == "cpuset_v2_mode" {
					continue
				}
				if _, dup := l.V1[opt]; !dup {
					l.V1[opt] = mp
				}
			}
		case "cgroup2":
			if l.Unified == "" {
				l.Unified = mp
			}
		}
	}
	if err := sc.Err(); err != nil {
		return Layout{}, fmt.Errorf("mountinfo: %w", errdefs.ErrInternal)
	}
	if l.Unified != "" {
		text, err := controllers(l.Unified)
		if err != nil {
			return Layout{}, fmt.Errorf("read %s/cgroup.controllers: %w", l.Unified, err)
		}
		l.UnifiedControllers = strings.Fields(text)
		sort.Strings(l.UnifiedControllers)
	}
	_, cpu1 := l.V1[CPU]
	_, mem1 := l.V1[Memory]
	if !cpu1 && !mem1 && l.Unified != "" && len(l.UnifiedControllers) > 0 {
		l.Version = V2
	} else {
		l.Version = V1
	}
	return l, nil
}

// Detect reads the layout of this host from /proc/self/mountinfo.
func Detect() (Layout, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return Layout{}, fmt.Errorf("read mountinfo: %w", errdefs.ErrInternal)
	}
	return ParseLayout(string(data), func(mp string) (string, error) {
		b, err := os.ReadFile(filepath.Join(mp, "cgroup.controllers"))
		return string(b), err
	})
}
