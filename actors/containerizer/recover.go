package containerizer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/berthrt/berth/actors/ask"
	"github.com/berthrt/berth/actors/async"
	containerizerv1 "github.com/berthrt/berth/messages/containerizer/v1"
	isolatorv1 "github.com/berthrt/berth/messages/isolator/v1"
	launcherv1 "github.com/berthrt/berth/messages/launcher/v1"
	provisionerv1 "github.com/berthrt/berth/messages/provisioner/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/checkpoint"
	"github.com/berthrt/berth/process/errdefs"
)

// found is a container directory read back from the runtime dir.
type found struct {
	id   string
	ckpt *containerizerv1.Checkpoint
	pid  *launcherv1.ProcessCheckpoint
}

// readRuntimeDir lists <runtime_dir>/containers/*: a container with both a
// config and a pid checkpoint had its init forked; the others died during
// launch, before the fork, and only their leftovers remain.
func readRuntimeDir(root string) (forked []found, unforked []string, err error) {
	dir := filepath.Join(root, "containers")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list %s: %w", dir, err)
	}
	for _, e := range entries {
		if !e.IsDir() || !validID.MatchString(e.Name()) {
			continue
		}
		f := found{id: e.Name(), ckpt: &containerizerv1.Checkpoint{}, pid: &launcherv1.ProcessCheckpoint{}}
		cerr := checkpoint.Read(filepath.Join(dir, f.id, "config"), f.ckpt)
		perr := checkpoint.Read(filepath.Join(dir, f.id, "pid"), f.pid)
		if cerr != nil || perr != nil {
			unforked = append(unforked, f.id)
			continue
		}
		forked = append(forked, f)
	}
	return forked, unforked, nil
}

// onRecover rebuilds the containerizer from its checkpoints, in Mesos's
// order: the launcher finds which inits live (and orphans), the provisioner
// keeps the rootfses of known containers and destroys the rest, the
// isolators recover, orphans are killed, and every known container becomes
// waitable again (a dead one terminates at once with its status file).
func (a *Actor) onRecover(c actor.Context) {
	root := a.o.RuntimeDir
	async.Run(c, a.o.Timeouts.IO, func() (interface{}, error) {
		forked, unforked, err := readRuntimeDir(root)
		if err != nil {
			return nil, err
		}
		for _, id := range unforked {
			if err := os.RemoveAll(filepath.Join(root, "containers", id)); err != nil {
				return nil, err
			}
		}
		return forked, nil
	}, func(v interface{}, err error) {
		if err != nil {
			ask.Respond(c, nil, fmt.Errorf("containerizer recovery: %w", err))
			return
		}
		recs := v.([]found)
		var known []*launcherv1.KnownProcess
		var ids []*typesv1.ContainerID
		for _, r := range recs {
			id := &typesv1.ContainerID{Value: r.id}
			ids = append(ids, id)
			known = append(known, &launcherv1.KnownProcess{
				ContainerId: id, Pid: r.pid.GetPid(), StartTime: r.pid.GetStartTime(), RuntimeDir: a.runtimeDir(r.id),
			})
		}
		ask.Reenter(c, a.o.Launcher, &launcherv1.RecoverLauncherRequest{Known: known}, a.o.Timeouts.Kill, func(lr *launcherv1.RecoverLauncherResponse, err error) {
			if err != nil {
				ask.Respond(c, nil, fmt.Errorf("launcher recovery: %w", err))
				return
			}
			ask.Reenter(c, a.o.Provisioner, &provisionerv1.RecoverProvisionerRequest{Known: ids}, a.o.Timeouts.DestroyRootfs, func(_ *provisionerv1.RecoverProvisionerResponse, err error) {
				if err != nil {
					ask.Respond(c, nil, fmt.Errorf("provisioner recovery: %w", err))
					return
				}
				a.recoverIsolators(c, recs, lr.GetOrphans())
			})
		})
	})
}

func (a *Actor) recoverIsolators(c actor.Context, recs []found, orphans []*typesv1.ContainerID) {
	req := &isolatorv1.RecoverIsolatorRequest{Orphans: orphans}
	for _, r := range recs {
		req.Containers = append(req.Containers, &isolatorv1.RecoveredContainer{
			ContainerId: r.ckpt.GetContainerId(), Pid: r.pid.GetPid(), Config: r.ckpt.GetConfig(),
		})
	}
	var errs []string
	var step func(i int)
	step = func(i int) {
		if i == len(a.o.Isolators) {
			if len(errs) > 0 {
				ask.Respond(c, nil, fmt.Errorf("isolator recovery: %s: %w", strings.Join(errs, "; "), errdefs.ErrInternal))
				return
			}
			a.killOrphans(c, recs, orphans)
			return
		}
		ask.Reenter(c, a.o.Isolators[i], req, a.o.Timeouts.Cleanup, func(_ *isolatorv1.RecoverIsolatorResponse, err error) {
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", a.o.IsolatorNames[i], err))
			}
			step(i + 1)
		})
	}
	step(0)
}

func (a *Actor) killOrphans(c actor.Context, recs []found, orphans []*typesv1.ContainerID) {
	var step func(i int)
	step = func(i int) {
		if i == len(orphans) {
			a.finishRecovery(c, recs, orphans)
			return
		}
		id := orphans[i]
		a.o.Logger.Warn("killing an orphan container", zap.String("container", id.GetValue()))
		ask.Reenter(c, a.o.Launcher, &launcherv1.DestroyProcessesRequest{ContainerId: id}, a.o.Timeouts.Kill, func(_ *launcherv1.DestroyProcessesResponse, err error) {
			if err != nil {
				a.o.Logger.Error("killing an orphan failed", zap.String("container", id.GetValue()), zap.Error(err))
			}
			// Clean what isolators hold for it; the container never comes back.
			for _, iso := range a.o.Isolators {
				c.Send(iso, &isolatorv1.CleanupRequest{ContainerId: id})
			}
			step(i + 1)
		})
	}
	step(0)
}

func (a *Actor) finishRecovery(c actor.Context, recs []found, orphans []*typesv1.ContainerID) {
	resp := &containerizerv1.RecoverContainersResponse{Orphans: orphans}
	sort.Slice(recs, func(i, j int) bool { return recs[i].id < recs[j].id })
	now := a.o.Now()
	for _, r := range recs {
		if a.containers[r.id] != nil {
			continue
		}
		cfg := r.ckpt.GetConfig()
		e := &entry{
			id: &typesv1.ContainerID{Value: r.id}, config: cfg, backend: r.ckpt.GetBackend(), image: r.ckpt.GetImage(),
			pid: int(r.pid.GetPid()), rootfs: cfg.GetRootfs(), runtimeDir: a.runtimeDir(r.id),
			startedAt: timeOf(r.ckpt.GetStartedAt()), stateSince: now,
		}
		a.containers[r.id] = e
		a.handle(c, e, EvRecovered{Isolators: len(a.o.Isolators)})
		// Limitations are watched again (a memory limit's OOM kill).
		a.watch(c, e)
		resp.Recovered = append(resp.Recovered, e.id)
		a.o.Logger.Info("recovered container", zap.String("container", r.id), zap.Int("pid", e.pid))
	}
	ask.Respond(c, resp, nil)
}
