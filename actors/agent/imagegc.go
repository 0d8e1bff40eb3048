package agent

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/actors/ask"
	"github.com/berthrt/berth/actors/async"
	provisionerv1 "github.com/berthrt/berth/messages/provisioner/v1"
	"github.com/berthrt/berth/process/errdefs"
)

// Image GC defaults, as the CLI documents them.
const (
	// DefaultImageGCThreshold: prune when the store's file system is more
	// than 90% full (kubelet prunes at 85%; Mesos has no default policy).
	DefaultImageGCThreshold = 0.9
	// DefaultImageGCInterval is how often the store's disk is checked
	// (Mesos's image_disk_watch_interval).
	DefaultImageGCInterval = time.Minute
)

// startGC starts the image and sandbox GC loops; the agent sends it once
// recovery has rebuilt the tables, so that they know every container.
type startGC struct{}

// imageGCTick is one check of the store's disk.
type imageGCTick struct{}

// imageGC is the automatic image GC: every interval it measures how full the
// file system of the image store is and, above the threshold, asks the
// provisioner to prune. The provisioner keeps the images and layers of every
// container it knows, and waits for provisions in flight.
type imageGC struct {
	threshold float64
	interval  time.Duration
	excluded  []string
	// dirs are the stores' directories; a round prunes when the file
	// system of any of them is over the threshold.
	dirs    []string
	started bool
	timer   *time.Timer
}

// validateImageGC checks the GC options.
func validateImageGC(o Options) error {
	if o.ImageGCThreshold < 0 || o.ImageGCThreshold > 1 {
		return fmt.Errorf("--image_gc_threshold=%v: want a fraction of the disk between 0 (off) and 1: %w", o.ImageGCThreshold, errdefs.ErrInvalidArgument)
	}
	if o.ImageGCThreshold > 0 && o.ImageGCInterval <= 0 {
		return fmt.Errorf("--image_gc_interval=%v: must be positive: %w", o.ImageGCInterval, errdefs.ErrInvalidArgument)
	}
	return nil
}

// fullest returns the highest used fraction of the file systems holding
// dirs.
func fullest(dirs []string) (float64, error) {
	max := 0.0
	for _, d := range dirs {
		u, err := diskUsage(d)
		if err != nil {
			return 0, err
		}
		if u > max {
			max = u
		}
	}
	return max, nil
}

// diskUsage returns the used fraction of the file system holding dir, the
// way df counts it: used / (used + available to unprivileged users).
func diskUsage(dir string) (float64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	used := st.Blocks - st.Bfree
	if used+st.Bavail == 0 {
		return 0, nil
	}
	return float64(used) / float64(used+st.Bavail), nil
}

// onImageGC handles the GC loop's messages on the agent actor.
func (a *agentActor) onImageGC(c actor.Context, m interface{}) {
	g := &a.gc
	switch m.(type) {
	case *startGC:
		if g.started {
			return
		}
		g.started = true
		a.scheduleSandboxGC(c)
		if g.threshold == 0 {
			return
		}
		a.logger.Info("image gc on", zap.Float64("threshold", g.threshold), zap.Duration("interval", g.interval), zap.Strings("stores", g.dirs))
		a.scheduleImageGC(c)
	case *imageGCTick:
		async.Run(c, time.Minute, func() (interface{}, error) {
			return fullest(g.dirs)
		}, func(v interface{}, err error) {
			if err != nil {
				a.logger.Warn("image gc: cannot measure the store's disk", zap.Error(err))
				a.scheduleImageGC(c)
				return
			}
			used := v.(float64)
			if used < g.threshold {
				a.logger.Debug("image gc: below the threshold", zap.Float64("used", used))
				a.scheduleImageGC(c)
				return
			}
			req := &provisionerv1.PruneImagesRequest{Excluded: g.excluded}
			ask.Reenter(c, a.pids.provisioner, req, 30*time.Minute, func(r *provisionerv1.PruneImagesResponse, err error) {
				if err != nil {
					a.logger.Warn("image gc: prune failed", zap.Float64("used", used), zap.Error(err))
				} else {
					a.logger.Info("image gc: pruned", zap.Float64("used", used), zap.Strings("images", r.GetRemovedImages()),
						zap.Int("layers", len(r.GetRemovedLayers())), zap.Uint64("reclaimed_bytes", r.GetReclaimedBytes()))
				}
				a.scheduleImageGC(c)
			})
		})
	}
}

// scheduleImageGC sends the next tick after the interval. The timer sends
// through the actor system, never touching the context off the mailbox.
func (a *agentActor) scheduleImageGC(c actor.Context) {
	sys, self := c.ActorSystem(), c.Self()
	a.gc.timer = time.AfterFunc(a.gc.interval, func() { sys.Root.Send(self, &imageGCTick{}) })
}

// stopGC stops the loops when the agent stops.
func (a *agentActor) stopGC() {
	for _, t := range []*time.Timer{a.gc.timer, a.sandboxGC.timer} {
		if t != nil {
			t.Stop()
		}
	}
}
