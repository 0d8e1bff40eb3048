package containerizer

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/berthrt/berth/actors/ask"
	"github.com/berthrt/berth/actors/async"
	"github.com/berthrt/berth/actors/metrics"
	containerizerv1 "github.com/berthrt/berth/messages/containerizer/v1"
	fetcherv1 "github.com/berthrt/berth/messages/fetcher/v1"
	isolatorv1 "github.com/berthrt/berth/messages/isolator/v1"
	launcherv1 "github.com/berthrt/berth/messages/launcher/v1"
	provisionerv1 "github.com/berthrt/berth/messages/provisioner/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/checkpoint"
	"github.com/berthrt/berth/process/errdefs"
)

// Timeouts bound every step of the pipelines; a step that times out fails
// with errdefs.ErrDeadlineExceeded and the destroy goes on.
type Timeouts struct {
	Provision, Prepare, Fork, Isolate, Fetch, Exec, Kill, Cleanup, DestroyRootfs, IO time.Duration
}

// DefaultTimeouts are generous: a pull may take long, a fork may not.
var DefaultTimeouts = Timeouts{
	Provision: 30 * time.Minute, Prepare: time.Minute, Fork: time.Minute, Isolate: time.Minute,
	Fetch: 30 * time.Minute, Exec: time.Minute, Kill: 2 * time.Minute, Cleanup: 2 * time.Minute,
	DestroyRootfs: 10 * time.Minute, IO: time.Minute,
}

// Options configure the containerizer actor.
type Options struct {
	// RuntimeDir is <runtime_dir>; checkpoints go under containers/<id>.
	RuntimeDir  string
	Provisioner *actor.PID
	// Isolators in prepare order (filesystem/* first); Names beside them.
	Isolators     []*actor.PID
	IsolatorNames []string
	Launcher      *actor.PID
	// Fetcher may be nil: containers with URIs then fail to launch.
	Fetcher *actor.PID
	// DefaultBackend is recorded for containers that name none.
	DefaultBackend string
	Timeouts       Timeouts
	// KeepTerminated is how many terminated containers stay waitable.
	KeepTerminated int
	Logger         *zap.Logger
	Now            func() time.Time

	// Metrics, when set, get the containers by state, launch and destroy
	// outcomes and durations, and the messaging/mechanics split.
	Metrics *metrics.Metrics
}

// entry is one live container.
type entry struct {
	id         *typesv1.ContainerID
	c          Container
	config     *typesv1.ContainerConfig
	backend    string
	image      string
	infos      []*isolatorv1.ContainerLaunchInfo
	pid        int
	rootfs     string
	runtimeDir string
	launchReq  *actor.PID
	waiters    []*actor.PID
	destroyers []*actor.PID
	startedAt  time.Time
	stateSince time.Time
	// obs is what the metrics need of the container.
	obs observed
}

// terminated is a container that ended, kept for late Waits.
type terminated struct {
	status      *containerizerv1.ContainerStatus
	termination *typesv1.Termination
}

// Actor is the containerizer.
type Actor struct {
	o          Options
	containers map[string]*entry
	ended      map[string]terminated
	endedOrder []string
}

// event is an event a container gets from the actor itself.
type event struct {
	e  *entry
	ev Event
}

// Props returns the containerizer's props.
func Props(o Options) *actor.Props {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeouts == (Timeouts{}) {
		o.Timeouts = DefaultTimeouts
	}
	if o.KeepTerminated == 0 {
		o.KeepTerminated = 1000
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &Actor{o: o, containers: map[string]*entry{}, ended: map[string]terminated{}}
	})
}

var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Receive dispatches the messages.
func (a *Actor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *event:
		a.handle(c, m.e, m.ev)
	case *containerizerv1.LaunchContainerRequest:
		a.onLaunch(c, m)
	case *containerizerv1.WaitContainerRequest:
		a.onWait(c, m)
	case *containerizerv1.DestroyContainerRequest:
		a.onDestroy(c, m)
	case *containerizerv1.KillContainerRequest:
		a.onKill(c, m)
	case *containerizerv1.GetContainerStatusRequest:
		a.onStatus(c, m)
	case *containerizerv1.ListContainersRequest:
		a.onList(c)
	case *containerizerv1.GetContainerUsageRequest:
		a.onUsage(c, m)
	case *containerizerv1.UpdateContainerRequest:
		a.onUpdate(c, m)
	case *containerizerv1.RecoverContainersRequest:
		a.onRecover(c)
	}
}

