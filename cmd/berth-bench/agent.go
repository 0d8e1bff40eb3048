package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/berthrt/berth/actors/agent"
	"github.com/berthrt/berth/actors/ask"
	"github.com/berthrt/berth/actors/logging"
	agentv1 "github.com/berthrt/berth/messages/agent/v1"
	containerizerv1 "github.com/berthrt/berth/messages/containerizer/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/builtin"
	"github.com/berthrt/berth/process/errdefs"
)

// agentProc is a `berth agent` this run started.
type agentProc struct {
	cmd  *exec.Cmd
	addr string
	logs *bytes.Buffer
	done chan struct{}
}

// startAgent runs `berth agent` on a free loopback port with its own work
// and runtime dirs, and returns once it listens.
func startAgent(ctx context.Context, berth, workDir, runtimeDir string, extra ...string) (*agentProc, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	_ = l.Close()
	a := &agentProc{addr: addr, logs: &bytes.Buffer{}, done: make(chan struct{})}
	a.cmd = exec.Command(berth, append([]string{"agent", "--work_dir=" + workDir, "--runtime_dir=" + runtimeDir,
		"--listen=" + addr, "--plaintext_loopback", "--log_level=warn"}, extra...)...)
	a.cmd.Stdout, a.cmd.Stderr = a.logs, a.logs
	if err := a.cmd.Start(); err != nil {
		return nil, fmt.Errorf("berth agent: %w", err)
	}
	go func() { _ = a.cmd.Wait(); close(a.done) }()
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			_ = c.Close()
			return a, nil
		}
		select {
		case <-a.done:
			return nil, fmt.Errorf("berth agent ended:\n%s: %w", a.logs, errdefs.ErrUnavailable)
		case <-ctx.Done():
			a.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if i > 1500 {
			a.stop()
			return nil, fmt.Errorf("berth agent never listened on %s:\n%s: %w", addr, a.logs, errdefs.ErrUnavailable)
		}
	}
}

// stop asks the agent to end (SIGTERM) and waits; SIGKILL after 30 s.
func (a *agentProc) stop() {
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(30 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
	}
}

// agentClient is a long-lived client of an agent's remote API, the way
// `berth execute --agent` talks to it, living in this process so that no
// client start-up is in the measured time.
type agentClient struct {
	sys           *actor.ActorSystem
	stopRemote    func()
	agent, contzr *actor.PID
}

func newAgentClient(addr string) (*agentClient, error) {
	logger, err := logging.New(logging.Options{Level: "fatal"})
	if err != nil {
		return nil, err
	}
	sys := actor.NewActorSystem(logging.SystemOption(logger))
	r, err := agent.StartRemote(sys, agent.RemoteOptions{Listen: "127.0.0.1:0", PlaintextLoopback: true})
	if err != nil {
		return nil, err
	}
	return &agentClient{sys: sys, stopRemote: func() { r.Shutdown(false) },
		agent: agent.AgentPID(addr), contzr: agent.ContainerizerPID(addr)}, nil
}

// ready waits until the agent answers.
func (c *agentClient) ready(ctx context.Context) error {
	var err error
	for range 300 {
		if _, err = ask.Request[*agentv1.GetAgentInfoResponse](ctx, c.sys.Root, c.agent, &agentv1.GetAgentInfoRequest{}, 2*time.Second); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("the agent does not answer: %w", err)
}

// launch runs n containers of /bin/true from the built-in image at once
// with backend, and returns the time from the first request to the last
// termination. Sandboxes are removed afterwards, outside the time.
func (c *agentClient) launch(ctx context.Context, backend string, n int) (time.Duration, error) {
	errs := make([]error, n)
	sandboxes := make([]string, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sandboxes[i], errs[i] = c.runOne(ctx, backend)
		}()
	}
	wg.Wait()
	d := time.Since(start)
	for _, s := range sandboxes {
		if s != "" {
			_ = os.RemoveAll(s)
		}
	}
	return d, errors.Join(errs...)
}

func (c *agentClient) runOne(ctx context.Context, backend string) (string, error) {
	id := &typesv1.ContainerID{Value: nextID()}
	req := &agentv1.RunContainerRequest{ContainerId: id, Backend: backend, Config: &typesv1.ContainerConfig{
		Command: &typesv1.CommandInfo{Arguments: []string{"/bin/true"}, Environment: &typesv1.Environment{}},
		ContainerInfo: &typesv1.ContainerInfo{
			Image: &typesv1.Image{Type: typesv1.Image_TYPE_DOCKER, Docker: &typesv1.Image_Docker{Name: builtin.Reference}, Cached: true},
		},
	}}
	run, err := ask.Request[*agentv1.RunContainerResponse](ctx, c.sys.Root, c.agent, req, 2*time.Minute)
	if err != nil {
		return run.GetSandbox(), fmt.Errorf("run %s: %w", id.GetValue(), err)
	}
	w, err := ask.Request[*containerizerv1.WaitContainerResponse](ctx, c.sys.Root, c.contzr, &containerizerv1.WaitContainerRequest{ContainerId: id}, 2*time.Minute)
	if err != nil {
		return run.GetSandbox(), fmt.Errorf("wait %s: %w", id.GetValue(), err)
	}
	if t := w.GetTermination(); t.GetExitCode() != 0 {
		return run.GetSandbox(), fmt.Errorf("container %s: exit %d (%s): %s: %w", id.GetValue(), t.GetExitCode(), t.GetReason(), t.GetMessage(), errdefs.ErrInternal)
	}
	return run.GetSandbox(), nil
}

func (c *agentClient) close() {
	c.stopRemote()
	c.sys.Shutdown()
}

// agentWithClient starts an agent and a client of it, and waits until it
// answers; stop ends both.
func agentWithClient(ctx context.Context, berth, workDir, runtimeDir string, extra ...string) (*agentProc, *agentClient, func(), error) {
	ag, err := startAgent(ctx, berth, workDir, runtimeDir, extra...)
	if err != nil {
		return nil, nil, nil, err
	}
	client, err := newAgentClient(ag.addr)
	if err != nil {
		ag.stop()
		return nil, nil, nil, err
	}
	stop := func() {
		client.close()
		ag.stop()
	}
	if err := client.ready(ctx); err != nil {
		stop()
		return nil, nil, nil, err
	}
	return ag, client, stop, nil
}
