package agent_test

import (
	"context"
	"os"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/berthrt/berth/actors/actortest"
	"github.com/berthrt/berth/actors/agent"
	"github.com/berthrt/berth/actors/ask"
	agentv1 "github.com/berthrt/berth/messages/agent/v1"
	containerizerv1 "github.com/berthrt/berth/messages/containerizer/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/builtin"
	"github.com/berthrt/berth/process/launch"
)

// TestMain lets the test binary be the containers' init (InitPath below).
func TestMain(m *testing.M) {
	if launch.IsInit() {
		launch.Main()
	}
	os.Exit(m.Run())
}

// startAgent runs an in-process agent on fresh berth-test dirs; cleanup
// stops it and checks that nothing is left mounted below them.
func startAgent(t testing.TB, o agent.Options) *agent.Agent {
	t.Helper()
	actortest.RequiresRoot(t)
	dir, err := os.MkdirTemp("", "berth-test-agent-")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	o.WorkDir, o.RuntimeDir, o.InitPath = dir+"/work", dir+"/run", self
	sys := actortest.NewSystem(t)
	logger := actortest.Logger(t)
	if _, bench := t.(*testing.B); bench {
		logger = zap.NewNop() // a benchmark's output is its numbers
	}
	ag, err := agent.Start(context.Background(), sys, o, logger)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ag.Stop()
		for _, m := range actortest.MountsBelow(t, dir) {
			t.Errorf("left mounted: %s", m)
		}
		os.RemoveAll(dir)
	})
	return ag
}

// runToEnd launches argv from the built-in image and waits for its
// termination.
func runToEnd(t testing.TB, ag *agent.Agent, id string, argv ...string) *typesv1.Termination {
	t.Helper()
	ctx := context.Background()
	config := &typesv1.ContainerConfig{
		Command: &typesv1.CommandInfo{Arguments: argv},
		ContainerInfo: &typesv1.ContainerInfo{
			Image: &typesv1.Image{Type: typesv1.Image_TYPE_DOCKER, Docker: &typesv1.Image_Docker{Name: builtin.Reference}, Cached: true},
		},
	}
	cid := &typesv1.ContainerID{Value: id}
	if _, err := ask.Request[*agentv1.RunContainerResponse](ctx, ag.System.Root, ag.PID,
		&agentv1.RunContainerRequest{ContainerId: cid, Config: config}, 5*time.Minute); err != nil {
		t.Fatalf("run %s: %v", id, err)
	}
	w, err := ask.Request[*containerizerv1.WaitContainerResponse](ctx, ag.System.Root, ag.Containerizer,
		&containerizerv1.WaitContainerRequest{ContainerId: cid}, time.Minute)
	if err != nil {
		t.Fatalf("wait %s: %v", id, err)
	}
	if err := os.RemoveAll(ag.SandboxDir(id)); err != nil {
		t.Fatal(err)
	}
	return w.GetTermination()
}
