package containerizer_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/berthrt/berth/actors/actortest"
	"github.com/berthrt/berth/actors/ask"
	"github.com/berthrt/berth/actors/containerizer"
	containerizerv1 "github.com/berthrt/berth/messages/containerizer/v1"
	isolatorv1 "github.com/berthrt/berth/messages/isolator/v1"
	launcherv1 "github.com/berthrt/berth/messages/launcher/v1"
	provisionerv1 "github.com/berthrt/berth/messages/provisioner/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/checkpoint"
	"github.com/berthrt/berth/process/errdefs"
)

// These tests drive the real containerizer actor through protobuf messages
// against fake component actors, to check how the actor executes the state
// machine's effects: ordering, in-flight steps, replies, checkpoints. The real
// components are exercised end to end in actors/agent.

// world is a containerizer with fake components that record what they saw.
type world struct {
	t       *testing.T
	sys     *actor.ActorSystem
	cz      *actor.PID
	runtime string

	mu       sync.Mutex
	log      []string
	waiters  []*actor.PID // launcher WaitProcess requesters
	gate     chan struct{}
	provErr  error
	execErr  error
	alive    bool // the fake init is alive
	exitWith syscall.WaitStatus
	// limitation, when set before the containers are watched, is every
	// isolator's answer to Watch.
	limitation *typesv1.Limitation
}

func (w *world) record(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log = append(w.log, s)
}

func (w *world) events() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.log...)
}

// exit makes the fake init exit with status ws, answering every waiter.
func (w *world) exit(ws syscall.WaitStatus) {
	w.mu.Lock()
	waiters := w.waiters
	w.waiters, w.alive = nil, false
	w.mu.Unlock()
	for _, p := range waiters {
		w.sys.Root.Send(p, &launcherv1.WaitProcessResponse{WaitStatus: int32(ws), HasWaitStatus: true})
	}
}

func newWorld(t *testing.T, isolators int) *world {
	w := &world{t: t, sys: actortest.NewSystem(t), runtime: t.TempDir()}
	prov := w.sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch c.Message().(type) {
		case *provisionerv1.ProvisionRequest:
			w.record("provision")
			if w.gate != nil {
				sender := c.Sender()
				go func() {
					<-w.gate
					ask.Reply(w.sys.Root, sender, &provisionerv1.ProvisionResponse{Rootfs: "/rootfs", Backend: "copy"}, w.provErr)
				}()
				return
			}
			ask.Respond(c, &provisionerv1.ProvisionResponse{Rootfs: "/rootfs", Backend: "copy",
				ImageConfig: &typesv1.ImageConfig{Cmd: []string{"/bin/true"}}}, w.provErr)
		case *provisionerv1.DestroyProvisionRequest:
			w.record("destroy-rootfs")
			ask.Respond(c, &provisionerv1.DestroyProvisionResponse{Destroyed: true}, nil)
		case *provisionerv1.RecoverProvisionerRequest:
			w.record("recover-provisioner")
			ask.Respond(c, &provisionerv1.RecoverProvisionerResponse{}, nil)
		}
	}))
	var isoPIDs []*actor.PID
	var names []string
	for i := 0; i < isolators; i++ {
		name := string(rune('a' + i))
		names = append(names, "iso/"+name)
		isoPIDs = append(isoPIDs, w.sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
			switch c.Message().(type) {
			case *isolatorv1.PrepareRequest:
				w.record("prepare " + name)
				ns := []isolatorv1.Namespace{isolatorv1.Namespace_NAMESPACE_MOUNT}
				ask.Respond(c, &isolatorv1.PrepareResponse{LaunchInfo: &isolatorv1.ContainerLaunchInfo{CloneNamespaces: ns}}, nil)
			case *isolatorv1.IsolateRequest:
				w.record("isolate " + name)
				ask.Respond(c, &isolatorv1.IsolateResponse{}, nil)
			case *isolatorv1.CleanupRequest:
				w.record("cleanup " + name)
				ask.Respond(c, &isolatorv1.CleanupResponse{}, nil)
			case *isolatorv1.RecoverIsolatorRequest:
				ask.Respond(c, &isolatorv1.RecoverIsolatorResponse{}, nil)
			case *isolatorv1.WatchRequest:
				// Unanswered (no limitation) unless the test sets one.
				if w.limitation != nil {
					ask.Respond(c, &isolatorv1.WatchResponse{Limitation: w.limitation}, nil)
				}
			}
		})))
	}
	launcher := w.sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch m := c.Message().(type) {
		case *launcherv1.ForkRequest:
			w.record("fork " + m.GetSpec().GetArgs()[0])
			w.mu.Lock()
			w.alive = true
			w.mu.Unlock()
			ask.Respond(c, &launcherv1.ForkResponse{Pid: 4242, StartTime: 7}, nil)
		case *launcherv1.ExecRequest:
			w.record("exec")
			ask.Respond(c, &launcherv1.ExecResponse{}, w.execErr)
		case *launcherv1.WaitProcessRequest:
			w.mu.Lock()
			alive := w.alive
			if alive {
				w.waiters = append(w.waiters, c.Sender())
			}
			w.mu.Unlock()
			if !alive {
				ask.Respond(c, &launcherv1.WaitProcessResponse{WaitStatus: int32(w.exitWith), HasWaitStatus: true}, nil)
			}
		case *launcherv1.DestroyProcessesRequest:
			w.record("kill")
			ask.Respond(c, &launcherv1.DestroyProcessesResponse{Existed: true}, nil)
			go w.exit(syscall.WaitStatus(syscall.SIGKILL))
		case *launcherv1.RecoverLauncherRequest:
			w.record("recover-launcher")
			ask.Respond(c, &launcherv1.RecoverLauncherResponse{Alive: []*typesv1.ContainerID{m.GetKnown()[0].GetContainerId()}}, nil)
		}
	}))
	w.cz = w.sys.Root.Spawn(containerizer.Props(containerizer.Options{
		RuntimeDir: w.runtime, Provisioner: prov, Isolators: isoPIDs, IsolatorNames: names, Launcher: launcher,
		Logger: actortest.Logger(t),
	}))
	return w
}

