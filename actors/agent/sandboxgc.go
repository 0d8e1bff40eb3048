package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/berthrt/berth/actors/ask"
	"github.com/berthrt/berth/actors/async"
	containerizerv1 "github.com/berthrt/berth/messages/containerizer/v1"
	"github.com/berthrt/berth/process/errdefs"
)

// Sandbox GC defaults, Mesos's.
const (
	// DefaultGCDelay is how long a finished container's sandbox is kept
	// when the disk is empty (Mesos's --gc_delay).
	DefaultGCDelay = 7 * 24 * time.Hour
	// DefaultGCDiskHeadroom shortens the delay as the disk fills (Mesos's
	// --gc_disk_headroom).
	DefaultGCDiskHeadroom = 0.1
	// DefaultDiskWatchInterval is how often sandboxes are checked (Mesos's
	// --disk_watch_interval).
	DefaultDiskWatchInterval = time.Minute
)

// sandboxGCTick is one pass over the sandboxes.
type sandboxGCTick struct{}

// sandboxGC removes the sandboxes of finished containers, as Mesos's agent
// GC does: a sandbox is kept for gc_delay × max(0, 1 − headroom − disk
// use) after its last change, so that a filling disk shortens the wait.
// The sandboxes of containers the containerizer has not finished, and of
// launches in flight, are never touched. It keeps no state: the age is the
// sandbox's last modification, so an agent restart changes nothing.
type sandboxGC struct {
	delay    time.Duration
	headroom float64
	interval time.Duration
	// dir is <work_dir>/sandboxes; workDir's file system is measured.
	dir, workDir string
	timer        *time.Timer
}

// validateSandboxGC checks the GC options.
func validateSandboxGC(o Options) error {
	if o.GCDelay < 0 {
		return fmt.Errorf("--gc_delay=%v: must not be negative: %w", o.GCDelay, errdefs.ErrInvalidArgument)
	}
	if o.GCDiskHeadroom < 0 || o.GCDiskHeadroom > 1 {
		return fmt.Errorf("--gc_disk_headroom=%v: want a fraction between 0 and 1: %w", o.GCDiskHeadroom, errdefs.ErrInvalidArgument)
	}
	if o.DiskWatchInterval <= 0 {
		return fmt.Errorf("--disk_watch_interval=%v: must be positive: %w", o.DiskWatchInterval, errdefs.ErrInvalidArgument)
	}
	return nil
}

// maxSandboxAge is how long a finished sandbox may stay at disk use used:
// never less than a minute (or the delay, if shorter), so that a client
// still reads the output of a container that has just ended.
func maxSandboxAge(delay time.Duration, headroom, used float64) time.Duration {
	floor := min(delay, time.Minute)
	f := 1 - headroom - used
	if f <= 0 {
		return floor
	}
	return max(time.Duration(float64(delay)*f), floor)
}

// lastChange is the latest modification of dir and of its entries (the
// container's stdout and stderr grow without changing dir's own mtime).
func lastChange(dir string) (time.Time, error) {
	st, err := os.Lstat(dir)
	if err != nil {
		return time.Time{}, err
	}
	last := st.ModTime()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return last, err
	}
	for _, e := range ents {
		if info, err := e.Info(); err == nil && info.ModTime().After(last) {
			last = info.ModTime()
		}
	}
	return last, nil
}

// collectSandboxes removes the sandboxes below dir that are not in keep and
// have not changed for maxAge, and returns their names.
func collectSandboxes(dir string, keep map[string]bool, maxAge time.Duration, now time.Time) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		if !e.IsDir() || keep[e.Name()] {
			continue
		}
		path := filepath.Join(dir, e.Name())
		last, err := lastChange(path)
		if err != nil || now.Sub(last) < maxAge {
			continue
		}
		if err := os.RemoveAll(path); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, e.Name())
	}
	return removed, errors.Join(errs...)
}

// onSandboxGC runs one pass: the containerizer says which containers are
// not finished, then the sandboxes are measured and removed off the
// mailbox.
func (a *agentActor) onSandboxGC(c actor.Context) {
	g := &a.sandboxGC
	ask.Reenter(c, a.pids.containerizer, &containerizerv1.ListContainersRequest{}, time.Minute, func(r *containerizerv1.ListContainersResponse, err error) {
		if err != nil {
			a.logger.Warn("sandbox gc: cannot list the containers", zap.Error(err))
			a.scheduleSandboxGC(c)
			return
		}
		keep := map[string]bool{}
		for id := range a.pending {
			keep[id] = true
		}
		for _, st := range r.GetContainers() {
			if st.GetState() != containerizerv1.ContainerState_CONTAINER_STATE_TERMINATED {
				keep[st.GetContainerId().GetValue()] = true
			}
		}
		async.Run(c, 10*time.Minute, func() (interface{}, error) {
			used, err := diskUsage(g.workDir)
			if err != nil {
				return nil, err
			}
			return collectSandboxes(g.dir, keep, maxSandboxAge(g.delay, g.headroom, used), time.Now())
		}, func(v interface{}, err error) {
			removed, _ := v.([]string)
			if len(removed) > 0 {
				a.logger.Info("sandbox gc: removed", zap.Strings("sandboxes", removed))
			}
			if err != nil {
				a.logger.Warn("sandbox gc", zap.Error(err))
			}
			a.scheduleSandboxGC(c)
		})
	})
}

// scheduleSandboxGC sends the next tick after the interval.
func (a *agentActor) scheduleSandboxGC(c actor.Context) {
	sys, self := c.ActorSystem(), c.Self()
	a.sandboxGC.timer = time.AfterFunc(a.sandboxGC.interval, func() { sys.Root.Send(self, &sandboxGCTick{}) })
}
