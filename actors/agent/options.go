package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berthrt/berth/actors/isolator"
	cgroupsiso "github.com/berthrt/berth/actors/isolator/cgroups"
	"github.com/berthrt/berth/actors/isolator/filesystem"
	"github.com/berthrt/berth/actors/isolator/namespaces"
	"github.com/berthrt/berth/actors/isolator/runtime"
	"github.com/berthrt/berth/actors/metrics"
	"github.com/berthrt/berth/actors/provisioner"
	"github.com/berthrt/berth/process/cgroups"
	"github.com/berthrt/berth/process/errdefs"
	"github.com/berthrt/berth/process/lockfile"
)

// Defaults, as the CLI documents them.
const (
	DefaultWorkDir    = "/var/lib/berth"
	DefaultRuntimeDir = "/run/berth"
	// DefaultIsolation is what a container gets unless --isolation says otherwise.
	DefaultIsolation = "filesystem/linux,docker/runtime,namespaces/pid,namespaces/ipc,namespaces/uts"
)

// Options configure an agent.
type Options struct {
	WorkDir    string
	RuntimeDir string
	// Isolation is the isolators by name; "" means DefaultIsolation.
	Isolation string
	// Backend is the rootfs backend; "" picks the best one available.
	Backend string
	// DockerStoreDir defaults to <work_dir>/store/docker.
	DockerStoreDir string
	// DockerRegistry: a directory of `docker save` tarballs when it starts
	// with "/" (Mesos's ImageTarPuller), else the registry names are pulled
	// from: HOST[:PORT] or http(s)://HOST[:PORT] (plain HTTP for loopback
	// hosts only); names without a registry host are pulled from it.
	DockerRegistry string
	// DockerConfig is a Docker config.json with registry logins.
	DockerConfig string
	// ImageProviders lists the image stores, "docker" and "appc"
	// (--image_providers); "" means DefaultImageProviders.
	ImageProviders string
	// AppcStoreDir defaults to <work_dir>/store/appc.
	AppcStoreDir string
	// AppcDiscoveryPrefix is --appc_simple_discovery_uri_prefix; ""
	// means Mesos's default "http://", "none" turns discovery off.
	AppcDiscoveryPrefix string
	// SandboxDirectory is the sandbox's path inside containers.
	SandboxDirectory string
	// InitPath and InitArgs re-exec the container's init (default: this
	// binary, "init"); tests point them at the test binary.
	InitPath string
	InitArgs []string
	// ImageGCThreshold turns on the automatic image GC: when the file
	// system of the docker store is fuller than this fraction (0 < t <= 1),
	// unused images and layers are pruned. 0 turns it off.
	ImageGCThreshold float64
	// ImageGCInterval is how often the disk is checked (default 1m).
	ImageGCInterval time.Duration
	// ImageGCExcluded are image references the GC never removes.
	ImageGCExcluded []string
	// GCDelay keeps a finished container's sandbox this long on an empty
	// disk (default 1 week); GCDiskHeadroom shortens it as the disk fills
	// (default 0.1); DiskWatchInterval is how often sandboxes are checked
	// (default 1m). Mesos's --gc_delay, --gc_disk_headroom and
	// --disk_watch_interval.
	GCDelay           time.Duration
	GCDiskHeadroom    float64
	DiskWatchInterval time.Duration
	// OnLockBusy, when set, is told the pid of another agent holding the work
	// or runtime dir, and Start waits for it; nil makes Start fail at once.
	OnLockBusy func(holder int)
	// CgroupsRoot is the cgroup below each hierarchy's root that holds the
	// containers' cgroups (--cgroups_root); "" means cgroups.DefaultRoot.
	CgroupsRoot string
	// Metrics collect the agent's metrics and time its mechanics; nil: Start
	// makes its own (Agent.Metrics).
	Metrics *metrics.Metrics
}

func (o *Options) setDefaults() {
	if o.WorkDir == "" {
		o.WorkDir = DefaultWorkDir
	}
	if o.RuntimeDir == "" {
		o.RuntimeDir = DefaultRuntimeDir
	}
	if o.Isolation == "" {
		o.Isolation = DefaultIsolation
	}
	if o.GCDelay == 0 {
		o.GCDelay = DefaultGCDelay
	}
	if o.GCDiskHeadroom == 0 {
		o.GCDiskHeadroom = DefaultGCDiskHeadroom
	}
	if o.DiskWatchInterval == 0 {
		o.DiskWatchInterval = DefaultDiskWatchInterval
	}
	if o.CgroupsRoot == "" {
		o.CgroupsRoot = cgroups.DefaultRoot
	}
	if o.ImageGCInterval == 0 {
		o.ImageGCInterval = DefaultImageGCInterval
	}
	if o.DockerStoreDir == "" {
		o.DockerStoreDir = filepath.Join(o.WorkDir, "store", "docker")
	}
	o.appcDefaults()
}

