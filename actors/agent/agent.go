package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/berthrt/berth/actors/ask"
	"github.com/berthrt/berth/actors/async"
	"github.com/berthrt/berth/actors/backend"
	"github.com/berthrt/berth/actors/containerizer"
	"github.com/berthrt/berth/actors/isolator"
	"github.com/berthrt/berth/actors/launcher"
	"github.com/berthrt/berth/actors/metrics"
	"github.com/berthrt/berth/actors/provisioner"
	"github.com/berthrt/berth/actors/store"
	"github.com/berthrt/berth/actors/store/docker"
	agentv1 "github.com/berthrt/berth/messages/agent/v1"
	containerizerv1 "github.com/berthrt/berth/messages/containerizer/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/builtin"
	"github.com/berthrt/berth/process/checkpoint"
	"github.com/berthrt/berth/process/errdefs"
	"github.com/berthrt/berth/process/lockfile"
)

// Version is Berth's version, set at build time with -ldflags.
var Version = "0.1.0-dev"

// Agent is a running agent: its actor system and the PIDs of its components.
type Agent struct {
	System        *actor.ActorSystem
	PID           *actor.PID
	Containerizer *actor.PID
	Provisioner   *actor.PID
	DockerStore   *actor.PID
	AppcStore     *actor.PID // nil unless appc is among --image_providers
	Launcher      *actor.PID
	Options       Options
	Backend       string
	ID            string
	logger        *zap.Logger
	locks         []*lockfile.Lock
	init          initExec
	// Metrics are the agent's collectors (Options.Metrics or its own).
	Metrics *metrics.Metrics
}

// components are the mechanics the agent actor wraps in actors.
type components struct {
	store    store.Store
	backends map[string]backend.Backend
	// unavailable says why a known backend cannot run on this host.
	unavailable map[string]string
	isolators   []isolator.Isolator
	launcher    launcher.Launcher

	// appcStore is nil unless appc is an image provider; dockerProvider
	// says whether the docker store serves the provisioner.
	appcStore      store.Store
	dockerProvider bool
}

// pids is the agent actor's answer to whoIs.
type pids struct {
	containerizer, provisioner, dockerStore, launcher *actor.PID
	appcStore                                         *actor.PID
}

// whoIs asks the agent actor for its children (local only).
type whoIs struct{}

// agentActor is the root of a node's tree.
type agentActor struct {
	o       Options
	comp    components
	backend string
	id      string
	logger  *zap.Logger
	pids    pids
	gc      imageGC
	// sandboxGC removes finished containers' sandboxes; pending are the
	// containers whose sandbox exists but whose launch is not answered.
	sandboxGC sandboxGC
	pending   map[string]int
}

// NewStore builds the docker store of an agent's options, for commands that
// need only the store (berth image ...).
func NewStore(o Options, logger *zap.Logger) (store.Store, error) {
	o.setDefaults()
	tarballs, registry := "", ""
	if strings.HasPrefix(o.DockerRegistry, "/") {
		tarballs = o.DockerRegistry
	} else {
		registry = o.DockerRegistry
	}
	return docker.New(docker.Options{
		Dir: o.DockerStoreDir, TarballDir: tarballs, Registry: registry, DockerConfig: o.DockerConfig,
		Builtin: builtin.Build, BuiltinReference: builtin.Reference, Logger: logger,
	})
}

