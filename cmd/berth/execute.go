package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/berthrt/berth/actors/agent"
	"github.com/berthrt/berth/actors/ask"
	"github.com/berthrt/berth/actors/containerizer"
	"github.com/berthrt/berth/actors/logging"
	agentv1 "github.com/berthrt/berth/messages/agent/v1"
	containerizerv1 "github.com/berthrt/berth/messages/containerizer/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/builtin"
	"github.com/berthrt/berth/process/errdefs"
)

const executeSynopsis = `berth execute [--image=REF] [--backend=overlay|copy|bind|aufs] [--work_dir=DIR] [--runtime_dir=DIR]
       [--env=K=V ...] [--workdir=DIR] [--user=USER] [--name=ID] [--cpuprofile=FILE] [--memprofile=FILE]
       [--cpus=N] [--mem=SIZE] [--isolation=...,cgroups/cpu,cgroups/mem] [--cgroups_root=NAME]
       (--command='shell command' | -- ARGV...)

REF = docker-archive:PATH     a 'docker save' tarball
    | oci:PATH[:TAG]          an OCI image layout
    | NAME[:TAG|@DIGEST]      an image in the store (or in --docker_registry=DIR)
    | appc:NAME[:VERSION][,LABEL=VALUE...]
                              an APPC image: from --appc_store_dir, else fetched
                              by simple discovery from
                              --appc_simple_discovery_uri_prefix
    | appc:sha512-HEX         an APPC image by id, from --appc_store_dir
    (none)                    the built-in default image, ` + builtin.Reference + `

The exit status is the container's (128+N when killed by signal N); a failure
before the command ran exits 125 (126: the command cannot be executed, 127: it
does not exist in the image), as 'docker run' does.

--cpus and --mem are hard limits (cgroup CPU quota, memory limit), enforced
by cgroups/cpu and cgroups/mem, which are added to the default isolation
when given (an --isolation without them is refused); SIZE is bytes or a number
with a binary unit (64MiB, 512M, 1GiB). A container the kernel's OOM killer
hits is destroyed and berth prints "Memory limit exceeded".`

// exitLaunchFailed is the status of a failure before the container ran.
const exitLaunchFailed = containerizer.ExitLaunchFailed

func execute(args []string) int {
	fs := newFlagSet("execute", executeSynopsis)
	var af agentFlags
	af.register(fs)
	var rf remoteFlags
	rf.register(fs)
	var env listFlag
	var prof profileFlags
	prof.register(fs)
	var res resourceFlags
	res.register(fs)
	var (
		agentAddr, image, backend, workdir, user, name, command string
		keepSandbox                                             bool
	)
	fs.StringVar(&agentAddr, "agent", "", "address of a running agent (host:port); none runs an embedded agent")
	fs.StringVar(&image, "image", "", "image reference (default: the built-in image)")
	fs.StringVar(&backend, "backend", "", "rootfs backend: overlay, copy, bind (single-layer images) or aufs; default: the best the host supports")
	fs.Var(&env, "env", "environment variable K=V (repeatable)")
	fs.StringVar(&workdir, "workdir", "", "working directory inside the container")
	fs.StringVar(&user, "user", "", "user to run as (name, uid or uid:gid); default: the image's")
	fs.StringVar(&name, "name", "", "container id (default: 12 random hex digits)")
	fs.StringVar(&command, "command", "", "shell command, run with /bin/sh -c")
	fs.BoolVar(&keepSandbox, "keep_sandbox", false, "keep the sandbox (stdout, stderr) after the container ends")
	if err := fs.Parse(normalizeFlags(args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
			return 0
		}
		fmt.Fprintf(os.Stderr, "berth execute: %v\n", err)
		fs.Usage()
		return 2
	}
	argv := fs.Args()
	cmd, err := commandInfo(command, argv, env)
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth execute: %v\n", err)
		return 2
	}
	if image == "" {
		image = builtin.Reference
	}
	img, err := imageMessage(image)
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth execute: --image: %v\n", err)
		return 2
	}
	limits, err := res.resources()
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth execute: %v\n", err)
		return 2
	}
	if agentAddr == "" {
		// Limits nothing would enforce are an error, as docker run's
		// --memory never is ignored: without --isolation the isolators
		// that enforce them are added.
		iso, err := isolationFor(af.isolation, isolationSet(fs), limits)
		if err != nil {
			fmt.Fprintf(os.Stderr, "berth execute: %v\n", err)
			return 2
		}
		af.isolation = iso
	}
	config := &typesv1.ContainerConfig{
		Resources: limits,
		Limits:    limits,
		Command:   cmd,
		User:      user,
		ContainerInfo: &typesv1.ContainerInfo{
			Image:      img,
			WorkingDir: workdir,
		},
	}
	stopProfile, err := prof.start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth execute: %v\n", err)
		return 2
	}
	defer stopProfile()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if name == "" {
		// Named here, not by the agent, so that a failed launch can still be
		// waited for: its termination carries the precise error and exit code.
		name = agent.NewContainerID()
	}
	req := &agentv1.RunContainerRequest{ContainerId: &typesv1.ContainerID{Value: name}, Config: config, Backend: backend}
	if agentAddr != "" {
		sys, stop, err := dialAgent(agentAddr, rf)
		if err != nil {
			fmt.Fprintf(os.Stderr, "berth: %v\n", err)
			return exitLaunchFailed
		}
		defer stop()
		t := target{root: sys.Root, agent: agent.AgentPID(agentAddr), containerizer: agent.ContainerizerPID(agentAddr)}
		return runAndWait(ctx, t, req, keepSandbox)
	}
	logger, err := af.logger()
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth execute: %v\n", err)
		return 2
	}
	defer func() { _ = logger.Sync() }()
	sys := actor.NewActorSystem(logging.SystemOption(logger))
	opts := af.options()
	opts.Backend = backend
	opts.OnLockBusy = func(pid int) {
		fmt.Fprintf(os.Stderr, "berth: waiting for another berth (pid %d) to finish with %s and %s\n", pid, opts.WorkDir, opts.RuntimeDir)
	}
	ag, err := agent.Start(ctx, sys, opts, logger)
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth: %v\n", err)
		return exitLaunchFailed
	}
	defer ag.Stop()
	defer showPulls(sys, os.Stderr)()
	return runAndWait(ctx, target{root: sys.Root, agent: ag.PID, containerizer: ag.Containerizer, workDir: opts.WorkDir}, req, keepSandbox)
}