func (a *Actor) runtimeDir(id string) string {
	return filepath.Join(a.o.RuntimeDir, "containers", id)
}

// live returns the entry if it is still the container the continuation
// belongs to (a later container may reuse the id).
func (a *Actor) live(e *entry) bool { return a.containers[e.id.GetValue()] == e }

// post delivers an event to a container through the mailbox.
func (a *Actor) post(c actor.Context, e *entry, ev Event) { c.Send(c.Self(), &event{e: e, ev: ev}) }

// handle runs the transition function and executes the effects.
func (a *Actor) handle(c actor.Context, e *entry, ev Event) {
	if !a.live(e) {
		return
	}
	before := e.c.State
	next, effects, err := Next(e.c, ev)
	if err != nil {
		a.o.Logger.Error("containerizer: illegal transition", zap.String("container", e.id.GetValue()), zap.Error(err))
		return
	}
	e.c = next
	a.observe(e, before, next.State)
	if next.State != before {
		e.stateSince = a.o.Now()
		a.o.Logger.Debug("container state", zap.String("container", e.id.GetValue()), zap.Stringer("from", before), zap.Stringer("to", next.State))
	}
	for _, eff := range effects {
		a.execute(c, e, eff)
	}
}

func (a *Actor) execute(c actor.Context, e *entry, eff Effect) {
	t := a.o.Timeouts
	id := e.id
	switch eff := eff.(type) {
	case DoProvision:
		req := &provisionerv1.ProvisionRequest{ContainerId: id, Image: e.config.GetContainerInfo().GetImage(), Backend: e.backend}
		ask.Reenter(c, a.o.Provisioner, req, t.Provision, func(r *provisionerv1.ProvisionResponse, err error) {
			if err == nil && a.live(e) {
				e.rootfs, e.backend = r.GetRootfs(), r.GetBackend()
				e.config.Rootfs = r.GetRootfs()
				e.config.ImageConfig = r.GetImageConfig()
				e.config.EphemeralVolumes = r.GetEphemeralVolumes()
				e.image = r.GetImageReference()
			}
			a.handle(c, e, EvProvisioned{Err: err})
		})
	case DoPrepare:
		req := &isolatorv1.PrepareRequest{ContainerId: id, Config: e.config}
		ask.Reenter(c, a.o.Isolators[eff.Index], req, t.Prepare, func(r *isolatorv1.PrepareResponse, err error) {
			if err != nil {
				err = fmt.Errorf("isolator %s: %w", a.o.IsolatorNames[eff.Index], err)
			} else if a.live(e) {
				e.infos = append(e.infos, r.GetLaunchInfo())
			}
			a.handle(c, e, EvPrepared{Index: eff.Index, Err: err})
		})
	case DoFork:
		a.fork(c, e)
	case DoWatchExit:
		req := &launcherv1.WaitProcessRequest{ContainerId: id}
		ask.Reenter(c, a.o.Launcher, req, ask.Forever, func(r *launcherv1.WaitProcessResponse, err error) {
			if err != nil {
				a.o.Logger.Warn("waiting for the container's init failed", zap.String("container", id.GetValue()), zap.Error(err))
			}
			a.handle(c, e, EvExited{Exit: Exit{WaitStatus: syscall.WaitStatus(r.GetWaitStatus()), Known: err == nil && r.GetHasWaitStatus()}})
		})
	case DoIsolate:
		a.isolate(c, e)
	case DoFetch:
		uris := e.config.GetCommand().GetUris()
		if len(uris) == 0 {
			a.post(c, e, EvFetched{})
			return
		}
		if a.o.Fetcher == nil {
			a.post(c, e, EvFetched{Err: fmt.Errorf("the container has URIs to fetch but this agent runs no fetcher: %w", errdefs.ErrNotImplemented)})
			return
		}
		req := &fetcherv1.FetchRequest{ContainerId: id, Uris: uris, Sandbox: e.config.GetDirectory(), User: e.config.GetUser()}
		ask.Reenter(c, a.o.Fetcher, req, t.Fetch, func(_ *fetcherv1.FetchResponse, err error) {
			a.handle(c, e, EvFetched{Err: err})
		})
	case DoKillFetch:
		if a.o.Fetcher != nil {
			c.Send(a.o.Fetcher, &fetcherv1.KillFetchRequest{ContainerId: id})
		}
	case DoExec:
		ask.Reenter(c, a.o.Launcher, &launcherv1.ExecRequest{ContainerId: id}, t.Exec, func(_ *launcherv1.ExecResponse, err error) {
			a.handle(c, e, EvExeced{Err: err})
		})
	case DoAnswerLaunch:
		a.observeLaunch(e, eff.Err)
		ask.Reply(c, e.launchReq, &containerizerv1.LaunchContainerResponse{Pid: int32(e.pid), Rootfs: e.rootfs}, eff.Err)
		e.launchReq = nil
	case DoKill:
		ask.Reenter(c, a.o.Launcher, &launcherv1.DestroyProcessesRequest{ContainerId: id}, t.Kill, func(_ *launcherv1.DestroyProcessesResponse, err error) {
			a.handle(c, e, EvKilled{Err: err})
		})
	case DoCleanup:
		a.cleanup(c, e)
	case DoDestroyRootfs:
		ask.Reenter(c, a.o.Provisioner, &provisionerv1.DestroyProvisionRequest{ContainerId: id}, t.DestroyRootfs, func(_ *provisionerv1.DestroyProvisionResponse, err error) {
			a.handle(c, e, EvRootfsDestroyed{Err: err})
		})
	case DoRemoveRuntime:
		dir := e.runtimeDir
		async.Run(c, t.IO, func() (interface{}, error) { return nil, os.RemoveAll(dir) }, func(_ interface{}, err error) {
			a.handle(c, e, EvRuntimeRemoved{Err: err})
		})
	case DoComplete:
		a.complete(c, e, eff.Termination)
	}
}