// Start builds the components, spawns the agent actor and its children on
// sys, and recovers: containers that survived a restart come back waitable;
// leftovers without a checkpoint are destroyed.
func Start(ctx context.Context, sys *actor.ActorSystem, o Options, logger *zap.Logger) (*Agent, error) {
	o.setDefaults()
	if logger == nil {
		logger = zap.NewNop()
	}
	for _, d := range []string{o.WorkDir, o.RuntimeDir} {
		if !filepath.IsAbs(d) {
			return nil, fmt.Errorf("directory %q must be absolute: %w", d, errdefs.ErrInvalidArgument)
		}
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
	}
	// One agent per work and runtime dir: recovery destroys what it does not
	// know, which would include another agent's containers.
	var locks []*lockfile.Lock
	release := func() {
		for _, l := range locks {
			l.Release()
		}
	}
	for _, d := range []string{o.WorkDir, o.RuntimeDir} {
		l, err := lockfile.Acquire(ctx, filepath.Join(d, "agent.lock"), o.OnLockBusy)
		if err != nil {
			release()
			return nil, fmt.Errorf("another Berth agent uses %s: %w", d, err)
		}
		locks = append(locks, l)
	}
	ok := false
	defer func() {
		if !ok {
			release()
		}
	}()
	if err := validateImageGC(o); err != nil {
		return nil, err
	}
	if err := validateSandboxGC(o); err != nil {
		return nil, err
	}
	st, err := NewStore(o, logger)
	if err != nil {
		return nil, err
	}
	prov, err := parseProviders(o.ImageProviders)
	if err != nil {
		return nil, err
	}
	var appcStore store.Store
	if prov.appc {
		if appcStore, err = NewAppcStore(o, logger); err != nil {
			return nil, err
		}
	}
	backends, err := buildBackends(o, logger)
	if err != nil {
		return nil, err
	}
	isolators, err := buildIsolators(o)
	if err != nil {
		return nil, err
	}
	initBin, err := resolveInit(o, logger)
	if err != nil {
		return nil, err
	}
	defer func() {
		if !ok {
			initBin.close()
		}
	}()
	l, err := launcher.NewLinux(launcher.LinuxOptions{InitPath: initBin.path, InitName: initBin.name, InitArgs: initBin.args, RuntimeRoot: o.RuntimeDir, Logger: logger})
	if err != nil {
		return nil, err
	}
	id, err := agentID(o.WorkDir)
	if err != nil {
		return nil, err
	}
	logger.Info("agent starting", zap.String("agent_id", id), zap.String("work_dir", o.WorkDir),
		zap.String("runtime_dir", o.RuntimeDir), zap.String("backend", backends.chosen), zap.String("isolation", o.Isolation))
	if o.Metrics == nil {
		o.Metrics = metrics.New(metrics.Options{})
	}
	metrics.Register(sys, o.Metrics)
	observeStore(o.Metrics, st)
	comp := components{store: st, appcStore: appcStore, dockerProvider: prov.docker, backends: backends.available, unavailable: backends.unavailable, isolators: isolators, launcher: l}
	gcDirs := []string{o.DockerStoreDir}
	if appcStore != nil {
		gcDirs = append(gcDirs, o.AppcStoreDir)
	}
	props := actor.PropsFromProducer(func() actor.Actor {
		return &agentActor{o: o, comp: comp, backend: backends.chosen, id: id, logger: logger, gc: imageGC{
			threshold: o.ImageGCThreshold, interval: o.ImageGCInterval, excluded: o.ImageGCExcluded, dirs: gcDirs,
		}, sandboxGC: sandboxGC{
			delay: o.GCDelay, headroom: o.GCDiskHeadroom, interval: o.DiskWatchInterval,
			dir: filepath.Join(o.WorkDir, "sandboxes"), workDir: o.WorkDir,
		}, pending: map[string]int{}}
	}, actor.WithSupervisor(actor.NewOneForOneStrategy(10, 10*time.Second, actor.DefaultDecider)))
	pid, err := sys.Root.SpawnNamed(props, "agent")
	if err != nil {
		return nil, fmt.Errorf("spawn agent: %w", err)
	}
	res, err := sys.Root.RequestFuture(pid, &whoIs{}, 10*time.Second).Result()
	if err != nil {
		return nil, fmt.Errorf("agent did not start: %w", err)
	}
	p := res.(*pids)
	a := &Agent{
		System: sys, PID: pid, Containerizer: p.containerizer, Provisioner: p.provisioner,
		DockerStore: p.dockerStore, AppcStore: p.appcStore, Launcher: p.launcher, Options: o, Backend: backends.chosen, ID: id, logger: logger,
		locks: locks, init: initBin, Metrics: o.Metrics,
	}
	ok = true
	rec, err := ask.Request[*containerizerv1.RecoverContainersResponse](ctx, sys.Root, a.Containerizer, &containerizerv1.RecoverContainersRequest{}, 10*time.Minute)
	if err != nil {
		a.Stop()
		return nil, fmt.Errorf("agent recovery: %w", err)
	}
	if len(rec.GetRecovered()) > 0 || len(rec.GetOrphans()) > 0 {
		logger.Info("recovered", zap.Int("containers", len(rec.GetRecovered())), zap.Int("orphans_killed", len(rec.GetOrphans())))
	}
	sys.Root.Send(pid, &startGC{})
	return a, nil
}

// Stop stops the agent's actors. Containers keep running; a new agent on the
// same directories recovers them.
func (a *Agent) Stop() {
	_ = a.System.Root.StopFuture(a.PID).Wait()
	for _, l := range a.locks {
		l.Release()
	}
	a.locks = nil
	a.init.close()
	a.init.sealed = nil
}

// SandboxDir is the sandbox of a container.
func (a *Agent) SandboxDir(id string) string {
	return filepath.Join(a.Options.WorkDir, "sandboxes", id)
}

// agentID is stable across restarts on one work dir.
func agentID(workDir string) (string, error) {
	path := filepath.Join(workDir, "agent_id")
	data, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(data))) > 0 {
		return strings.TrimSpace(string(data)), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("agent id: %w", err)
	}
	id := newID(16)
	if err := checkpoint.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", err
	}
	return id, nil
}

