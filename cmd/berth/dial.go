package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/berthrt/berth/actors/agent"
	"github.com/berthrt/berth/actors/ask"
	agentv1 "github.com/berthrt/berth/messages/agent/v1"
	"github.com/berthrt/berth/process/errdefs"
)

// agentStartWait bounds how long a client waits for an agent that listens
// but has not finished starting (recovering its containers).
const agentStartWait = 2 * time.Minute

// awaitAgent returns once the agent at addr answers. An agent listens before
// its actors exist (their addresses come from the listener), and recovers
// before it serves; until then requests are dead letters, so the client
// asks again rather than failing. Nothing listening fails at once.
func awaitAgent(sys *actor.ActorSystem, addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return fmt.Errorf("no berth agent at %s: %v: %w", addr, err, errdefs.ErrUnavailable)
	}
	_ = c.Close()
	ctx := context.Background()
	deadline := time.Now().Add(agentStartWait)
	told := false
	for {
		_, err := ask.Request[*agentv1.GetAgentInfoResponse](ctx, sys.Root, agent.AgentPID(addr), &agentv1.GetAgentInfoRequest{}, 10*time.Second)
		if err == nil || !errdefs.IsUnavailable(err) || time.Now().After(deadline) {
			return err
		}
		if !told {
			told = true
			fmt.Fprintf(os.Stderr, "berth: the agent at %s is starting; waiting for it\n", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