func (w *world) launchReq(id string) *containerizerv1.LaunchContainerRequest {
	return &containerizerv1.LaunchContainerRequest{
		ContainerId: &typesv1.ContainerID{Value: id},
		Config: &typesv1.ContainerConfig{
			Command:       &typesv1.CommandInfo{Shell: true, Value: "exit 42"},
			Directory:     w.t.TempDir(),
			ContainerInfo: &typesv1.ContainerInfo{Image: &typesv1.Image{Type: typesv1.Image_TYPE_DOCKER, Docker: &typesv1.Image_Docker{Name: "x"}}},
		},
	}
}

func (w *world) launch(id string) (*containerizerv1.LaunchContainerResponse, error) {
	return ask.Request[*containerizerv1.LaunchContainerResponse](context.Background(), w.sys.Root, w.cz, w.launchReq(id), 5*time.Second)
}

func (w *world) wait(id string) *typesv1.Termination {
	w.t.Helper()
	r, err := ask.Request[*containerizerv1.WaitContainerResponse](context.Background(), w.sys.Root, w.cz,
		&containerizerv1.WaitContainerRequest{ContainerId: &typesv1.ContainerID{Value: id}}, 5*time.Second)
	if err != nil {
		w.t.Fatalf("wait %s: %v", id, err)
	}
	return r.GetTermination()
}

// equal compares event logs; isolates run in parallel, so a run of them is
// compared as a set.
func equal(t *testing.T, got, want []string) {
	t.Helper()
	got = sortIsolates(got)
	want = sortIsolates(want)
	if len(got) != len(want) {
		t.Fatalf("events\n got %q\nwant %q", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("events\n got %q\nwant %q", got, want)
		}
	}
}