// fork merges the launch infos into the spec, checkpoints the config, forks
// the init and checkpoints its pid.
func (a *Actor) fork(c actor.Context, e *entry) {
	t := a.o.Timeouts
	spec, err := mergeLaunchInfos(e.id, e.config, e.runtimeDir, e.infos)
	if err != nil {
		a.post(c, e, EvForked{Err: err})
		return
	}
	ckpt := &containerizerv1.Checkpoint{
		ContainerId: e.id, Config: e.config, Backend: e.backend, Image: e.image,
		StartedAt: float64(e.startedAt.UnixNano()) / 1e9,
	}
	dir := e.runtimeDir
	async.Run(c, t.IO, func() (interface{}, error) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("runtime dir: %w", err)
		}
		return nil, checkpoint.Write(filepath.Join(dir, "config"), ckpt)
	}, func(_ interface{}, err error) {
		if err != nil {
			a.handle(c, e, EvForked{Err: err})
			return
		}
		sandbox := e.config.GetDirectory()
		req := &launcherv1.ForkRequest{
			ContainerId: e.id, Spec: spec,
			StdoutPath: filepath.Join(sandbox, "stdout"), StderrPath: filepath.Join(sandbox, "stderr"),
		}
		ask.Reenter(c, a.o.Launcher, req, t.Fork, func(r *launcherv1.ForkResponse, err error) {
			if err != nil {
				a.handle(c, e, EvForked{Err: err})
				return
			}
			e.pid = int(r.GetPid())
			pc := &launcherv1.ProcessCheckpoint{Pid: r.GetPid(), StartTime: r.GetStartTime()}
			async.Run(c, t.IO, func() (interface{}, error) {
				return nil, checkpoint.Write(filepath.Join(dir, "pid"), pc)
			}, func(_ interface{}, err error) {
				if err != nil {
					// The init runs but could not be recorded: kill it with the
					// destroy that the failed fork starts.
					a.o.Logger.Error("checkpointing the pid failed", zap.String("container", e.id.GetValue()), zap.Error(err))
				}
				a.handle(c, e, EvForked{})
				if err != nil {
					a.handle(c, e, EvDestroy{Reason: typesv1.Termination_REASON_LAUNCH_FAILED, Message: err.Error(), Err: err})
				}
			})
		})
	})
}

// isolate asks every isolator to isolate the init, together, and to watch it.
func (a *Actor) isolate(c actor.Context, e *entry) {
	n := len(a.o.Isolators)
	if n == 0 {
		a.post(c, e, EvIsolated{})
		return
	}
	pending := n
	var first error
	for i, iso := range a.o.Isolators {
		name := a.o.IsolatorNames[i]
		req := &isolatorv1.IsolateRequest{ContainerId: e.id, Pid: int32(e.pid)}
		ask.Reenter(c, iso, req, a.o.Timeouts.Isolate, func(_ *isolatorv1.IsolateResponse, err error) {
			if err != nil && first == nil {
				first = fmt.Errorf("isolator %s: %w", name, err)
			}
			pending--
			if pending == 0 {
				a.handle(c, e, EvIsolated{Err: first})
			}
		})
	}
	a.watch(c, e)
}