// newID returns n random hex digits.
func newID(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// NewContainerID returns a fresh container id: 12 hex digits, as Docker's
// short ids.
func NewContainerID() string { return newID(12) }

func (a *agentActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		a.spawnChildren(c)
	case *actor.Stopping:
		a.stopGC()
	case *startGC, *imageGCTick:
		a.onImageGC(c, m)
	case *sandboxGCTick:
		a.onSandboxGC(c)
	case *whoIs:
		c.Respond(&a.pids)
	case *agentv1.RunContainerRequest:
		a.onRun(c, m)
	case *agentv1.GetAgentInfoRequest:
		host, _ := os.Hostname()
		var iso []string
		for _, i := range a.comp.isolators {
			iso = append(iso, i.Name())
		}
		ask.Respond(c, &agentv1.GetAgentInfoResponse{AgentId: a.id, Hostname: host, Version: Version, Isolation: iso, Backend: a.backend}, nil)
	}
}

// spawnChildren spawns the components, leaves first.
func (a *agentActor) spawnChildren(c actor.Context) {
	spawn := func(props *actor.Props, name string) *actor.PID {
		pid, err := c.SpawnNamed(props, name)
		if err != nil {
			panic(fmt.Sprintf("agent: spawn %s: %v", name, err))
		}
		return pid
	}
	a.pids.dockerStore = spawn(store.Props(a.comp.store), "store-docker")
	backendPIDs := map[string]*actor.PID{}
	for name, b := range a.comp.backends {
		backendPIDs[name] = spawn(backend.Props(b), "backend-"+name)
	}
	stores := map[typesv1.Image_Type]*actor.PID{}
	if a.comp.dockerProvider {
		stores[typesv1.Image_TYPE_DOCKER] = a.pids.dockerStore
	}
	if a.comp.appcStore != nil {
		a.pids.appcStore = spawn(store.Props(a.comp.appcStore), "store-appc")
		stores[typesv1.Image_TYPE_APPC] = a.pids.appcStore
	}
	a.pids.provisioner = spawn(provisioner.Props(provisioner.Options{
		Root: filepath.Join(a.o.WorkDir, "provisioner"), DefaultBackend: a.backend, Backends: backendPIDs,
		Stores:      stores,
		Unavailable: a.comp.unavailable, Logger: a.logger,
	}), "provisioner")
	var isoPIDs []*actor.PID
	var isoNames []string
	for _, iso := range a.comp.isolators {
		isoPIDs = append(isoPIDs, spawn(isolator.Props(iso), "isolator-"+strings.ReplaceAll(iso.Name(), "/", "-")))
		isoNames = append(isoNames, iso.Name())
	}
	a.pids.launcher = spawn(launcher.Props(a.comp.launcher), "launcher")
	a.pids.containerizer = spawn(containerizer.Props(containerizer.Options{
		RuntimeDir: a.o.RuntimeDir, Provisioner: a.pids.provisioner, Isolators: isoPIDs, IsolatorNames: isoNames,
		Launcher: a.pids.launcher, DefaultBackend: a.backend, Logger: a.logger,
		Metrics: a.o.Metrics,
	}), "containerizer")
}

// onRun creates the sandbox and launches the container in it.
func (a *agentActor) onRun(c actor.Context, m *agentv1.RunContainerRequest) {
	id := m.GetContainerId()
	if id.GetValue() == "" {
		id = &typesv1.ContainerID{Value: NewContainerID()}
	}
	sandbox := filepath.Join(a.o.WorkDir, "sandboxes", id.GetValue())
	config := m.GetConfig()
	if config == nil {
		config = &typesv1.ContainerConfig{}
	}
	config.Directory = sandbox
	// The sandbox GC leaves it alone until the containerizer knows it.
	a.pending[id.GetValue()]++
	launched := func() {
		if a.pending[id.GetValue()]--; a.pending[id.GetValue()] <= 0 {
			delete(a.pending, id.GetValue())
		}
	}
	async.Run(c, time.Minute, func() (interface{}, error) {
		if !validSandboxName(id.GetValue()) {
			return nil, fmt.Errorf("container id %q: %w", id.GetValue(), errdefs.ErrInvalidArgument)
		}
		if err := os.MkdirAll(filepath.Dir(sandbox), 0o711); err != nil {
			return nil, err
		}
		if err := os.Mkdir(sandbox, 0o750); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return nil, fmt.Errorf("container %s: its sandbox %s exists: %w", id.GetValue(), sandbox, errdefs.ErrAlreadyExists)
			}
			return nil, err
		}
		return nil, nil
	}, func(_ interface{}, err error) {
		if err != nil {
			launched()
			ask.Respond(c, nil, err)
			return
		}
		req := &containerizerv1.LaunchContainerRequest{ContainerId: id, Config: config, Backend: m.GetBackend()}
		ask.Reenter(c, a.pids.containerizer, req, 35*time.Minute, func(r *containerizerv1.LaunchContainerResponse, err error) {
			launched()
			ask.Respond(c, &agentv1.RunContainerResponse{ContainerId: id, Sandbox: sandbox, Pid: r.GetPid()}, err)
		})
	})
}

func validSandboxName(id string) bool {
	if id == "" || id == "." || id == ".." || len(id) > 64 {
		return false
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		default:
			return false
		}
	}
	return true
}