func TestActorLaunchRunExit(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 2)
	r, err := w.launch("c1")
	if err != nil {
		t.Fatal(err)
	}
	if r.GetPid() != 4242 || r.GetRootfs() != "/rootfs" {
		t.Fatalf("launch response %v", r)
	}
	// Running: the checkpoints are on disk.
	ck := &containerizerv1.Checkpoint{}
	if err := checkpoint.Read(filepath.Join(w.runtime, "containers", "c1", "config"), ck); err != nil || ck.GetConfig().GetRootfs() != "/rootfs" {
		t.Fatalf("config checkpoint %v %v", ck, err)
	}
	pc := &launcherv1.ProcessCheckpoint{}
	if err := checkpoint.Read(filepath.Join(w.runtime, "containers", "c1", "pid"), pc); err != nil || pc.GetPid() != 4242 || pc.GetStartTime() != 7 {
		t.Fatalf("pid checkpoint %v %v", pc, err)
	}
	st, err := ask.Request[*containerizerv1.GetContainerStatusResponse](context.Background(), w.sys.Root, w.cz,
		&containerizerv1.GetContainerStatusRequest{ContainerId: &typesv1.ContainerID{Value: "c1"}}, time.Second)
	if err != nil || st.GetStatus().GetState() != containerizerv1.ContainerState_CONTAINER_STATE_RUNNING {
		t.Fatalf("status %v %v", st, err)
	}
	if _, err := w.launch("c1"); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("second launch: %v", err)
	}
	w.exit(syscall.WaitStatus(42 << 8))
	term := w.wait("c1")
	if term.GetExitCode() != 42 || term.GetReason() != typesv1.Termination_REASON_COMMAND_EXITED {
		t.Fatalf("termination %v", term)
	}
	equal(t, w.events(), []string{"provision", "prepare a", "prepare b", "fork /bin/sh", "isolate a", "isolate b", "exec", "cleanup b", "cleanup a", "destroy-rootfs"})
	if _, err := os.Stat(filepath.Join(w.runtime, "containers", "c1")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("runtime dir left: %v", err)
	}
	// A late wait still gets the termination; the id may be reused.
	if w.wait("c1").GetExitCode() != 42 {
		t.Fatal("late wait lost the termination")
	}
}

func TestActorDestroyWhileProvisioning(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1)
	w.gate = make(chan struct{})
	launched := make(chan error, 1)
	go func() { _, err := w.launch("c2"); launched <- err }()
	for len(w.events()) == 0 {
		time.Sleep(time.Millisecond)
	}
	destroyed := make(chan *typesv1.Termination, 1)
	go func() {
		r, err := ask.Request[*containerizerv1.DestroyContainerResponse](context.Background(), w.sys.Root, w.cz,
			&containerizerv1.DestroyContainerRequest{ContainerId: &typesv1.ContainerID{Value: "c2"}}, 5*time.Second)
		if err != nil {
			t.Error(err)
		}
		destroyed <- r.GetTermination()
	}()
	if err := <-launched; !errdefs.IsCanceled(err) {
		t.Fatalf("launch during destroy: %v", err)
	}
	select {
	case <-destroyed:
		t.Fatal("destroy finished while the provision was still in flight")
	case <-time.After(50 * time.Millisecond):
	}
	close(w.gate) // the provision completes; the destroy goes on
	term := <-destroyed
	if term.GetReason() != typesv1.Termination_REASON_DESTROYED {
		t.Fatalf("termination %v", term)
	}
	// Nothing was prepared or forked, so nothing is cleaned up or killed.
	equal(t, w.events(), []string{"provision", "destroy-rootfs"})
}

func TestActorLaunchFailures(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1)
	w.provErr = errdefs.ErrNotFound
	if _, err := w.launch("c3"); !errdefs.IsNotFound(err) {
		t.Fatalf("launch: %v", err)
	}
	term := w.wait("c3")
	if term.GetReason() != typesv1.Termination_REASON_LAUNCH_FAILED || term.GetExitCode() != 125 || term.GetError().GetCode() != typesv1.Code_CODE_NOT_FOUND {
		t.Fatalf("termination %v", term)
	}
	equal(t, w.events(), []string{"provision", "destroy-rootfs"})

	w2 := newWorld(t, 1)
	w2.execErr = errdefs.ErrNotFound
	if _, err := w2.launch("c4"); !errdefs.IsNotFound(err) {
		t.Fatalf("launch: %v", err)
	}
	if term := w2.wait("c4"); term.GetExitCode() != 127 {
		t.Fatalf("exec not found: termination %v", term)
	}
	equal(t, w2.events(), []string{"provision", "prepare a", "fork /bin/sh", "isolate a", "exec", "kill", "cleanup a", "destroy-rootfs"})
}