// isolatorOrder is the fixed order isolators prepare in (Mesos's table
// order: filesystem first, cleanup in reverse).
var isolatorOrder = []string{"filesystem/linux", "cgroups/cpu", "cgroups/mem", "docker/runtime", "namespaces/ipc", "namespaces/pid", "namespaces/uts"}

// buildIsolators parses --isolation into isolators in the fixed order.
func buildIsolators(o Options) ([]isolator.Isolator, error) {
	want := map[string]bool{}
	for _, name := range strings.Split(o.Isolation, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if name == "appc/runtime" {
			// One runtime isolator applies Docker configs and APPC
			// manifests alike (ADR 0010); Mesos's name is accepted.
			if want[name] {
				return nil, fmt.Errorf("--isolation: %q given twice: %w", name, errdefs.ErrInvalidArgument)
			}
			want[name] = true
			continue
		}
		if want[name] {
			return nil, fmt.Errorf("--isolation: %q given twice: %w", name, errdefs.ErrInvalidArgument)
		}
		want[name] = true
	}
	if want["cgroups"] {
		// Mesos's deprecated name for both cgroups isolators.
		delete(want, "cgroups")
		want["cgroups/cpu"], want["cgroups/mem"] = true, true
	}
	if want["appc/runtime"] {
		delete(want, "appc/runtime")
		want["docker/runtime"] = true
	}
	var out []isolator.Isolator
	var layout *cgroups.Layout
	cgroupsLayout := func() (cgroups.Layout, error) {
		if layout == nil {
			l, err := cgroups.Detect()
			if err != nil {
				return cgroups.Layout{}, err
			}
			layout = &l
		}
		return *layout, nil
	}
	for _, name := range isolatorOrder {
		if !want[name] {
			continue
		}
		delete(want, name)
		switch name {
		case "filesystem/linux":
			fs, err := filesystem.NewLinux(o.SandboxDirectory)
			if err != nil {
				return nil, err
			}
			out = append(out, fs)
		case "cgroups/cpu", "cgroups/mem":
			l, err := cgroupsLayout()
			if err != nil {
				return nil, err
			}
			root := o.CgroupsRoot
			if root == "" {
				root = cgroups.DefaultRoot
			}
			var iso isolator.Isolator
			if name == "cgroups/cpu" {
				iso, err = cgroupsiso.NewCPU(l, root)
			} else {
				iso, err = cgroupsiso.NewMem(l, root)
			}
			if err != nil {
				return nil, err
			}
			out = append(out, iso)
		case "docker/runtime":
			out = append(out, runtime.NewDocker())
		case "namespaces/ipc":
			out = append(out, namespaces.IPC{})
		case "namespaces/pid":
			out = append(out, namespaces.PID{})
		case "namespaces/uts":
			out = append(out, namespaces.UTS{})
		}
	}
	for name := range want {
		return nil, fmt.Errorf("--isolation: unknown isolator %q (known: %s): %w", name, strings.Join(isolatorOrder, ", "), errdefs.ErrInvalidArgument)
	}
	return out, nil
}

// InUse reads the layers that containers' rootfses were built from and the
// images they came from, from the provisioner's checkpoints, so that a
// prune keeps them.
func InUse(o Options) (layers, images []string, err error) {
	o.setDefaults()
	return provisioner.InUse(filepath.Join(o.WorkDir, "provisioner"))
}

// LockWorkDir takes the agent lock of the work dir (waiting for a running
// agent to finish) and returns its release.
func LockWorkDir(ctx context.Context, o Options, busy func(holder int)) (func(), error) {
	o.setDefaults()
	if err := os.MkdirAll(o.WorkDir, 0o711); err != nil {
		return nil, err
	}
	l, err := lockfile.Acquire(ctx, filepath.Join(o.WorkDir, "agent.lock"), busy)
	if err != nil {
		return nil, err
	}
	return l.Release, nil
}