// watch asks every isolator to report the container's limitations (after
// its Isolate, which each isolator's mailbox receives first).
func (a *Actor) watch(c actor.Context, e *entry) {
	for _, iso := range a.o.Isolators {
		ask.Reenter(c, iso, &isolatorv1.WatchRequest{ContainerId: e.id}, ask.Forever, func(r *isolatorv1.WatchResponse, err error) {
			if err == nil && r.GetLimitation() != nil {
				a.handle(c, e, EvLimited{Resources: r.GetLimitation().GetResources(), Message: r.GetLimitation().GetMessage()})
			}
		})
	}
}

// cleanup asks the isolators that prepared to clean up, in reverse order,
// one after the other; every one runs even if an earlier one failed.
func (a *Actor) cleanup(c actor.Context, e *entry) {
	var errs []error
	var step func(i int)
	step = func(i int) {
		if i < 0 {
			a.handle(c, e, EvCleanedUp{Errs: errs})
			return
		}
		name := a.o.IsolatorNames[i]
		ask.Reenter(c, a.o.Isolators[i], &isolatorv1.CleanupRequest{ContainerId: e.id}, a.o.Timeouts.Cleanup, func(_ *isolatorv1.CleanupResponse, err error) {
			if err != nil {
				errs = append(errs, fmt.Errorf("isolator %s: %w", name, err))
			}
			step(i - 1)
		})
	}
	last := e.c.Prepared - 1
	if last >= len(a.o.Isolators) {
		last = len(a.o.Isolators) - 1
	}
	step(last)
}

// complete answers every waiter and keeps the termination for late Waits.
func (a *Actor) complete(c actor.Context, e *entry, term *typesv1.Termination) {
	id := e.id.GetValue()
	for _, w := range e.waiters {
		ask.Reply(c, w, &containerizerv1.WaitContainerResponse{Termination: term}, nil)
	}
	for _, d := range e.destroyers {
		ask.Reply(c, d, &containerizerv1.DestroyContainerResponse{Termination: term}, nil)
	}
	if e.launchReq != nil {
		ask.Reply(c, e.launchReq, nil, fmt.Errorf("container %s terminated during launch: %w", id, errdefs.ErrCanceled))
	}
	a.observeEnd(e, term)
	delete(a.containers, id)
	a.ended[id] = terminated{status: a.status(e), termination: term}
	a.endedOrder = append(a.endedOrder, id)
	for len(a.endedOrder) > a.o.KeepTerminated {
		old := a.endedOrder[0]
		a.endedOrder = a.endedOrder[1:]
		if _, ok := a.containers[old]; !ok {
			delete(a.ended, old)
		}
	}
	a.o.Logger.Info("container terminated", zap.String("container", id), zap.Int32("exit_code", term.GetExitCode()), zap.Stringer("reason", term.GetReason()))
}

func (a *Actor) onLaunch(c actor.Context, m *containerizerv1.LaunchContainerRequest) {
	id := m.GetContainerId()
	switch {
	case id.GetParent() != nil:
		ask.Respond(c, nil, fmt.Errorf("nested containers are not supported yet: %w", errdefs.ErrNotImplemented))
		return
	case !validID.MatchString(id.GetValue()):
		ask.Respond(c, nil, fmt.Errorf("container id %q: want 1 to 64 of [A-Za-z0-9_.-], starting with a letter or digit: %w", id.GetValue(), errdefs.ErrInvalidArgument))
		return
	case a.containers[id.GetValue()] != nil:
		ask.Respond(c, nil, fmt.Errorf("container %s: %w", id.GetValue(), errdefs.ErrAlreadyExists))
		return
	case m.GetConfig() == nil || m.GetConfig().GetCommand() == nil:
		ask.Respond(c, nil, fmt.Errorf("container %s: no command: %w", id.GetValue(), errdefs.ErrInvalidArgument))
		return
	case !filepath.IsAbs(m.GetConfig().GetDirectory()):
		ask.Respond(c, nil, fmt.Errorf("container %s: sandbox directory %q must be an absolute path: %w", id.GetValue(), m.GetConfig().GetDirectory(), errdefs.ErrInvalidArgument))
		return
	}
	delete(a.ended, id.GetValue())
	now := a.o.Now()
	backend := m.GetBackend()
	if backend == "" {
		backend = a.o.DefaultBackend
	}
	e := &entry{
		id: id, config: m.GetConfig(), backend: backend, launchReq: c.Sender(),
		image: imageName(m.GetConfig().GetContainerInfo().GetImage()), runtimeDir: a.runtimeDir(id.GetValue()),
		startedAt: now, stateSince: now,
	}
	a.containers[id.GetValue()] = e
	e.obs.launch = a.o.Metrics.Mark()
	a.handle(c, e, EvLaunch{HasImage: m.GetConfig().GetContainerInfo().GetImage() != nil, Isolators: len(a.o.Isolators)})
}