// target is the agent a command talks to, embedded or remote.
type target struct {
	root          *actor.RootContext
	agent         *actor.PID
	containerizer *actor.PID
	// workDir names the sandbox when the launch failed before answering.
	workDir string
}

// commandInfo builds the command from --command, argv and --env.
func commandInfo(command string, argv []string, env []string) (*typesv1.CommandInfo, error) {
	cmd := &typesv1.CommandInfo{Environment: &typesv1.Environment{}}
	switch {
	case command != "" && len(argv) > 0:
		return nil, fmt.Errorf("give --command or an argv after --, not both")
	case command != "":
		cmd.Shell, cmd.Value = true, command
	case len(argv) > 0:
		cmd.Arguments = argv
	}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--env %q: want NAME=value", kv)
		}
		cmd.Environment.Variables = append(cmd.Environment.Variables, &typesv1.Environment_Variable{Name: k, Value: v})
	}
	return cmd, nil
}

// runAndWait launches the container, streams its stdout and stderr, forwards
// SIGINT and SIGTERM to it (a second one destroys it), waits for the end and
// returns the exit status.
func runAndWait(ctx context.Context, ag target, req *agentv1.RunContainerRequest, keepSandbox bool) int {
	root := ag.root
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(signals)

	run, err := ask.Request[*agentv1.RunContainerResponse](ctx, root, ag.agent, req, 40*time.Minute)
	id := req.GetContainerId()
	if run != nil && run.GetContainerId() != nil {
		id = run.GetContainerId()
	}
	if err != nil && (errdefs.IsAlreadyExists(err) || errdefs.IsUnavailable(err) || errdefs.IsDeadlineExceeded(err)) {
		// The container is someone else's, or the agent cannot be reached.
		fmt.Fprintf(os.Stderr, "berth: %v\n", err)
		return exitLaunchFailed
	}
	// The sandbox is followed, and removed at the end, when it is on this
	// host (always for an embedded agent; for a remote one on the same host).
	sandbox := run.GetSandbox()
	if sandbox == "" && ag.workDir != "" {
		sandbox = filepath.Join(ag.workDir, "sandboxes", id.GetValue())
	}
	local := false
	if sandbox != "" {
		if _, serr := os.Stat(sandbox); serr == nil {
			local = true
		} else if run != nil {
			fmt.Fprintf(os.Stderr, "berth: container %s: its output is in %s on the agent's host\n", id.GetValue(), sandbox)
		}
	}
	if local && !keepSandbox {
		defer func() { _ = os.RemoveAll(sandbox) }()
	}
	f := startFollow(sandbox, local)
	done := make(chan struct{})
	defer close(done)
	go func() {
		n := 0
		for {
			select {
			case <-done:
				return
			case s := <-signals:
				n++
				if n == 1 {
					_, _ = ask.Request[*containerizerv1.KillContainerResponse](ctx, root, ag.containerizer,
						&containerizerv1.KillContainerRequest{ContainerId: id, Signal: int32(s.(syscall.Signal))}, 10*time.Second)
					continue
				}
				_, _ = ask.Request[*containerizerv1.DestroyContainerResponse](ctx, root, ag.containerizer,
					&containerizerv1.DestroyContainerRequest{ContainerId: id}, time.Minute)
			}
		}
	}()
	w, werr := waitContainer(ctx, ag, id)
	f.stop()
	if werr != nil {
		if err != nil {
			fmt.Fprintf(os.Stderr, "berth: %v\n", err)
		} else {
			fmt.Fprintf(os.Stderr, "berth: waiting for container %s: %v\n", id.GetValue(), werr)
		}
		return exitLaunchFailed
	}
	term := w.GetTermination()
	switch term.GetReason() {
	case typesv1.Termination_REASON_COMMAND_EXITED, typesv1.Termination_REASON_UNSPECIFIED:
	default:
		msg := term.GetMessage()
		if msg == "" && err != nil {
			msg = err.Error()
		}
		if msg != "" {
			fmt.Fprintf(os.Stderr, "berth: container %s: %s\n", id.GetValue(), msg)
		}
	}
	for _, e := range term.GetCleanupErrors() {
		fmt.Fprintf(os.Stderr, "berth: container %s: cleanup: %s\n", id.GetValue(), e)
	}
	return exitStatus(term)
}