func TestActorBadRequests(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 0)
	ctx := context.Background()
	id := &typesv1.ContainerID{Value: "nope"}
	if _, err := ask.Request[*containerizerv1.WaitContainerResponse](ctx, w.sys.Root, w.cz, &containerizerv1.WaitContainerRequest{ContainerId: id}, time.Second); !errdefs.IsNotFound(err) {
		t.Errorf("wait unknown: %v", err)
	}
	if _, err := ask.Request[*containerizerv1.DestroyContainerResponse](ctx, w.sys.Root, w.cz, &containerizerv1.DestroyContainerRequest{ContainerId: id}, time.Second); !errdefs.IsNotFound(err) {
		t.Errorf("destroy unknown: %v", err)
	}
	for _, bad := range []string{"", "../x", "a/b", "-x", string(make([]byte, 65))} {
		if _, err := w.launch(bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("launch %q: %v", bad, err)
		}
	}
	req := w.launchReq("nocmd")
	req.Config.Command = nil
	if _, err := ask.Request[*containerizerv1.LaunchContainerResponse](ctx, w.sys.Root, w.cz, req, time.Second); !errdefs.IsInvalidArgument(err) {
		t.Errorf("launch without command: %v", err)
	}
	if len(w.events()) != 0 {
		t.Errorf("bad requests reached components: %v", w.events())
	}
}

// checkpointRunning writes the checkpoints of a running container id.
func (w *world) checkpointRunning(id string) {
	dir := filepath.Join(w.runtime, "containers", id)
	if err := checkpoint.Write(filepath.Join(dir, "config"), &containerizerv1.Checkpoint{
		ContainerId: &typesv1.ContainerID{Value: id}, Config: &typesv1.ContainerConfig{Rootfs: "/r", Directory: "/s"},
	}); err != nil {
		w.t.Fatal(err)
	}
	if err := checkpoint.Write(filepath.Join(dir, "pid"), &launcherv1.ProcessCheckpoint{Pid: 4242, StartTime: 7}); err != nil {
		w.t.Fatal(err)
	}
}

// TestActorWatchesRecoveredContainers: a recovered container's limitations
// are watched again; one destroys it with the limitation as the cause.
func TestActorWatchesRecoveredContainers(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1)
	w.checkpointRunning("old")
	w.alive = true
	w.limitation = &typesv1.Limitation{Resources: []string{"mem"}, Message: "Memory limit exceeded"}
	r, err := ask.Request[*containerizerv1.RecoverContainersResponse](context.Background(), w.sys.Root, w.cz, &containerizerv1.RecoverContainersRequest{}, 5*time.Second)
	if err != nil || len(r.GetRecovered()) != 1 {
		t.Fatalf("recover: %v %v", r, err)
	}
	term := w.wait("old")
	if term.GetReason() != typesv1.Termination_REASON_LIMITATION || term.GetMessage() != "Memory limit exceeded" || term.GetSignal() != 9 {
		t.Fatalf("recovered termination %v", term)
	}
	equal(t, w.events(), []string{"recover-launcher", "recover-provisioner", "kill", "cleanup a", "destroy-rootfs"})
}

func TestActorRecoversCheckpointedContainer(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1)
	w.checkpointRunning("old")
	// A container that died before its fork left only a config: it is removed.
	if err := checkpoint.Write(filepath.Join(w.runtime, "containers", "unforked", "config"), &containerizerv1.Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	w.alive = true
	r, err := ask.Request[*containerizerv1.RecoverContainersResponse](context.Background(), w.sys.Root, w.cz, &containerizerv1.RecoverContainersRequest{}, 5*time.Second)
	if err != nil || len(r.GetRecovered()) != 1 || r.GetRecovered()[0].GetValue() != "old" {
		t.Fatalf("recover: %v %v", r, err)
	}
	if _, err := os.Stat(filepath.Join(w.runtime, "containers", "unforked")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("unforked leftovers kept: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		w.mu.Lock()
		n := len(w.waiters)
		w.mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	w.exit(syscall.WaitStatus(3 << 8))
	if term := w.wait("old"); term.GetExitCode() != 3 {
		t.Fatalf("recovered termination %v", term)
	}
	equal(t, w.events(), []string{"recover-launcher", "recover-provisioner", "cleanup a", "destroy-rootfs"})
}

func sortIsolates(evs []string) []string {
	out := append([]string(nil), evs...)
	for i := 0; i < len(out); i++ {
		j := i
		for j < len(out) && strings.HasPrefix(out[j], "isolate ") {
			j++
		}
		sort.Strings(out[i:j])
		if j > i {
			i = j
		}
	}
	return out
}