func imageName(img *typesv1.Image) string {
	if img == nil {
		return ""
	}
	if img.GetType() == typesv1.Image_TYPE_APPC {
		return img.GetAppc().GetName()
	}
	return img.GetDocker().GetName()
}

func (a *Actor) onWait(c actor.Context, m *containerizerv1.WaitContainerRequest) {
	id := m.GetContainerId().GetValue()
	if e := a.containers[id]; e != nil {
		e.waiters = append(e.waiters, c.Sender())
		return
	}
	if t, ok := a.ended[id]; ok {
		ask.Respond(c, &containerizerv1.WaitContainerResponse{Termination: t.termination}, nil)
		return
	}
	ask.Respond(c, nil, fmt.Errorf("container %q: %w", id, errdefs.ErrNotFound))
}

func (a *Actor) onDestroy(c actor.Context, m *containerizerv1.DestroyContainerRequest) {
	id := m.GetContainerId().GetValue()
	if e := a.containers[id]; e != nil {
		e.destroyers = append(e.destroyers, c.Sender())
		a.handle(c, e, EvDestroy{Reason: typesv1.Termination_REASON_DESTROYED, Message: "destroyed by request"})
		return
	}
	if t, ok := a.ended[id]; ok {
		ask.Respond(c, &containerizerv1.DestroyContainerResponse{Termination: t.termination}, nil)
		return
	}
	ask.Respond(c, nil, fmt.Errorf("container %q: %w", id, errdefs.ErrNotFound))
}

func (a *Actor) onKill(c actor.Context, m *containerizerv1.KillContainerRequest) {
	id := m.GetContainerId().GetValue()
	e := a.containers[id]
	if e == nil {
		ask.Respond(c, nil, fmt.Errorf("container %q: %w", id, errdefs.ErrNotFound))
		return
	}
	sig := m.GetSignal()
	if sig == 0 {
		sig = int32(syscall.SIGTERM)
	}
	switch e.c.State {
	case Running:
		req := &launcherv1.SignalProcessRequest{ContainerId: e.id, Signal: sig}
		ask.Reenter(c, a.o.Launcher, req, a.o.Timeouts.Kill, func(_ *launcherv1.SignalProcessResponse, err error) {
			ask.Respond(c, &containerizerv1.KillContainerResponse{}, err)
		})
	case Destroying:
		ask.Respond(c, &containerizerv1.KillContainerResponse{}, nil)
	default:
		// The command does not run yet: a kill is a destroy (Mesos).
		a.handle(c, e, EvDestroy{Reason: typesv1.Termination_REASON_DESTROYED, Message: fmt.Sprintf("killed with signal %d before the command ran", sig)})
		ask.Respond(c, &containerizerv1.KillContainerResponse{}, nil)
	}
}

func protoState(s State) containerizerv1.ContainerState {
	switch s {
	case Provisioning:
		return containerizerv1.ContainerState_CONTAINER_STATE_PROVISIONING
	case Starting, Preparing:
		return containerizerv1.ContainerState_CONTAINER_STATE_PREPARING
	case Isolating:
		return containerizerv1.ContainerState_CONTAINER_STATE_ISOLATING
	case Fetching:
		return containerizerv1.ContainerState_CONTAINER_STATE_FETCHING
	case Running:
		return containerizerv1.ContainerState_CONTAINER_STATE_RUNNING
	case Destroying:
		return containerizerv1.ContainerState_CONTAINER_STATE_DESTROYING
	case Terminated:
		return containerizerv1.ContainerState_CONTAINER_STATE_TERMINATED
	}
	return containerizerv1.ContainerState_CONTAINER_STATE_UNSPECIFIED
}

func seconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func (a *Actor) status(e *entry) *containerizerv1.ContainerStatus {
	return &containerizerv1.ContainerStatus{
		ContainerId: e.id, State: protoState(e.c.State), Pid: int32(e.pid), Rootfs: e.rootfs,
		Image: e.image, Sandbox: e.config.GetDirectory(), StartedAt: seconds(e.startedAt), StateSince: seconds(e.stateSince),
	}
}

func (a *Actor) onStatus(c actor.Context, m *containerizerv1.GetContainerStatusRequest) {
	id := m.GetContainerId().GetValue()
	if e := a.containers[id]; e != nil {
		ask.Respond(c, &containerizerv1.GetContainerStatusResponse{Status: a.status(e)}, nil)
		return
	}
	if t, ok := a.ended[id]; ok {
		st := t.status
		st.State = containerizerv1.ContainerState_CONTAINER_STATE_TERMINATED
		ask.Respond(c, &containerizerv1.GetContainerStatusResponse{Status: st}, nil)
		return
	}
	ask.Respond(c, nil, fmt.Errorf("container %q: %w", id, errdefs.ErrNotFound))
}

func (a *Actor) onList(c actor.Context) {
	resp := &containerizerv1.ListContainersResponse{}
	for _, e := range a.containers {
		resp.Containers = append(resp.Containers, a.status(e))
	}
	sort.Slice(resp.Containers, func(i, j int) bool {
		return resp.Containers[i].GetContainerId().GetValue() < resp.Containers[j].GetContainerId().GetValue()
	})
	ask.Respond(c, resp, nil)
}

// onUsage merges every isolator's sample.
func (a *Actor) onUsage(c actor.Context, m *containerizerv1.GetContainerUsageRequest) {
	e := a.containers[m.GetContainerId().GetValue()]
	if e == nil {
		ask.Respond(c, nil, fmt.Errorf("container %q: %w", m.GetContainerId().GetValue(), errdefs.ErrNotFound))
		return
	}
	stats := &typesv1.ResourceStatistics{Timestamp: seconds(a.o.Now())}
	pending := len(a.o.Isolators)
	if pending == 0 {
		ask.Respond(c, &containerizerv1.GetContainerUsageResponse{Statistics: stats}, nil)
		return
	}
	var first error
	for _, iso := range a.o.Isolators {
		ask.Reenter(c, iso, &isolatorv1.UsageRequest{ContainerId: e.id}, a.o.Timeouts.Isolate, func(r *isolatorv1.UsageResponse, err error) {
			if err != nil && first == nil {
				first = err
			}
			s := r.GetStatistics()
			stats.CpusUserTimeSecs += s.GetCpusUserTimeSecs()
			stats.CpusSystemTimeSecs += s.GetCpusSystemTimeSecs()
			stats.MemRssBytes += s.GetMemRssBytes()
			stats.DiskUsedBytes += s.GetDiskUsedBytes()
			stats.Processes += s.GetProcesses()
			if s.GetMemLimitBytes() > 0 {
				stats.MemLimitBytes = s.GetMemLimitBytes()
			}
			pending--
			if pending == 0 {
				ask.Respond(c, &containerizerv1.GetContainerUsageResponse{Statistics: stats}, first)
			}
		})
	}
}

// onUpdate records the new resources and applies them through every isolator.
func (a *Actor) onUpdate(c actor.Context, m *containerizerv1.UpdateContainerRequest) {
	e := a.containers[m.GetContainerId().GetValue()]
	if e == nil || e.c.State == Destroying {
		ask.Respond(c, nil, fmt.Errorf("container %q: %w", m.GetContainerId().GetValue(), errdefs.ErrNotFound))
		return
	}
	e.config.Resources, e.config.Limits = m.GetResources(), m.GetLimits()
	pending := len(a.o.Isolators)
	if pending == 0 {
		ask.Respond(c, &containerizerv1.UpdateContainerResponse{}, nil)
		return
	}
	var first error
	for i, iso := range a.o.Isolators {
		name := a.o.IsolatorNames[i]
		req := &isolatorv1.UpdateRequest{ContainerId: e.id, Resources: m.GetResources(), Limits: m.GetLimits()}
		ask.Reenter(c, iso, req, a.o.Timeouts.Isolate, func(_ *isolatorv1.UpdateResponse, err error) {
			if err != nil && first == nil {
				first = fmt.Errorf("isolator %s: %w", name, err)
			}
			pending--
			if pending == 0 {
				ask.Respond(c, &containerizerv1.UpdateContainerResponse{}, first)
			}
		})
	}
}

func timeOf(sec float64) time.Time { return time.Unix(0, int64(sec*1e9)) }