// exitKilled is 128 + SIGKILL, what a shell reports for a killed command.
const exitKilled = 128 + 9

// exitStatus is berth execute's exit status for a termination: the
// command's, except that a container destroyed for exceeding a limit never
// exits 0. Its command may have ended with 0 just before the destroy killed
// it (a child was the OOM killer's victim); the container still failed, as
// Mesos reports TASK_FAILED, so it exits as if killed.
func exitStatus(term *typesv1.Termination) int {
	code := int(term.GetExitCode())
	if term.GetReason() == typesv1.Termination_REASON_LIMITATION && code == 0 {
		return exitKilled
	}
	return code
}

// remoteWaitSlice is how long one wait on a remote agent lasts before it is
// asked again: a restarted agent recovers the container and answers the
// next wait, so `berth execute --agent` survives agent restarts.
const remoteWaitSlice = 5 * time.Second

// waitContainer waits for the container's termination. An embedded agent
// answers one wait; a remote one may go away and come back, so the wait is
// repeated, and the user is told once while the agent is unreachable.
func waitContainer(ctx context.Context, ag target, id *typesv1.ContainerID) (*containerizerv1.WaitContainerResponse, error) {
	req := &containerizerv1.WaitContainerRequest{ContainerId: id}
	if ag.workDir != "" {
		return ask.Request[*containerizerv1.WaitContainerResponse](ctx, ag.root, ag.containerizer, req, ask.Forever)
	}
	lost := false
	for {
		w, err := ask.Request[*containerizerv1.WaitContainerResponse](ctx, ag.root, ag.containerizer, req, remoteWaitSlice)
		if err == nil || !errdefs.IsDeadlineExceeded(err) && !errdefs.IsUnavailable(err) {
			if lost && err == nil {
				fmt.Fprintf(os.Stderr, "berth: the agent is back; container %s recovered\n", id.GetValue())
			}
			return w, err
		}
		_, perr := ask.Request[*containerizerv1.ListContainersResponse](ctx, ag.root, ag.containerizer, &containerizerv1.ListContainersRequest{}, 2*time.Second)
		switch {
		case perr != nil && !lost:
			lost = true
			fmt.Fprintf(os.Stderr, "berth: lost the agent (%v); waiting for it to come back (Ctrl-C to stop waiting; the container keeps running)\n", perr)
		case perr == nil && lost:
			lost = false
			fmt.Fprintf(os.Stderr, "berth: the agent is back; waiting for container %s\n", id.GetValue())
		}
		if perr != nil {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Second):
			}
		}
	}
}

// follower copies the sandbox's stdout and stderr files to ours as they grow.
type follower struct {
	stopCh chan struct{}
	wg     sync.WaitGroup
}

func startFollow(sandbox string, local bool) *follower {
	f := &follower{stopCh: make(chan struct{})}
	if !local {
		return f
	}
	for _, s := range []struct {
		name string
		out  io.Writer
	}{{"stdout", os.Stdout}, {"stderr", os.Stderr}} {
		f.wg.Add(1)
		go func(path string, out io.Writer) {
			defer f.wg.Done()
			follow(path, out, f.stopCh)
		}(sandbox+"/"+s.name, s.out)
	}
	return f
}

// stop copies what is left and waits for the copiers.
func (f *follower) stop() {
	close(f.stopCh)
	f.wg.Wait()
}

// follow copies path to out until stop, then drains it.
func follow(path string, out io.Writer, stop <-chan struct{}) {
	var file *os.File
	defer func() {
		if file != nil {
			file.Close()
		}
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		stopping := false
		select {
		case <-stop:
			stopping = true
		case <-tick.C:
		}
		if file == nil {
			file, _ = os.Open(path)
		}
		if file != nil {
			_, _ = io.Copy(out, file)
		}
		if stopping {
			return
		}
	}
}
